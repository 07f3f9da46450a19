//! The task that runs one daemon: it feeds events (requests, the
//! instance's exit, probe results, the restart timer) into the daemon's
//! [`Machine`] and carries out the actions it returns. One task per
//! daemon, one task per probe, on the supervisor's runtime; no thread of
//! its own.

use super::launch::{HostSide, Instance, launch, release};
use super::machine::{Action, DaemonState, Event, Machine, Note, ProbeRole, Timer};
use super::probe::{Probe, ProbeOutcome};
use super::resolve::Resolved;
use super::spec::DaemonSpec;
use super::status::DaemonStatus;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use wasmproc_host::audit::AuditEvent;
use wasmproc_host::os::Scope;
use wasmproc_host::process::Exit;
use wasmproc_host::process::{Deadline, Process, StopPlan};

/// How long a stop may wait for the kernel after SIGKILL.
pub(crate) const KILL_WAIT: Duration = wasmproc_host::process::KILL_WAIT;

/// What reaches a daemon's task.
#[derive(Debug)]
pub(crate) enum Message {
    /// A request or a fact.
    Event(Event),
    /// A probe result of the instance of `generation`.
    Probed {
        generation: u64,
        role: ProbeRole,
        outcome: ProbeOutcome,
    },
}

/// What the supervisor's callers can see of a daemon.
#[derive(Debug)]
pub(crate) struct View {
    pub machine: Machine,
    /// PID, start time (ms since the epoch) and process of the instance.
    pub instance: Option<(u32, u64, Arc<Process>)>,
    /// The previous instance, for its output.
    pub last: Option<Arc<Process>>,
    /// Probe tasks not yet ended.
    pub probes_alive: usize,
    /// Messages the task has handled.
    pub handled: u64,
    /// The task has ended.
    pub done: bool,
}

/// One declared daemon.
#[derive(Debug)]
pub(crate) struct Daemon {
    pub spec: DaemonSpec,
    pub resolved: Resolved,
    /// The daemon's cgroup: stopping it kills the whole tree.
    scope: Scope,
    side: Arc<HostSide>,
    view: Mutex<View>,
    /// Wakes threads waiting for the view to change.
    changed: Condvar,
    /// Wakes tasks waiting for the view to change.
    bumps: watch::Sender<u64>,
    inbox: mpsc::UnboundedSender<Message>,
    sent: AtomicU64,
}

impl Daemon {
    /// A stopped daemon and the receiving end of its inbox.
    pub(crate) fn new(
        spec: DaemonSpec,
        resolved: Resolved,
        machine: Machine,
        scope: Scope,
        side: Arc<HostSide>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Message>) {
        let (inbox, rx) = mpsc::unbounded_channel();
        let daemon = Arc::new(Self {
            spec,
            resolved,
            scope,
            side,
            view: Mutex::new(View {
                machine,
                instance: None,
                last: None,
                probes_alive: 0,
                handled: 0,
                done: false,
            }),
            changed: Condvar::new(),
            bumps: watch::Sender::new(0),
            inbox,
            sent: AtomicU64::new(0),
        });
        (daemon, rx)
    }

    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request; returns how many messages must have been handled
    /// for it to have been.
    pub(crate) fn send(&self, event: Event) -> u64 {
        let seq = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if self.inbox.send(Message::Event(event)).is_err() {
            // The task has ended; nothing will handle it.
            return 0;
        }
        seq
    }

