//! Liveness and readiness probes: exec, TCP and HTTP.

use super::*;

#[test]
fn daemon_liveness_good() {
    // The first instance never creates `healthy`: three liveness failures,
    // exactly one restart; the second instance passes.
    let f = fixture(
        "liveness",
        r#"
[[daemon]]
name = "web"
program = "sh"
args = ["-c", "if [ -f started ]; then touch healthy; else touch started; fi; exec sleep 60"]
env = { {MARK} }
restart = "always"
backoff = { initial = "10ms", jitter = 0.0 }
stop_grace = "1000ms"
liveness = { exec = ["test", "-f", "healthy"], period = "50ms", timeout = "2000ms", failure_threshold = 3 }
"#,
    );
    f.supervisor.start("web").expect("start");
    let first = f
        .wait_for("web", "running", |s| s.state == DaemonState::Running)
        .pid;
    let s = f.wait_for("web", "a second, healthy instance", |s| {
        s.state == DaemonState::Running
            && s.pid != first
            && s.liveness
                .as_ref()
                .is_some_and(|l| l.runs >= 5 && l.passing)
    });
    assert_eq!(s.restarts, 1);
    assert!(
        s.reason
            .as_deref()
            .unwrap_or_default()
            .contains("liveness probe failed"),
        "{s:?}"
    );
    assert_eq!(
        s.last_exit,
        Some(Exit::Signal(libc::SIGTERM)),
        "the unhealthy instance was stopped"
    );
    std::thread::sleep(Duration::from_millis(300));
    let later = f.status("web");
    assert_eq!(
        (later.restarts, later.pid),
        (1, s.pid),
        "no further restart"
    );
    // The healthy instance's first probe may run before its `touch`; what
    // matters is that it passes now and has not failed since.
    assert_eq!(
        later
            .liveness
            .as_ref()
            .map(|l| (l.consecutive_failures, l.passing)),
        Some((0, true))
    );
}

#[test]
fn daemon_readiness_bad() {
    // Readiness failures change the reported state only.
    let f = fixture(
        "readiness",
        r#"
[[daemon]]
name = "web"
program = "sleep"
args = ["60"]
env = { {MARK} }
readiness = { exec = ["false"], period = "40ms", failure_threshold = 1 }
"#,
    );
    f.supervisor.start("web").expect("start");
    let first = f
        .wait_for("web", "running", |s| s.state == DaemonState::Running)
        .pid;
    let s = f.wait_for("web", "six readiness failures", |s| {
        s.readiness.as_ref().is_some_and(|r| r.failures >= 6)
    });
    assert_eq!(
        (s.state, s.pid, s.restarts, s.ready),
        (DaemonState::Running, first, 0, false)
    );
    assert!(s.live);
    assert!(
        f.supervisor.health_failures().is_empty(),
        "not ready is not unhealthy"
    );
    let not_ready = f.supervisor.readiness_failures();
    assert!(
        not_ready.iter().any(|r| r.contains("web: not ready")),
        "{not_ready:?}"
    );
}

#[test]
fn health_exec_probe_ugly() {
    // A probe that hangs fails at its timeout and is killed and reaped.
    let hang = format!("30.{}", std::process::id());
    let f = fixture(
        "hung-probe",
        &format!(
            r#"
[[daemon]]
name = "web"
program = "sleep"
args = ["60"]
env = {{ {{MARK}} }}
readiness = {{ exec = ["sleep", "{hang}"], period = "50ms", timeout = "200ms", failure_threshold = 1 }}
"#
        ),
    );
    f.supervisor.start("web").expect("start");
    let began = Instant::now();
    let mut probes = std::collections::HashSet::new();
    let s = f.wait_for("web", "two probe failures", |s| {
        probes.extend(pids_with_arg(&hang));
        s.readiness.as_ref().is_some_and(|r| r.failures >= 2)
    });
    assert!(
        began.elapsed() >= Duration::from_millis(400),
        "each probe ran to its timeout"
    );
    let err = s.readiness.and_then(|r| r.last_error).unwrap_or_default();
    assert!(err.contains("timed out after 200 ms"), "{err}");
    f.supervisor.stop("web").expect("stop");
    assert!(!probes.is_empty(), "the hanging probes were seen running");
    // Gone from /proc altogether: killed, and reaped (a zombie keeps its entry).
    let gone = |pid: &i32| !Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        eventually(Duration::from_secs(2), || probes.iter().all(gone)),
        "probes left: {probes:?}"
    );
    assert!(pids_with_arg(&hang).is_empty());
}

#[test]
fn health_http_probe_good() {
    let port = free_port();
    let f = fixture(
        "http-probe",
        &format!(
            r#"
[[daemon]]
name = "web"
program = "/usr/bin/python3"
args = ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]
env = {{ {{MARK}} }}
readiness = {{ http = "http://127.0.0.1:{port}/", period = "100ms", timeout = "1000ms" }}
liveness = {{ tcp = "127.0.0.1:{port}", period = "100ms", initial_delay = "2000ms" }}
"#
        ),
    );
    f.supervisor.start("web").expect("start");
    let s = f.wait_for("web", "ready", |s| s.ready);
    assert_eq!(s.restarts, 0);
    assert!(f.supervisor.readiness_failures().is_empty());
}
