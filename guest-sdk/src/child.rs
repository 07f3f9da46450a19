//! A handle to a process running in the background.

use std::sync::Arc;
use std::time::Duration;

use crate::child_output::StreamCursor;
use crate::{
    ChildStderr, ChildStdin, ChildStdout, Error, ExitStatus, ProcessInfo, Signal, host, wit,
};

/// A process started with [`Command::spawn`](crate::Command::spawn), like
/// [`std::process::Child`].
///
/// Dropping a `Child` does not stop the process: it keeps running until it
/// exits, its timeout passes, or the host shuts down. [`list`](crate::list)
/// finds it again.
#[derive(Debug)]
pub struct Child {
    id: String,
    stdout: Arc<StreamCursor>,
    stderr: Arc<StreamCursor>,
}

impl Child {
    /// A handle to the process the host knows by `id`.
    pub(crate) fn from_id(id: String) -> Self {
        Child {
            id,
            stdout: Arc::default(),
            stderr: Arc::default(),
        }
    }

    /// The id the host gave the process (not the operating-system pid; see
    /// [`ProcessInfo::pid`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the process to end.
    ///
    /// Unlike [`std::process::Child::wait`] this does not close a piped
    /// stdin: call [`ChildStdin::close`] first if the process reads it to the
    /// end. A process whose lossless output nobody reads may wait on a full
    /// buffer, as it would on a real pipe.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        loop {
            // `None` waits up to the policy's maximum call time.
            if let Some(status) = host::wait(&self.id, None)? {
                return Ok(status.into());
            }
        }
    }

    /// Waits at most `timeout` for the process to end; `None` if it is still
    /// running then.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Ok(host::wait(&self.id, Some(millis))?.map(ExitStatus::from))
    }

    /// How the process ended, or `None` if it is still running. Does not
    /// wait.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.wait_timeout(Duration::ZERO)
    }

    /// Stops the process: `SIGTERM` to its group, then `SIGKILL` after the
    /// policy's grace period. Returns once it has ended. Killing a process
    /// that already ended succeeds and changes nothing.
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

    /// A writer to the process's stdin, which must be [`Stdio::piped`](crate::Stdio::piped).
    pub fn stdin(&self) -> ChildStdin {
        ChildStdin::new(self.id.clone())
    }

    /// A reader of the process's stdout, which must be piped.
    ///
    /// Every reader of the same `Child` shares one position: a new reader
    /// continues where the previous one stopped.
    pub fn stdout(&self) -> ChildStdout {
        ChildStdout::new(self.id.clone(), Arc::clone(&self.stdout))
    }

    /// A reader of the process's stderr, which must be piped.
    ///
    /// Every reader of the same `Child` shares one position: a new reader
    /// continues where the previous one stopped.
    pub fn stderr(&self) -> ChildStderr {
        ChildStderr::new(self.id.clone(), Arc::clone(&self.stderr))
    }
}
