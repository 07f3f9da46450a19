//! The process manager shared by every guest of a host: the registry of
//! managed processes, the cgroup subtree, the watchdog, the process core
//! (the runtime that monitors them all), the one way to start a process
//! ([`ProcessManager::spawn`], and [`ProcessManager::output`] for a run
//! to its end) and orderly shutdown.

use crate::error::CallError;
use crate::os::cgroup::{Containment, Hierarchy, Scope};
use crate::os::child::OsChild;
use crate::os::spawner;
use crate::os::subreaper::reaper;
use crate::os::watchdog::Watchdog;
use crate::policy::cgroup_limits::CgroupLimits;
use crate::process::core_runtime::ProcessCore;
use crate::process::descendants::{CENSUS_INTERVAL, CENSUS_MIN_AGE, CENSUS_SHARE, DescendantCaps};
use crate::process::managed::{
    MonitorHere, Pipes, Process, ProcessFacts, ProcessSnapshot, Spawned, StopPlan,
};
use crate::process::registry::Registry;
use crate::process::spec::Spec;
use crate::types::Signal;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    runs: Mutex<HashMap<u32, Arc<Process>>>,
    /// Each guest session's cap on live descendants, held by a census.
    pub(crate) descendants: DescendantCaps,
    core: ProcessCore,
}

/// Marks one `run` child in progress; dropping it (the call returned or
/// was cancelled) forgets it and, if it still runs, kills it.
#[derive(Debug)]
pub(crate) struct RunGuard<'a> {
    manager: &'a ProcessManager,
    process: Arc<Process>,
}

impl RunGuard<'_> {
    /// The process of the call.
    pub(crate) fn process(&self) -> &Arc<Process> {
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

/// Effects a manager may have on the whole host process, each an explicit
/// option of [`ProcessManagerBuilder`] and off by default: an embedding
/// application decides. The `wasmproc` CLI and `wasmproc serve` turn all
/// three on ([`HostEffects::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostEffects {
    /// Make the host a child subreaper (`PR_SET_CHILD_SUBREAPER`): the
    /// orphans of its children come back to it, to be reaped and, at
    /// shutdown, killed, even without cgroups.
    pub subreaper: bool,
    /// Raise the soft `RLIMIT_NOFILE` to the hard limit: each live piped
    /// process holds three fds.
    pub raise_fd_limit: bool,
    /// Start the watchdog process, which kills the host's processes and
    /// removes its cgroups if the host is killed.
    pub watchdog: bool,
}

impl HostEffects {
    /// Every effect on, as the CLI has them.
    pub const ALL: Self = Self {
        subreaper: true,
        raise_fd_limit: true,
        watchdog: true,
    };
}

/// Makes a [`ProcessManager`]: [`ProcessManager::builder`], the options,
/// then [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct ProcessManagerBuilder {
    grace: Duration,
    effects: HostEffects,
}

impl ProcessManagerBuilder {
    /// How long [`ProcessManager::shutdown`] waits between SIGTERM and
    /// SIGKILL (default 2 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Which effects on the host process to have (default: none).
    pub fn host_effects(mut self, effects: HostEffects) -> Self {
        self.effects = effects;
        self
    }

