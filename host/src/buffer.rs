//! Bounded byte buffers between a child's pipes and a guest.
//!
//! One type serves both directions. For output, the monitor thread pushes
//! what it reads from the pipe and the guest reads at a cursor; for stdin,
//! the guest pushes and the monitor reads. Two modes:
//! - lossless: a push takes only what fits; the producer waits for room
//!   (the monitor stops reading the pipe, so the child blocks as on a real
//!   pipe). Reading at a cursor releases the bytes before it.
//! - ring: a push always succeeds; the oldest bytes are dropped and counted.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Buffering mode of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffering {
    /// Never drop; apply backpressure.
    Lossless,
    /// Keep the newest bytes; count the dropped ones.
    Ring,
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
    changed: Condvar,
    capacity: usize,
    mode: Buffering,
}

impl ByteBuffer {
    /// A buffer holding at most `capacity` bytes.
    pub fn new(capacity: usize, mode: Buffering) -> Self {
        Self {
            state: Mutex::new(State {
                data: VecDeque::new(),
                start: 0,
                received: 0,
                dropped: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
            mode,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Free room for a lossless push (always the full capacity in ring mode).
    pub fn room(&self) -> usize {
        match self.mode {
            Buffering::Ring => self.capacity,
            Buffering::Lossless => self.capacity.saturating_sub(self.lock().data.len()),
        }
    }

    /// Appends bytes; returns how many were taken (lossless: what fits).
    pub fn push(&self, bytes: &[u8]) -> usize {
        let mut s = self.lock();
        if s.closed {
            return 0;
        }
        let taken = match self.mode {
            Buffering::Lossless => bytes.len().min(self.capacity.saturating_sub(s.data.len())),
            Buffering::Ring => bytes.len(),
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
        self.changed.notify_all();
        taken
    }

    /// Appends what was left in a pipe after its writers ended. In lossless
    /// mode this may go past the capacity by up to [`TAIL_ROOM`] (the most
    /// a pipe can hold), so an ended process's output is kept whole without
    /// the process keeping its pipes; bytes past that are counted dropped.
    pub fn push_tail(&self, bytes: &[u8]) {
        if self.mode == Buffering::Ring {
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
        self.changed.notify_all();
    }

    /// Pushes, waiting up to `timeout` for room until at least one byte is
    /// taken. Returns how many bytes were taken.
    pub fn push_wait(&self, bytes: &[u8], timeout: Duration) -> usize {
        let deadline = crate::limits::deadline_after(timeout);
        let mut s = self.lock();
        loop {
            if s.closed || bytes.is_empty() {
                return 0;
            }
            let room = self.capacity.saturating_sub(s.data.len());
            if room > 0 || self.mode == Buffering::Ring {
                drop(s);
                return self.push(bytes);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return 0;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Marks the end of the stream: nothing more will be pushed.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Whether the stream was closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// In lossless mode, releases the bytes before `cursor` (a reader has
    /// consumed them), making room for the producer.
    pub fn release(&self, cursor: u64) {
        if self.mode != Buffering::Lossless {
            return;
        }
        let mut s = self.lock();
        let end = s.start + s.data.len() as u64;
        if cursor > s.start && cursor <= end {
            let n = (cursor - s.start) as usize;
            s.data.drain(..n);
            s.start = cursor;
            drop(s);
            self.changed.notify_all();
        }
    }

    /// Reads up to `max` bytes at `cursor`, waiting up to `timeout` when
    /// nothing is there yet. In lossless mode bytes before `cursor` are
    /// released. `Err` if the cursor is past what was ever received.
    pub fn read(&self, cursor: u64, max: usize, timeout: Duration) -> Result<Chunk, String> {
        let deadline = crate::limits::deadline_after(timeout);
        let mut s = self.lock();
        loop {
            let end = s.start + s.data.len() as u64;
            if cursor > end {
                return Err(format!("cursor {cursor} is past the {end} bytes received"));
            }
            if self.mode == Buffering::Lossless && cursor > s.start {
                let release = (cursor - s.start) as usize;
                s.data.drain(..release);
                s.start = cursor;
                self.changed.notify_all();
            }
            let from = cursor.max(s.start);
            let available = end - from;
            let left = deadline.saturating_duration_since(Instant::now());
            if available > 0 || s.closed || left.is_zero() {
                let skip = (from - s.start) as usize;
                let take = (available as usize).min(max);
                let data: Vec<u8> = s.data.range(skip..skip + take).copied().collect();
                let next = from + take as u64;
                return Ok(Chunk {
                    data,
                    next,
                    ended: s.closed && next == end,
                    dropped: from - cursor,
                });
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes up to `max` bytes from the front (for the stdin writer).
    pub fn take_front(&self, max: usize) -> Vec<u8> {
        let mut s = self.lock();
        let n = s.data.len().min(max);
        let out: Vec<u8> = s.data.drain(..n).collect();
        s.start += n as u64;
        drop(s);
        self.changed.notify_all();
        out
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
        let c = b.read(0, 100, Duration::ZERO).unwrap();
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
        let c = b.read(0, 2, Duration::ZERO).unwrap();
        assert_eq!(c.data, b"ab");
        // Reading at the next cursor releases what was read.
        let c = b.read(c.next, 10, Duration::ZERO).unwrap();
        assert_eq!(c.data, b"cd");
        assert_eq!(b.room(), 2);
        b.close();
        let c = b.read(c.next, 10, Duration::ZERO).unwrap();
        assert!(c.ended && c.data.is_empty());
    }

    #[test]
    fn buffer_cursor_past_end_bad() {
        let b = ByteBuffer::new(4, Buffering::Lossless);
        assert!(b.read(1, 10, Duration::ZERO).is_err());
    }
}
