//! A handle to a process running in the background.

use std::time::Duration;

use crate::child_output::read_both;
use crate::{
    ChildStderr, ChildStdin, ChildStdout, Error, ExitStatus, Output, ProcessInfo, Signal, host, wit,
};

/// A process started with [`Command::spawn`](crate::Command::spawn), like
/// [`std::process::Child`].
///
/// As in std, the piped streams are the fields [`stdin`](Self::stdin),
/// [`stdout`](Self::stdout) and [`stderr`](Self::stderr): `Some` for each
/// stream that is [`Stdio::piped`](crate::Stdio::piped), `None` otherwise.
/// `child.stdin.take()` hands the writer away, and dropping it closes
/// stdin.
///
/// Dropping a `Child` does not stop the process: it keeps running until it
/// exits, its timeout passes, or the host shuts down. Dropping it does
/// close a piped stdin, since its [`ChildStdin`] is dropped with it.
/// [`list`](crate::list) finds the process again.
#[derive(Debug)]
pub struct Child {
    /// The writer to the process's stdin, if it is piped.
    pub stdin: Option<ChildStdin>,
    /// The reader of the process's stdout, if it is piped.
    pub stdout: Option<ChildStdout>,
    /// The reader of the process's stderr, if it is piped.
    pub stderr: Option<ChildStderr>,
    id: String,
}

/// Which streams of a spawned process are pipes to the host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pipes {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

impl Child {
    /// A handle with a stream handle for each piped stream.
    pub(crate) fn spawned(id: String, pipes: Pipes) -> Self {
        Child {
            stdin: pipes.stdin.then(|| ChildStdin::new(id.clone())),
            stdout: pipes.stdout.then(|| ChildStdout::new(id.clone())),
            stderr: pipes.stderr.then(|| ChildStderr::new(id.clone())),
            id,
        }
    }

    /// A handle without stream handles, for a process found by
    /// [`list`](crate::list): its pipes belong to the `Child` that started
    /// it.
    pub(crate) fn listed(id: String) -> Self {
        Child {
            stdin: None,
            stdout: None,
            stderr: None,
            id,
        }
    }

    /// The id the host gave the process (not the operating-system pid; see
    /// [`ProcessInfo::pid`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the process to end.
    ///
    /// As in std, a piped stdin is closed first (its [`ChildStdin`] is
    /// dropped), so that a process reading to end-of-file can finish. A
    /// process whose lossless output nobody reads may wait on a full
    /// buffer, as it would on a real pipe: use
    /// [`wait_with_output`](Self::wait_with_output) to read while waiting.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        loop {
            // `None` waits up to the policy's maximum call time.
            if let Some(status) = host::wait(&self.id, None)? {
                return Ok(status.into());
            }
        }
    }

    /// Closes a piped stdin, reads piped stdout and stderr to their end,
    /// then waits for the process to end, like
    /// [`std::process::Child::wait_with_output`].
    ///
    /// Both streams are read in turns, so a process that writes much to one
    /// while the other stays quiet never stalls. A stream that is not piped
    /// gives an empty `Vec`. The `*_dropped` counters of the [`Output`]
    /// count the bytes ring buffering dropped.
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            stdout_dropped: stdout.dropped,
            stderr_dropped: stderr.dropped,
        })
    }

    /// Waits at most `timeout` for the process to end; `None` if it is still
    /// running then. Leaves stdin open.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(host::wait(&self.id, Some(millis))?.map(ExitStatus::from))
    }

    /// How the process ended, or `None` if it is still running. Does not
    /// wait, and leaves stdin open.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.wait_timeout(Duration::ZERO)
    }

    /// Stops the process: `SIGTERM` to its group, then `SIGKILL` after the
    /// policy's grace period. Returns once it has ended. Killing a process
    /// that already ended succeeds and changes nothing.
    ///
    /// This differs from [`std::process::Child::kill`] on purpose: std sends
    /// `SIGKILL` at once, so a process killed here that exits on `SIGTERM`
    /// reports [`signal`](ExitStatus::signal) 15, not 9. The grace period
    /// lets it clean up; send [`Signal::Kill`] with [`signal`](Self::signal)
    /// to skip it.
    pub fn kill(&mut self) -> Result<(), Error> {
        Ok(host::kill(&self.id)?)
    }

    /// Sends `signal` to the process's group. A process that already ended
    /// is not signalled, and the call succeeds.
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        Ok(host::send_signal(&self.id, wit::Signal::from(signal))?)
    }

    /// A snapshot of the process: pid, program, state, exit, stream counters.
    pub fn info(&self) -> Result<ProcessInfo, Error> {
        Ok(host::get(&self.id)?.into())
    }

    /// Forgets the record of an ended process, freeing its slot in the
    /// host's registry. Refused with [`Error::Invalid`] while the process
    /// runs; afterwards every call on this handle fails with
    /// [`Error::NotFound`].
    pub fn remove(&mut self) -> Result<(), Error> {
        Ok(host::remove(&self.id)?)
    }
}
