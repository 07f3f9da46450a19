//! The machine's rules, driven by events alone: each test asserts the
//! actions a sequence of events yields.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn spec(restart: RestartPolicy) -> MachineSpec {
    MachineSpec {
        restart,
        backoff: BackoffSpec {
            initial: ms(100),
            factor: 2.0,
            max: ms(1_000),
            jitter: 0.0,
            reset_after: ms(10_000),
        },
        start_limit: StartLimitSpec {
            burst: 3,
            interval: ms(60_000),
        },
        liveness: None,
        readiness: None,
    }
}

/// A machine, its clock, and the last actions.
struct Run {
    m: Machine,
    now: Instant,
}

impl Run {
    fn new(spec: MachineSpec) -> Self {
        let now = Instant::now();
        Self {
            m: Machine::new(spec, now),
            now,
        }
    }

    fn at(&mut self, after_ms: u64, event: Event) -> Vec<Action> {
        self.now += ms(after_ms);
        self.m.handle(event, self.now)
    }

    /// Start requested and launched: running.
    fn running(&mut self) {
        assert_eq!(self.at(0, Event::StartRequested), [Action::Launch]);
        assert_eq!(
            self.at(0, Event::Launched),
            [Action::Record(Note::Started), Action::StartProbes]
        );
        assert_eq!(self.m.state(), DaemonState::Running);
    }
}

fn ended(op: &'static str, exit: Exit) -> Action {
    Action::Record(Note::Ended(op, Some(exit)))
}

#[test]
fn daemon_machine_restart_good() {
    // `always`: every end is followed by a growing delay, then a launch.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    assert_eq!(
        r.at(50, Event::Exited(Exit::Code(0))),
        [
            Action::StopProbes,
            Action::Release,
            ended("daemon-exit", Exit::Code(0)),
            Action::Schedule(Timer::Backoff, ms(100)),
        ]
    );
    assert_eq!(r.m.state(), DaemonState::Backoff);
    assert_eq!(
        r.at(100, Event::TimerElapsed(Timer::Backoff)),
        [Action::Launch]
    );
    r.at(0, Event::Launched);
    let acts = r.at(10, Event::Exited(Exit::Signal(9)));
    assert_eq!(
        acts.last(),
        Some(&Action::Schedule(Timer::Backoff, ms(200)))
    );
    assert_eq!(r.m.restarts(), 1);
    assert_eq!(r.m.recent_delays_ms(), [100, 200]);
    assert_eq!(r.m.last_exit(), Some(Exit::Signal(9)));
}

#[test]
fn daemon_machine_on_failure_good() {
    // `on-failure` restarts after a failure and not after exit 0.
    let mut r = Run::new(spec(RestartPolicy::OnFailure));
    r.running();
    let acts = r.at(10, Event::Exited(Exit::Code(3)));
    assert_eq!(
        acts.last(),
        Some(&Action::Schedule(Timer::Backoff, ms(100)))
    );
    r.at(100, Event::TimerElapsed(Timer::Backoff));
    r.at(0, Event::Launched);
    assert_eq!(
        r.at(10, Event::Exited(Exit::Code(0))),
        [
            Action::StopProbes,
            Action::Release,
            ended("daemon-exit", Exit::Code(0))
        ]
    );
    assert_eq!(r.m.state(), DaemonState::Exited);
    assert!(!r.m.wanted());
}

#[test]
fn daemon_machine_never_bad() {
    // `never`: a crash ends in `exited`, with the reason kept.
    let mut r = Run::new(spec(RestartPolicy::Never));
    r.running();
    let acts = r.at(10, Event::Exited(Exit::Code(1)));
    assert!(!acts.iter().any(|a| matches!(a, Action::Schedule(..))));
    assert_eq!(r.m.state(), DaemonState::Exited);
    assert_eq!(r.m.reason(), Some("ended (exit 1)"));
}

