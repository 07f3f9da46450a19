//! The process manager shared by every guest of a host: the registry of
//! managed processes, the watchdog, and orderly shutdown.

use crate::error::CallError;
use crate::managed::{ManagedProcess, ProcessSnapshot};
use crate::os_child::OsChild;
use crate::policy::Approved;
use crate::registry::Registry;
use crate::spawner::{self, StdioPlan};
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
    watchdog: Arc<Watchdog>,
    grace: Duration,
}

impl ProcessManager {
    /// A manager whose shutdown gives processes `grace` between SIGTERM and
    /// SIGKILL. Starts the watchdog process.
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            registry: Registry::default(),
            watchdog: Arc::new(Watchdog::start()),
            grace,
        })
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

    /// Stops every managed process (SIGTERM, grace, SIGKILL) and reaps it.
    pub fn shutdown(&self) {
        stop_all(self.registry.take_all(), self.grace);
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
