//! The session layer: one guest's context ([`ProcessCtx`]), which admits
//! each call (rate, validation, manifest, policy, quotas), fixes its
//! deadline and hands it to the process layer; and the guest's rate
//! bucket.
//!
//! It may import the process and OS layers, the policy and manifest,
//! the domain types, errors and audit; never the wit or embed layers.
//!
//! [`ProcessCtx`]: ctx::ProcessCtx

pub(crate) mod admission;
pub(crate) mod ctx;
pub(crate) mod quota;

pub use admission::Admission;
pub use ctx::{CommandSpec, ProcessCtx, ProcessCtxBuilder, StartSpec};
pub use quota::RateBucket;
