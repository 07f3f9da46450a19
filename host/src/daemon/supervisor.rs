//! The supervisor: one thread per declared daemon runs it, watches it,
//! probes it and restarts it by its restart policy.
//!
//! A daemon is a process like any other: its command passed the daemon
//! policy when the configuration loaded, the spawner starts it in its own
//! process group with a clean environment, `OsChild` tracks it (pidfd,
//! group signals, the watchdog), and a `ManagedProcess` drains its output
//! into ring buffers and reaps it.

use super::backoff::{Backoff, StartLimit};
use super::config::{DaemonSpec, HostConfig, RestartPolicy};
use super::identity::{Liveness, ProcessIdentity, stop_verified};
use super::pidfile::{Existing, PidFile};
use super::probe::{Probe, ProbeState};
use super::registry_dir::{EntryKind, RegistryDir, RegistryEntry};
use crate::audit::{Audit, AuditEvent};
use crate::buffer::Buffering;
use crate::cgroup::Scope;
use crate::managed::{self, Buffers, Exit, ManagedProcess};
use crate::manager::{Launch, ProcessManager};
use crate::policy::{Approved, CommandRequest, Operation, Policy};
use crate::process_types::{Signal, StdioMode};
use crate::spawner::StdioPlan;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a stop may wait for the kernel after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How many recent restart delays and start times a status keeps.
const HISTORY: usize = 32;

/// Where a daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    /// Not running and not meant to be.
    Stopped,
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Waiting out a restart delay.
    Backoff,
    /// Stop signal sent; waiting for it to end.
    Stopping,
    /// Ended and not restarted, by its restart policy.
    Exited,
    /// Hit its start limit; stays here until started again.
    Failed,
}

/// Results of one probe, for status reports.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Whether the probe passes (by its thresholds).
    pub passing: bool,
    /// Probes run for the current instance.
    pub runs: u64,
    /// Of which failed.
    pub failures: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Why the last failure failed.
    pub last_error: Option<String>,
}

/// A snapshot of one daemon.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    /// The declared name.
    pub name: String,
    /// Current state.
    pub state: DaemonState,
    /// PID of the running instance.
    pub pid: Option<u32>,
    /// When the running instance started, ms since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// Automatic restarts so far.
    pub restarts: u32,
    /// How the previous instance ended.
    #[serde(serialize_with = "exit_text")]
    pub last_exit: Option<Exit>,
    /// Whether it is ready (readiness probe passing, or running if none).
    pub ready: bool,
    /// Whether its liveness probe passes (true without one).
    pub live: bool,
    /// Why it failed or was last restarted.
    pub reason: Option<String>,
    /// The most recent restart delays chosen, in ms, oldest first.
    pub recent_delays_ms: Vec<u64>,
    /// When the most recent instances started, in ms on the supervisor's
    /// monotonic clock, oldest first.
    pub recent_starts_ms: Vec<u64>,
    /// The liveness probe's results.
    pub liveness: Option<ProbeReport>,
    /// The readiness probe's results.
    pub readiness: Option<ProbeReport>,
}

fn exit_text<S: serde::Serializer>(exit: &Option<Exit>, s: S) -> Result<S::Ok, S::Error> {
    match exit {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// The newest output of a daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentOutput {
    /// Newest stdout bytes.
    pub stdout: Vec<u8>,
    /// Newest stderr bytes.
    pub stderr: Vec<u8>,
    /// Bytes written but no longer held.
    pub dropped: u64,
}

/// Why a supervisor call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonError {
    /// No daemon of that name is declared.
    #[error("no daemon `{0}` is declared")]
    NotFound(String),
    /// The daemon could not be configured or started.
    #[error("{0}")]
    Failed(String),
    /// It did not reach the requested state in time.
    #[error("daemon `{0}` did not stop in time")]
    TimedOut(String),
}

/// A daemon's configuration, checked against the policy.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    cmd: Approved,
    liveness: Option<Probe>,
    readiness: Option<Probe>,
    stop_signal: i32,
    grace: Duration,
}

