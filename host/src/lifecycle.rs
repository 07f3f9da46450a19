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
pub use crate::buffer::{ByteBuffer, TAIL_ROOM};
pub use crate::capture::{Captured, RunRequest, run_captured};
pub use crate::cgroup::Scope;
pub use crate::limits::{MAX_MILLIS, deadline_after};
pub use crate::managed::{Buffers, KILL_WAIT, ManagedProcess, buffer};
pub use crate::manager::Launch;
pub use crate::os_child::pidfd_open;
pub use crate::quota::RateBucket;
pub use crate::spawner::StdioPlan;
