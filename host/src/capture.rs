//! `run`: drive a child to its end, feeding stdin and draining stdout and
//! stderr concurrently on one thread, keeping at most a cap of each.
//!
//! Bytes past the cap are read and discarded (counted), so a child never
//! blocks on a full pipe and host memory stays bounded. When the leader
//! exits, whatever is left of its process group is killed, so a background
//! grandchild holding the pipes cannot make `run` hang.

use crate::fdio::{PollSet, ReadOutcome, read_some, set_nonblocking, write_some};
use crate::os_child::OsChild;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long pipes may stay silent after the group is gone before `run`
/// stops waiting for end-of-file (a `setsid` escapee may hold them open).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What `run` collected.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub timed_out: bool,
}

/// One captured output pipe.
struct Sink {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
    dropped: u64,
    cap: usize,
}

impl Sink {
    fn new(fd: Option<OwnedFd>, cap: usize) -> io::Result<Self> {
        if let Some(fd) = &fd {
            set_nonblocking(fd.as_fd())?;
        }
        Ok(Self {
            fd,
            kept: Vec::new(),
            dropped: 0,
            cap,
        })
    }

    /// Reads what is available; returns whether any byte arrived.
    fn drain(&mut self, scratch: &mut [u8]) -> io::Result<bool> {
        let Some(fd) = &self.fd else { return Ok(false) };
        let mut progressed = false;
        loop {
            match read_some(fd.as_raw_fd(), scratch)? {
                ReadOutcome::Data(n) => {
                    progressed = true;
                    let room = self.cap.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&scratch[..room]);
                    self.dropped += (n - room) as u64;
                    if n < scratch.len() {
                        return Ok(true);
                    }
                }
                ReadOutcome::WouldBlock => return Ok(progressed),
                ReadOutcome::Eof => {
                    self.fd = None;
                    return Ok(true);
                }
            }
        }
    }
}

/// Runs `child` to its end. `stdin` bytes are written and stdin closed;
/// after `timeout` the group is killed and `timed_out` set.
pub(crate) fn run_to_end(
    mut child: OsChild,
    stdin: Option<Vec<u8>>,
    cap: usize,
    timeout: Duration,
) -> io::Result<Captured> {
    let std_child = child.std_child();
    let stdin_fd: Option<OwnedFd> = std_child.stdin.take().map(Into::into);
    let mut out = Sink::new(std_child.stdout.take().map(Into::into), cap)?;
    let mut err = Sink::new(std_child.stderr.take().map(Into::into), cap)?;
    let mut input = stdin.unwrap_or_default();
    let mut input_at = 0usize;
    let mut stdin_fd = stdin_fd.filter(|_| !input.is_empty());
    if let Some(fd) = &stdin_fd {
        set_nonblocking(fd.as_fd())?;
    }
    let pidfd = child.pidfd();
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut exited = false;
    let mut quiet_since: Option<Instant> = None;
    let mut scratch = vec![0u8; 64 * 1024];
    let mut polls = PollSet::default();

    while out.fd.is_some() || err.fd.is_some() || !exited {
        polls.clear();
        let out_slot = out.fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), false));
        let err_slot = err.fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), false));
        let in_slot = stdin_fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), true));
        let exit_slot = (!exited).then(|| polls.add(pidfd.as_raw_fd(), false));
        let wake_at = match (exited || timed_out, quiet_since) {
            (true, Some(q)) => q + DRAIN_GRACE,
            (true, None) => Instant::now() + DRAIN_GRACE,
            (false, _) => deadline,
        };
        polls.wait(Some(wake_at))?;

        let mut progressed = false;
        if polls.ready(out_slot) {
            progressed |= out.drain(&mut scratch)?;
        }
        if polls.ready(err_slot) {
            progressed |= err.drain(&mut scratch)?;
        }
        if polls.ready(in_slot)
            && let Some(fd) = &stdin_fd
        {
            match write_some(fd.as_raw_fd(), &input[input_at..]) {
                Ok(n) => input_at += n,
                // The child closed its stdin: it does not want the rest.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => input_at = input.len(),
                Err(e) => return Err(e),
            }
            if input_at == input.len() {
                stdin_fd = None;
                input = Vec::new();
            }
        }
        if polls.ready(exit_slot) {
            exited = true;
            stdin_fd = None;
            // Leftovers in the group would hold the pipes open: end them.
            child.signal_group(libc::SIGKILL)?;
        }
        let now = Instant::now();
        if !exited && !timed_out && now >= deadline {
            timed_out = true;
            stdin_fd = None;
            child.signal_group(libc::SIGKILL)?;
        }
        if exited || timed_out {
            if progressed {
                quiet_since = None;
            } else if quiet_since.get_or_insert(now).elapsed() >= DRAIN_GRACE && exited {
                // Pipes held by a process outside the group: stop waiting.
                break;
            }
        }
    }
    let status = child.reap()?;
    Ok(Captured {
        status,
        stdout: out.kept,
        stderr: err.kept,
        stdout_dropped: out.dropped,
        stderr_dropped: err.dropped,
        timed_out,
    })
}
