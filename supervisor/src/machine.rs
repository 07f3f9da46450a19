//! The life of one daemon as a pure state machine: [`Machine::handle`]
//! takes an [`Event`] (with the time it happened) and returns the
//! [`Action`]s the driver must carry out. It starts no process, sleeps on
//! no clock and touches no file, so every rule (restart policies, backoff,
//! start limit, probes, graceful stop) is tested by feeding it events.
//!
//! The driver keeps at most one timer: [`Action::Schedule`] replaces it
//! and [`Action::CancelTimer`] drops it. An [`Event::TimerElapsed`] that
//! the current state does not wait for is ignored, so a late timer never
//! acts twice. A stop is one [`Action::Stop`]: the driver runs the process
//! core's single stop sequence (stop signal, grace, SIGKILL, reap) and
//! reports [`Event::Exited`] when it is over.

use super::backoff::{Backoff, BackoffSpec, StartLimit, StartLimitSpec};
use super::probe_spec::Thresholds;
use super::probe_state::{ProbeOutcome, ProbeState};
use super::spec::RestartPolicy;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use wasmproc_host::process::Exit;

/// How many recent restart delays and start times a status keeps.
const HISTORY: usize = 32;

/// Where a daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// Which probe a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRole {
    /// Failing it restarts the daemon.
    Liveness,
    /// Failing it only marks the daemon not ready.
    Readiness,
}

/// The timers the machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The restart delay.
    Backoff,
}

/// Something that happened to a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `start` (or `start_all` for an autostart daemon).
    StartRequested,
    /// `stop`: end it and keep it stopped.
    StopRequested,
    /// `restart`: end it and start it again without a delay.
    RestartRequested,
    /// The host is shutting down: stop for good.
    Shutdown,
    /// The instance asked for by [`Action::Launch`] runs.
    Launched,
    /// The instance could not be started, and why.
    LaunchFailed(String),
    /// The instance ended (on its own, or after [`Action::Stop`]).
    Exited(Exit),
    /// A probe of the running instance finished.
    Probed(ProbeRole, ProbeOutcome),
    /// A timer asked for by [`Action::Schedule`] elapsed.
    TimerElapsed(Timer),
}

/// What an audit record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// An instance started (`daemon-started`).
    Started,
    /// An instance could not start (`daemon-start`, with the reason).
    StartFailed(String),
    /// An instance ended (`daemon-exit`, `daemon-stopped`,
    /// `daemon-restart` or `daemon-unhealthy`).
    Ended(&'static str, Option<Exit>),
    /// The start limit was reached (`daemon-failed`, with the reason).
    Failed(String),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an instance: PID file, spawn, registry entry; then report
    /// [`Event::Launched`] or [`Event::LaunchFailed`].
    Launch,
    /// Start probing the running instance.
    StartProbes,
    /// Stop probing (a probe in flight is let finish; its result is
    /// ignored).
    StopProbes,
    /// Stop the instance: the stop signal to its group, SIGKILL after the
    /// grace period; then report [`Event::Exited`].
    Stop,
    /// Forget the ended instance: registry entry and PID file.
    Release,
    /// Replace the pending timer with this one.
    Schedule(Timer, Duration),
    /// Drop the pending timer.
    CancelTimer,
    /// Write an audit record.
    Record(Note),
}

/// Why a running instance is being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Stop,
    Restart,
    Liveness(String),
}

/// The fixed settings of one daemon's machine.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Restart delays.
    pub backoff: BackoffSpec,
    /// Start limit.
    pub start_limit: StartLimitSpec,
    /// Liveness probe thresholds, if it has one.
    pub liveness: Option<Thresholds>,
    /// Readiness probe thresholds, if it has one.
    pub readiness: Option<Thresholds>,
}

