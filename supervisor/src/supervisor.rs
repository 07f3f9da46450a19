//! The supervisor: the declared daemons, each run by a task of its own
//! (the `driver` module) on one small runtime, and the calls
//! that start, stop, restart and report them.
//!
//! A daemon is a process like any other: its command passed the daemon
//! policy when the configuration loaded, the spawner starts it in its own
//! process group (and cgroup) with a clean environment, and the process
//! manager drains its output into ring buffers and reaps it.

use super::config::HostConfig;
use super::driver::{Daemon, drive, settled};
use super::identity::ProcessIdentity;
use super::launch::HostSide;
use super::machine::{DaemonState, Event, Machine, MachineSpec};
use super::registry_dir::RegistryDir;
use super::resolve::{ResolveError, resolve};
use super::status::{DaemonStatus, RecentOutput};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmproc_host::audit::Audit;
use wasmproc_host::os::confine::Confiner;
use wasmproc_host::process::{Deadline, Exit, Stream};
use wasmproc_host::{Admission, ProcessManager};

/// Why a supervisor call failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No daemon of that name is declared.
    #[error("no daemon `{0}` is declared")]
    NotFound(String),
    /// A daemon's command or probe is refused by the policy.
    #[error("daemon `{name}`: {source}")]
    Config {
        /// The daemon.
        name: String,
        /// The refusal.
        #[source]
        source: ResolveError,
    },
    /// The supervisor's runtime could not be started.
    #[error("cannot start the supervisor: {0}")]
    Runtime(#[source] std::io::Error),
    /// It did not reach the requested state in time.
    #[error("daemon `{0}` did not stop in time")]
    TimedOut(String),
}

/// Options of [`Supervisor::new`].
#[derive(Debug, Clone, Default)]
pub struct SupervisorOptions {
    /// Registry directory for daemon entries (none: not registered).
    pub registry: Option<RegistryDir>,
    /// Name of the host in registry entries. Default `wasmproc`.
    pub host_name: Option<String>,
    /// Where audit events go.
    pub audit: Audit,
}

