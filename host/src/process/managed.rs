//! A process the host manages: its record, its lifecycle, and the monitor
//! task on the process core that moves bytes between its pipes and bounded
//! buffers and reaps it when its pidfd becomes readable. No thread and no
//! extra fd per process: a live piped process holds its pidfd and its
//! pipes, nothing else.

use crate::audit::{Audit, AuditEvent};
use crate::deadline::Deadline;
use crate::os::child::OsChild;
use crate::process::buffer::{ByteBuffer, Chunk, CursorPastEnd, StreamStats};
use crate::process::core_runtime::on_core;
use crate::types::{Exit, ProcState, Signal};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, watch};

/// How long output pipes may stay silent after the group is gone before the
/// monitor stops waiting for end-of-file.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// How long `stop` waits for the kernel after SIGKILL.
pub const KILL_WAIT: Duration = Duration::from_secs(10);
/// Bytes moved per read or stdin write.
const SCRATCH_BYTES: usize = 64 * 1024;

thread_local! {
    /// The read buffer of every monitor polled on this thread: one per
    /// thread, not per process (used only between two await points).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; SCRATCH_BYTES]);
}

/// Reads of one pipe per wake-up: a writer that never pauses cannot keep the
/// monitor from checking its deadline.
const READS_PER_WAKE: usize = 16;

#[derive(Debug)]
struct Life {
    child: Option<OsChild>,
    state: ProcState,
    exit: Option<Exit>,
    stop_requested: bool,
    /// The monitor killed it at its deadline.
    timed_out: bool,
    /// Resource use read from the cgroup just before the reap.
    usage: Option<crate::os::cgroup::Usage>,
}

/// What waiters can watch for.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Set once the leader has been reaped.
    exit: Option<Exit>,
    /// Set once the monitor has let go of every pipe.
    finished: bool,
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
    pub usage: Option<crate::os::cgroup::Usage>,
}

/// Why a stream operation on a managed process failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The stream was not started as a pipe.
    #[error("{0} is not piped")]
    NotPiped(&'static str),
    /// Stdin was closed (by the guest or by the child).
    #[error("stdin is closed")]
    StdinClosed,
    /// The cursor is past what the stream received.
    #[error(transparent)]
    Cursor(#[from] CursorPastEnd),
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
}

/// Why a stop did not end with a reaped process.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// A signal could not be sent.
    #[error("cannot signal process {pid}: {source}")]
    Signal {
        /// The process.
        pid: u32,
        /// The cause.
        source: io::Error,
    },
    /// It had not ended by the deadline; SIGKILL was sent and the monitor
    /// reaps it when it dies.
    #[error("process {pid} had not ended by the call's deadline (SIGKILL sent)")]
    NotEnded {
        /// The process.
        pid: u32,
    },
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
}

/// One of a process's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// How to stop a process: the one stop sequence sends `signal` to its
/// group, SIGKILL (its cgroup too, reaching escapees) once `grace` has
/// passed, and gives up waiting for the reap at `deadline` (the monitor
/// reaps it when it dies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPlan {
    /// The first signal.
    pub signal: Signal,
    /// How long the first signal is given before SIGKILL.
    pub grace: Duration,
    /// When the stop returns whatever happened.
    pub deadline: Deadline,
}

impl StopPlan {
    /// `signal`, SIGKILL after `grace`, returning at most [`KILL_WAIT`]
    /// after the SIGKILL.
    pub fn graceful(signal: Signal, grace: Duration) -> Self {
        Self {
            signal,
            grace,
            deadline: Deadline::after(grace.saturating_add(KILL_WAIT)),
        }
    }

    /// SIGKILL at once, returning at most [`KILL_WAIT`] later.
    pub fn kill() -> Self {
        Self::graceful(Signal::Kill, Duration::ZERO)
    }

    /// The same plan, returning by `deadline` at the latest (the grace
    /// period is cut short if need be).
    #[must_use]
    pub fn by(mut self, deadline: Deadline) -> Self {
        self.deadline = self.deadline.min(deadline);
        self
    }
}

