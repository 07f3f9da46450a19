//! Snapshots of a managed process.

use std::time::{Duration, SystemTime};

use crate::{ExitStatus, wit};

/// A snapshot of one of this guest's processes, from
/// [`Child::info`](crate::Child::info).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The id the host gave the process.
    pub id: String,
    /// The operating-system process id, which is also its process-group id.
    pub pid: u32,
    /// The absolute path of the program that was executed.
    pub program: String,
    /// The arguments, not including the program.
    pub args: Vec<String>,
    /// When the process was started.
    pub started_at: SystemTime,
    /// Where the process is in its life.
    pub state: State,
    /// How the process ended, once it has.
    pub exit: Option<ExitStatus>,
    /// Counters of the stdout stream.
    pub stdout: StreamStats,
    /// Counters of the stderr stream.
    pub stderr: StreamStats,
    /// Highest memory use of the process and everything it started, in
    /// bytes, where the host measures it (a cgroup with the memory
    /// controller).
    pub memory_peak_bytes: Option<u64>,
    /// CPU time (user and system) of the process and everything it started,
    /// where the host measures it (a cgroup).
    pub cpu_time: Option<Duration>,
}

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Still running, or ended and not yet noticed by the host.
    Running,
    /// Ended on its own, by exit or by a signal the host did not send.
    Exited,
    /// Ended by a kill, a signal from the guest, a timeout, or host shutdown.
    Killed,
}

/// Counters of one piped output stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StreamStats {
    /// Bytes the host read from the process's pipe.
    pub received: u64,
    /// Bytes dropped by ring buffering before the guest read them.
    pub dropped: u64,
}

impl From<wit::ProcessInfo> for ProcessInfo {
    fn from(info: wit::ProcessInfo) -> Self {
        ProcessInfo {
            id: info.id,
            pid: info.pid,
            program: info.program,
            args: info.args,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_millis(info.started_at_ms),
            state: info.state.into(),
            exit: info.exit.map(ExitStatus::from),
            stdout: info.stdout.into(),
            stderr: info.stderr.into(),
            memory_peak_bytes: info.memory_peak_bytes,
            cpu_time: info.cpu_time_us.map(Duration::from_micros),
        }
    }
}

impl From<wit::State> for State {
    fn from(state: wit::State) -> Self {
        match state {
            wit::State::Running => State::Running,
            wit::State::Exited => State::Exited,
            wit::State::Killed => State::Killed,
        }
    }
}

impl From<wit::StreamStats> for StreamStats {
    fn from(stats: wit::StreamStats) -> Self {
        StreamStats {
            received: stats.received,
            dropped: stats.dropped,
        }
    }
}
