//! Small non-blocking fd helpers shared by output capture and the
//! background-process monitor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// Puts an fd in non-blocking mode.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a valid fd with integer arguments.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What one non-blocking read produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// This many bytes were read.
    Data(usize),
    /// Nothing is available now.
    WouldBlock,
    /// The writer closed the pipe.
    Eof,
}

/// Reads once from a non-blocking fd.
pub(crate) fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Ok(ReadOutcome::Data(n as usize));
        }
        if n == 0 {
            return Ok(ReadOutcome::Eof);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(ReadOutcome::WouldBlock),
            _ => return Err(err),
        }
    }
}

/// Writes once to a non-blocking fd; `Ok(0)` means it would block.
pub(crate) fn write_some(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(err),
        }
    }
}

/// A set of fds to poll, rebuilt each round.
#[derive(Debug, Default)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds an fd waiting for input (`write == false`) or output space;
    /// returns its slot.
    pub(crate) fn add(&mut self, fd: RawFd, write: bool) -> usize {
        let events = if write { libc::POLLOUT } else { libc::POLLIN };
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Whether the slot is ready (including hang-up and error, which a read
    /// or write then reports).
    pub(crate) fn ready(&self, slot: Option<usize>) -> bool {
        slot.is_some_and(|i| self.fds[i].revents != 0)
    }

    /// Polls until something is ready or `deadline` passes (`None`: no limit).
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a deadline is never polled as "now" too early.
                (left + Duration::from_micros(999))
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `fds` is a valid array of pollfd for the call.
        let rc = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }
}