/// The buffers of a managed process's piped streams, chosen at launch.
#[derive(Debug, Default)]
pub struct Buffers {
    /// Where its stdout is kept (`None`: not piped).
    pub stdout: Option<Arc<ByteBuffer>>,
    /// Where its stderr is kept (`None`: not piped).
    pub stderr: Option<Arc<ByteBuffer>>,
    /// What is fed to its stdin (`None`: not piped).
    pub stdin: Option<Arc<ByteBuffer>>,
    /// Close stdin once its buffer is delivered (it holds initial bytes
    /// only; the guest cannot write more).
    pub close_stdin_when_drained: bool,
}

/// The pipes the monitor owns.
#[derive(Debug, Default)]
pub(crate) struct Pipes {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
}

/// A child just spawned, and what its monitor needs.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its record.
    pub facts: ProcessFacts,
    /// The child.
    pub child: OsChild,
    /// The host's ends of its pipes.
    pub pipes: Pipes,
    /// The buffers of its piped streams.
    pub buffers: Buffers,
    /// When the monitor kills its group.
    pub deadline: Deadline,
    /// Where its exit is audited (`None`: the caller audits it).
    pub audit: Option<Audit>,
}

/// The monitor of one process, polled by its caller
/// ([`Process::watch_here`]). Dropped before it has ended, it hands
/// the process over to the core, which kills and reaps it: a cancelled
/// call leaks nothing.
pub(crate) struct MonitorHere {
    process: Arc<Process>,
    monitor: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

impl std::fmt::Debug for MonitorHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHere")
            .field("pid", &self.process.facts.pid)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Future for MonitorHere {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.done {
            return std::task::Poll::Ready(());
        }
        let poll = self.monitor.as_mut().poll(cx);
        if poll.is_ready() {
            self.done = true;
        }
        poll
    }
}

impl Drop for MonitorHere {
    fn drop(&mut self) {
        if !self.done {
            // Drop the monitor first: it releases the pipes and the
            // caller's reactor registrations.
            self.monitor = Box::pin(std::future::ready(()));
            self.process.finish_on_core();
        }
    }
}

/// A process the host started ([`ProcessManager::spawn`]) and everything
/// it keeps about it: [`wait`](Self::wait) and [`try_wait`](Self::try_wait)
/// for its end, [`stop`](Self::stop) by a [`StopPlan`], [`signal`](Self::signal),
/// its streams ([`read`](Self::read), [`write`](Self::write),
/// [`close_stdin`](Self::close_stdin)) and a [`snapshot`](Self::snapshot).
///
/// [`ProcessManager::spawn`]: crate::ProcessManager::spawn
#[derive(Debug)]
pub struct Process {
    facts: ProcessFacts,
    life: Mutex<Life>,
    progress: watch::Sender<Progress>,
    stdout: Option<Arc<ByteBuffer>>,
    stderr: Option<Arc<ByteBuffer>>,
    stdin: Option<Arc<ByteBuffer>>,
    close_stdin: AtomicBool,
    discard: AtomicBool,
    /// Set once reaped: read without the lock by quota checks, which scan
    /// every record of a session on each start.
    ended: AtomicBool,
    /// Wakes the monitor (a permit is kept if it is busy).
    wake: Notify,
    /// Where its exit is audited (`run` audits its own).
    audit: Option<Audit>,
    core: tokio::runtime::Handle,
    /// When the host learnt of it (monotonic, unlike `started_at_ms`).
    born: Instant,
}

impl Process {
    /// Wraps a spawned child and starts its monitor on the process core.
    pub(crate) fn watch_on_core(core: &tokio::runtime::Handle, spawned: Spawned) -> Arc<Self> {
        let (this, monitor) = Self::with_monitor(core, spawned);
        core.spawn(monitor);
        this
    }