    /// The manager: its cgroup subtree where the host has cgroups
    /// ([`Containment::detect`]), its process core and, as asked, the
    /// effects on the host process.
    ///
    /// # Panics
    /// If the process core's runtime cannot be created (no thread can be
    /// started): the host could not manage any process.
    pub fn build(self) -> Arc<ProcessManager> {
        if self.effects.subreaper {
            reaper().become_subreaper();
        }
        if self.effects.raise_fd_limit {
            crate::sys::process::raise_fd_limit();
        }
        let core = ProcessCore::new().expect("cannot start the process core's runtime");
        let cgroups = Arc::new(Hierarchy::new());
        let watchdog = Arc::new(if self.effects.watchdog {
            Watchdog::start(cgroups.root())
        } else {
            Watchdog::none()
        });
        let manager = Arc::new(ProcessManager {
            registry: Registry::default(),
            host_scope: cgroups.scope("host", &CgroupLimits::default()),
            cgroups,
            watchdog,
            grace: self.grace,
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
}

impl ProcessManager {
    /// Starts making a manager (see [`ProcessManagerBuilder`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmproc_host::ProcessManager;
    ///
    /// let manager = ProcessManager::builder().grace(Duration::from_secs(1)).build();
    /// assert!(manager.processes().is_empty());
    /// ```
    pub fn builder() -> ProcessManagerBuilder {
        ProcessManagerBuilder {
            grace: Duration::from_secs(2),
            effects: HostEffects::default(),
        }
    }

    /// The live processes this manager started (`run` children too), with
    /// their owners.
    fn live_leaders(&self) -> Vec<(String, Arc<Process>)> {
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
            .filter(|p| p.try_wait().is_none())
            .map(|p| (p.facts().owner.clone(), p))
            .collect()
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

    /// Starts `spec`'s command in its own cgroup inside its scope and hands
    /// it to a monitor on the process core (pipes into buffers, the
    /// deadline, the reap on exit): the one way the host starts a process
    /// that outlives the call, for a guest's `start` and the daemon
    /// supervisor alike. [`output`](Self::output) runs one to its end.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use wasmproc_host::policy::{CommandRequest, Operation};
    /// use wasmproc_host::process::{Deadline, Spec, block_on};
    /// use wasmproc_host::{Admission, Policy, ProcessManager};
    ///
    /// let policy = Policy::builder().allow_program("true").build()?;
    /// // The host's own command: approved by the policy alone.
    /// let admission = Admission::for_host(Arc::new(policy));
    /// let request = CommandRequest { program: "true", args: &[], env: &[], cwd: None };
    /// let approved = admission.approve(Operation::Start, request)?;
    /// let manager = ProcessManager::builder().build();
    /// let process = manager.spawn(Spec::new(&approved, manager.host_scope()))?;
    /// let exit = block_on(process.wait(Deadline::after(Duration::from_secs(10))));
    /// assert!(exit.is_some_and(|e| e.success()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(&self, spec: Spec<'_>) -> Result<Arc<Process>, CallError> {
        let spawned = self.start(spec)?;
        Ok(Process::watch_on_core(self.core.handle(), spawned))
    }

    /// Starts the child (confined, in its own cgroup inside the spec's
    /// scope) and gathers what its monitor needs.
    fn start(&self, spec: Spec<'_>) -> Result<Spawned, CallError> {
        let Spec {
            approved,
            scope,
            id,
            owner,
            guest,
            stdio,
            buffers,
            deadline,
            audit,
            live,
        } = spec;
        let failed =
            |e: String| CallError::SpawnFailed(format!("{}: {e}", approved.program.display()));
        let confinement = scope.confiner().prepare(&approved.program)?;
        let cgroup = scope.process().map_err(|e| failed(e.to_string()))?;
        let spawned =
            match spawner::spawn_confined(approved, stdio, cgroup.as_ref(), Some(&confinement)) {
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
        let mut child = OsChild::new(
            spawned.pid,
            spawned.pidfd,
            Arc::clone(&self.watchdog),
            cgroup,
        )
        .map_err(|e| CallError::io("track child", e))?;
        if let Some(token) = live {
            child.count_as_live(token);
        }
        let facts = ProcessFacts {
            id,
            owner,
            guest,
            pid: child.pid(),
            program: approved.program.to_string_lossy().into_owned(),
            args: approved.args.clone(),
            started_at_ms: crate::audit::now_ms(),
        };
        Ok(Spawned {
            facts,
            child,
            pipes,
            buffers,
            deadline,
            audit,
        })
    }

    /// Starts the child of a run to its end and tracks it until the guard
    /// drops, so shutdown stops it too. With `here`, its monitor is not
    /// spawned on the core but returned, for the caller to poll on its own
    /// reactor.
    pub(crate) fn start_run(
        &self,
        spec: Spec<'_>,
        here: bool,
    ) -> Result<(RunGuard<'_>, Option<MonitorHere>), CallError> {
        let spawned = self.start(spec)?;
        let (process, monitor) = if here {
            let (process, monitor) = Process::watch_here(self.core.handle(), spawned);
            (process, Some(monitor))
        } else {
            (Process::watch_on_core(self.core.handle(), spawned), None)
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

    /// Stops every process of one guest session alike (SIGTERM, `grace`,
    /// SIGKILL), awaiting their ends, and forgets them.
    pub(crate) async fn stop_owner(&self, owner: &str, grace: Duration) {
        self.stop_all(self.registry.take_owner(owner), grace).await;
    }

    /// Kills every process of one guest session at once and forgets them,
    /// without waiting: their monitors reap them.
    pub(crate) fn kill_owner(&self, owner: &str) {
        for p in self.registry.take_owner(owner) {
            p.discard();
        }
    }

    /// Stops every managed process, and the child of every `run` in
    /// progress, alike (SIGTERM, the grace period, SIGKILL), and returns
    /// once they are reaped. Orphans that escaped every cgroup are killed
    /// too. Call it before dropping the manager: a drop kills at once.
    pub async fn shutdown(&self) {
        let mut processes = self.registry.take_all();
        processes.extend(
            self.runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        self.stop_all(processes, self.grace).await;
        reaper().kill_orphans();
    }

    async fn stop_all(&self, processes: Vec<Arc<Process>>, grace: Duration) {
        if processes.is_empty() {
            return;
        }
        if self
            .core
            .run(stop_all(processes.clone(), grace))
            .await
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
    /// Kills whatever still runs at once (`cgroup.kill` of the manager's
    /// subtree, SIGKILL to each group) without waiting; the subtree is
    /// removed at once where nothing is left in it, else on a thread of its
    /// own once the killed processes have left (or by the watchdog, where
    /// there is one, if the host exits first).
    fn drop(&mut self) {
        for p in self.registry.take_all() {
            p.discard();
        }
        for p in self.runs.lock().unwrap_or_else(|e| e.into_inner()).values() {
            p.discard();
        }
        self.cgroups.kill();
        reaper().kill_orphans();
        reaper().reap_orphans();
        self.watchdog.stop();
        self.cgroups.remove_soon();
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

/// Stops processes in parallel on the core, each by the one stop sequence
/// (one SIGTERM, the shared grace period, SIGKILL).
async fn stop_all(processes: Vec<Arc<Process>>, grace: Duration) {
    let plan = StopPlan::graceful(Signal::Term, grace);
    let mut stops = tokio::task::JoinSet::new();
    for p in processes.into_iter().filter(|p| p.try_wait().is_none()) {
        stops.spawn(async move { p.stop_here(plan).await });
    }
    while let Some(stopped) = stops.join_next().await {
        if let Ok(Err(e)) = stopped {
            tracing::error!(error = %e, "cannot stop process");
        }
    }
}