#[test]
fn daemon_machine_start_limit_bad() {
    // Burst 3: the restart that would be the fourth start within the
    // interval fails at once instead of after its delay; a start resets.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    for _ in 0..2 {
        r.at(10, Event::Exited(Exit::Code(1)));
        r.at(1_000, Event::TimerElapsed(Timer::Backoff));
        r.at(0, Event::Launched);
    }
    let acts = r.at(10, Event::Exited(Exit::Code(1)));
    assert!(
        matches!(acts.last(), Some(Action::Record(Note::Failed(why))) if why.contains("start limit") && why.contains("exit 1")),
        "{acts:?}"
    );
    assert_eq!(r.m.state(), DaemonState::Failed);
    assert_eq!(r.at(0, Event::TimerElapsed(Timer::Backoff)), []);
    assert_eq!(r.at(0, Event::StartRequested), [Action::Launch]);
    assert_eq!(r.m.reason(), None, "a new start clears the failure");
}

#[test]
fn daemon_machine_stop_good() {
    // A stop sends one stop sequence and, once it ended, stays stopped.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    assert_eq!(
        r.at(5, Event::StopRequested),
        [Action::StopProbes, Action::Stop]
    );
    assert_eq!(r.m.state(), DaemonState::Stopping);
    assert_eq!(r.at(5, Event::StopRequested), [], "one stop sequence only");
    assert_eq!(
        r.at(5, Event::Exited(Exit::Signal(15))),
        [Action::Release, ended("daemon-stopped", Exit::Signal(15))]
    );
    assert_eq!(r.m.state(), DaemonState::Stopped);
    assert_eq!(r.m.restarts(), 0);
}

#[test]
fn daemon_machine_stop_in_backoff_good() {
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    r.at(5, Event::Exited(Exit::Code(1)));
    assert_eq!(r.at(5, Event::StopRequested), [Action::CancelTimer]);
    assert_eq!(r.m.state(), DaemonState::Stopped);
    assert_eq!(r.at(500, Event::TimerElapsed(Timer::Backoff)), []);
}

#[test]
fn daemon_machine_stop_while_starting_ugly() {
    // A stop that arrives before the launch reports stops the instance as
    // soon as it exists; a start after the stop cancels it again.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.at(0, Event::StartRequested);
    assert_eq!(r.at(1, Event::StopRequested), []);
    assert_eq!(
        r.at(1, Event::Launched),
        [
            Action::Record(Note::Started),
            Action::StartProbes,
            Action::StopProbes,
            Action::Stop
        ]
    );
    r.at(1, Event::Exited(Exit::Signal(15)));
    assert_eq!(r.m.state(), DaemonState::Stopped);

    let mut r = Run::new(spec(RestartPolicy::Always));
    r.at(0, Event::StartRequested);
    r.at(1, Event::StopRequested);
    r.at(1, Event::StartRequested);
    assert_eq!(
        r.at(1, Event::Launched),
        [Action::Record(Note::Started), Action::StartProbes]
    );
}

#[test]
fn daemon_machine_start_while_stopping_ugly() {
    // `start` during a stop: the daemon starts again once it has ended.
    let mut r = Run::new(spec(RestartPolicy::Never));
    r.running();
    r.at(1, Event::StopRequested);
    assert_eq!(r.at(1, Event::StartRequested), []);
    assert_eq!(
        r.at(1, Event::Exited(Exit::Signal(15))),
        [
            Action::Release,
            ended("daemon-stopped", Exit::Signal(15)),
            Action::Launch
        ]
    );
}

#[test]
fn daemon_machine_restart_request_good() {
    // `restart` stops and launches again without a delay.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    assert_eq!(
        r.at(5, Event::RestartRequested),
        [Action::StopProbes, Action::Stop]
    );
    assert_eq!(
        r.at(5, Event::Exited(Exit::Signal(15))),
        [
            Action::Release,
            ended("daemon-restart", Exit::Signal(15)),
            Action::Launch
        ]
    );
    assert_eq!(r.m.reason(), Some("restarted on request"));
    assert!(r.m.recent_delays_ms().is_empty());
}