    /// Wraps a spawned child whose monitor the caller polls itself, on its
    /// own runtime, instead of the core's: a `run` on a thread that drives
    /// its own reactor is woken by the child's exit directly. Dropped before
    /// it ends, the monitor hands the process over to the core.
    pub(crate) fn watch_here(
        core: &tokio::runtime::Handle,
        spawned: Spawned,
    ) -> (Arc<Self>, MonitorHere) {
        let (this, monitor) = Self::with_monitor(core, spawned);
        let here = MonitorHere {
            process: Arc::clone(&this),
            monitor: Box::pin(monitor),
            done: false,
        };
        (this, here)
    }

    fn with_monitor(
        core: &tokio::runtime::Handle,
        spawned: Spawned,
    ) -> (Arc<Self>, impl Future<Output = ()> + Send + 'static) {
        let Spawned {
            facts,
            child,
            pipes,
            buffers,
            deadline,
            audit,
        } = spawned;
        let pidfd = child.pidfd();
        let this = Arc::new(Self {
            facts,
            life: Mutex::new(Life {
                child: Some(child),
                state: ProcState::Running,
                exit: None,
                stop_requested: false,
                timed_out: false,
                usage: None,
            }),
            progress: watch::Sender::new(Progress::default()),
            stdout: buffers.stdout,
            stderr: buffers.stderr,
            stdin: buffers.stdin,
            close_stdin: AtomicBool::new(buffers.close_stdin_when_drained),
            discard: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            wake: Notify::new(),
            audit,
            core: core.clone(),
            born: Instant::now(),
        });
        let monitor = Arc::clone(&this).monitor(pipes, pidfd, deadline);
        (this, monitor)
    }

    /// Carries on, on the core, what a monitor polled by its caller left
    /// undone when it was dropped. Its pipes closed with it; the process is
    /// killed if it still runs, then reaped, and its buffers closed.
    fn finish_on_core(self: &Arc<Self>) {
        let pidfd = self.life().child.as_ref().map(OsChild::pidfd);
        match pidfd {
            Some(pidfd) => {
                self.discard.store(true, Ordering::SeqCst);
                self.core
                    .spawn(Arc::clone(self).monitor(Pipes::default(), pidfd, Deadline::NEVER));
            }
            None => self.finish(),
        }
    }

    /// Static facts.
    pub fn facts(&self) -> &ProcessFacts {
        &self.facts
    }

