//! The process manager shared by every guest of a host: the registry of
//! managed processes, the watchdog, and orderly shutdown.

use crate::error::CallError;
use crate::managed::{ManagedProcess, ProcessSnapshot};
use crate::os_child::OsChild;
use crate::policy::Approved;
use crate::registry::Registry;
use crate::spawner::{self, StdioPlan};
use crate::watchdog::Watchdog;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Tells `run` calls in progress that the host is shutting down, and lets
/// shutdown wait for them: each such call stops its child like a started
/// process (SIGTERM, grace, SIGKILL) and returns.
#[derive(Debug)]
pub(crate) struct RunShutdown {
    /// Written once at shutdown and never read, so it stays readable for
    /// every `run` that polls it, now and later.
    signal: Option<OwnedFd>,
    grace: Duration,
    active: Mutex<usize>,
    idle: Condvar,
}

/// Marks one `run` call in progress for as long as it lives.
#[derive(Debug)]
pub(crate) struct RunGuard<'a> {
    shutdown: &'a RunShutdown,
}

impl RunShutdown {
    fn new(grace: Duration) -> Self {
        let signal = crate::managed::eventfd()
            .inspect_err(|e| tracing::error!(error = %e, "no shutdown signal for `run` calls"))
            .ok();
        Self {
            signal,
            grace,
            active: Mutex::new(0),
            idle: Condvar::new(),
        }
    }

    /// The fd a `run` polls (readable once shutdown began), and the grace
    /// it gives its child between SIGTERM and SIGKILL.
    pub(crate) fn signal(&self) -> Option<(BorrowedFd<'_>, Duration)> {
        use std::os::fd::AsFd;
        self.signal.as_ref().map(|fd| (fd.as_fd(), self.grace))
    }

    fn count(&self) -> std::sync::MutexGuard<'_, usize> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) -> RunGuard<'_> {
        *self.count() += 1;
        RunGuard { shutdown: self }
    }

    /// Signals every `run` in progress, then waits until they have all
    /// returned, at most `limit`.
    fn stop_runs(&self, limit: Duration) {
        if let Some(fd) = &self.signal {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        let deadline = crate::limits::deadline_after(limit);
        let mut active = self.count();
        while *active > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::error!(runs = *active, "`run` calls still going after shutdown");
                return;
            }
            active = self
                .idle
                .wait_timeout(active, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        *self.shutdown.count() -= 1;
        self.shutdown.idle.notify_all();
    }
}

/// Owns every process the host started for its guests. Create one per host
/// (or per runtime) and share it between guests' [`ProcessCtx`]s; dropping
/// it stops whatever is still running.
///
/// [`ProcessCtx`]: crate::ProcessCtx
#[derive(Debug)]
pub struct ProcessManager {
    pub(crate) registry: Registry,
    watchdog: Arc<Watchdog>,
    grace: Duration,
    pub(crate) runs: RunShutdown,
}

impl ProcessManager {
    /// A manager whose shutdown gives processes `grace` between SIGTERM and
    /// SIGKILL. Starts the watchdog process.
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            registry: Registry::default(),
            watchdog: Arc::new(Watchdog::start()),
            grace,
            runs: RunShutdown::new(grace),
        })
    }

    /// Marks a `run` call in progress until the guard drops, so shutdown
    /// waits for it.
    pub(crate) fn begin_run(&self) -> RunGuard<'_> {
        self.runs.begin()
    }

    /// Starts an approved command.
    pub(crate) fn spawn(&self, cmd: &Approved, plan: StdioPlan) -> Result<OsChild, CallError> {
        let child = spawner::spawn(cmd, plan)
            .map_err(|e| CallError::SpawnFailed(format!("{}: {e}", cmd.program.display())))?;
        OsChild::new(child, Arc::clone(&self.watchdog)).map_err(|e| CallError::io("track child", e))
    }

    /// Snapshots of every managed process of every guest.
    pub fn processes(&self) -> Vec<ProcessSnapshot> {
        self.registry.all().iter().map(|p| p.snapshot()).collect()
    }

    /// Stops and forgets every process of one guest session.
    pub fn stop_owner(&self, owner: &str, grace: Duration) {
        stop_all(self.registry.take_owner(owner), grace);
    }

    /// Stops every managed process, and the child of every `run` in
    /// progress, alike (SIGTERM, grace, SIGKILL) and reaps them.
    pub fn shutdown(&self) {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                self.runs
                    .stop_runs(self.grace + crate::managed::KILL_WAIT + Duration::from_secs(1))
            });
            stop_all(self.registry.take_all(), self.grace);
        });
    }
}

impl Drop for ProcessManager {
    fn drop(&mut self) {
        self.shutdown();
        self.watchdog.stop();
    }
}

/// Stops processes in parallel: SIGTERM to all, then each waits out what is
/// left of the shared grace period before SIGKILL.
fn stop_all(processes: Vec<Arc<ManagedProcess>>, grace: Duration) {
    let running: Vec<_> = processes.iter().filter(|p| !p.has_ended()).collect();
    for p in &running {
        p.begin_stop();
    }
    let deadline = crate::limits::deadline_after(grace);
    for p in &running {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Err(e) = p.stop(left) {
            tracing::error!(error = %e, "cannot stop process");
        }
    }
    for p in processes {
        p.discard();
    }
}
