//! The process manager shared by every guest of a host: the registry of
//! managed processes, the cgroup subtree, the watchdog, the process core
//! (the runtime that monitors them all), the one lifecycle entry point
//! ([`ProcessManager::launch`]) and orderly shutdown.

use crate::audit::Audit;
use crate::error::CallError;
use crate::os::cgroup::{Containment, Hierarchy, Scope};
use crate::os::child::LiveToken;
use crate::os::child::OsChild;
use crate::os::spawner::{self, StdioPlan};
use crate::os::subreaper::reaper;
use crate::os::watchdog::Watchdog;
use crate::policy::Approved;
use crate::policy::cgroup_limits::CgroupLimits;
use crate::process::core_runtime::ProcessCore;
use crate::process::descendants::{CENSUS_INTERVAL, CENSUS_MIN_AGE, CENSUS_SHARE, DescendantCaps};
use crate::process::managed::{
    Buffers, KILL_WAIT, ManagedProcess, MonitorHere, Pipes, ProcessFacts, ProcessSnapshot, Spawned,
};
use crate::process::registry::Registry;
use crate::types::Signal;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who a launched process belongs to, and how it is carried.
#[derive(Debug)]
pub struct Launch<'a> {
    /// Host-issued id.
    pub id: String,
    /// The session (or daemon) that owns it.
    pub owner: String,
    /// The guest name for audit records.
    pub guest: String,
    /// The cgroup scope it goes in.
    pub scope: &'a Scope,
    /// Where its standard streams go.
    pub plan: StdioPlan,
    /// The buffers of its piped streams.
    pub buffers: Buffers,
    /// When the monitor kills its group (`None`: never).
    pub deadline: Option<Instant>,
    /// Where its exit is audited (`None`: the caller audits it).
    pub audit: Option<Audit>,
}

/// Owns every process the host started for its guests. Create one per host
/// (or per runtime) and share it between guests' [`ProcessCtx`]s; dropping
/// it stops whatever is still running.
///
/// All processes are monitored on one small runtime the manager owns (one
/// worker thread named `wasmproc-core`), whatever their number; its async
/// methods work from any executor.
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
    /// The children of `run` calls in progress, by pid: shutdown stops
    /// them like started processes.
    runs: Mutex<HashMap<u32, Arc<ManagedProcess>>>,
    /// Each guest session's cap on live descendants, held by a census.
    pub(crate) descendants: DescendantCaps,
    core: ProcessCore,
}

/// Marks one `run` child in progress; dropping it (the call returned or
/// was cancelled) forgets it and, if it still runs, kills it.
#[derive(Debug)]
pub(crate) struct RunGuard<'a> {
    manager: &'a ProcessManager,
    process: Arc<ManagedProcess>,
}

impl RunGuard<'_> {
    /// The process of the call.
    pub(crate) fn process(&self) -> &Arc<ManagedProcess> {
        &self.process
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.manager
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.process.facts().pid);
        self.process.discard();
    }
}

impl ProcessManager {
    /// A manager whose shutdown gives processes `grace` between SIGTERM and
    /// SIGKILL. Makes the host a child subreaper, raises the soft fd limit
    /// to the hard one (once per host process), creates the manager's
    /// cgroup subtree where the host has cgroups ([`Containment::detect`]),
    /// starts the process core and the watchdog process.
    ///
    /// # Panics
    /// If the process core's runtime cannot be created (no thread can be
    /// started): the host could not manage any process.
    pub fn new(grace: Duration) -> Arc<Self> {
        reaper();
        let core = ProcessCore::new().expect("cannot start the process core's runtime");
        let cgroups = Arc::new(Hierarchy::new());
        let watchdog = Arc::new(Watchdog::start(cgroups.root()));
        let manager = Arc::new(Self {
            registry: Registry::default(),
            host_scope: cgroups.scope("host", &CgroupLimits::default()),
            cgroups,
            watchdog,
            grace,
            runs: Mutex::new(HashMap::new()),
            descendants: DescendantCaps::default(),
            core,
        });
        manager
            .core
            .handle()
            .spawn(take_censuses(Arc::downgrade(&manager)));
        manager
    }

