//! The process lifecycle layer, for crates built on the host (the daemon
//! supervisor): launching an approved command into a cgroup scope with
//! buffered streams, running one to its end with its output captured, and
//! the clock helpers they share. Processes are still started only by the
//! host's spawner; these are the entry points to it.
//!
//! - [`ProcessManager::launch`](crate::ProcessManager::launch) with a
//!   [`Launch`]: start and monitor one process ([`ManagedProcess`]);
//! - [`ProcessManager::scope`](crate::ProcessManager::scope) and
//!   [`ProcessManager::host_scope`](crate::ProcessManager::host_scope): the
//!   cgroup [`Scope`] it goes in;
//! - [`run_captured`] with a [`RunRequest`]: run one to its end
//!   ([`Captured`]), e.g. an exec health probe.

pub use crate::audit::now_ms;
pub use crate::os::cgroup::Scope;
pub use crate::os::spawner::StdioPlan;
pub use crate::policy::limits::{MAX_TIME, deadline_after};
pub use crate::process::buffer::{ByteBuffer, TAIL_ROOM};
pub use crate::process::capture::{Captured, RunRequest, run_captured};
pub use crate::process::managed::{Buffers, KILL_WAIT, ManagedProcess, buffer};
pub use crate::process::manager::Launch;
pub use crate::session::quota::RateBucket;
pub use crate::sys::process::pidfd_open;