/// Checks a daemon's command (for `start`) and probes (for `run`) against
/// the policy.
pub(crate) fn resolve(spec: &DaemonSpec, policy: &Policy) -> Result<Resolved, String> {
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cmd = policy
        .check(
            Operation::Start,
            CommandRequest {
                program: &spec.program,
                args: &spec.args,
                env: &env,
                cwd: spec.cwd.as_deref(),
            },
        )
        .map_err(|e| e.to_string())?;
    let probe = |p: &Option<super::probe::ProbeSpec>, what: &str| {
        p.as_ref()
            .map(|p| p.resolve(policy).map_err(|e| format!("{what} probe: {e}")))
            .transpose()
    };
    Ok(Resolved {
        cmd,
        liveness: probe(&spec.liveness, "liveness")?,
        readiness: probe(&spec.readiness, "readiness")?,
        stop_signal: spec.stop_signal_number()?,
        grace: Duration::from_millis(spec.stop_grace_ms),
    })
}

/// What the supervisor shares with its threads.
#[derive(Debug)]
struct Shared {
    manager: Arc<ProcessManager>,
    registry: Option<RegistryDir>,
    host: ProcessIdentity,
    host_name: String,
    audit: Audit,
    epoch: Instant,
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

#[derive(Debug)]
struct Instance {
    process: Arc<ManagedProcess>,
    identity: ProcessIdentity,
    started: Instant,
    started_at_ms: u64,
    pidfile: Option<PidFile>,
}

#[derive(Debug)]
struct Inner {
    state: DaemonState,
    wanted: bool,
    shutdown: bool,
    restart_requested: bool,
    generation: u64,
    instance: Option<Instance>,
    last: Option<Arc<ManagedProcess>>,
    ended: Option<Exit>,
    liveness_failed: bool,
    /// Probes running right now; `stop` returns only once they ended.
    probes_in_flight: usize,
    restarts: u32,
    last_exit: Option<Exit>,
    reason: Option<String>,
    liveness: ProbeState,
    readiness: ProbeState,
    backoff: Backoff,
    start_limit: StartLimit,
    delays: VecDeque<u64>,
    starts: VecDeque<u64>,
}

#[derive(Debug)]
struct Daemon {
    spec: DaemonSpec,
    resolved: Resolved,
    /// The daemon's cgroup: stopping it kills the whole tree.
    scope: Scope,
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// How a running instance's supervision ended.
enum Ending {
    Exited(Exit),
    Stop,
    Restart,
    Liveness(String),
}

/// Runs the declared daemons. Dropping it stops them all.
#[derive(Debug)]
pub struct Supervisor {
    daemons: Vec<Arc<Daemon>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn push_capped(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

impl Supervisor {
    /// Checks every daemon of `config` against its policy and starts one
    /// thread per daemon; nothing runs until [`start_all`](Self::start_all)
    /// or [`start`](Self::start).
    pub fn new(
        config: &HostConfig,
        manager: Arc<ProcessManager>,
        options: SupervisorOptions,
    ) -> Result<Arc<Self>, DaemonError> {
        let shared = Arc::new(Shared {
            manager,
            registry: options.registry,
            host: ProcessIdentity::current(),
            host_name: options.host_name.unwrap_or_else(|| "wasmproc".into()),
            audit: options.audit,
            epoch: Instant::now(),
        });
        let mut daemons = Vec::new();
        for spec in &config.daemons {
            let resolved = resolve(spec, &config.policy)
                .map_err(|e| DaemonError::Failed(format!("daemon `{}`: {e}", spec.name)))?;
            daemons.push(Arc::new(Daemon {
                inner: Mutex::new(Inner {
                    state: DaemonState::Stopped,
                    wanted: false,
                    shutdown: false,
                    restart_requested: false,
                    generation: 0,
                    instance: None,
                    last: None,
                    ended: None,
                    liveness_failed: false,
                    probes_in_flight: 0,
                    restarts: 0,
                    last_exit: None,
                    reason: None,
                    liveness: ProbeState::new(true),
                    readiness: ProbeState::new(false),
                    backoff: Backoff::new(spec.backoff.clone()),
                    start_limit: StartLimit::new(spec.start_limit.clone()),
                    delays: VecDeque::new(),
                    starts: VecDeque::new(),
                }),
                spec: spec.clone(),
                resolved,
                scope: shared
                    .manager
                    .scope("daemon", &config.policy.limits().cgroup),
                changed: Condvar::new(),
            }));
        }
        let mut threads = Vec::new();
        for d in &daemons {
            let (d, shared) = (Arc::clone(d), Arc::clone(&shared));
            let handle = std::thread::Builder::new()
                .name(format!("wasmproc-daemon-{}", d.spec.name))
                .spawn(move || d.run(&shared))
                .map_err(|e| {
                    DaemonError::Failed(format!("cannot start a supervisor thread: {e}"))
                })?;
            threads.push(handle);
        }
        Ok(Arc::new(Self {
            daemons,
            threads: Mutex::new(threads),
        }))
    }

    /// Starts every daemon declared with `autostart`.
    pub fn start_all(&self) {
        for d in self.daemons.iter().filter(|d| d.spec.autostart) {
            d.request_start();
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
        self.find(name)?.request_start();
        Ok(())
    }

    /// Stops a daemon (its stop signal to the group, SIGKILL after its grace
    /// period) and returns once it has been reaped. It stays stopped.
    pub fn stop(&self, name: &str) -> Result<(), DaemonError> {
        let d = self.find(name)?;
        let mut g = d.lock();
        g.wanted = false;
        d.changed.notify_all();
        // A probe in flight ends by its own timeout (it is then killed
        // and reaped); stop waits for that too.
        let probe_wait = [&d.resolved.liveness, &d.resolved.readiness]
            .into_iter()
            .flatten()
            .map(|p| p.timeout)
            .max()
            .unwrap_or_default();
        let deadline = crate::limits::deadline_after(
            d.resolved.grace + KILL_WAIT + probe_wait + Duration::from_secs(5),
        );
        while g.instance.is_some()
            || g.probes_in_flight > 0
            || matches!(g.state, DaemonState::Starting | DaemonState::Stopping)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DaemonError::TimedOut(name.to_string()));
            }
            g = d
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Stops and starts a daemon again without a restart delay (counting
    /// against its start limit); starts it if it is not running.
    pub fn restart(&self, name: &str) -> Result<(), DaemonError> {
        let d = self.find(name)?;
        let mut g = d.lock();
        if g.state == DaemonState::Failed || !g.wanted {
            drop(g);
            d.request_start();
            return Ok(());
        }
        g.restart_requested = true;
        d.changed.notify_all();
        Ok(())
    }

    /// The newest output of the running (or last) instance, at most
    /// `max_bytes` per stream.
    pub fn recent_output(&self, name: &str, max_bytes: usize) -> Result<RecentOutput, DaemonError> {
        let d = self.find(name)?;
        let process = {
            let g = d.lock();
            g.instance
                .as_ref()
                .map(|i| Arc::clone(&i.process))
                .or_else(|| g.last.clone())
        };
        let Some(p) = process else {
            return Ok(RecentOutput::default());
        };
        let snap = p.snapshot();
        let newest = |stdout: bool, received: u64| {
            p.read_now(stdout, received.saturating_sub(max_bytes as u64), max_bytes)
                .map(|c| c.data)
                .unwrap_or_default()
        };
        Ok(RecentOutput {
            stdout: newest(true, snap.stdout.received),
            stderr: newest(false, snap.stderr.received),
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
        for (d, s) in self.daemons.iter().zip(self.statuses()) {
            let wanted = d.lock().wanted;
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
    /// period) and ends the supervisor threads. Idempotent.
    pub fn shutdown(&self) {
        for d in &self.daemons {
            let mut g = d.lock();
            g.shutdown = true;
            g.wanted = false;
            d.changed.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Daemon {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    fn request_start(&self) {
        let mut g = self.lock();
        if g.shutdown {
            return;
        }
        if g.state == DaemonState::Failed {
            g.start_limit.reset();
            g.backoff.reset();
            g.reason = None;
            g.state = DaemonState::Stopped;
        }
        if g.state == DaemonState::Backoff {
            // Skip the rest of the delay.
            g.restart_requested = true;
        }
        g.wanted = true;
        self.changed.notify_all();
    }

    fn audit(&self, op: &str) -> AuditEvent {
        AuditEvent::new(&format!("daemon:{}", self.spec.name), op).program(
            &self.resolved.cmd.program.to_string_lossy(),
            &self.resolved.cmd.args,
        )
    }

    fn status(&self) -> DaemonStatus {
        let g = self.lock();
        let report = |s: &ProbeState| ProbeReport {
            passing: s.passing,
            runs: s.runs,
            failures: s.failures,
            consecutive_failures: s.consecutive_failures,
            last_error: s.last_error.clone(),
        };
        let running = g.state == DaemonState::Running;
        DaemonStatus {
            name: self.spec.name.clone(),
            state: g.state,
            pid: g.instance.as_ref().map(|i| i.identity.pid),
            started_at_ms: g.instance.as_ref().map(|i| i.started_at_ms),
            restarts: g.restarts,
            last_exit: g.last_exit,
            ready: running && (self.resolved.readiness.is_none() || g.readiness.passing),
            live: !running || self.resolved.liveness.is_none() || g.liveness.passing,
            reason: g.reason.clone(),
            recent_delays_ms: g.delays.iter().copied().collect(),
            recent_starts_ms: g.starts.iter().copied().collect(),
            liveness: self.resolved.liveness.as_ref().map(|_| report(&g.liveness)),
            readiness: self
                .resolved
                .readiness
                .as_ref()
                .map(|_| report(&g.readiness)),
        }
    }

    /// The supervisor thread of this daemon.
    fn run(self: Arc<Self>, shared: &Arc<Shared>) {
        let mut g = self.lock();
        loop {
            while !g.wanted && !g.shutdown {
                g = self.wait(g);
            }
            if g.shutdown {
                break;
            }
            if !g.start_limit.try_start(Instant::now()) {
                self.fail(shared, &mut g);
                continue;
            }
            g.state = DaemonState::Starting;
            g.restart_requested = false;
            g.liveness_failed = false;
            g.ended = None;
            g.generation += 1;
            let generation = g.generation;
            push_capped(&mut g.starts, shared.epoch.elapsed().as_millis() as u64);
            drop(g);
            let launched = self.launch(shared);
            let launch_failed = launched.is_err();
            g = self.lock();
            let (ending, ran_for) = match launched {
                Err(why) => {
                    tracing::warn!(daemon = %self.spec.name, %why, "daemon did not start");
                    shared
                        .audit
                        .record(self.audit("daemon-start").reason(why.clone()));
                    g.reason = Some(why.clone());
                    (Ending::Exited(Exit::Code(-1)), Duration::ZERO)
                }
                Ok(instance) => {
                    let pid = instance.identity.pid;
                    shared
                        .audit
                        .record(self.audit("daemon-started").process(&self.spec.name, pid));
                    let process = Arc::clone(&instance.process);
                    g.instance = Some(instance);
                    g.state = DaemonState::Running;
                    g.liveness = ProbeState::new(true);
                    g.readiness = ProbeState::new(false);
                    self.changed.notify_all();
                    drop(g);
                    self.spawn_helpers(shared, generation, Arc::clone(&process));
                    g = self.lock();
                    let ending = loop {
                        if let Some(exit) = g.ended {
                            break Ending::Exited(exit);
                        }
                        if g.shutdown || !g.wanted {
                            break Ending::Stop;
                        }
                        if g.restart_requested {
                            break Ending::Restart;
                        }
                        if g.liveness_failed {
                            let why = g.liveness.last_error.clone().unwrap_or_default();
                            break Ending::Liveness(why);
                        }
                        g = self.wait(g);
                    };
                    let instance = g.instance.take().expect("instance present while running");
                    let ran_for = instance.started.elapsed();
                    if !matches!(ending, Ending::Exited(_)) {
                        g.state = DaemonState::Stopping;
                        self.changed.notify_all();
                    }
                    drop(g);
                    let exit = match &ending {
                        Ending::Exited(exit) => Some(*exit),
                        _ => stop_process(
                            &instance.process,
                            self.resolved.stop_signal,
                            self.resolved.grace,
                        ),
                    };
                    self.release(shared, instance);
                    g = self.lock();
                    g.generation += 1;
                    g.last = Some(process);
                    g.last_exit = exit;
                    let op = match &ending {
                        Ending::Exited(_) => "daemon-exit",
                        Ending::Stop => "daemon-stopped",
                        Ending::Restart => "daemon-restart",
                        Ending::Liveness(_) => "daemon-unhealthy",
                    };
                    let mut event = self.audit(op).process(&self.spec.name, pid);
                    if let Some(exit) = exit {
                        event = event.exit(exit);
                    }
                    shared.audit.record(event);
                    (ending, ran_for)
                }
            };
            let failed = match &ending {
                Ending::Stop => {
                    g.state = DaemonState::Stopped;
                    self.changed.notify_all();
                    continue;
                }
                Ending::Restart => {
                    // Straight back to the top: the start limit still counts.
                    g.reason = Some("restarted on request".into());
                    continue;
                }
                Ending::Liveness(why) => {
                    g.reason = Some(format!("liveness probe failed: {why}"));
                    true
                }
                Ending::Exited(exit) => {
                    if !launch_failed {
                        g.reason = Some(format!("ended ({exit})"));
                    }
                    *exit != Exit::Code(0)
                }
            };
            g.backoff.run_ended(ran_for);
            let restart = match self.spec.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Always => true,
            };
            if !restart || !g.wanted || g.shutdown {
                g.state = if g.wanted {
                    DaemonState::Exited
                } else {
                    DaemonState::Stopped
                };
                g.wanted = false;
                self.changed.notify_all();
                continue;
            }
            let delay = g.backoff.next_delay();
            if !g.start_limit.would_allow(Instant::now() + delay) {
                // The restart would pass the start limit: give up now
                // rather than after the delay.
                self.fail(shared, &mut g);
                continue;
            }
            push_capped(&mut g.delays, delay.as_millis() as u64);
            g.state = DaemonState::Backoff;
            self.changed.notify_all();
            let until = Instant::now() + delay;
            loop {
                if g.shutdown || !g.wanted || g.restart_requested {
                    break;
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = self
                    .changed
                    .wait_timeout(g, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if g.wanted && !g.shutdown {
                g.restarts += 1;
            } else {
                g.state = DaemonState::Stopped;
                self.changed.notify_all();
            }
        }
        g.state = DaemonState::Stopped;
        self.changed.notify_all();
    }

    /// Enters `failed`: the start limit was reached.
    fn fail(&self, shared: &Shared, g: &mut Inner) {
        let why = g.start_limit.describe();
        let why = match &g.reason {
            Some(last) => format!("{why}; last: {last}"),
            None => why,
        };
        tracing::warn!(daemon = %self.spec.name, %why, "daemon failed");
        shared
            .audit
            .record(self.audit("daemon-failed").reason(why.clone()));
        g.state = DaemonState::Failed;
        g.reason = Some(why);
        g.wanted = false;
        self.changed.notify_all();
    }

    /// Starts one instance: PID file, spawn, registry entry.
    fn launch(&self, shared: &Shared) -> Result<Instance, String> {
        let name = &self.spec.name;
        if let Some(reg) = &shared.registry
            && let Some(entry) = reg.get(EntryKind::Daemon, name)
            && entry.host != shared.host
            && entry.process.liveness() == Liveness::Alive
        {
            if entry.host.liveness() == Liveness::Alive {
                return Err(format!(
                    "daemon `{name}` is already run by host `{}` (pid {})",
                    entry.host_name, entry.host.pid
                ));
            }
            // A leftover of a crashed host: stop it by identity.
            if let Ok(true) = stop_verified(
                &entry.process,
                self.resolved.stop_signal,
                self.resolved.grace,
            ) {
                tracing::warn!(daemon = %name, pid = entry.process.pid, "stopped a leftover of a crashed host");
            }
        }
        let pidfile = match &self.spec.pid_file {
            None => None,
            Some(path) => {
                let file = PidFile::acquire(path).map_err(|e| format!("PID file: {e}"))?;
                match file.previous() {
                    Existing::Live(id) => {
                        // Its owner crashed without releasing it (the lock
                        // was free), and the process it names is still the
                        // one that was recorded: a leftover.
                        if let Ok(true) =
                            stop_verified(id, self.resolved.stop_signal, self.resolved.grace)
                        {
                            tracing::warn!(daemon = %name, pid = id.pid, "stopped the leftover named by the PID file");
                        }
                    }
                    Existing::Missing => {}
                    other => {
                        tracing::info!(daemon = %name, previous = ?other, "replacing a PID file")
                    }
                }
                Some(file)
            }
        };
        let plan = StdioPlan {
            stdin: StdioMode::Null,
            stdout: StdioMode::Piped,
            stderr: StdioMode::Piped,
        };
        let capacity = self.spec.output_buffer_bytes as usize;
        let buffers = Buffers {
            stdout: Some(managed::buffer(capacity, Buffering::Ring)),
            stderr: Some(managed::buffer(capacity, Buffering::Ring)),
            stdin: None,
            close_stdin_when_drained: true,
        };
        // interim: launched through the manager's one lifecycle entry point.
        let launch = Launch {
            id: format!("daemon:{name}"),
            owner: format!("daemon:{name}"),
            guest: format!("daemon:{name}"),
            scope: &self.scope,
            plan,
            buffers,
            deadline: None,
            audit: Some(shared.audit.clone()),
        };
        let process = shared
            .manager
            .launch(&self.resolved.cmd, launch)
            .map_err(|e| e.to_string())?;
        let started_at_ms = process.facts().started_at_ms;
        // Read before the first await point of the monitor in most cases;
        // a child that already exited and was reaped falls back to its pid.
        let pid = process.facts().pid;
        let identity = ProcessIdentity::of(pid).unwrap_or(ProcessIdentity {
            pid,
            start_time: 0,
            boot_id: String::new(),
        });
        if let Some(f) = &pidfile
            && let Err(e) = f.write(&identity)
        {
            tracing::error!(daemon = %name, error = %e, "cannot write the PID file");
        }
        if let Some(reg) = &shared.registry {
            let probes = [&self.spec.readiness, &self.spec.liveness];
            let probes = probes.into_iter().flatten();
            let health = (probes.clone().find_map(|p| p.http.clone()))
                .or_else(|| probes.clone().find_map(|p| p.tcp.clone()));
            let entry = RegistryEntry {
                kind: EntryKind::Daemon,
                name: name.clone(),
                process: identity.clone(),
                host: shared.host.clone(),
                host_name: shared.host_name.clone(),
                health,
                binary: self.resolved.cmd.program.to_string_lossy().into_owned(),
                started_at_ms,
                control: None,
            };
            if let Err(e) = reg.register(&entry) {
                tracing::error!(daemon = %name, error = %e, "cannot write the registry entry");
            }
        }
        Ok(Instance {
            process,
            identity,
            started: Instant::now(),
            started_at_ms,
            pidfile,
        })
    }

    /// Forgets an ended instance: PID file and registry entry.
    fn release(&self, shared: &Shared, instance: Instance) {
        if let Some(reg) = &shared.registry {
            reg.unregister(EntryKind::Daemon, &self.spec.name, &instance.identity);
        }
        if let Some(f) = instance.pidfile {
            f.release();
        }
    }

    /// Starts the exit watcher and the probe threads of one instance; they
    /// end when the instance's generation does.
    fn spawn_helpers(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        generation: u64,
        process: Arc<ManagedProcess>,
    ) {
        let me = Arc::clone(self);
        let watcher = std::thread::Builder::new()
            .name(format!("wasmproc-daemon-wait-{}", self.spec.name))
            .spawn(move || {
                let exit = loop {
                    if let Some(exit) = process.wait_blocking(Duration::from_secs(3600)) {
                        break exit;
                    }
                };
                let mut g = me.lock();
                if g.generation == generation {
                    g.ended = Some(exit);
                    me.changed.notify_all();
                }
            });
        if let Err(e) = watcher {
            tracing::error!(error = %e, "cannot start a daemon watcher thread");
        }
        for liveness in [true, false] {
            let probe = if liveness {
                &self.resolved.liveness
            } else {
                &self.resolved.readiness
            };
            let Some(probe) = probe.clone() else { continue };
            let (me, shared) = (Arc::clone(self), Arc::clone(shared));
            let started = std::thread::Builder::new()
                .name(format!("wasmproc-probe-{}", self.spec.name))
                .spawn(move || me.probe_loop(&shared, generation, &probe, liveness));
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a probe thread");
            }
        }
    }

    fn probe_loop(&self, shared: &Shared, generation: u64, probe: &Probe, liveness: bool) {
        let mut next = Instant::now() + probe.initial_delay;
        loop {
            {
                let mut g = self.lock();
                loop {
                    if g.generation != generation || g.ended.is_some() {
                        return;
                    }
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    g = self
                        .changed
                        .wait_timeout(g, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                g.probes_in_flight += 1;
            }
            let began = Instant::now();
            let result = probe.run(&shared.manager);
            let mut g = self.lock();
            g.probes_in_flight -= 1;
            self.changed.notify_all();
            if g.generation != generation || g.ended.is_some() {
                return;
            }
            if liveness {
                if g.liveness.record(result, probe) {
                    g.liveness_failed = true;
                }
            } else {
                g.readiness.record(result, probe);
            }
            self.changed.notify_all();
            next = (began + probe.period).max(Instant::now());
        }
    }
}

/// Stops a daemon instance: `signal` to its group, SIGKILL after `grace`;
/// returns how it ended once reaped.
fn stop_process(p: &Arc<ManagedProcess>, signal: i32, grace: Duration) -> Option<Exit> {
    // interim: the manager's one stop sequence, blocking this thread.
    let signal = Signal::from_number(signal).unwrap_or(Signal::Term);
    ProcessManager::block_on(p.stop(signal, grace)).ok()
}
