//! Who may run what: the policy a guest's calls are checked against.
//!
//! A policy is deny-by-default. It grants programs (resolved to canonical
//! absolute paths when it loads), argument patterns, environment variables,
//! working-directory roots and limits. `Policy::check` turns a guest's
//! request into an [`Approved`] command or a [`CallError`](crate::CallError)
//! naming what was missing.
//!
//! The lowest layer above the base: data and pure checks, and the machine
//! facts a limit needs when it loads. It may import only the base
//! (`error`, `deadline`, `sys`), never the manifest or anything above.

mod access;
mod args;
pub mod catalogue;
pub(crate) mod cgroup_limits;
mod digest;
mod dirs;
mod env;
mod file;
mod grant;
mod leaks;
pub(crate) mod limits;
mod program;
pub mod retired;
mod secrets;

pub use access::{FsSpec, NetSpec, Ports, ProgramAccess};
pub use args::{ArgPattern, is_option};
pub use cgroup_limits::{BadValue, CgroupLimits, InvalidCgroupLimit, check_limit};
pub use digest::ComponentDigest;
pub use env::{inert_expansion, is_hook};
pub use file::PolicySpec;
pub use leaks::{Leak, open_attacks};
pub use limits::{Limits, LimitsError};
pub use program::{Operation, ProgramGrant};
pub use secrets::SecretSpec;

pub use grant::{Approved, CommandRequest, Policy, PolicyBuilder};