    /// How long ago the host started it (monotonic).
    pub(crate) fn age(&self) -> Duration {
        self.born.elapsed()
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

    /// How it ended, if it has ended and been reaped; never waits (a
    /// lock-free check first, as quota checks scan every record of a
    /// session on each start).
    pub fn try_wait(&self) -> Option<Exit> {
        if !self.ended.load(Ordering::Acquire) {
            return None;
        }
        self.life().exit
    }

    /// Whether the monitor killed it at its deadline.
    pub(crate) fn timed_out(&self) -> bool {
        self.life().timed_out
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
    /// reaped. Signals that end a process mark it as killed.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        let mut life = self.life();
        let Some(child) = &life.child else {
            return Ok(());
        };
        child.signal_group(signal.number())?;
        if signal.ends_process() {
            life.stop_requested = true;
        }
        Ok(())
    }

    /// Resolves once the process has ended and been reaped, on the
    /// executor it is polled on.
    async fn ended(&self) -> Exit {
        let mut rx = self.progress.subscribe();
        match rx.wait_for(|p| p.exit.is_some()).await {
            Ok(p) => p.exit.unwrap_or(Exit::Code(-1)),
            // The sender lives in `self`; kept total all the same.
            Err(_) => self.try_wait().unwrap_or(Exit::Code(-1)),
        }
    }

    /// Resolves once the monitor has let go of every pipe (after the exit,
    /// and at most [`DRAIN_GRACE`] after it).
    pub(crate) async fn drained(&self) {
        let mut rx = self.progress.subscribe();
        let _ = rx.wait_for(|p| p.finished).await;
    }

    /// Waits until `deadline` for the process to end and be reaped, from
    /// any executor; `None` if it has not ended by then.
    pub async fn wait(self: &Arc<Self>, deadline: Deadline) -> Option<Exit> {
        if let Some(exit) = self.try_wait() {
            return Some(exit);
        }
        let me = Arc::clone(self);
        on_core(&self.core, async move { me.wait_here(deadline).await })
            .await
            .flatten()
    }

    /// [`wait`](Self::wait) on the executor it is polled on (its timer).
    pub(crate) async fn wait_here(&self, deadline: Deadline) -> Option<Exit> {
        deadline.timeout(self.ended()).await
    }

    /// Stops the process by `plan` ([`StopPlan`]), from any executor, and
    /// returns how it ended; an error if it had not ended by the plan's
    /// deadline (SIGKILL was sent; the monitor reaps it when it dies).
    pub async fn stop(self: &Arc<Self>, plan: StopPlan) -> Result<Exit, StopError> {
        let me = Arc::clone(self);
        on_core(&self.core, async move { me.stop_here(plan).await })
            .await
            .unwrap_or(Err(StopError::ShuttingDown))
    }

    /// The one stop sequence, on the executor it is polled on (the process
    /// core, or a caller's own runtime): every stop of the host, whether
    /// a guest's `kill`, a session's or the host's shutdown, or the
    /// supervisor's, is this.
    pub(crate) async fn stop_here(&self, plan: StopPlan) -> Result<Exit, StopError> {
        let pid = self.facts.pid;
        let failed = |source| StopError::Signal { pid, source };
        if let Some(exit) = self.try_wait() {
            return Ok(exit);
        }
        self.signal(plan.signal).map_err(failed)?;
        if plan.signal != Signal::Kill {
            let grace_end = Deadline::after(plan.grace).min(plan.deadline);
            if let Some(exit) = grace_end.timeout(self.ended()).await {
                return Ok(exit);
            }
            self.signal(Signal::Kill).map_err(failed)?;
        }
        plan.deadline
            .timeout(self.ended())
            .await
            .ok_or(StopError::NotEnded { pid })
    }

    fn buffer(&self, stream: Stream) -> Result<&Arc<ByteBuffer>, StreamError> {
        let (buffer, name) = match stream {
            Stream::Stdout => (&self.stdout, "stdout"),
            Stream::Stderr => (&self.stderr, "stderr"),
        };
        buffer.as_ref().ok_or(StreamError::NotPiped(name))
    }

    /// Reads a piped output stream at a cursor, waiting until `deadline`
    /// when nothing is there yet.
    pub async fn read(
        &self,
        stream: Stream,
        cursor: u64,
        max: usize,
        deadline: Deadline,
    ) -> Result<Chunk, StreamError> {
        let buffer = Arc::clone(self.buffer(stream)?);
        // Releasing consumed bytes makes room: let the monitor drain the
        // pipe before this read waits for new data.
        buffer.release(cursor);
        self.wake.notify_one();
        on_core(&self.core, async move {
            buffer.read(cursor, max, deadline).await
        })
        .await
        .ok_or(StreamError::ShuttingDown)?
        .map_err(StreamError::from)
    }

    /// Reads a piped output stream at a cursor without waiting.
    pub fn read_now(&self, stream: Stream, cursor: u64, max: usize) -> Result<Chunk, StreamError> {
        let buffer = self.buffer(stream)?;
        let chunk = buffer.read_now(cursor, max)?;
        self.wake.notify_one();
        Ok(chunk)
    }

    /// Queues bytes for stdin, waiting until `deadline` for room; returns
    /// how many were taken.
    pub async fn write(&self, data: &[u8], deadline: Deadline) -> Result<usize, StreamError> {
        let stdin = Arc::clone(self.stdin.as_ref().ok_or(StreamError::NotPiped("stdin"))?);
        if self.close_stdin.load(Ordering::SeqCst) || stdin.is_closed() {
            return Err(StreamError::StdinClosed);
        }
        let data = data.to_vec();
        let taken = on_core(&self.core, async move {
            stdin.push_until(&data, deadline).await
        })
        .await
        .ok_or(StreamError::ShuttingDown)?;
        self.wake.notify_one();
        Ok(taken)
    }

    /// Closes stdin once the queued bytes are delivered.
    pub fn close_stdin(&self) -> Result<(), StreamError> {
        if self.stdin.is_none() {
            return Err(StreamError::NotPiped("stdin"));
        }
        self.close_stdin.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        Ok(())
    }

    /// Tells the monitor to let go of the pipes (the record is being
    /// dropped). Kills the process if it is still running; the monitor
    /// reaps it.
    pub(crate) fn discard(&self) {
        self.discard.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn reap_now(&self) {
        let mut life = self.life();
        let Some(child) = life.child.take() else {
            return;
        };
        let (status, usage) = child.reap();
        life.usage = usage;
        let exit = match status {
            Ok(status) => Exit::from_status(status),
            Err(e) => {
                tracing::error!(error = %e, pid = self.facts.pid, "cannot reap child");
                Exit::Code(-1)
            }
        };
        // An orphan that ended before this reap is swept now (one ending
        // later sends the host its own `SIGCHLD`).
        if crate::os::subreaper::reaper().orphan_waiting() {
            crate::process::core_runtime::sweep_orphans_soon(&self.core);
        }
        life.exit = Some(exit);
        self.ended.store(true, Ordering::Release);
        life.state = if life.stop_requested {
            ProcState::Killed
        } else {
            ProcState::Exited
        };
        let killed = life.state == ProcState::Killed;
        // Audited before anyone can see the exit, so a caller that waited
        // for it finds the record already written.
        if let Some(audit) = &self.audit {
            audit.record(
                AuditEvent::new(&self.facts.guest, if killed { "killed" } else { "exit" })
                    .process(&self.facts.id, self.facts.pid)
                    .program(&self.facts.program, &self.facts.args)
                    .exit(exit),
            );
        }
        drop(life);
        self.progress.send_modify(|p| p.exit = Some(exit));
    }

    /// The stop sequence's first step from inside the monitor, which
    /// cannot wait on itself: SIGKILL to the group (and its cgroup), the
    /// monitor reaps. At the deadline it marks the process timed out.
    fn kill_from_monitor(&self, at_deadline: bool) {
        let mut life = self.life();
        if life.child.is_none() {
            return;
        }
        life.timed_out |= at_deadline;
        drop(life);
        let _ = self.signal(Signal::Kill);
    }

    async fn monitor(self: Arc<Self>, pipes: Pipes, pidfd: Arc<OwnedFd>, deadline: Deadline) {
        // SAFETY: the `Arc<OwnedFd>` moves into the `AsyncFd`, which keeps
        // the pidfd open, and the same fd, for as long as it lives.
        let pidfd = match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
            Ok(fd) => fd,
            Err(e) => {
                // Cannot watch it: end it now and reap it off the reactor.
                tracing::error!(error = %e, pid = self.facts.pid, "cannot watch a child's pidfd");
                let _ = self.signal(Signal::Kill);
                let me = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || me.reap_now()).await;
                self.finish();
                return;
            }
        };
        let mut streams = Streams::new(pipes, &self);
        let mut deadline = deadline.tokio();
        let mut reaped = false;
        let mut discarded = false;
        // Fixed once, when the leader is reaped; never extended.
        let mut drain_until: Option<tokio::time::Instant> = None;
        // One timer for the whole life, moved when its target changes (a
        // new one per wake-up would enter and leave the timer wheel each
        // time).
        let mut timer = std::pin::pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
        let mut timer_at = None;
        loop {
            if !discarded && self.discard.load(Ordering::SeqCst) {
                discarded = true;
                streams.close_all();
                if !reaped {
                    self.kill_from_monitor(false);
                }
            }
            streams.refill_stdin(&self);
            let now = tokio::time::Instant::now();
            if !reaped && deadline.is_some_and(|d| now >= d) {
                deadline = None;
                self.kill_from_monitor(true);
            }
            if drain_until.is_some_and(|d| now >= d) {
                // Whoever still holds the pipes is outside the group.
                streams.close_outputs();
            }
            if reaped && streams.outputs_closed() {
                break;
            }
            let wanted = if reaped { drain_until } else { deadline };
            if wanted != timer_at {
                timer_at = wanted;
                if let Some(at) = wanted {
                    timer.as_mut().reset(at);
                }
            }
            let wants_out = streams.wants_read(&streams.stdout, &self.stdout, reaped);
            let wants_err = streams.wants_read(&streams.stderr, &self.stderr, reaped);
            let wants_in = streams.wants_write();
            tokio::select! {
                // The exit first: once reaped, the pipes are drained to
                // their end in the same turn.
                biased;
                ready = pidfd.readable(), if !reaped => {
                    if let Err(e) = ready {
                        tracing::error!(error = %e, pid = self.facts.pid, "pidfd wait failed");
                    }
                    self.reap_now();
                    reaped = true;
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                    streams.close_stdin(&self);
                }
                () = self.wake.notified() => {}
                _ = readable(streams.stdout.as_ref()), if wants_out => {}
                _ = readable(streams.stderr.as_ref()), if wants_err => {}
                _ = writable(streams.stdin.as_ref()), if wants_in => {}
                () = timer.as_mut(), if timer_at.is_some() => {}
            }
            streams.pump(&self, reaped);
        }
        self.finish();
    }

