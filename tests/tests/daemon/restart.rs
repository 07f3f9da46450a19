//! Restart policies, backoff and the stop sequence.

use super::*;

#[test]
fn daemon_restart_good() {
    // A crash loop: delays double up to the cap, then the start limit
    // puts the daemon in `failed`, where it stays until started again.
    let f = fixture(
        "restart-good",
        r#"
[[daemon]]
name = "crash"
program = "sh"
args = ["-c", "exit 3"]
restart = "on-failure"
backoff = { initial = "40ms", factor = 2.0, max = "120ms", jitter = 0.0, reset_after = "60000ms" }
start_limit = { burst = 5, interval = "60000ms" }
"#,
    );
    f.supervisor.start("crash").expect("start");
    let s = f.wait_for("crash", "failed", |s| s.state == DaemonState::Failed);
    assert_eq!(
        s.recent_delays_ms,
        [40, 80, 120, 120],
        "doubling delays, capped"
    );
    assert_eq!(s.recent_starts_ms.len(), 5, "exactly the burst of starts");
    for (i, delay) in s.recent_delays_ms.iter().enumerate() {
        let gap = s.recent_starts_ms[i + 1] - s.recent_starts_ms[i];
        assert!(
            gap >= *delay,
            "start {} came {gap} ms after the previous, before its {delay} ms delay",
            i + 1
        );
    }
    assert_eq!(s.restarts, 4);
    assert_eq!(s.last_exit, Some(Exit::Code(3)));
    assert!(
        s.reason
            .as_deref()
            .unwrap_or_default()
            .contains("start limit"),
        "{s:?}"
    );
    assert!(
        f.supervisor
            .health_failures()
            .iter()
            .any(|h| h.contains("crash: failed"))
    );
    // It stays failed...
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.status("crash").state, DaemonState::Failed);
    assert_eq!(
        f.status("crash").recent_starts_ms.len(),
        5,
        "no start while failed"
    );
    // ...until someone starts it, which resets the limit and the backoff.
    f.supervisor.start("crash").expect("start");
    // The fresh run crashes too; wait until the delay after it is chosen.
    let s = f.wait_for("crash", "a fresh start and its crash", |s| {
        s.recent_starts_ms.len() > 5 && s.recent_delays_ms.len() > 4
    });
    assert_eq!(
        s.recent_delays_ms.get(4),
        Some(&40),
        "backoff reset by the start: {s:?}"
    );
}

#[test]
fn daemon_backoff_reset_good() {
    // Each run lasts longer than reset_after, so every delay is the
    // initial one although the daemon keeps failing.
    let f = fixture(
        "backoff-reset",
        r#"
[[daemon]]
name = "flaky"
program = "sh"
args = ["-c", "sleep 0.25; exit 1"]
backoff = { initial = "30ms", factor = 4.0, max = "5000ms", jitter = 0.0, reset_after = "150ms" }
start_limit = { burst = 0 }
"#,
    );
    f.supervisor.start("flaky").expect("start");
    let s = f.wait_for("flaky", "three restarts", |s| s.recent_delays_ms.len() >= 3);
    assert_eq!(
        &s.recent_delays_ms[..3],
        [30, 30, 30],
        "stable runs reset the delay: {s:?}"
    );
    assert!(s.restarts >= 2);
}

#[test]
fn daemon_backoff_reset_bad() {
    // The same daemon crashing at once: the delay grows.
    let f = fixture(
        "backoff-grow",
        r#"
[[daemon]]
name = "flaky"
program = "sh"
args = ["-c", "exit 1"]
backoff = { initial = "10ms", factor = 4.0, max = "5000ms", jitter = 0.0, reset_after = "150ms" }
start_limit = { burst = 0 }
"#,
    );
    f.supervisor.start("flaky").expect("start");
    let s = f.wait_for("flaky", "three restarts", |s| s.recent_delays_ms.len() >= 3);
    assert_eq!(&s.recent_delays_ms[..3], [10, 40, 160]);
}

