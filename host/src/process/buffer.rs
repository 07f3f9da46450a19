//! Bounded byte buffers between a child's pipes and a guest.
//!
//! One type serves both directions. For output, the process monitor pushes
//! what it reads from the pipe and the guest reads at a cursor; for stdin,
//! the guest pushes and the monitor takes. Three modes:
//! - lossless: a push takes only what fits; the producer waits for room
//!   (the monitor stops reading the pipe, so the child blocks as on a real
//!   pipe). Reading at a cursor releases the bytes before it.
//! - ring: a push always succeeds; the oldest bytes are dropped and counted.
//! - capture (`run`'s output): the first bytes up to the capacity are kept,
//!   the rest read and counted as dropped, so the child never blocks.
//!
//! Waiting is async ([`tokio::sync::Notify`]), so a waiting guest holds no
//! thread; the waits run on the process core, whose timer they use.

use crate::deadline::Deadline;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Buffering mode of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffering {
    /// Never drop; apply backpressure.
    Lossless,
    /// Keep the newest bytes; count the dropped ones.
    Ring,
}

/// How a buffer treats bytes past its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Lossless,
    Ring,
    /// Keep the first bytes, count the rest dropped.
    Capture,
}

/// What a read at a cursor returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes from the cursor (or from the oldest byte held).
    pub data: Vec<u8>,
    /// The cursor for the next read.
    pub next: u64,
    /// The stream closed and every byte has been returned.
    pub ended: bool,
    /// Bytes between the cursor and `data` that were dropped.
    pub dropped: u64,
}

/// Totals of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes pushed into the buffer.
    pub received: u64,
    /// Bytes dropped before anyone read them.
    pub dropped: u64,
}

/// A read at a cursor past every byte the stream ever received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor {cursor} is past the {end} bytes received")]
pub struct CursorPastEnd {
    /// The cursor asked for.
    pub cursor: u64,
    /// The stream offset just past the last byte received.
    pub end: u64,
}

#[derive(Debug)]
struct State {
    data: VecDeque<u8>,
    /// Stream offset of `data[0]`.
    start: u64,
    received: u64,
    dropped: u64,
    closed: bool,
}

/// How far past its capacity a lossless buffer takes the rest of a pipe
/// once the writers have ended: the largest pipe Linux allows by default
/// (`/proc/sys/fs/pipe-max-size`).
pub const TAIL_ROOM: usize = 1 << 20;

/// A bounded buffer of one stream.
#[derive(Debug)]
pub struct ByteBuffer {
    state: Mutex<State>,
    changed: Notify,
    capacity: usize,
    mode: Mode,
}

impl ByteBuffer {
    /// A buffer holding at most `capacity` bytes.
    pub fn new(capacity: usize, mode: Buffering) -> Self {
        let mode = match mode {
            Buffering::Lossless => Mode::Lossless,
            Buffering::Ring => Mode::Ring,
        };
        Self::with_mode(capacity.max(1), mode)
    }

    /// A buffer for `run`'s output: keeps the first `cap` bytes (0 keeps
    /// none) and counts the rest as dropped; never refuses a push.
    pub(crate) fn capture(cap: usize) -> Self {
        Self::with_mode(cap, Mode::Capture)
    }

    fn with_mode(capacity: usize, mode: Mode) -> Self {
        Self {
            state: Mutex::new(State {
                data: VecDeque::new(),
                start: 0,
                received: 0,
                dropped: 0,
                closed: false,
            }),
            changed: Notify::new(),
            capacity,
            mode,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// The most bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Free room for a push: what a lossless buffer still takes; ring and
    /// capture buffers take anything.
    pub fn room(&self) -> usize {
        match self.mode {
            Mode::Ring | Mode::Capture => usize::MAX,
            Mode::Lossless => self.capacity.saturating_sub(self.lock().data.len()),
        }
    }

    /// Appends bytes; returns how many were taken (lossless: what fits).
    pub fn push(&self, bytes: &[u8]) -> usize {
        let mut s = self.lock();
        if s.closed {
            return 0;
        }
        match self.mode {
            Mode::Lossless | Mode::Ring => {
                let taken = match self.mode {
                    Mode::Lossless => bytes.len().min(self.capacity.saturating_sub(s.data.len())),
                    _ => bytes.len(),
                };
                s.data.extend(&bytes[..taken]);
                s.received += taken as u64;
                if s.data.len() > self.capacity {
                    let excess = s.data.len() - self.capacity;
                    s.data.drain(..excess);
                    s.start += excess as u64;
                    s.dropped += excess as u64;
                }
                drop(s);
                self.notify();
                taken
            }
            Mode::Capture => {
                let kept = bytes.len().min(self.capacity.saturating_sub(s.data.len()));
                s.data.extend(&bytes[..kept]);
                s.received += bytes.len() as u64;
                s.dropped += (bytes.len() - kept) as u64;
                drop(s);
                self.notify();
                bytes.len()
            }
        }
    }

    /// Appends what was left in a pipe after its writers ended. In lossless
    /// mode this may go past the capacity by up to `TAIL_ROOM` (the most
    /// a pipe can hold), so an ended process's output is kept whole without
    /// the process keeping its pipes; bytes past that are counted dropped.
    pub fn push_tail(&self, bytes: &[u8]) {
        if self.mode != Mode::Lossless {
            self.push(bytes);
            return;
        }
        let mut s = self.lock();
        if s.closed {
            return;
        }
        let limit = self.capacity + TAIL_ROOM;
        let taken = bytes.len().min(limit.saturating_sub(s.data.len()));
        s.data.extend(&bytes[..taken]);
        s.received += taken as u64;
        s.dropped += (bytes.len() - taken) as u64;
        drop(s);
        self.notify();
    }

    /// Pushes, waiting until `deadline` for room until at least one byte
    /// is taken. Returns how many bytes were taken. Needs the process
    /// core's timer.
    pub async fn push_until(&self, bytes: &[u8], deadline: Deadline) -> usize {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let s = self.lock();
                if s.closed || bytes.is_empty() {
                    return 0;
                }
                if self.mode != Mode::Lossless || s.data.len() < self.capacity {
                    drop(s);
                    return self.push(bytes);
                }
            }
            if deadline.timeout(changed).await.is_none() {
                return 0;
            }
        }
    }