/// One daemon's state, rules and history.
#[derive(Debug)]
pub struct Machine {
    spec: MachineSpec,
    epoch: Instant,
    state: DaemonState,
    wanted: bool,
    shutdown: bool,
    /// Set while `Starting`: what to do once the launch reports.
    pending: Option<Ending>,
    /// Set while `Stopping`: why.
    ending: Option<Ending>,
    started: Option<Instant>,
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

fn push_capped(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

impl Machine {
    /// A stopped daemon; `epoch` is the zero of the start times it reports.
    pub fn new(spec: MachineSpec, epoch: Instant) -> Self {
        Self {
            backoff: Backoff::new(spec.backoff.clone()),
            start_limit: StartLimit::new(spec.start_limit.clone()),
            spec,
            epoch,
            state: DaemonState::Stopped,
            wanted: false,
            shutdown: false,
            pending: None,
            ending: None,
            started: None,
            restarts: 0,
            last_exit: None,
            reason: None,
            liveness: ProbeState::new(true),
            readiness: ProbeState::new(false),
            delays: VecDeque::new(),
            starts: VecDeque::new(),
        }
    }

    /// Applies one event that happened at `now`; returns what to do, in
    /// order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::StartRequested => self.request_start(now, &mut out),
            Event::StopRequested => self.request_stop(Ending::Stop, &mut out),
            Event::Shutdown => {
                self.shutdown = true;
                self.request_stop(Ending::Stop, &mut out);
            }
            Event::RestartRequested => self.request_restart(now, &mut out),
            Event::Launched => self.launched(now, &mut out),
            Event::LaunchFailed(why) => self.launch_failed(why, now, &mut out),
            Event::Exited(exit) => self.exited(exit, now, &mut out),
            Event::Probed(role, result) => self.probed(role, result, &mut out),
            Event::TimerElapsed(Timer::Backoff) => {
                if self.state == DaemonState::Backoff {
                    self.restarts += 1;
                    self.try_start(now, &mut out);
                }
            }
        }
        out
    }

