//! `run`: drive a child to its end, feeding stdin and draining stdout and
//! stderr concurrently on one thread, keeping at most a cap of each.
//!
//! Bytes past the cap are read and discarded (counted), so a child never
//! blocks on a full pipe and host memory stays bounded. When the leader
//! exits, whatever is left of its process group is killed.
//!
//! The call has one absolute deadline, fixed by the caller when the call
//! starts; nothing extends it. At the deadline the group is killed; the
//! pipes are drained until the killed group lets go of them, at most
//! [`DRAIN_GRACE`] past the deadline, then closed, and the call returns,
//! even when a process outside the group (a `setsid` escapee) still holds
//! the pipes and writes to them. After the leader exits, the pipes are
//! drained for at most [`DRAIN_GRACE`], counted from the exit and never
//! extended by arriving bytes.

use crate::fdio::{PollSet, ReadOutcome, read_some, set_nonblocking, write_some};
use crate::os_child::OsChild;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long the pipes are drained after the leader has exited (and its
/// group been killed) before `run` stops waiting for end-of-file.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// How long `run` waits for a killed leader to die before leaving its reaping
/// to a background thread.
const KILL_REAP_WAIT: Duration = Duration::from_secs(1);
/// Reads of one pipe per wake-up: a writer that never pauses cannot keep the
/// loop from checking its deadline.
const READS_PER_WAKE: usize = 16;

/// What `run` collected.
#[derive(Debug)]
pub(crate) struct Captured {
    /// How the leader ended; `None` when it was killed at the deadline and
    /// had not died within [`KILL_REAP_WAIT`].
    pub status: Option<ExitStatus>,
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
        for _ in 0..READS_PER_WAKE {
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
        Ok(progressed)
    }
}

/// Runs `child` to its end or to `deadline`, whichever comes first.
/// `stdin` bytes are written and stdin closed. At the deadline the group is
/// killed, the pipes closed and `timed_out` set (unless the leader had
/// already exited and only the drain was left).
///
/// `shutdown`, when given, is an fd that becomes readable when the host
/// shuts down, and the grace to give: the group then gets SIGTERM, and
/// SIGKILL after the grace (or at the deadline, if sooner), as started
/// processes do.
pub(crate) fn run_to_end(
    mut child: OsChild,
    stdin: Option<Vec<u8>>,
    cap: usize,
    deadline: Instant,
    shutdown: Option<(BorrowedFd<'_>, Duration)>,
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
    let mut timed_out = false;
    let mut exited = false;
    let mut deadline_passed = false;
    // The last moment anything waits for, fixed now.
    let hard_end = deadline.checked_add(DRAIN_GRACE).unwrap_or(deadline);
    // Fixed once, when the leader exits.
    let mut drain_until: Option<Instant> = None;
    // Once shutdown sent SIGTERM: when SIGKILL follows (taken when sent).
    let mut stopping = false;
    let mut kill_at: Option<Instant> = None;
    let mut scratch = vec![0u8; 64 * 1024];
    let mut polls = PollSet::default();

    while out.fd.is_some() || err.fd.is_some() || !exited {
        polls.clear();
        let out_slot = out.fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), false));
        let err_slot = err.fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), false));
        let in_slot = stdin_fd.as_ref().map(|fd| polls.add(fd.as_raw_fd(), true));
        let exit_slot = (!exited).then(|| polls.add(pidfd.as_raw_fd(), false));
        let stop_slot = shutdown
            .filter(|_| !exited && !stopping)
            .map(|(fd, _)| polls.add(fd.as_raw_fd(), false));
        let limit = if deadline_passed { hard_end } else { deadline };
        let wake_at = [drain_until, kill_at]
            .into_iter()
            .flatten()
            .fold(limit, Instant::min);
        polls.wait(Some(wake_at))?;

        if polls.ready(out_slot) {
            out.drain(&mut scratch)?;
        }
        if polls.ready(err_slot) {
            err.drain(&mut scratch)?;
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
            drain_until = Some(Instant::now() + DRAIN_GRACE);
            // Leftovers in the group would hold the pipes open: end them.
            child.signal_group(libc::SIGKILL)?;
        }
        if polls.ready(stop_slot)
            && let Some((_, grace)) = shutdown
        {
            child.signal_group(libc::SIGTERM)?;
            stopping = true;
            kill_at = Some(crate::limits::deadline_after(grace));
        }
        let now = Instant::now();
        if kill_at.is_some_and(|k| now >= k) {
            kill_at = None;
            child.signal_group(libc::SIGKILL)?;
        }
        if !deadline_passed && now >= deadline {
            deadline_passed = true;
            timed_out = !exited;
            stdin_fd = None;
            child.signal_group(libc::SIGKILL)?;
        }
        if now >= hard_end {
            break;
        }
        if drain_until.is_some_and(|d| now >= d) {
            // Pipes held by a process outside the group: stop waiting.
            break;
        }
    }
    // Closes whatever pipe is still open: an escapee writing to it gets
    // EPIPE, and nothing here waits for it any more.
    let (stdout, stdout_dropped) = (out.kept, out.dropped);
    let (stderr, stderr_dropped) = (err.kept, err.dropped);
    drop((out.fd, err.fd, stdin_fd));
    let status = if exited || wait_readable(&pidfd, KILL_REAP_WAIT)? {
        Some(child.reap()?)
    } else {
        // A leader that does not die at once (stuck in the kernel) is
        // reaped in the background, so this call still returns now.
        let reaper = std::thread::Builder::new().name("wasmproc-reap".into());
        reaper.spawn(move || drop(child.reap()))?;
        None
    };
    Ok(Captured {
        status,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        timed_out,
    })
}

/// Waits up to `timeout` for an fd to become readable (a pidfd: the
/// process has exited).
fn wait_readable(fd: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut polls = PollSet::default();
    let slot = Some(polls.add(fd.as_raw_fd(), false));
    polls.wait(Some(Instant::now() + timeout))?;
    Ok(polls.ready(slot))
}
