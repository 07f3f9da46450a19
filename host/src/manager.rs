//! The process manager shared by every guest of a host: the registry of
//! managed processes, the cgroup subtree, the watchdog, and orderly
//! shutdown.

use crate::cgroup::{Containment, Hierarchy, Scope};
use crate::cgroup_limits::CgroupLimits;
use crate::error::CallError;
use crate::managed::{ManagedProcess, ProcessSnapshot};
use crate::os_child::OsChild;
use crate::policy::Approved;
use crate::registry::Registry;
use crate::spawner::{self, StdioPlan};
use crate::subreaper::reaper;
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
    cgroups: Arc<Hierarchy>,
    /// The scope of processes no guest owns (daemon probes).
    host_scope: Scope,
    watchdog: Arc<Watchdog>,
    grace: Duration,
    pub(crate) runs: RunShutdown,
}

impl ProcessManager {
    /// A manager whose shutdown gives processes `grace` between SIGTERM and
    /// SIGKILL. Makes the host a child subreaper, creates the manager's
    /// cgroup subtree where the host has cgroups ([`Containment::detect`]),
    /// and starts the watchdog process.
    pub fn new(grace: Duration) -> Arc<Self> {
        reaper();
        let cgroups = Arc::new(Hierarchy::new());
        let watchdog = Arc::new(Watchdog::start(cgroups.root()));
        Arc::new(Self {
            registry: Registry::default(),
            host_scope: cgroups.scope("host", &CgroupLimits::default()),
            cgroups,
            watchdog,
            grace,
            runs: RunShutdown::new(grace),
        })
    }

    /// Marks a `run` call in progress until the guard drops, so shutdown
    /// waits for it.
    pub(crate) fn begin_run(&self) -> RunGuard<'_> {
        self.runs.begin()
    }

    /// The containment the manager's processes get.
    pub fn containment(&self) -> Containment {
        match self.cgroups.root() {
            Some(_) => Containment::detect().clone(),
            None => match Containment::detect() {
                Containment::Cgroup { base, .. } => Containment::ProcessGroups {
                    reason: format!("cannot create a cgroup under {}", base.display()),
                },
                weaker => weaker.clone(),
            },
        }
    }

    /// The manager's cgroup subtree (one cgroup per guest session, daemon
    /// and process below it), where it has one.
    pub fn cgroup(&self) -> Option<&std::path::Path> {
        self.cgroups.root()
    }

    /// A cgroup scope for one guest session or daemon (`kind` names it).
    pub(crate) fn scope(&self, kind: &str, limits: &CgroupLimits) -> Scope {
        self.cgroups.scope(kind, limits)
    }

    /// Starts an approved command that no guest owns (a daemon's probe).
    pub(crate) fn spawn(&self, cmd: &Approved, plan: StdioPlan) -> Result<OsChild, CallError> {
        self.spawn_in(cmd, plan, &self.host_scope)
    }

    /// Starts an approved command in its own cgroup inside `scope`.
    pub(crate) fn spawn_in(
        &self,
        cmd: &Approved,
        plan: StdioPlan,
        scope: &Scope,
    ) -> Result<OsChild, CallError> {
        let failed = |e: String| CallError::SpawnFailed(format!("{}: {e}", cmd.program.display()));
        let cgroup = scope.process().map_err(|e| failed(e.to_string()))?;
        let child = match spawner::spawn(cmd, plan, cgroup.as_ref()) {
            Ok(child) => child,
            Err(e) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                return Err(failed(e.to_string()));
            }
        };
        OsChild::new(child, Arc::clone(&self.watchdog), cgroup)
            .map_err(|e| CallError::io("track child", e))
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
    /// progress, alike (SIGTERM, grace, SIGKILL) and reaps them. Orphans
    /// that escaped every cgroup are killed too.
    pub fn shutdown(&self) {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                self.runs
                    .stop_runs(self.grace + crate::managed::KILL_WAIT + Duration::from_secs(1))
            });
            stop_all(self.registry.take_all(), self.grace);
        });
        reaper().kill_orphans();
    }
}

impl Drop for ProcessManager {
    fn drop(&mut self) {
        self.shutdown();
        self.cgroups.remove();
        reaper().reap_orphans();
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
