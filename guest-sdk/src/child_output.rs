//! Reading a process's piped stdout and stderr.

use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Error, host, wit};

/// How long one host call waits for data. Reads loop on it, so it only
/// bounds how long the guest sits inside a single call.
const READ_WAIT_MS: u64 = 1000;

/// Most bytes asked of the host in one call.
const MAX_READ_BYTES: usize = 1 << 20;

/// The reading position in one output stream, shared by every reader of the
/// same [`Child`](crate::Child).
#[derive(Debug, Default)]
pub(crate) struct StreamCursor(Mutex<CursorState>);

#[derive(Debug, Default)]
struct CursorState {
    /// The cursor to pass to the next host `read`.
    next: u64,
    /// Bytes the host reported dropped so far.
    dropped: u64,
    /// The stream closed and every byte was returned.
    ended: bool,
    /// Bytes received but not yet handed out (only if the host returned more
    /// than asked).
    pending: Vec<u8>,
}

/// The reader shared by [`ChildStdout`] and [`ChildStderr`].
#[derive(Debug)]
struct StreamReader {
    id: String,
    stream: wit::OutputStream,
    cursor: Arc<StreamCursor>,
}

impl StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.cursor.0.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !state.pending.is_empty() {
                let count = buf.len().min(state.pending.len());
                buf[..count].copy_from_slice(&state.pending[..count]);
                state.pending.drain(..count);
                return Ok(count);
            }
            if state.ended {
                return Ok(0);
            }
            let max_bytes = u32::try_from(buf.len().min(MAX_READ_BYTES)).unwrap_or(u32::MAX);
            let chunk = host::read(&self.id, self.stream, state.next, max_bytes, READ_WAIT_MS)
                .map_err(Error::from)?;
            state.next = chunk.next;
            state.dropped += chunk.dropped;
            state.ended = chunk.ended;
            state.pending = chunk.data;
        }
    }

    fn dropped(&self) -> u64 {
        self.cursor
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

/// A reader of the piped stdout of a [`Child`](crate::Child), from
/// [`Child::stdout`](crate::Child::stdout).
///
/// Reads wait for data and return `Ok(0)` once the stream has ended. For
/// line-by-line reading wrap it in a [`BufReader`], or use
/// [`lines`](Self::lines).
#[derive(Debug)]
pub struct ChildStdout(StreamReader);

/// A reader of the piped stderr of a [`Child`](crate::Child), from
/// [`Child::stderr`](crate::Child::stderr).
///
/// Reads wait for data and return `Ok(0)` once the stream has ended. For
/// line-by-line reading wrap it in a [`BufReader`], or use
/// [`lines`](Self::lines).
#[derive(Debug)]
pub struct ChildStderr(StreamReader);

/// The common methods of the two readers.
macro_rules! output_reader {
    ($reader:ident, $stream:ident) => {
        impl $reader {
            pub(crate) fn new(id: String, cursor: Arc<StreamCursor>) -> Self {
                $reader(StreamReader {
                    id,
                    stream: wit::OutputStream::$stream,
                    cursor,
                })
            }

            /// Bytes that ring buffering dropped before they could be read,
            /// counted over every read of this stream so far.
            pub fn dropped(&self) -> u64 {
                self.0.dropped()
            }

            /// The stream's lines, without their line endings.
            pub fn lines(self) -> io::Lines<BufReader<Self>> {
                io::BufRead::lines(BufReader::new(self))
            }
        }

        impl Read for $reader {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
    };
}

output_reader!(ChildStdout, Stdout);
output_reader!(ChildStderr, Stderr);
