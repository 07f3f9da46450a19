//! Writing to a process's piped stdin.

use std::io::{self, Write};

use crate::{Error, host};

/// How long one host call waits for buffer space. Writes loop on it, so it
/// only bounds how long the guest sits inside a single call.
const WRITE_WAIT_MS: u64 = 1000;

/// Most bytes handed to the host in one call.
const MAX_WRITE_BYTES: usize = 1 << 20;

/// A writer to the piped stdin of a [`Child`](crate::Child): its
/// [`stdin`](crate::Child::stdin) field, like [`std::process::ChildStdin`].
///
/// Each write waits until the host takes at least one byte, so a process that
/// reads slowly slows the writer down, as a real pipe would. Dropping the
/// writer closes stdin, as in std: the process sees end-of-file once the
/// bytes already written are delivered. [`close`](Self::close) does the same
/// and reports a failure.
#[derive(Debug)]
pub struct ChildStdin {
    id: String,
    closed: bool,
}

impl ChildStdin {
    pub(crate) fn new(id: String) -> Self {
        ChildStdin { id, closed: false }
    }

    /// Closes stdin once the bytes already written have been delivered, so
    /// the process sees end-of-file. Later writes fail.
    pub fn close(&mut self) -> Result<(), Error> {
        self.closed = true;
        Ok(host::close_stdin(&self.id)?)
    }
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = &buf[..buf.len().min(MAX_WRITE_BYTES)];
        loop {
            let taken = host::write(&self.id, data, WRITE_WAIT_MS).map_err(Error::from)?;
            if taken > 0 {
                // The host never takes more than it was given.
                return Ok(usize::try_from(taken).map_or(data.len(), |n| n.min(data.len())));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChildStdin {
    fn drop(&mut self) {
        if !self.closed {
            // A process that already ended, or a record already removed, has
            // nothing left to close: a failure here changes nothing.
            let _ = host::close_stdin(&self.id);
        }
    }
}
