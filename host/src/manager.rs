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
use std::sync::Arc;
use std::time::Duration;

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
        })
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
        let cgroup = scope.process().map_err(failed)?;
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

    /// Stops every managed process (SIGTERM, grace, SIGKILL) and reaps it.
    /// Orphans that escaped every cgroup are killed too.
    pub fn shutdown(&self) {
        stop_all(self.registry.take_all(), self.grace);
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
    let deadline = std::time::Instant::now() + grace;
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