    /// Waits until `ready` holds for the view, or `deadline`; returns
    /// whether it held.
    pub(crate) fn wait_until(&self, deadline: Deadline, ready: impl Fn(&View) -> bool) -> bool {
        let mut g = self.view();
        loop {
            if ready(&g) {
                return true;
            }
            let left = deadline.remaining().unwrap_or(Duration::MAX);
            if left.is_zero() {
                return false;
            }
            g = self
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Like [`wait_until`](Self::wait_until), for a task: waits without
    /// holding a thread. Runs on a tokio runtime (the supervisor's).
    pub(crate) async fn changed_until(
        &self,
        deadline: Deadline,
        ready: impl Fn(&View) -> bool,
    ) -> bool {
        let mut bumps = self.bumps.subscribe();
        let settled = async {
            while !ready(&self.view()) {
                if bumps.changed().await.is_err() {
                    // The sender lives in `self`: cannot happen; wait out
                    // the deadline all the same.
                    std::future::pending::<()>().await;
                }
            }
        };
        deadline.timeout(settled).await.is_some()
    }

    /// The longest a stop may take: grace, SIGKILL wait, a probe in flight.
    pub(crate) fn stop_budget(&self) -> Duration {
        let probe_wait = [&self.resolved.liveness, &self.resolved.readiness]
            .into_iter()
            .flatten()
            .map(|p| p.timeout)
            .max()
            .unwrap_or_default();
        self.resolved.grace + KILL_WAIT + probe_wait + Duration::from_secs(5)
    }

    pub(crate) fn status(&self) -> DaemonStatus {
        let g = self.view();
        DaemonStatus::of(
            &self.spec.name,
            &g.machine,
            g.instance.as_ref().map(|(pid, at, _)| (*pid, *at)),
            (
                self.resolved.liveness.is_some(),
                self.resolved.readiness.is_some(),
            ),
        )
    }

    fn audit(&self, op: &str) -> AuditEvent {
        AuditEvent::new(&format!("daemon:{}", self.spec.name), op).program(
            &self.resolved.cmd.program().to_string_lossy(),
            self.resolved.cmd.args(),
        )
    }

    fn notify(&self) {
        self.changed.notify_all();
        self.bumps.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The pending restart timer.
type Pending = Option<(Timer, tokio::time::Instant)>;

/// What the task holds for the running instance.
#[derive(Default)]
struct Running {
    instance: Option<Instance>,
    exit: Option<JoinHandle<Exit>>,
    probes: Option<watch::Sender<bool>>,
    generation: u64,
    /// The PID of the latest instance, for audit records after it ended.
    pid: Option<u32>,
}

/// What woke the task.
enum Woke {
    /// The supervisor is gone.
    Closed,
    /// A message arrived.
    Message(Message),
    /// The pending timer elapsed.
    Timer,
    /// The instance ended.
    Exited(Exit),
}

/// Waits for the next message, the timer or the instance's exit.
async fn wake(
    inbox: &mut mpsc::UnboundedReceiver<Message>,
    timer: Pending,
    exit: &mut Option<JoinHandle<Exit>>,
) -> Woke {
    let sleep = async {
        match timer {
            Some((_, at)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let exited = async {
        match exit.as_mut() {
            Some(handle) => handle.await.unwrap_or(Exit::Code(-1)),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        message = inbox.recv() => message.map_or(Woke::Closed, Woke::Message),
        () = sleep => Woke::Timer,
        exit = exited => Woke::Exited(exit),
    }
}

/// Runs `daemon` until the supervisor shuts down (or goes away).
pub(crate) async fn drive(daemon: Arc<Daemon>, mut inbox: mpsc::UnboundedReceiver<Message>) {
    let mut timer: Pending = None;
    let mut run = Running::default();
    let mut queue: VecDeque<Event> = VecDeque::new();
    loop {
        let (event, counted) = match queue.pop_front() {
            Some(e) => (e, false),
            None => match wake(&mut inbox, timer, &mut run.exit).await {
                Woke::Closed => break,
                Woke::Message(Message::Event(e)) => (e, true),
                Woke::Message(Message::Probed {
                    generation,
                    role,
                    outcome,
                }) => {
                    if generation != run.generation {
                        continue;
                    }
                    (Event::Probed(role, outcome), false)
                }
                Woke::Timer => match timer.take() {
                    Some((t, _)) => (Event::TimerElapsed(t), false),
                    None => continue,
                },
                Woke::Exited(exit) => {
                    run.exit = None;
                    (Event::Exited(exit), false)
                }
            },
        };
        // A launch counts from its spawn: the PID file and registry entry
        // written after it (fsynced, slow on a loaded machine) are part of
        // the run, or a run of `reset_after` could be measured shorter.
        let at = match (&event, &run.instance) {
            (Event::Launched, Some(instance)) => instance.spawned,
            _ => Instant::now(),
        };
        let actions = daemon.view().machine.handle(event, at);
        for action in actions {
            perform(&daemon, action, &mut run, &mut timer, &mut queue).await;
        }
        let finished = {
            let mut g = daemon.view();
            if counted {
                g.handled += 1;
            }
            g.machine.finished() && run.instance.is_none()
        };
        daemon.notify();
        if finished && queue.is_empty() {
            break;
        }
    }
    if let Some(cancel) = run.probes.take() {
        let _ = cancel.send(true);
    }
    let mut g = daemon.view();
    g.done = true;
    // Requests sent after the end are answered by `done`.
    g.handled = u64::MAX;
    drop(g);
    daemon.notify();
}

async fn perform(
    daemon: &Arc<Daemon>,
    action: Action,
    run: &mut Running,
    timer: &mut Pending,
    queue: &mut VecDeque<Event>,
) {
    match action {
        Action::Launch => {
            let d = Arc::clone(daemon);
            let launched = tokio::task::spawn_blocking(move || {
                launch(&d.side, &d.spec, &d.resolved, &d.scope)
            })
            .await;
            match launched {
                Ok(Ok(instance)) => {
                    let process = Arc::clone(&instance.process);
                    daemon.view().instance = Some((
                        instance.identity.pid,
                        instance.started_at_ms,
                        Arc::clone(&process),
                    ));
                    run.exit = Some(watch_exit(process));
                    run.pid = Some(instance.identity.pid);
                    run.instance = Some(instance);
                    queue.push_back(Event::Launched);
                }
                Ok(Err(e)) => {
                    tracing::warn!(daemon = %daemon.spec.name, error = %e, "daemon did not start");
                    queue.push_back(Event::LaunchFailed(e.to_string()));
                }
                Err(e) => queue.push_back(Event::LaunchFailed(e.to_string())),
            }
        }
        Action::StartProbes => {
            run.generation += 1;
            let (cancel, cancelled) = watch::channel(false);
            let probes = [
                (ProbeRole::Liveness, &daemon.resolved.liveness),
                (ProbeRole::Readiness, &daemon.resolved.readiness),
            ];
            for (role, probe) in probes {
                let Some(probe) = probe.clone() else { continue };
                daemon.view().probes_alive += 1;
                tokio::spawn(probe_loop(
                    Arc::clone(daemon),
                    probe,
                    role,
                    run.generation,
                    cancelled.clone(),
                ));
            }
            run.probes = Some(cancel);
        }
        Action::StopProbes => {
            if let Some(cancel) = run.probes.take() {
                let _ = cancel.send(true);
            }
        }
        Action::Stop => {
            if let Some(instance) = &run.instance {
                let process = Arc::clone(&instance.process);
                let (signal, grace) = (daemon.resolved.stop_signal, daemon.resolved.grace);
                // The process core's one stop sequence; the exit watcher
                // reports how it ended.
                tokio::spawn(async move {
                    if let Err(e) = process.stop(StopPlan::graceful(signal, grace)).await {
                        tracing::warn!(error = %e, "cannot stop a daemon");
                    }
                });
            }
        }
        Action::Release => {
            if let Some(instance) = run.instance.take() {
                // PID file and registry entry go before the view shows no
                // instance, so a returned `stop` finds them gone.
                release(&daemon.side, &daemon.spec.name, instance);
                let mut g = daemon.view();
                g.last = g.instance.take().map(|(_, _, p)| p);
            }
        }
        Action::Schedule(t, after) => {
            *timer = Some((t, tokio::time::Instant::now() + after));
        }
        Action::CancelTimer => *timer = None,
        Action::Record(note) => record(daemon, note, run),
    }
}

fn record(daemon: &Daemon, note: Note, run: &Running) {
    let with_pid = |event: AuditEvent| match run.pid {
        Some(pid) => event.process(&daemon.spec.name, pid),
        None => event,
    };
    let event = match note {
        Note::Started => with_pid(daemon.audit("daemon-started")),
        Note::StartFailed(why) => daemon.audit("daemon-start").reason(why),
        Note::Ended(op, exit) => {
            let event = with_pid(daemon.audit(op));
            match exit {
                Some(exit) => event.exit(exit),
                None => event,
            }
        }
        Note::Failed(why) => {
            tracing::warn!(daemon = %daemon.spec.name, %why, "daemon failed");
            daemon.audit("daemon-failed").reason(why)
        }
    };
    daemon.side.audit.record(event);
}

/// Reports how the instance ended.
fn watch_exit(process: Arc<Process>) -> JoinHandle<Exit> {
    // Never waits in vain: with no deadline, `None` only if the host's
    // process core shut down first.
    tokio::spawn(async move {
        process
            .wait(Deadline::NEVER)
            .await
            .unwrap_or(Exit::Code(-1))
    })
}

/// Probes the instance of `generation` every period until cancelled; a
/// probe in flight when cancelled finishes (bounded by its timeout) and its
/// result is dropped.
async fn probe_loop(
    daemon: Arc<Daemon>,
    probe: Probe,
    role: ProbeRole,
    generation: u64,
    mut cancelled: watch::Receiver<bool>,
) {
    let mut next = tokio::time::Instant::now() + probe.initial_delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = cancelled.changed() => break,
        }
        if *cancelled.borrow() {
            break;
        }
        let began = tokio::time::Instant::now();
        let outcome = ProbeOutcome::from(probe.run(&daemon.side.manager, &daemon.scope).await);
        if *cancelled.borrow() {
            break;
        }
        let sent = daemon.inbox.send(Message::Probed {
            generation,
            role,
            outcome,
        });
        if sent.is_err() {
            break;
        }
        next = (began + probe.period).max(tokio::time::Instant::now());
    }
    daemon.view().probes_alive -= 1;
    daemon.notify();
}

/// Whether a daemon is settled after a stop: no instance, no probe task
/// left, not between states.
pub(crate) fn settled(v: &View) -> bool {
    v.instance.is_none()
        && v.probes_alive == 0
        && !matches!(
            v.machine.state(),
            DaemonState::Starting | DaemonState::Stopping
        )
}
