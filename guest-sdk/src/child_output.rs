//! Reading a process's piped stdout and stderr.

use std::io::{self, BufReader, Read};

use crate::{Error, host, wit};

/// How long one host call waits for data. Reads loop on it, so it only
/// bounds how long the guest sits inside a single call.
const READ_WAIT_MS: u64 = 1000;

/// How long [`read_both`] waits on one stream while the other may have data.
const INTERLEAVED_WAIT_MS: u64 = 100;

/// Most bytes asked of the host in one call.
const MAX_READ_BYTES: usize = 1 << 20;

/// The reading position in one output stream and the bytes not yet handed
/// out; shared by [`ChildStdout`] and [`ChildStderr`].
#[derive(Debug)]
struct StreamReader {
    id: String,
    stream: wit::OutputStream,
    /// The cursor to pass to the next host `read`.
    next: u64,
    /// Bytes the host reported dropped so far.
    dropped: u64,
    /// The stream closed and every byte was received.
    ended: bool,
    /// Bytes received but not yet handed out.
    pending: Vec<u8>,
}

impl StreamReader {
    fn new(id: String, stream: wit::OutputStream) -> Self {
        StreamReader {
            id,
            stream,
            next: 0,
            dropped: 0,
            ended: false,
            pending: Vec::new(),
        }
    }

    /// Asks the host once for up to `max_bytes`, waiting at most `wait_ms`
    /// for them; what arrives is appended to `pending`.
    fn fetch(&mut self, max_bytes: usize, wait_ms: u64) -> Result<(), Error> {
        let max_bytes = u32::try_from(max_bytes.min(MAX_READ_BYTES)).unwrap_or(u32::MAX);
        let chunk = host::read(&self.id, self.stream, self.next, max_bytes, wait_ms)?;
        self.next = chunk.next;
        self.dropped += chunk.dropped;
        self.ended = chunk.ended;
        self.pending.extend_from_slice(&chunk.data);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pending.is_empty() && !self.ended {
            self.fetch(buf.len(), READ_WAIT_MS)?;
        }
        let count = buf.len().min(self.pending.len());
        buf[..count].copy_from_slice(&self.pending[..count]);
        self.pending.drain(..count);
        Ok(count)
    }

    /// Moves what has arrived within `wait_ms` to `out`; whether anything
    /// did.
    fn drain_into(&mut self, out: &mut Vec<u8>, wait_ms: u64) -> Result<bool, Error> {
        if self.pending.is_empty() && !self.ended {
            self.fetch(MAX_READ_BYTES, wait_ms)?;
        }
        let progressed = !self.pending.is_empty();
        out.append(&mut self.pending);
        Ok(progressed)
    }
}

/// A reader of the piped stdout of a [`Child`](crate::Child): its
/// [`stdout`](crate::Child::stdout) field, like [`std::process::ChildStdout`].
///
/// Reads wait for data and return `Ok(0)` once the stream has ended. For
/// line-by-line reading wrap it in a [`BufReader`], or use
/// [`lines`](Self::lines).
#[derive(Debug)]
pub struct ChildStdout(StreamReader);

/// A reader of the piped stderr of a [`Child`](crate::Child): its
/// [`stderr`](crate::Child::stderr) field, like [`std::process::ChildStderr`].
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
            pub(crate) fn new(id: String) -> Self {
                $reader(StreamReader::new(id, wit::OutputStream::$stream))
            }

            /// Bytes that ring buffering dropped before they could be read,
            /// counted over every read of this stream so far.
            pub fn dropped(&self) -> u64 {
                self.0.dropped
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

/// Everything one stream delivered, and how many bytes ring buffering
/// dropped.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub(crate) bytes: Vec<u8>,
    pub(crate) dropped: u64,
}

/// Reads both streams to their end, taking turns, so that a process that
/// fills one stream while the guest waits on the other never stalls: the
/// host keeps buffering the other stream meanwhile, and no turn waits long.
pub(crate) fn read_both(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> Result<(Drained, Drained), Error> {
    let mut readers = [stdout.map(|s| s.0), stderr.map(|s| s.0)];
    let mut drained = [Drained::default(), Drained::default()];
    let mut progressed = true;
    loop {
        let open = readers.iter().flatten().filter(|r| !r.ended).count();
        if open == 0 {
            break;
        }
        let wait_ms = match (progressed, open) {
            (true, _) => 0,
            (false, 1) => READ_WAIT_MS,
            (false, _) => INTERLEAVED_WAIT_MS,
        };
        progressed = false;
        for (reader, drained) in readers.iter_mut().zip(drained.iter_mut()) {
            if let Some(reader) = reader.as_mut().filter(|r| !r.ended) {
                progressed |= reader.drain_into(&mut drained.bytes, wait_ms)?;
            }
        }
    }
    for (reader, drained) in readers.iter_mut().zip(drained.iter_mut()) {
        if let Some(reader) = reader {
            drained.bytes.append(&mut reader.pending);
            drained.dropped = reader.dropped;
        }
    }
    let [out, err] = drained;
    Ok((out, err))
}
