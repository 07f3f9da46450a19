//! A background process the host manages for a guest: its record, its
//! lifecycle, and the monitor thread that moves bytes between its pipes and
//! bounded buffers and reaps it.

use crate::audit::{Audit, AuditEvent};
use crate::buffer::{Buffering, ByteBuffer, Chunk, StreamStats};
use crate::fdio::{PollSet, ReadOutcome, read_some, set_nonblocking, write_some};
use crate::os_child::OsChild;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long output pipes may stay silent after the group is gone before the
/// monitor stops waiting for end-of-file.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// How long `stop` waits for the kernel after SIGKILL.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(10);

/// Where a managed process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running, or exited and not yet reaped.
    Running,
    /// Ended on its own.
    Exited,
    /// Ended after the host was asked to stop or signal it.
    Killed,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit code.
    Code(i32),
    /// Terminating signal number.
    Signal(i32),
}

impl Exit {
    /// Converts an OS exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(sig)) => Self::Signal(sig),
            (None, None) => Self::Code(-1),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

#[derive(Debug)]
struct Life {
    child: Option<OsChild>,
    state: ProcState,
    exit: Option<Exit>,
    stop_requested: bool,
    /// Resource use read from the cgroup just before the reap.
    usage: Option<crate::cgroup::Usage>,
}

/// The pipes and deadline the monitor thread owns.
#[derive(Debug)]
pub(crate) struct MonitorIo {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub deadline: Option<Instant>,
}

/// Static facts about a managed process.
#[derive(Debug, Clone)]
pub struct ProcessFacts {
    /// Host-issued id.
    pub id: String,
    /// The session that started it (ownership key).
    pub owner: String,
    /// The name of the guest that started it (for audit records).
    pub guest: String,
    /// OS pid (and process-group id).
    pub pid: u32,
    /// Absolute program path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Start time, ms since the Unix epoch.
    pub started_at_ms: u64,
}

/// A snapshot of a managed process.
#[derive(Debug, Clone)]
pub struct ProcessSnapshot {
    /// Static facts.
    pub facts: ProcessFacts,
    /// Current state.
    pub state: ProcState,
    /// How it ended, once it has.
    pub exit: Option<Exit>,
    /// Stdout totals.
    pub stdout: StreamStats,
    /// Stderr totals.
    pub stderr: StreamStats,
    /// Memory peak and CPU time of its tree, where it has a cgroup.
    pub usage: Option<crate::cgroup::Usage>,
}

/// A background process and everything the host keeps about it.
#[derive(Debug)]
pub struct ManagedProcess {
    facts: ProcessFacts,
    life: Mutex<Life>,
    changed: Condvar,
    stdout: Option<Arc<ByteBuffer>>,
    stderr: Option<Arc<ByteBuffer>>,
    stdin: Option<Arc<ByteBuffer>>,
    close_stdin: AtomicBool,
    discard: AtomicBool,
    /// Wakes the monitor; closed (None) once the monitor has finished.
    waker: Mutex<Option<OwnedFd>>,
    audit: Audit,
}

/// Buffers chosen at start.
#[derive(Debug)]
pub(crate) struct Buffers {
    pub stdout: Option<Arc<ByteBuffer>>,
    pub stderr: Option<Arc<ByteBuffer>>,
    pub stdin: Option<Arc<ByteBuffer>>,
    pub close_stdin_when_drained: bool,
}

impl ManagedProcess {
    /// Wraps a spawned child and starts its monitor thread.
    pub(crate) fn launch(
        facts: ProcessFacts,
        child: OsChild,
        io: MonitorIo,
        buffers: Buffers,
        audit: Audit,
    ) -> io::Result<Arc<Self>> {
        let pidfd = child.pidfd();
        let this = Arc::new(Self {
            facts,
            life: Mutex::new(Life {
                child: Some(child),
                state: ProcState::Running,
                exit: None,
                stop_requested: false,
                usage: None,
            }),
            changed: Condvar::new(),
            stdout: buffers.stdout,
            stderr: buffers.stderr,
            stdin: buffers.stdin,
            close_stdin: AtomicBool::new(buffers.close_stdin_when_drained),
            discard: AtomicBool::new(false),
            waker: Mutex::new(Some(eventfd()?)),
            audit,
        });
        let monitored = Arc::clone(&this);
        std::thread::Builder::new()
            // `pmon-PID` fits the kernel's 15-byte thread name, so tools
            // (and tests) can tell which process a monitor belongs to.
            .name(format!("pmon-{}", this.facts.pid))
            .spawn(move || monitored.monitor(io, pidfd))?;
        Ok(this)
    }