    fn request_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown {
            return;
        }
        self.wanted = true;
        match self.state {
            DaemonState::Failed => {
                self.start_limit.reset();
                self.backoff.reset();
                self.reason = None;
                self.try_start(now, out);
            }
            DaemonState::Stopped | DaemonState::Exited => self.try_start(now, out),
            DaemonState::Backoff => {
                // Skip the rest of the delay.
                out.push(Action::CancelTimer);
                self.restarts += 1;
                self.try_start(now, out);
            }
            DaemonState::Starting => {
                if self.pending == Some(Ending::Stop) {
                    self.pending = None;
                }
            }
            // A stopping daemon starts again once it has ended.
            DaemonState::Running | DaemonState::Stopping => {}
        }
    }

    fn request_stop(&mut self, why: Ending, out: &mut Vec<Action>) {
        if why == Ending::Stop {
            self.wanted = false;
        }
        match self.state {
            DaemonState::Running => self.begin_stop(why, out),
            DaemonState::Starting => self.pending = Some(why),
            DaemonState::Backoff => {
                out.push(Action::CancelTimer);
                self.state = DaemonState::Stopped;
            }
            DaemonState::Stopping
            | DaemonState::Stopped
            | DaemonState::Exited
            | DaemonState::Failed => {}
        }
    }

    fn request_restart(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown {
            return;
        }
        if self.state == DaemonState::Failed || !self.wanted {
            self.request_start(now, out);
            return;
        }
        match self.state {
            DaemonState::Backoff => {
                out.push(Action::CancelTimer);
                self.restarts += 1;
                self.try_start(now, out);
            }
            DaemonState::Running => self.begin_stop(Ending::Restart, out),
            DaemonState::Starting => self.pending = Some(Ending::Restart),
            _ => {}
        }
    }

    fn begin_stop(&mut self, why: Ending, out: &mut Vec<Action>) {
        self.state = DaemonState::Stopping;
        self.ending = Some(why);
        out.extend([Action::StopProbes, Action::Stop]);
    }

    /// Starts an instance if the start limit allows it, else fails.
    fn try_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.start_limit.try_start(now) {
            self.fail(out);
            return;
        }
        self.state = DaemonState::Starting;
        self.pending = None;
        push_capped(
            &mut self.starts,
            now.saturating_duration_since(self.epoch).as_millis() as u64,
        );
        out.push(Action::Launch);
    }

    fn fail(&mut self, out: &mut Vec<Action>) {
        let why = self.start_limit.describe();
        let why = match &self.reason {
            Some(last) => format!("{why}; last: {last}"),
            None => why,
        };
        out.push(Action::Record(Note::Failed(why.clone())));
        self.state = DaemonState::Failed;
        self.reason = Some(why);
        self.wanted = false;
    }

    fn launched(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != DaemonState::Starting {
            return;
        }
        self.state = DaemonState::Running;
        self.started = Some(now);
        self.liveness = ProbeState::new(true);
        self.readiness = ProbeState::new(false);
        out.extend([Action::Record(Note::Started), Action::StartProbes]);
        if self.shutdown || !self.wanted {
            self.begin_stop(Ending::Stop, out);
        } else if let Some(why) = self.pending.take() {
            self.begin_stop(why, out);
        }
    }

    fn launch_failed(&mut self, why: String, now: Instant, out: &mut Vec<Action>) {
        if self.state != DaemonState::Starting {
            return;
        }
        out.push(Action::Record(Note::StartFailed(why.clone())));
        self.reason = Some(why);
        self.pending = None;
        self.after_end(true, Duration::ZERO, now, out);
    }

    fn exited(&mut self, exit: Exit, now: Instant, out: &mut Vec<Action>) {
        let ran_for = self
            .started
            .take()
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        self.last_exit = Some(exit);
        match self.state {
            DaemonState::Running => {
                out.extend([
                    Action::StopProbes,
                    Action::Release,
                    Action::Record(Note::Ended("daemon-exit", Some(exit))),
                ]);
                self.reason = Some(format!("ended ({exit})"));
                self.after_end(exit != Exit::Code(0), ran_for, now, out);
            }
            DaemonState::Stopping => {
                let ending = self.ending.take().unwrap_or(Ending::Stop);
                let op = match ending {
                    Ending::Stop => "daemon-stopped",
                    Ending::Restart => "daemon-restart",
                    Ending::Liveness(_) => "daemon-unhealthy",
                };
                out.extend([Action::Release, Action::Record(Note::Ended(op, Some(exit)))]);
                match ending {
                    Ending::Stop => {
                        self.state = DaemonState::Stopped;
                        if self.wanted && !self.shutdown {
                            self.try_start(now, out);
                        }
                    }
                    Ending::Restart => {
                        // Straight back: the start limit still counts.
                        self.reason = Some("restarted on request".into());
                        if self.shutdown {
                            self.state = DaemonState::Stopped;
                        } else {
                            self.try_start(now, out);
                        }
                    }
                    Ending::Liveness(why) => {
                        self.reason = Some(format!("liveness probe failed: {why}"));
                        self.after_end(true, ran_for, now, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Decides what follows an ended instance: a delayed restart, `exited`,
    /// `stopped`, or `failed` when the start limit would be passed.
    fn after_end(&mut self, failed: bool, ran_for: Duration, now: Instant, out: &mut Vec<Action>) {
        self.backoff.run_ended(ran_for);
        let restart = match self.spec.restart {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        };
        if !restart || !self.wanted || self.shutdown {
            self.state = if self.wanted {
                DaemonState::Exited
            } else {
                DaemonState::Stopped
            };
            self.wanted = false;
            return;
        }
        let delay = self.backoff.next_delay();
        if !self.start_limit.would_allow(now + delay) {
            // The restart would pass the start limit: give up now rather
            // than after the delay.
            self.fail(out);
            return;
        }
        push_capped(&mut self.delays, delay.as_millis() as u64);
        self.state = DaemonState::Backoff;
        out.push(Action::Schedule(Timer::Backoff, delay));
    }

    fn probed(&mut self, role: ProbeRole, result: ProbeOutcome, out: &mut Vec<Action>) {
        if self.state != DaemonState::Running {
            return;
        }
        match role {
            ProbeRole::Liveness => {
                let Some(t) = self.spec.liveness else { return };
                if self.liveness.record(result, t) {
                    let why = self.liveness.last_error.clone().unwrap_or_default();
                    self.begin_stop(Ending::Liveness(why), out);
                }
            }
            ProbeRole::Readiness => {
                if let Some(t) = self.spec.readiness {
                    self.readiness.record(result, t);
                }
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> DaemonState {
        self.state
    }

    /// Whether it is meant to run.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Whether the host is shutting down and the machine has nothing left
    /// to wait for.
    pub fn finished(&self) -> bool {
        self.shutdown && !matches!(self.state, DaemonState::Starting | DaemonState::Stopping)
    }

    /// Automatic restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// How the previous instance ended.
    pub fn last_exit(&self) -> Option<Exit> {
        self.last_exit
    }

    /// Why it failed or was last restarted.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The liveness probe's record.
    pub fn liveness(&self) -> &ProbeState {
        &self.liveness
    }

    /// The readiness probe's record.
    pub fn readiness(&self) -> &ProbeState {
        &self.readiness
    }

    /// Whether it is running and ready (readiness probe passing, or no
    /// readiness probe).
    pub fn ready(&self) -> bool {
        self.state == DaemonState::Running
            && (self.spec.readiness.is_none() || self.readiness.passing)
    }

    /// Whether its liveness probe passes (true when not running or without
    /// one).
    pub fn live(&self) -> bool {
        self.state != DaemonState::Running || self.spec.liveness.is_none() || self.liveness.passing
    }

    /// The most recent restart delays, in ms, oldest first.
    pub fn recent_delays_ms(&self) -> Vec<u64> {
        self.delays.iter().copied().collect()
    }

    /// When the most recent instances started, in ms since the epoch,
    /// oldest first.
    pub fn recent_starts_ms(&self) -> Vec<u64> {
        self.starts.iter().copied().collect()
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