    /// The live processes this manager started (`run` children too), with
    /// their owners.
    fn live_leaders(&self) -> Vec<(String, Arc<ManagedProcess>)> {
        let runs: Vec<_> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        self.registry
            .all()
            .into_iter()
            .chain(runs)
            .filter(|p| !p.has_ended())
            .map(|p| (p.facts().owner.clone(), p))
            .collect()
    }

    /// Runs a future to completion on the calling thread: the sync path to
    /// this crate's async methods, for callers outside any async runtime.
    /// Inside an async task, `.await` instead (this blocks the thread).
    pub fn block_on<F: Future>(fut: F) -> F::Output {
        crate::process::core_runtime::block_on(fut)
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
    pub fn scope(&self, kind: &str, limits: &CgroupLimits) -> Scope {
        self.cgroups.scope(kind, limits)
    }

    /// The scope of processes no guest owns (daemon probes).
    pub fn host_scope(&self) -> &Scope {
        &self.host_scope
    }

    /// Starts an approved command in its own cgroup inside `scope`; the
    /// child and the host's ends of its pipes.
    fn spawn_in(
        &self,
        cmd: &Approved,
        plan: StdioPlan,
        scope: &Scope,
    ) -> Result<(OsChild, Pipes), CallError> {
        let failed = |e: String| CallError::SpawnFailed(format!("{}: {e}", cmd.program.display()));
        let confinement = scope.confiner().prepare(&cmd.program)?;
        let cgroup = scope.process().map_err(|e| failed(e.to_string()))?;
        let spawned = match spawner::spawn_confined(cmd, plan, cgroup.as_ref(), Some(&confinement))
        {
            Ok(spawned) => spawned,
            Err(e) => {
                if let Some(cgroup) = cgroup {
                    cgroup.remove();
                }
                return Err(failed(e.to_string()));
            }
        };
        let pipes = Pipes {
            stdout: spawned.stdout,
            stderr: spawned.stderr,
            stdin: spawned.stdin,
        };
        let child = OsChild::new(
            spawned.pid,
            spawned.pidfd,
            Arc::clone(&self.watchdog),
            cgroup,
        )
        .map_err(|e| CallError::io("track child", e))?;
        Ok((child, pipes))
    }

    /// The one lifecycle entry point: starts an approved command in its own
    /// cgroup inside `launch.scope`, and hands it to a monitor on the
    /// process core (pipes into buffers, deadline, reap on exit). Used by
    /// `run`, `start` and the daemon supervisor.
    pub fn launch(
        &self,
        cmd: &Approved,
        launch: Launch<'_>,
    ) -> Result<Arc<ManagedProcess>, CallError> {
        self.launch_counted(cmd, launch, None)
    }

    /// [`launch`](Self::launch), counting the process as running for its
    /// owner (`live`, from [`Registry::count_live`]) until it is reaped.
    pub(crate) fn launch_counted(
        &self,
        cmd: &Approved,
        launch: Launch<'_>,
        live: Option<LiveToken>,
    ) -> Result<Arc<ManagedProcess>, CallError> {
        let spawned = self.spawn_launch(cmd, launch, live)?;
        Ok(ManagedProcess::launch(self.core.handle(), spawned))
    }

    fn spawn_launch(
        &self,
        cmd: &Approved,
        launch: Launch<'_>,
        live: Option<LiveToken>,
    ) -> Result<Spawned, CallError> {
        let (mut child, pipes) = self.spawn_in(cmd, launch.plan, launch.scope)?;
        if let Some(token) = live {
            child.count_as_live(token);
        }
        let facts = ProcessFacts {
            id: launch.id,
            owner: launch.owner,
            guest: launch.guest,
            pid: child.pid(),
            program: cmd.program.to_string_lossy().into_owned(),
            args: cmd.args.clone(),
            started_at_ms: crate::audit::now_ms(),
        };
        Ok(Spawned {
            facts,
            child,
            pipes,
            buffers: launch.buffers,
            deadline: launch.deadline,
            audit: launch.audit,
        })
    }

    /// Launches the child of a `run` call and tracks it until the guard
    /// drops, so shutdown stops it too. With `here`, its monitor is not
    /// spawned on the core but returned, for the caller to poll on its own
    /// reactor.
    pub(crate) fn launch_run(
        &self,
        cmd: &Approved,
        launch: Launch<'_>,
        here: bool,
    ) -> Result<(RunGuard<'_>, Option<MonitorHere>), CallError> {
        let spawned = self.spawn_launch(cmd, launch, None)?;
        let (process, monitor) = if here {
            let (process, monitor) = ManagedProcess::launch_here(self.core.handle(), spawned);
            (process, Some(monitor))
        } else {
            (ManagedProcess::launch(self.core.handle(), spawned), None)
        };
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(process.facts().pid, Arc::clone(&process));
        let guard = RunGuard {
            manager: self,
            process,
        };
        Ok((guard, monitor))
    }

    /// The handle of the process core (for timers any executor may await).
    pub(crate) fn core_handle(&self) -> &tokio::runtime::Handle {
        self.core.handle()
    }

    /// Runs `fut` on the process core and waits for it from any executor;
    /// `None` if the core shut down first.
    pub(crate) async fn on_core<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.core.run(fut).await
    }