#[test]
fn daemon_machine_liveness_bad() {
    // Liveness failing its threshold stops the instance and restarts it
    // after a delay; readiness failures never stop it.
    let t = Thresholds {
        failure: 2,
        success: 1,
    };
    let mut s = spec(RestartPolicy::OnFailure);
    s.liveness = Some(t);
    s.readiness = Some(t);
    let mut r = Run::new(s);
    r.running();
    assert!(!r.m.ready(), "not ready before a passing probe");
    r.at(1, Event::Probed(ProbeRole::Readiness, ProbeOutcome::Passed));
    assert!(r.m.ready());
    for _ in 0..3 {
        assert_eq!(
            r.at(
                1,
                Event::Probed(ProbeRole::Readiness, ProbeOutcome::Failed("no".into()))
            ),
            []
        );
    }
    assert!(!r.m.ready());
    let fail = || Event::Probed(ProbeRole::Liveness, ProbeOutcome::Failed("dead".into()));
    assert_eq!(r.at(1, fail()), [], "below the threshold");
    assert!(r.m.live());
    assert_eq!(r.at(1, fail()), [Action::StopProbes, Action::Stop]);
    assert_eq!(r.at(1, fail()), [], "results after the stop are ignored");
    let acts = r.at(1, Event::Exited(Exit::Signal(15)));
    assert_eq!(
        acts,
        [
            Action::Release,
            ended("daemon-unhealthy", Exit::Signal(15)),
            Action::Schedule(Timer::Backoff, ms(100))
        ]
    );
    assert_eq!(r.m.reason(), Some("liveness probe failed: dead"));
}

#[test]
fn daemon_machine_launch_failed_bad() {
    // A launch that fails counts as a failure and against the start limit.
    let mut r = Run::new(spec(RestartPolicy::OnFailure));
    r.at(0, Event::StartRequested);
    assert_eq!(
        r.at(0, Event::LaunchFailed("PID file: held".into())),
        [
            Action::Record(Note::StartFailed("PID file: held".into())),
            Action::Schedule(Timer::Backoff, ms(100))
        ]
    );
    assert_eq!(r.m.reason(), Some("PID file: held"));
    assert_eq!(r.m.last_exit(), None);
}

#[test]
fn daemon_machine_backoff_reset_good() {
    // A run longer than `reset_after` brings the delay back to its start.
    let mut s = spec(RestartPolicy::Always);
    s.backoff.reset_after = ms(500);
    s.start_limit.burst = 0;
    let mut r = Run::new(s);
    r.running();
    for ran in [10, 10, 600] {
        r.at(ran, Event::Exited(Exit::Code(1)));
        r.at(1_000, Event::TimerElapsed(Timer::Backoff));
        r.at(0, Event::Launched);
    }
    assert_eq!(r.m.recent_delays_ms(), [100, 200, 100]);
}

#[test]
fn daemon_machine_late_timer_ugly() {
    // `start` during the delay launches at once; the stale timer that
    // elapses afterwards does nothing.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    r.at(1, Event::Exited(Exit::Code(1)));
    assert_eq!(
        r.at(1, Event::StartRequested),
        [Action::CancelTimer, Action::Launch]
    );
    assert_eq!(r.at(100, Event::TimerElapsed(Timer::Backoff)), []);
    assert_eq!(r.m.state(), DaemonState::Starting);
}

#[test]
fn daemon_machine_shutdown_good() {
    // Shutdown stops a running daemon for good and refuses new starts.
    let mut r = Run::new(spec(RestartPolicy::Always));
    r.running();
    assert_eq!(r.at(1, Event::Shutdown), [Action::StopProbes, Action::Stop]);
    assert!(!r.m.finished(), "still stopping");
    assert_eq!(r.at(1, Event::StartRequested), []);
    r.at(1, Event::Exited(Exit::Signal(15)));
    assert!(r.m.finished());
    assert_eq!(r.m.state(), DaemonState::Stopped);
}