    /// Marks the end of the stream: nothing more will be pushed.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify();
    }

    /// Whether the stream was closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// In lossless mode, releases the bytes before `cursor` (a reader has
    /// consumed them), making room for the producer.
    pub fn release(&self, cursor: u64) {
        if self.mode != Mode::Lossless {
            return;
        }
        let mut s = self.lock();
        let end = s.start + s.data.len() as u64;
        if cursor > s.start && cursor <= end {
            let n = (cursor - s.start) as usize;
            s.data.drain(..n);
            s.start = cursor;
            drop(s);
            self.notify();
        }
    }

    /// Reads up to `max` bytes at `cursor` without waiting. In lossless
    /// mode bytes before `cursor` are released.
    pub fn read_now(&self, cursor: u64, max: usize) -> Result<Chunk, CursorPastEnd> {
        self.try_read(cursor, max, true)
            .map(|c| c.expect("a forced read returns a chunk"))
    }

    /// A chunk if there is data, the stream closed, or `force`; `None`
    /// means "wait".
    fn try_read(
        &self,
        cursor: u64,
        max: usize,
        force: bool,
    ) -> Result<Option<Chunk>, CursorPastEnd> {
        let mut s = self.lock();
        let end = s.start + s.data.len() as u64;
        if cursor > end {
            return Err(CursorPastEnd { cursor, end });
        }
        let mut released = false;
        if self.mode == Mode::Lossless && cursor > s.start {
            let release = (cursor - s.start) as usize;
            s.data.drain(..release);
            s.start = cursor;
            released = true;
        }
        let from = cursor.max(s.start);
        let available = end - from;
        let chunk = (available > 0 || s.closed || force).then(|| {
            let skip = (from - s.start) as usize;
            let take = (available as usize).min(max);
            let data: Vec<u8> = s.data.range(skip..skip + take).copied().collect();
            let next = from + take as u64;
            Chunk {
                data,
                next,
                ended: s.closed && next == end,
                dropped: from - cursor,
            }
        });
        drop(s);
        if released {
            self.notify();
        }
        Ok(chunk)
    }

    /// Reads up to `max` bytes at `cursor`, waiting until `deadline` when
    /// nothing is there yet. In lossless mode bytes before `cursor` are
    /// released. Needs the process core's timer.
    pub async fn read(
        &self,
        cursor: u64,
        max: usize,
        deadline: Deadline,
    ) -> Result<Chunk, CursorPastEnd> {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(chunk) = self.try_read(cursor, max, deadline.has_passed())? {
                return Ok(chunk);
            }
            if deadline.timeout(changed).await.is_none() {
                return self.read_now(cursor, max);
            }
        }
    }

    /// Takes up to `max` bytes from the front (for the stdin writer).
    pub fn take_front(&self, max: usize) -> Vec<u8> {
        let mut s = self.lock();
        let n = s.data.len().min(max);
        let out: Vec<u8> = s.data.drain(..n).collect();
        s.start += n as u64;
        drop(s);
        self.notify();
        out
    }

    /// Everything held and the count of dropped bytes (`run`'s result).
    pub(crate) fn take_all(&self) -> (Vec<u8>, u64) {
        let mut s = self.lock();
        let data = std::mem::take(&mut s.data).into();
        (data, s.dropped)
    }

    /// Totals so far.
    pub fn stats(&self) -> StreamStats {
        let s = self.lock();
        StreamStats {
            received: s.received,
            dropped: s.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_ring_counts_dropped_good() {
        let b = ByteBuffer::new(4, Buffering::Ring);
        assert_eq!(b.push(b"abcdef"), 6);
        let c = b.read_now(0, 100).unwrap();
        assert_eq!(c.data, b"cdef");
        assert_eq!(c.dropped, 2);
        assert_eq!(c.next, 6);
        assert_eq!(
            b.stats(),
            StreamStats {
                received: 6,
                dropped: 2
            }
        );
    }

    #[test]
    fn buffer_lossless_backpressure_good() {
        let b = ByteBuffer::new(4, Buffering::Lossless);
        assert_eq!(b.push(b"abcdef"), 4);
        assert_eq!(b.room(), 0);
        let c = b.read_now(0, 2).unwrap();
        assert_eq!(c.data, b"ab");
        // Reading at the next cursor releases what was read.
        let c = b.read_now(c.next, 10).unwrap();
        assert_eq!(c.data, b"cd");
        assert_eq!(b.room(), 2);
        b.close();
        let c = b.read_now(c.next, 10).unwrap();
        assert!(c.ended && c.data.is_empty());
    }

    #[test]
    fn buffer_capture_keeps_first_good() {
        let b = ByteBuffer::capture(3);
        assert_eq!(b.push(b"abcdef"), 6);
        assert_eq!(b.room(), usize::MAX);
        assert_eq!(b.take_all(), (b"abc".to_vec(), 3));
    }

    #[test]
    fn buffer_cursor_past_end_bad() {
        let b = ByteBuffer::new(4, Buffering::Lossless);
        assert!(b.read_now(1, 10).is_err());
    }
}
