//! The result of running a process to completion.

use crate::{ExitStatus, wit};

/// The output of a finished process, from [`Command::output`](crate::Command::output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the process ended.
    pub status: ExitStatus,
    /// The captured stdout, at most the policy's capture limit.
    pub stdout: Vec<u8>,
    /// The captured stderr, at most the policy's capture limit.
    pub stderr: Vec<u8>,
    /// Bytes of stdout past the capture limit, read and discarded.
    pub stdout_dropped: u64,
    /// Bytes of stderr past the capture limit, read and discarded.
    pub stderr_dropped: u64,
}

impl Output {
    /// Whether any output was discarded past the capture limit.
    pub fn truncated(&self) -> bool {
        self.stdout_dropped > 0 || self.stderr_dropped > 0
    }
}

impl From<wit::Output> for Output {
    fn from(output: wit::Output) -> Self {
        Output {
            status: output.status.into(),
            stdout: output.stdout,
            stderr: output.stderr,
            stdout_dropped: output.stdout_dropped,
            stderr_dropped: output.stderr_dropped,
        }
    }
}
