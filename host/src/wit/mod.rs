//! The WIT layer: the bindings generated from `wit/`, the adapter that
//! turns each WIT call into a session call and its result back into WIT,
//! and the functions that add the capability to a linker.
//!
//! It may import the session layer and everything below it; never the
//! embed layer.

pub(crate) mod adapter;
pub mod bindings;
pub(crate) mod linker;

pub use bindings::CAPABILITY_NAME;
pub use bindings::types;
pub use linker::{HasProcess, ProcessView, add_to_linker_async, add_to_linker_sync};
