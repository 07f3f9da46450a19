//! The operating-system layer: the only code that starts processes
//! (`spawner`), the child it returns (a pidfd and its group), cgroups,
//! the subreaper, the watchdog that cleans up after a killed host, the
//! kernel confinement of started programs, and atomic file writes.
//!
//! It may import the domain types (`types`), errors, audit and
//! the policy's data ([`crate::policy`]: what a grant says, turned here
//! into Landlock rules, a seccomp filter and cgroup files); never the
//! process, session, wit or embed layers above it.

pub mod atomic_file;
pub(crate) mod cgroup;
pub(crate) mod child;
pub mod confine;
pub(crate) mod ignored_signals;
pub(crate) mod spawner;
pub(crate) mod subreaper;
pub(crate) mod watchdog;

pub use crate::sys::process::{pid_gone, pidfd_open};
pub use cgroup::{Containment, MissingController, OFF_VAR as CGROUPS_OFF_VAR, Scope, Usage};
pub use subreaper::claim_foreign_sessions;
