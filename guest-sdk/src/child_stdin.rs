//! Writing to a process's piped stdin.

use std::io::{self, Write};

use crate::{Error, host};

/// How long one host call waits for buffer space. Writes loop on it, so it
/// only bounds how long the guest sits inside a single call.
const WRITE_WAIT_MS: u64 = 1000;

/// Most bytes handed to the host in one call.
const MAX_WRITE_BYTES: usize = 1 << 20;

/// A writer to the piped stdin of a [`Child`](crate::Child), from
/// [`Child::stdin`](crate::Child::stdin).
///
/// Each write waits until the host takes at least one byte, so a process that
/// reads slowly slows the writer down, as a real pipe would. Dropping the
/// writer leaves stdin open; call [`close`](Self::close) to send end-of-file.
#[derive(Debug)]
pub struct ChildStdin {
    id: String,
}

impl ChildStdin {
    pub(crate) fn new(id: String) -> Self {
        ChildStdin { id }
    }

    /// Closes stdin once the bytes already written have been delivered, so
    /// the process sees end-of-file.
    pub fn close(&mut self) -> Result<(), Error> {
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