    /// Snapshots of every managed process of every guest.
    pub fn processes(&self) -> Vec<ProcessSnapshot> {
        self.registry.all().iter().map(|p| p.snapshot()).collect()
    }

    /// Stops and forgets every process of one guest session.
    pub fn stop_owner(&self, owner: &str, grace: Duration) {
        self.stop_all_blocking(self.registry.take_owner(owner), grace);
    }

    /// Stops every managed process, and the child of every `run` in
    /// progress, alike (SIGTERM, grace, SIGKILL) and reaps them. Orphans
    /// that escaped every cgroup are killed too.
    pub fn shutdown(&self) {
        let mut processes = self.registry.take_all();
        processes.extend(
            self.runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        self.stop_all_blocking(processes, self.grace);
        reaper().kill_orphans();
    }

    fn stop_all_blocking(&self, processes: Vec<Arc<ManagedProcess>>, grace: Duration) {
        if processes.is_empty() {
            return;
        }
        if crate::process::core_runtime::block_on(self.core.run(stop_all(processes.clone(), grace)))
            .is_none()
        {
            tracing::error!("the process core stopped before its processes");
        }
        for p in processes {
            p.discard();
        }
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

/// Takes a census of the guests' descendants ([`DescendantCaps`]) for as
/// long as the manager lives: at least [`CENSUS_INTERVAL`] apart, and
/// waiting [`CENSUS_SHARE`] times as long as the last one took.
async fn take_censuses(manager: std::sync::Weak<ProcessManager>) {
    let mut wait = CENSUS_INTERVAL;
    loop {
        tokio::time::sleep(wait).await;
        let manager = manager.clone();
        // Off the core's worker: it reads /proc for every process. The
        // manager is held only there, so that if the census holds the last
        // reference, the manager's shutdown blocks that thread, never the
        // core's worker.
        let taken = tokio::task::spawn_blocking(move || {
            let m = manager.upgrade()?;
            let began = Instant::now();
            if m.descendants.any() {
                let leaders = m.live_leaders();
                // Trees younger than CENSUS_MIN_AGE are counted at the next
                // census if they live that long; short runs, the common case,
                // then never cost a pass over /proc.
                if leaders.iter().any(|(_, p)| p.age() >= CENSUS_MIN_AGE) {
                    m.descendants.census(&leaders);
                }
            }
            Some(began.elapsed())
        })
        .await;
        match taken {
            Ok(Some(took)) => wait = CENSUS_INTERVAL.max(took * CENSUS_SHARE),
            _ => return,
        }
    }
}

/// Stops processes in parallel on the core: SIGTERM to all, then each
/// waits out what is left of the shared grace period before SIGKILL.
async fn stop_all(processes: Vec<Arc<ManagedProcess>>, grace: Duration) {
    let running: Vec<_> = processes.iter().filter(|p| !p.has_ended()).collect();
    for p in &running {
        let _ = p.signal(Signal::Term);
    }
    let grace_end = crate::policy::limits::deadline_after(grace);
    let kill_end = crate::policy::limits::deadline_after(grace + KILL_WAIT);
    for p in &running {
        let left = grace_end.saturating_duration_since(Instant::now());
        if let Err(e) = p.stop_on_core(Signal::Term, left, kill_end).await {
            tracing::error!(error = %e, "cannot stop process");
        }
    }
}