    /// Static facts.
    pub fn facts(&self) -> &ProcessFacts {
        &self.facts
    }

    fn life(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes its buffers may hold together (what it counts against
    /// `max_buffered_bytes`).
    pub(crate) fn buffered_capacity(&self) -> u64 {
        [&self.stdout, &self.stderr, &self.stdin]
            .into_iter()
            .flatten()
            .map(|b| b.capacity() as u64)
            .sum()
    }

    /// Whether the process has ended and been reaped.
    pub fn has_ended(&self) -> bool {
        self.life().exit.is_some()
    }

    /// A snapshot of state and counters.
    pub fn snapshot(&self) -> ProcessSnapshot {
        let life = self.life();
        let stats = |b: &Option<Arc<ByteBuffer>>| b.as_ref().map(|b| b.stats()).unwrap_or_default();
        ProcessSnapshot {
            facts: self.facts.clone(),
            state: life.state,
            exit: life.exit,
            stdout: stats(&self.stdout),
            stderr: stats(&self.stderr),
            usage: life.child.as_ref().and_then(OsChild::usage).or(life.usage),
        }
    }

    /// Sends a signal to the process group, if the leader is not yet
    /// reaped. Terminating signals mark the process as killed.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let mut life = self.life();
        let Some(child) = &life.child else {
            return Ok(());
        };
        child.signal_group(signal)?;
        if matches!(
            signal,
            libc::SIGTERM | libc::SIGKILL | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
        ) {
            life.stop_requested = true;
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let deadline = crate::limits::deadline_after(timeout);
        let mut life = self.life();
        loop {
            if life.exit.is_some() {
                return life.exit;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            life = self
                .changed
                .wait_timeout(life, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops the process: SIGTERM to the group, SIGKILL after `grace`, and
    /// returns once it has been reaped.
    pub fn stop(&self, grace: Duration) -> io::Result<Exit> {
        let deadline = crate::limits::deadline_after(grace + KILL_WAIT);
        self.stop_by(grace, deadline)
    }

    /// Like [`stop`](Self::stop), but returns by `deadline` whatever
    /// happens: the grace period is cut short, SIGKILL sent, and an error
    /// returned if the process has not ended by then.
    pub(crate) fn stop_by(&self, grace: Duration, deadline: Instant) -> io::Result<Exit> {
        self.signal(libc::SIGTERM)?;
        let left = |d: Instant| d.saturating_duration_since(Instant::now());
        if let Some(exit) = self.wait_timeout(grace.min(left(deadline))) {
            return Ok(exit);
        }
        self.signal(libc::SIGKILL)?;
        self.wait_timeout(left(deadline)).ok_or_else(|| {
            io::Error::other(format!(
                "process {} had not ended by the call's deadline (SIGKILL sent)",
                self.facts.pid
            ))
        })
    }

    /// Sends SIGTERM without waiting (the first half of a parallel stop).
    pub(crate) fn begin_stop(&self) {
        let _ = self.signal(libc::SIGTERM);
    }

    /// Reads a piped output stream at a cursor.
    pub fn read(
        &self,
        stdout: bool,
        cursor: u64,
        max: usize,
        timeout: Duration,
    ) -> Result<Chunk, String> {
        let buffer = if stdout { &self.stdout } else { &self.stderr };
        let name = if stdout { "stdout" } else { "stderr" };
        let buffer = buffer
            .as_ref()
            .ok_or_else(|| format!("{name} is not piped"))?;
        // Releasing consumed bytes makes room: let the monitor drain the
        // pipe before this read waits for new data.
        buffer.release(cursor);
        self.wake();
        buffer.read(cursor, max, timeout)
    }

    /// Queues bytes for stdin, waiting up to `timeout` for room; returns how
    /// many were taken.
    pub fn write(&self, data: &[u8], timeout: Duration) -> Result<usize, String> {
        let stdin = self.stdin.as_ref().ok_or("stdin is not piped")?;
        if self.close_stdin.load(Ordering::SeqCst) || stdin.is_closed() {
            return Err("stdin is closed".into());
        }
        let taken = stdin.push_wait(data, timeout);
        self.wake();
        Ok(taken)
    }

    /// Closes stdin once the queued bytes are delivered.
    pub fn close_stdin(&self) -> Result<(), String> {
        if self.stdin.is_none() {
            return Err("stdin is not piped".into());
        }
        self.close_stdin.store(true, Ordering::SeqCst);
        self.wake();
        Ok(())
    }

    /// Tells the monitor to let go of the pipes (the record is being
    /// dropped). Kills the process if it is still running.
    pub(crate) fn discard(&self) {
        self.discard.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = waker.as_ref() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn reap_now(&self) {
        let mut life = self.life();
        let Some(child) = life.child.take() else {
            return;
        };
        life.usage = child.usage();
        let exit = match child.reap() {
            Ok(status) => Exit::from_status(status),
            Err(e) => {
                tracing::error!(error = %e, pid = self.facts.pid, "cannot reap child");
                Exit::Code(-1)
            }
        };
        life.exit = Some(exit);
        life.state = if life.stop_requested {
            ProcState::Killed
        } else {
            ProcState::Exited
        };
        let killed = life.state == ProcState::Killed;
        // Audited before anyone can see the exit, so a caller that waited
        // for it finds the record already written.
        self.audit.record(
            AuditEvent::new(&self.facts.guest, if killed { "killed" } else { "exit" })
                .process(&self.facts.id, self.facts.pid)
                .program(&self.facts.program, &self.facts.args)
                .exit(exit),
        );
        drop(life);
        self.changed.notify_all();
    }

    fn monitor(self: Arc<Self>, mut io: MonitorIo, pidfd: Arc<OwnedFd>) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|fd| fd.as_raw_fd())
            .expect("the waker lives until the monitor ends");
        for fd in [&io.stdout, &io.stderr, &io.stdin].into_iter().flatten() {
            let _ = set_nonblocking(fd.as_fd());
        }
        let mut scratch = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_at = 0usize;
        let mut polls = PollSet::default();
        let mut reaped = false;
        // Fixed once, when the leader is reaped; never extended.
        let mut drain_until: Option<Instant> = None;
        loop {
            if self.discard.load(Ordering::SeqCst) {
                if !reaped {
                    let _ = self.signal(libc::SIGKILL);
                    self.reap_now();
                }
                break;
            }
            if io.stdin.is_some() && pending_at == pending.len() {
                let queued = self
                    .stdin
                    .as_ref()
                    .map(|b| b.take_front(scratch.len()))
                    .unwrap_or_default();
                if queued.is_empty() && self.close_stdin.load(Ordering::SeqCst) {
                    io.stdin = None;
                }
                pending = queued;
                pending_at = 0;
            }
            polls.clear();
            let wake_slot = Some(polls.add(waker, false));
            let exit_slot = (!reaped).then(|| polls.add(pidfd.as_raw_fd(), false));
            // Once the group is gone, what is left in the pipes is read even
            // into a full buffer, so the record can let go of every fd.
            let room =
                |b: &Option<Arc<ByteBuffer>>| reaped || b.as_ref().is_some_and(|b| b.room() > 0);
            let out_slot = io
                .stdout
                .as_ref()
                .filter(|_| room(&self.stdout))
                .map(|fd| polls.add(fd.as_raw_fd(), false));
            let err_slot = io
                .stderr
                .as_ref()
                .filter(|_| room(&self.stderr))
                .map(|fd| polls.add(fd.as_raw_fd(), false));
            let in_slot = io
                .stdin
                .as_ref()
                .filter(|_| pending_at < pending.len())
                .map(|fd| polls.add(fd.as_raw_fd(), true));
            let wake_at = if reaped { drain_until } else { io.deadline };
            if let Err(e) = polls.wait(wake_at) {
                tracing::error!(error = %e, "monitor poll failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            if polls.ready(wake_slot) {
                let mut counter = [0u8; 8];
                let _ = read_some(waker, &mut counter);
            }
            drain_into(
                &mut io.stdout,
                polls.ready(out_slot),
                self.stdout.as_deref(),
                &mut scratch,
                reaped,
            );
            drain_into(
                &mut io.stderr,
                polls.ready(err_slot),
                self.stderr.as_deref(),
                &mut scratch,
                reaped,
            );
            if polls.ready(in_slot)
                && let Some(fd) = &io.stdin
            {
                match write_some(fd.as_raw_fd(), &pending[pending_at..]) {
                    Ok(n) => pending_at += n,
                    Err(_) => {
                        // The child closed its stdin; later writes fail.
                        io.stdin = None;
                        if let Some(b) = &self.stdin {
                            b.close();
                        }
                    }
                }
            }
            if polls.ready(exit_slot) {
                self.reap_now();
                reaped = true;
                drain_until = Some(Instant::now() + DRAIN_GRACE);
                io.stdin = None;
                if let Some(b) = &self.stdin {
                    b.close();
                }
            }
            if !reaped && io.deadline.is_some_and(|d| Instant::now() >= d) {
                io.deadline = None;
                let _ = self.signal(libc::SIGKILL);
            }
            if reaped {
                if drain_until.is_some_and(|d| Instant::now() >= d) {
                    // Whoever still holds the pipes is outside the group.
                    io.stdout = None;
                    io.stderr = None;
                }
                if io.stdout.is_none() && io.stderr.is_none() {
                    break;
                }
            }
        }
        for b in [&self.stdout, &self.stderr, &self.stdin]
            .into_iter()
            .flatten()
        {
            b.close();
        }
        // An ended record keeps no fd open.
        self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        // The monitor holds an Arc until it has reaped, so by now the child
        // is gone; this only guards against a logic error.
        if let Some(child) = self
            .life
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .child
            .take()
        {
            let _ = child.reap();
        }
    }
}

/// Moves what a ready pipe holds into its buffer. After the group has
/// ended (`tail`), the rest of the pipe goes in even past the buffer's
/// capacity (see [`ByteBuffer::push_tail`]).
fn drain_into(
    fd: &mut Option<OwnedFd>,
    ready: bool,
    buffer: Option<&ByteBuffer>,
    scratch: &mut [u8],
    tail: bool,
) {
    let (Some(raw), Some(buffer)) = (fd.as_ref().map(|f| f.as_raw_fd()), buffer) else {
        return;
    };
    if !ready {
        return;
    }
    let want = if tail {
        scratch.len()
    } else {
        buffer.room().min(scratch.len())
    };
    if want == 0 {
        return;
    }
    match read_some(raw, &mut scratch[..want]) {
        Ok(ReadOutcome::Data(n)) if tail => buffer.push_tail(&scratch[..n]),
        Ok(ReadOutcome::Data(n)) => {
            buffer.push(&scratch[..n]);
        }
        Ok(ReadOutcome::WouldBlock) => {}
        Ok(ReadOutcome::Eof) | Err(_) => {
            *fd = None;
            buffer.close();
        }
    }
}

/// A new non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes integer arguments and returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A shared buffer of `capacity` bytes for one stream of a managed process.
pub(crate) fn buffer(capacity: usize, mode: Buffering) -> Arc<ByteBuffer> {
    Arc::new(ByteBuffer::new(capacity, mode))
}
