//! The process layer: a started process and its monitor on the process
//! core (one small runtime per manager), its bounded stream buffers, the
//! capture of a `run`, the census of descendants, the table of who owns
//! what, and the manager that ties them together.
//!
//! It may import the OS layer ([`crate::os`]), the policy's data, the
//! domain types, errors and audit; never the session, wit or embed layers.

pub(crate) mod buffer;
pub(crate) mod capture;
pub(crate) mod core_runtime;
pub(crate) mod descendants;
pub(crate) mod managed;
pub(crate) mod manager;
pub(crate) mod registry;
pub(crate) mod spec;

pub use crate::deadline::Deadline;
pub use crate::types::{Exit, ProcState, Signal, StdioMode, UnknownSignal};
pub use buffer::ByteBuffer;
pub use buffer::{Buffering, Chunk, CursorPastEnd, StreamStats};
pub use capture::Output;
pub use core_runtime::block_on;
pub use managed::{Buffers, KILL_WAIT, Process, StopError, StopPlan, Stream, StreamError};
pub use managed::{ProcessFacts, ProcessSnapshot};
pub use manager::{HostEffects, ProcessManager, ProcessManagerBuilder};
pub use spec::Spec;