    /// Closes every buffer and tells waiters the pipes are released.
    fn finish(&self) {
        for b in [&self.stdout, &self.stderr, &self.stdin]
            .into_iter()
            .flatten()
        {
            b.close();
        }
        self.progress.send_modify(|p| p.finished = true);
    }
}

/// The monitor's pipes, registered with the core's reactor, and the stdin
/// bytes taken from the buffer but not yet written.
struct Streams {
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    stdin: Option<pipe::Sender>,
    pending: Vec<u8>,
    pending_at: usize,
}

impl Streams {
    fn new(pipes: Pipes, process: &Process) -> Self {
        let pid = process.facts.pid;
        fn register<T>(pid: u32, what: &str, r: io::Result<T>) -> Option<T> {
            r.inspect_err(|e| tracing::error!(error = %e, pid, "cannot watch {what}"))
                .ok()
        }
        // A stream without a buffer has nobody to read it: close it.
        // The fds are the host's ends of pipes the spawner created, so
        // tokio's checks (fstat, the access mode) would only repeat what is
        // known: one fcntl makes each non-blocking.
        let receiver = |fd| nonblocking(fd).and_then(pipe::Receiver::from_owned_fd_unchecked);
        let stdout = pipes
            .stdout
            .filter(|_| process.stdout.is_some())
            .and_then(|fd| register(pid, "stdout", receiver(fd)));
        let stderr = pipes
            .stderr
            .filter(|_| process.stderr.is_some())
            .and_then(|fd| register(pid, "stderr", receiver(fd)));
        let stdin = pipes
            .stdin
            .filter(|_| process.stdin.is_some())
            .and_then(|fd| {
                let sender = nonblocking(fd).and_then(pipe::Sender::from_owned_fd_unchecked);
                register(pid, "stdin", sender)
            });
        for (open, buffer) in [
            (stdout.is_some(), &process.stdout),
            (stderr.is_some(), &process.stderr),
            (stdin.is_some(), &process.stdin),
        ] {
            if let (false, Some(b)) = (open, buffer) {
                b.close();
            }
        }
        Self {
            stdout,
            stderr,
            stdin,
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    /// Whether to wait for a pipe to become readable: there is room for
    /// what it holds, or the group is gone and the rest goes in anyway.
    fn wants_read(
        &self,
        rx: &Option<pipe::Receiver>,
        buffer: &Option<Arc<ByteBuffer>>,
        reaped: bool,
    ) -> bool {
        rx.is_some() && (reaped || buffer.as_ref().is_some_and(|b| b.room() > 0))
    }

    fn wants_write(&self) -> bool {
        self.stdin.is_some() && self.pending_at < self.pending.len()
    }

    fn outputs_closed(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    fn close_outputs(&mut self) {
        self.stdout = None;
        self.stderr = None;
    }

    fn close_stdin(&mut self, process: &Process) {
        self.stdin = None;
        if let Some(b) = &process.stdin {
            b.close();
        }
    }

    fn close_all(&mut self) {
        self.close_outputs();
        self.stdin = None;
    }

    /// Takes the next bytes for stdin from its buffer once the last ones
    /// are written; closes stdin when asked and everything is delivered.
    fn refill_stdin(&mut self, process: &Process) {
        if self.stdin.is_none() || self.pending_at < self.pending.len() {
            return;
        }
        let queued = process
            .stdin
            .as_ref()
            .map(|b| b.take_front(SCRATCH_BYTES))
            .unwrap_or_default();
        if queued.is_empty() && process.close_stdin.load(Ordering::SeqCst) {
            self.stdin = None;
        }
        self.pending = queued;
        self.pending_at = 0;
    }

    /// Moves whatever the pipes hold into the buffers and writes pending
    /// stdin, without blocking.
    fn pump(&mut self, process: &Process, reaped: bool) {
        SCRATCH.with_borrow_mut(|scratch| {
            let out = process.stdout.as_deref();
            drain_into(&mut self.stdout, out, scratch, reaped);
            let err = process.stderr.as_deref();
            drain_into(&mut self.stderr, err, scratch, reaped);
        });
        if let Some(tx) = &self.stdin
            && self.pending_at < self.pending.len()
        {
            match tx.try_write(&self.pending[self.pending_at..]) {
                Ok(n) => self.pending_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The child closed its stdin; later writes fail.
                Err(_) => self.close_stdin(process),
            }
        }
    }
}

/// Moves what a pipe holds into its buffer, up to [`READS_PER_WAKE`]
/// reads. After the group has ended (`tail`), the rest of the pipe goes in
/// even past the buffer's capacity (see [`ByteBuffer::push_tail`]).
fn drain_into(
    rx: &mut Option<pipe::Receiver>,
    buffer: Option<&ByteBuffer>,
    scratch: &mut [u8],
    tail: bool,
) {
    let (Some(pipe), Some(buffer)) = (rx.as_ref(), buffer) else {
        return;
    };
    for _ in 0..READS_PER_WAKE {
        let want = if tail {
            scratch.len()
        } else {
            buffer.room().min(scratch.len())
        };
        if want == 0 {
            return;
        }
        match pipe.try_read(&mut scratch[..want]) {
            Ok(0) => {
                *rx = None;
                buffer.close();
                return;
            }
            Ok(n) if tail => buffer.push_tail(&scratch[..n]),
            Ok(n) => {
                buffer.push(&scratch[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                *rx = None;
                buffer.close();
                return;
            }
        }
    }
}

/// Makes a pipe end non-blocking (its only status flag: the spawner opens
/// pipes with none but close-on-exec, which is a descriptor flag).
fn nonblocking(fd: OwnedFd) -> io::Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(fd)
}

async fn readable(rx: Option<&pipe::Receiver>) {
    match rx {
        Some(rx) => {
            let _ = rx.readable().await;
        }
        None => std::future::pending().await,
    }
}

async fn writable(tx: Option<&pipe::Sender>) {
    match tx {
        Some(tx) => {
            let _ = tx.writable().await;
        }
        None => std::future::pending().await,
    }
}

/// A shared buffer of `capacity` bytes for one stream of a managed process.
pub fn buffer(capacity: usize, mode: crate::process::buffer::Buffering) -> Arc<ByteBuffer> {
    Arc::new(ByteBuffer::new(capacity, mode))
}