#[test]
fn daemon_restart_never_bad() {
    let f = fixture(
        "restart-never",
        r#"
[[daemon]]
name = "once"
program = "sh"
args = ["-c", "exit 0"]
restart = "never"
[[daemon]]
name = "clean"
program = "sh"
args = ["-c", "exit 0"]
restart = "on-failure"
"#,
    );
    f.supervisor.start_all();
    for name in ["once", "clean"] {
        let s = f.wait_for(name, "exited", |s| s.state == DaemonState::Exited);
        assert_eq!(
            (s.restarts, s.last_exit),
            (0, Some(Exit::Code(0))),
            "{name}"
        );
    }
    assert!(
        f.supervisor.readiness_failures().is_empty(),
        "a clean exit is not a failure"
    );
}

#[test]
fn daemon_stop_ugly() {
    // The whole group ignores SIGTERM: SIGKILL after the grace period.
    let f = fixture(
        "stop-ugly",
        r#"
[[daemon]]
name = "stubborn"
program = "sh"
args = ["-c", "trap '' TERM; sleep 60 & while :; do sleep 0.05; done"]
env = { {MARK} }
stop_grace = "400ms"
restart = "always"
"#,
    );
    f.supervisor.start("stubborn").expect("start");
    let pid = f
        .wait_for("stubborn", "running", |s| s.state == DaemonState::Running)
        .pid
        .expect("pid");
    assert!(
        eventually(LIMIT, || f.leftovers().len() >= 2),
        "the daemon and its grandchild run"
    );
    let began = Instant::now();
    f.supervisor.stop("stubborn").expect("stop");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "SIGKILL only after the grace period ({took:?})"
    );
    let s = f.status("stubborn");
    assert_eq!(s.state, DaemonState::Stopped);
    assert_eq!(s.last_exit, Some(Exit::Signal(libc::SIGKILL)));
    assert_eq!(s.restarts, 0, "a stopped daemon is not restarted");
    assert!(
        eventually(Duration::from_secs(2), || f.leftovers().is_empty()),
        "whole group killed: {:?}",
        f.leftovers()
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon was reaped"
    );
}

#[test]
fn daemon_stop_good() {
    // A daemon that honours its stop signal (here SIGINT) ends at once.
    let f = fixture(
        "stop-good",
        r#"
[[daemon]]
name = "polite"
program = "sleep"
args = ["60"]
env = { {MARK} }
stop_signal = "INT"
stop_grace = "10000ms"
"#,
    );
    f.supervisor.start("polite").expect("start");
    f.wait_for("polite", "running", |s| s.state == DaemonState::Running);
    let began = Instant::now();
    f.supervisor.stop("polite").expect("stop");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "no need to wait out the grace period"
    );
    assert_eq!(
        f.status("polite").last_exit,
        Some(Exit::Signal(libc::SIGINT))
    );
    assert!(f.leftovers().is_empty());
}

#[test]
fn daemon_stop_async_good() {
    // The async stop ends the daemon as the blocking one does, awaited from
    // an executor that is not tokio, and the daemon stays stopped.
    let f = fixture(
        "stop-async",
        r#"
[[daemon]]
name = "polite"
program = "sleep"
args = ["60"]
env = { {MARK} }
restart = "always"
"#,
    );
    f.supervisor.start("polite").expect("start");
    f.wait_for("polite", "running", |s| s.state == DaemonState::Running);
    wasmproc_host::process::block_on(f.supervisor.stop_async("polite")).expect("stop");
    let s = f.status("polite");
    assert_eq!(s.state, DaemonState::Stopped);
    assert_eq!(s.last_exit, Some(Exit::Signal(libc::SIGTERM)));
    assert!(f.leftovers().is_empty());
    assert!(matches!(
        wasmproc_host::process::block_on(f.supervisor.stop_async("nope")),
        Err(wasmproc_supervisor::DaemonError::NotFound(_))
    ));
}