/// Runs the declared daemons. Dropping it stops them all.
#[derive(Debug)]
pub struct Supervisor {
    daemons: Vec<Arc<Daemon>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Supervisor {
    /// Checks every daemon of `config` against its policy and starts one
    /// task per daemon; nothing runs until [`start_all`](Self::start_all)
    /// or [`start`](Self::start).
    pub fn new(
        config: &HostConfig,
        manager: Arc<ProcessManager>,
        options: SupervisorOptions,
    ) -> Result<Arc<Self>, DaemonError> {
        // One worker runs every daemon's task and probe; launches (PID
        // file, spawn, registry entry: file work) take a blocking thread,
        // at most two at once, whatever the number of daemons.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("wasmproc-supervisor")
            .enable_all()
            .build()
            .map_err(DaemonError::Runtime)?;
        let side = Arc::new(HostSide {
            manager,
            registry: options.registry,
            host: ProcessIdentity::current(),
            host_name: options.host_name.unwrap_or_else(|| "wasmproc".into()),
            audit: options.audit,
        });
        let epoch = Instant::now();
        let mut daemons = Vec::new();
        let admission = Admission::for_host(Arc::clone(&config.policy));
        for spec in &config.daemons {
            let resolved = resolve(spec, &admission).map_err(|source| DaemonError::Config {
                name: spec.name.clone(),
                source,
            })?;
            let machine = Machine::new(
                MachineSpec {
                    restart: spec.restart,
                    backoff: spec.backoff.clone(),
                    start_limit: spec.start_limit.clone(),
                    liveness: resolved.liveness.as_ref().map(|p| p.thresholds),
                    readiness: resolved.readiness.as_ref().map(|p| p.thresholds),
                },
                epoch,
            );
            let mut scope = side.manager.scope("daemon", &spec.cgroup.limits());
            scope.set_confiner(Confiner::for_policy(&config.policy, None));
            let (daemon, inbox) =
                Daemon::new(spec.clone(), resolved, machine, scope, Arc::clone(&side));
            runtime.spawn(drive(Arc::clone(&daemon), inbox));
            daemons.push(daemon);
        }
        Ok(Arc::new(Self {
            daemons,
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        }))
    }

    /// Starts every daemon declared with `autostart`.
    pub fn start_all(&self) {
        for d in self.daemons.iter().filter(|d| d.spec.autostart) {
            d.send(Event::StartRequested);
        }
    }

    /// The declared daemons' names, in declaration order.
    pub fn names(&self) -> Vec<String> {
        self.daemons.iter().map(|d| d.spec.name.clone()).collect()
    }

    fn find(&self, name: &str) -> Result<&Arc<Daemon>, DaemonError> {
        self.daemons
            .iter()
            .find(|d| d.spec.name == name)
            .ok_or_else(|| DaemonError::NotFound(name.to_string()))
    }

    /// The status of one daemon.
    pub fn status(&self, name: &str) -> Result<DaemonStatus, DaemonError> {
        Ok(self.find(name)?.status())
    }

    /// The status of every daemon.
    pub fn statuses(&self) -> Vec<DaemonStatus> {
        self.daemons.iter().map(|d| d.status()).collect()
    }

    /// Starts a daemon that is stopped, exited or failed (resetting its
    /// start limit and backoff); a running daemon is left alone.
    pub fn start(&self, name: &str) -> Result<(), DaemonError> {
        self.find(name)?.send(Event::StartRequested);
        Ok(())
    }

    /// Stops a daemon (its stop signal to the group, SIGKILL after its grace
    /// period) and returns once it has been reaped and its probes in flight
    /// have ended. It stays stopped.
    pub fn stop(&self, name: &str) -> Result<(), DaemonError> {
        let d = self.find(name)?;
        let seq = d.send(Event::StopRequested);
        let deadline = Deadline::after(d.stop_budget());
        if d.wait_until(deadline, |v| v.done || (v.handled >= seq && settled(v))) {
            Ok(())
        } else {
            Err(DaemonError::TimedOut(name.to_string()))
        }
    }

    /// [`stop`](Self::stop) for async callers: the same stop, awaited
    /// without holding a thread, from any executor.
    pub async fn stop_async(&self, name: &str) -> Result<(), DaemonError> {
        self.stop_until(name, Deadline::NEVER).await
    }

    /// [`stop_async`](Self::stop_async), waiting at most until `deadline`
    /// (and never longer than the daemon's stop budget). The stop itself
    /// goes on after a timeout.
    pub async fn stop_until(&self, name: &str, deadline: Deadline) -> Result<(), DaemonError> {
        let d = Arc::clone(self.find(name)?);
        let seq = d.send(Event::StopRequested);
        let deadline = Deadline::after(d.stop_budget()).min(deadline);
        let waited = self.handle.spawn(async move {
            d.changed_until(deadline, |v| v.done || (v.handled >= seq && settled(v)))
                .await
        });
        match waited.await {
            Ok(true) => Ok(()),
            _ => Err(DaemonError::TimedOut(name.to_string())),
        }
    }

    /// Stops and starts a daemon again without a restart delay (counting
    /// against its start limit); starts it if it is not running.
    pub fn restart(&self, name: &str) -> Result<(), DaemonError> {
        self.find(name)?.send(Event::RestartRequested);
        Ok(())
    }

    /// The newest output of the running (or last) instance, at most
    /// `max_bytes` per stream.
    pub fn recent_output(&self, name: &str, max_bytes: usize) -> Result<RecentOutput, DaemonError> {
        let d = self.find(name)?;
        let process = {
            let g = d.view();
            g.instance
                .as_ref()
                .map(|(_, _, p)| Arc::clone(p))
                .or_else(|| g.last.clone())
        };
        let Some(p) = process else {
            return Ok(RecentOutput::default());
        };
        let snap = p.snapshot();
        let newest = |stream: Stream, received: u64| {
            p.read_now(stream, received.saturating_sub(max_bytes as u64), max_bytes)
                .map(|c| c.data)
                .unwrap_or_default()
        };
        Ok(RecentOutput {
            stdout: newest(Stream::Stdout, snap.stdout.received),
            stderr: newest(Stream::Stderr, snap.stderr.received),
            dropped: snap.stdout.dropped + snap.stderr.dropped,
        })
    }

    /// What makes the host unhealthy: failed daemons and failing liveness
    /// probes. Empty when healthy.
    pub fn health_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.statuses() {
            if s.state == DaemonState::Failed {
                out.push(format!(
                    "daemon {}: failed ({})",
                    s.name,
                    s.reason.unwrap_or_default()
                ));
            } else if s.state == DaemonState::Running && !s.live {
                let why = s.liveness.and_then(|l| l.last_error).unwrap_or_default();
                out.push(format!("daemon {}: liveness probe failing ({why})", s.name));
            }
        }
        out
    }

    /// What keeps the host from being ready: wanted daemons that are not
    /// running and ready, and daemons that exited with a failure. Empty
    /// when ready.
    pub fn readiness_failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in &self.daemons {
            let (s, wanted) = {
                let wanted = d.view().machine.wanted();
                (d.status(), wanted)
            };
            let failed_exit =
                s.state == DaemonState::Exited && s.last_exit.is_some_and(|e| e != Exit::Code(0));
            if failed_exit {
                out.push(format!(
                    "daemon {}: exited ({})",
                    s.name,
                    s.last_exit.map(|e| e.to_string()).unwrap_or_default()
                ));
            } else if wanted && s.state != DaemonState::Running {
                out.push(format!(
                    "daemon {}: {}",
                    s.name,
                    serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                ));
            } else if wanted && !s.ready {
                let why = s
                    .readiness
                    .and_then(|r| r.last_error)
                    .unwrap_or_else(|| "no passing probe yet".into());
                out.push(format!("daemon {}: not ready ({why})", s.name));
            }
        }
        out
    }

    /// Stops every daemon (in parallel, each with its stop signal and grace
    /// period), waits for their tasks to end, then ends the runtime.
    /// Idempotent.
    pub fn shutdown(&self) {
        let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        for d in &self.daemons {
            d.send(Event::Shutdown);
        }
        for d in &self.daemons {
            let deadline = Deadline::after(d.stop_budget());
            if !d.wait_until(deadline, |v| v.done && v.probes_alive == 0) {
                tracing::warn!(daemon = %d.spec.name, "daemon did not stop in time at shutdown");
            }
        }
        runtime.shutdown_background();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
