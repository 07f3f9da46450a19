//! Daemon supervision end to end: restart policies and backoff, stop
//! escalation, liveness and readiness probes, PID files, the registry, guest
//! access, and `wasmproc serve`. Intervals are short and every wait is
//! bounded; nothing leaves loopback.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run the wasmproc CLI as a child process"
)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::daemon::identity::ProcessIdentity;
use wasmproc_host::daemon::pidfile::{self, Existing, PidFile};
use wasmproc_host::daemon::registry_dir::{EntryKind, RegistryDir};
use wasmproc_host::daemon::{
    DaemonCtx, DaemonState, DaemonStatus, HostConfig, Supervisor, SupervisorOptions,
};
use wasmproc_host::{Audit, CallError, Exit, Policy, ProcessManager};
use wasmproc_tests::harness::{cli_path, unique_marker};
use wasmproc_tests::os::{alive, eventually, pids_with_arg, pids_with_env};

const MARK: &str = "WASMPROC_TEST_MARK";
const LIMIT: Duration = Duration::from_secs(15);

/// A policy header granting the programs the tests use, the marker
/// variable, and `dir` as the working directory.
fn policy_toml(dir: &Path) -> String {
    format!(
        r#"
[policy.env]
allow = ["{MARK}"]
[policy.dirs]
roots = ["{}"]
[[policy.program]]
name = "sh"
[[policy.program]]
name = "sleep"
[[policy.program]]
name = "test"
operations = ["run"]
[[policy.program]]
name = "false"
operations = ["run"]
[[policy.program]]
name = "/usr/bin/python3"
"#,
        dir.display()
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    supervisor: Arc<Supervisor>,
    marker: String,
}

/// A supervisor for `daemons` (TOML `[[daemon]]` tables, with `{MARK}`
/// replaced by the test's marker assignment).
fn fixture(test: &str, daemons: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = unique_marker(test);
    let daemons = daemons.replace("{MARK}", &format!("{MARK} = \"{marker}\""));
    let text = format!("{}\n{daemons}", policy_toml(dir.path()));
    let config = HostConfig::parse(&text, dir.path()).expect("config");
    let registry = RegistryDir::open(&dir.path().join("registry")).expect("registry");
    let supervisor = Supervisor::new(
        &config,
        ProcessManager::new(Duration::from_secs(2)),
        SupervisorOptions {
            registry: Some(registry),
            ..SupervisorOptions::default()
        },
    )
    .expect("supervisor");
    Fixture {
        dir,
        supervisor,
        marker,
    }
}

impl Fixture {
    fn status(&self, name: &str) -> DaemonStatus {
        self.supervisor.status(name).expect("declared")
    }

    fn wait_for(
        &self,
        name: &str,
        what: &str,
        mut check: impl FnMut(&DaemonStatus) -> bool,
    ) -> DaemonStatus {
        let ok = eventually(LIMIT, || check(&self.status(name)));
        let s = self.status(name);
        assert!(ok, "daemon {name} never reached `{what}`: {s:#?}");
        s
    }

    fn leftovers(&self) -> Vec<i32> {
        pids_with_env(MARK, &self.marker)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.supervisor.shutdown();
    }
}

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
backoff = { initial_ms = 40, factor = 2.0, max_ms = 120, jitter = 0.0, reset_after_ms = 60000 }
start_limit = { burst = 5, interval_ms = 60000 }
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
    // Each run lasts longer than reset_after_ms, so every delay is the
    // initial one although the daemon keeps failing.
    let f = fixture(
        "backoff-reset",
        r#"
[[daemon]]
name = "flaky"
program = "sh"
args = ["-c", "sleep 0.25; exit 1"]
backoff = { initial_ms = 30, factor = 4.0, max_ms = 5000, jitter = 0.0, reset_after_ms = 150 }
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
backoff = { initial_ms = 10, factor = 4.0, max_ms = 5000, jitter = 0.0, reset_after_ms = 150 }
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
stop_grace_ms = 400
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
stop_grace_ms = 10000
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
backoff = { initial_ms = 10, jitter = 0.0 }
stop_grace_ms = 1000
liveness = { exec = ["test", "-f", "healthy"], period_ms = 50, timeout_ms = 2000, failure_threshold = 3 }
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
readiness = { exec = ["false"], period_ms = 40, failure_threshold = 1 }
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
readiness = {{ exec = ["sleep", "{hang}"], period_ms = 50, timeout_ms = 200, failure_threshold = 1 }}
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
readiness = {{ http = "http://127.0.0.1:{port}/", period_ms = 100, timeout_ms = 1000 }}
liveness = {{ tcp = "127.0.0.1:{port}", period_ms = 100, initial_delay_ms = 2000 }}
"#
        ),
    );
    f.supervisor.start("web").expect("start");
    let s = f.wait_for("web", "ready", |s| s.ready);
    assert_eq!(s.restarts, 0);
    assert!(f.supervisor.readiness_failures().is_empty());
}

fn daemon_with_pidfile(test: &str, pid_file: &Path, restart: &str) -> Fixture {
    fixture(
        test,
        &format!(
            r#"
[[daemon]]
name = "d"
program = "sleep"
args = ["60"]
env = {{ {{MARK}} }}
restart = "{restart}"
pid_file = "{}"
"#,
            pid_file.display()
        ),
    )
}

/// Starts the daemon and checks its PID file names it, by identity.
fn assert_pidfile_replaced(f: &Fixture, path: &Path) {
    f.supervisor.start("d").expect("start");
    let s = f.wait_for("d", "running", |s| s.state == DaemonState::Running);
    let pid = s.pid.expect("pid");
    match pidfile::inspect(path) {
        Existing::Live(id) => assert_eq!(id, ProcessIdentity::of(pid).expect("alive")),
        other => panic!("PID file not replaced: {other:?}"),
    }
    f.supervisor.stop("d").expect("stop");
    assert_eq!(
        pidfile::inspect(path),
        Existing::Missing,
        "removed when the daemon stops"
    );
}

#[test]
fn pidfile_empty_good() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    std::fs::write(&path, "").expect("write");
    let f = daemon_with_pidfile("pid-empty", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
}

#[test]
fn pidfile_garbage_bad() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    std::fs::write(&path, b"\x00\xffnot a pid\n-1\n").expect("write");
    let f = daemon_with_pidfile("pid-garbage", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
}

#[test]
fn pidfile_stale_good() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    let mut gone = Command::new("true").spawn().expect("spawn");
    let id = ProcessIdentity::of(gone.id()).expect("identity");
    gone.wait().expect("reap");
    std::fs::write(
        &path,
        format!("{}\n{}\n{}\n", id.pid, id.start_time, id.boot_id),
    )
    .expect("write");
    assert!(matches!(pidfile::inspect(&path), Existing::Stale(_)));
    let f = daemon_with_pidfile("pid-stale", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
}

#[test]
fn pidfile_live_unrelated_ugly() {
    // The file names a live process, but with another start time: the PID
    // was reused. It must not be signalled.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    let mut stranger = Command::new("sleep").arg("30").spawn().expect("spawn");
    let id = ProcessIdentity::of(stranger.id()).expect("identity");
    std::fs::write(
        &path,
        format!("{}\n{}\n{}\n", id.pid, id.start_time + 1, id.boot_id),
    )
    .expect("write");
    assert!(matches!(pidfile::inspect(&path), Existing::Reused(_)));
    // A bare PID (the classic format) is not trusted either.
    let f = daemon_with_pidfile("pid-unrelated", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
    std::fs::write(&path, format!("{}\n", id.pid)).expect("write");
    assert_pidfile_replaced(&f, &path);
    assert!(
        stranger.try_wait().expect("try_wait").is_none(),
        "the unrelated process was not signalled"
    );
    assert!(alive(id.pid as i32));
    stranger.kill().expect("kill");
    stranger.wait().expect("reap");
}

#[test]
fn pidfile_two_hosts_race_ugly() {
    // Two supervisors (two hosts) race for one PID file: exactly one
    // daemon runs; the other is refused and signals nothing.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    let a = daemon_with_pidfile("pid-race-a", &path, "never");
    let b = daemon_with_pidfile("pid-race-b", &path, "never");
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let starts: Vec<_> = [Arc::clone(&a.supervisor), Arc::clone(&b.supervisor)]
        .into_iter()
        .map(|s| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                s.start("d").expect("start");
            })
        })
        .collect();
    for t in starts {
        t.join().expect("join");
    }
    let settled = |s: &DaemonStatus| matches!(s.state, DaemonState::Running | DaemonState::Exited);
    let (sa, sb) = (
        a.wait_for("d", "settled", settled),
        b.wait_for("d", "settled", settled),
    );
    let (winner, loser, loser_status) = match (sa.state, sb.state) {
        (DaemonState::Running, DaemonState::Exited) => (&a, &b, sb),
        (DaemonState::Exited, DaemonState::Running) => (&b, &a, sa),
        other => panic!("exactly one must run: {other:?}"),
    };
    assert!(
        loser_status
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("held by another process"),
        "{loser_status:?}"
    );
    assert!(loser.leftovers().is_empty(), "the loser started nothing");
    assert_eq!(winner.leftovers().len(), 1);
    let pid = winner.status("d").pid.expect("pid");
    assert!(matches!(pidfile::inspect(&path), Existing::Live(id) if id.pid == pid));
    // Many threads at once: exactly one gets the lock.
    let other = dir.path().join("e.pid");
    let got: Vec<bool> = (0..8)
        .map(|_| {
            let other = other.clone();
            std::thread::spawn(move || {
                let got = PidFile::acquire(&other);
                // Hold the lock while the others try.
                std::thread::sleep(Duration::from_millis(200));
                got.is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("join"))
        .collect();
    assert_eq!(got.iter().filter(|g| **g).count(), 1, "{got:?}");
}

#[test]
fn pidfile_crash_mid_write_ugly() {
    // A crash mid-write leaves a half temp file beside a half-written PID
    // file (from a writer that did not rename): both are recognised.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    std::fs::write(dir.path().join("d.pid.tmp"), "12").expect("write");
    std::fs::write(&path, "12").expect("write");
    assert!(matches!(pidfile::inspect(&path), Existing::Corrupt(_)));
    let f = daemon_with_pidfile("pid-crash", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
    assert!(
        !dir.path().join("d.pid.tmp").exists(),
        "the temp file was overwritten and renamed"
    );
}

#[test]
fn daemon_registry_good() {
    let f = fixture(
        "registry",
        r#"
[[daemon]]
name = "worker"
program = "sleep"
args = ["60"]
env = { {MARK} }
"#,
    );
    f.supervisor.start("worker").expect("start");
    let pid = f
        .wait_for("worker", "running", |s| s.state == DaemonState::Running)
        .pid
        .expect("pid");
    let reg = RegistryDir::open(&f.dir.path().join("registry")).expect("registry");
    let entry = reg.get(EntryKind::Daemon, "worker").expect("entry");
    assert_eq!(entry.process, ProcessIdentity::of(pid).expect("alive"));
    assert_eq!(entry.host, ProcessIdentity::current());
    assert!(entry.binary.ends_with("sleep"));
    f.supervisor.stop("worker").expect("stop");
    assert!(
        reg.get(EntryKind::Daemon, "worker").is_none(),
        "unregistered when it stops"
    );
}

#[test]
fn daemon_registry_ugly() {
    // A leftover of a crashed host: an entry whose host is dead but whose
    // daemon still runs is stopped by identity; its PID is never trusted
    // alone.
    let dir = tempfile::tempdir().expect("dir");
    let reg = RegistryDir::open(&dir.path().join("registry")).expect("registry");
    let mut leftover = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mut dead_host = ProcessIdentity::current();
    dead_host.start_time += 1;
    let entry = wasmproc_host::daemon::registry_dir::RegistryEntry {
        kind: EntryKind::Daemon,
        name: "left".into(),
        process: ProcessIdentity::of(leftover.id()).expect("identity"),
        host: dead_host,
        host_name: "crashed".into(),
        health: None,
        binary: "/usr/bin/sleep".into(),
        started_at_ms: 0,
        control: None,
    };
    reg.register(&entry).expect("register");
    let cleanup = reg.clean_leftovers(Duration::from_secs(2));
    assert_eq!(cleanup.stopped, ["left"]);
    let status = leftover.wait().expect("reap");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    assert!(reg.entries().is_empty());
}

#[test]
fn daemon_guest_access_good() {
    let f = fixture(
        "guest-access",
        r#"
[[daemon]]
name = "echo"
program = "sh"
args = ["-c", "echo hello-from-daemon; echo oops >&2; exec sleep 60"]
[[daemon]]
name = "worker"
program = "sleep"
args = ["60"]
[[daemon]]
name = "secret"
program = "sleep"
args = ["60"]
"#,
    );
    f.supervisor.start_all();
    let policy = Arc::new(
        Policy::builder()
            .observe_daemon("echo")
            .control_daemon("worker")
            .observe_daemon("ghost")
            .build()
            .expect("policy"),
    );
    let ctx = DaemonCtx::new("plugin", policy, Arc::clone(&f.supervisor), Audit::new());
    assert_eq!(ctx.list(), ["echo", "worker"]);
    f.wait_for("echo", "running", |s| s.state == DaemonState::Running);
    assert!(eventually(LIMIT, || ctx
        .recent_output("echo", 1024)
        .is_ok_and(|o| o.stdout == b"hello-from-daemon\n")));
    let out = ctx.recent_output("echo", 3).expect("output");
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"on\n"[..], &b"ps\n"[..]),
        "the newest bytes"
    );
    assert_eq!(
        ctx.status("echo").expect("status").state,
        DaemonState::Running
    );
    ctx.stop("worker").expect("control");
    assert_eq!(
        ctx.status("worker").expect("status").state,
        DaemonState::Stopped
    );
    ctx.start("worker").expect("control");
    f.wait_for("worker", "running", |s| s.state == DaemonState::Running);
    ctx.restart("worker").expect("control");
}

#[test]
fn daemon_guest_access_bad() {
    let f = fixture(
        "guest-denied",
        r#"
[[daemon]]
name = "secret"
program = "sleep"
args = ["60"]
[[daemon]]
name = "seen"
program = "sleep"
args = ["60"]
"#,
    );
    let policy = Arc::new(
        Policy::builder()
            .observe_daemon("seen")
            .observe_daemon("ghost")
            .build()
            .expect("policy"),
    );
    let ctx = DaemonCtx::new("plugin", policy, Arc::clone(&f.supervisor), Audit::new());
    assert!(
        matches!(ctx.status("secret"), Err(CallError::Denied(_))),
        "not named by the policy"
    );
    assert!(matches!(
        ctx.recent_output("secret", 10),
        Err(CallError::Denied(_))
    ));
    assert!(
        matches!(ctx.stop("seen"), Err(CallError::Denied(_))),
        "observe does not grant control"
    );
    assert!(matches!(ctx.start("seen"), Err(CallError::Denied(_))));
    assert!(
        matches!(ctx.status("ghost"), Err(CallError::NotFound(_))),
        "named but not declared"
    );
    assert_eq!(
        ctx.status("seen").expect("observe").state,
        DaemonState::Stopped
    );
    assert!(
        Policy::deny_all().daemons().observe.is_empty(),
        "deny-all grants no daemon"
    );
}

// ---- `wasmproc serve` ------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `GET path` on `addr`; returns the status code and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

struct Served {
    child: Child,
    dir: tempfile::TempDir,
    marker: String,
}

impl Served {
    fn registry(&self) -> PathBuf {
        self.dir.path().join("registry")
    }

    fn addr(&self) -> String {
        let reg = RegistryDir::open(&self.registry()).expect("registry");
        let host = reg.get(EntryKind::Host, "test-host").expect("host entry");
        host.health
            .expect("health url")
            .trim_start_matches("http://")
            .trim_end_matches("/health")
            .to_string()
    }

    fn cli(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(cli_path())
            .arg("daemon")
            .arg("--registry")
            .arg(self.registry())
            .args(args)
            .output()
            .expect("cli");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(test: &str, daemons: &str) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let marker = unique_marker(test);
    let daemons = daemons.replace("{MARK}", &format!("{MARK} = \"{marker}\""));
    let config = format!(
        "[serve]\nname = \"test-host\"\nlisten = \"127.0.0.1:0\"\npid_file = \"host.pid\"\nregistry_dir = \"registry\"\nshutdown_grace_ms = 3000\n{}\n{daemons}",
        policy_toml(dir.path())
    );
    let path = dir.path().join("wasmproc.toml");
    std::fs::write(&path, config).expect("write config");
    let child = Command::new(cli_path())
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let spare = tempfile::tempdir().expect("dir");
    (Served { child, dir, marker }, spare)
}

fn wait_serving(s: &mut Served) {
    let reg = RegistryDir::open(&s.registry()).expect("registry");
    let up = eventually(LIMIT, || reg.get(EntryKind::Host, "test-host").is_some());
    if !up {
        let _ = s.child.kill();
        let mut err = String::new();
        let _ = s
            .child
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut err));
        panic!("serve never registered: {err}");
    }
}

#[test]
fn serve_health_good() {
    let port = free_port();
    let (mut s, _spare) = serve(
        "serve-good",
        &format!(
            r#"
[[daemon]]
name = "web"
program = "/usr/bin/python3"
args = ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]
env = {{ {{MARK}} }}
restart = "always"
readiness = {{ http = "http://127.0.0.1:{port}/", period_ms = 100 }}
[[daemon]]
name = "worker"
program = "sh"
args = ["-c", "while :; do sleep 0.2; done"]
env = {{ {{MARK}} }}
restart = "always"
"#
        ),
    );
    wait_serving(&mut s);
    let addr = s.addr();
    let (code, health) = http_get(&addr, "/health").expect("answer");
    assert_eq!(code, 200);
    assert!(health.starts_with("ok\ncontainment: "), "{health}");
    assert!(
        eventually(LIMIT, || http_get(&addr, "/ready")
            == Some((200, "ready\n".into()))),
        "{:?}",
        http_get(&addr, "/ready")
    );
    assert_eq!(http_get(&addr, "/nope").map(|r| r.0), Some(404));
    let host_pid = std::fs::read_to_string(s.dir.path().join("host.pid")).expect("host PID file");
    assert_eq!(
        host_pid.lines().next(),
        Some(s.child.id().to_string().as_str())
    );

    let (code, list) = s.cli(&["list"]);
    assert_eq!(code, 0);
    assert!(
        list.lines()
            .any(|l| l.starts_with("host") && l.contains("test-host")),
        "{list}"
    );
    for name in ["web", "worker"] {
        assert!(
            list.lines()
                .any(|l| l.contains(name) && l.contains("running")),
            "{list}"
        );
    }
    let (code, status) = s.cli(&["status", "web"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(
        (status["state"].as_str(), status["ready"].as_bool()),
        (Some("running"), Some(true))
    );
    assert_eq!(s.cli(&["status", "ghost"]).0, 1);
    let (code, stopped) = s.cli(&["stop", "worker"]);
    assert_eq!((code, stopped.trim()), (0, "stopped worker"));
    let (_, status) = s.cli(&["status", "worker"]);
    assert!(status.contains("\"stopped\""), "{status}");
    assert_eq!(
        http_get(&addr, "/health").map(|r| r.0),
        Some(200),
        "a stopped daemon is not a failure"
    );

    let exit = s.terminate();
    assert_eq!(exit.code(), Some(0), "clean shutdown");
    assert!(
        !s.dir.path().join("host.pid").exists(),
        "host PID file removed"
    );
    let reg = RegistryDir::open(&s.registry()).expect("registry");
    assert!(
        reg.entries().is_empty(),
        "unregistered: {:?}",
        reg.entries()
    );
    assert!(
        eventually(Duration::from_secs(2), || pids_with_env(MARK, &s.marker)
            .is_empty()),
        "no process left behind"
    );
    assert!(http_get(&addr, "/health").is_none(), "no longer listening");
}

#[test]
fn health_failed_daemon_bad() {
    let (mut s, _spare) = serve(
        "serve-failed",
        r#"
[[daemon]]
name = "crash"
program = "sh"
args = ["-c", "exit 7"]
backoff = { initial_ms = 10, jitter = 0.0 }
start_limit = { burst = 2, interval_ms = 60000 }
"#,
    );
    wait_serving(&mut s);
    let addr = s.addr();
    assert!(eventually(LIMIT, || http_get(&addr, "/health")
        .is_some_and(|(c, _)| c == 503)));
    let (code, body) = http_get(&addr, "/health").expect("answer");
    assert_eq!(code, 503);
    assert!(
        body.contains("daemon crash: failed (start limit reached"),
        "{body}"
    );
    let (code, body) = http_get(&addr, "/ready").expect("answer");
    assert_eq!(code, 503, "{body}");
    assert_eq!(s.terminate().code(), Some(0));
}

#[test]
fn serve_start_bad() {
    // Cannot start cleanly: a daemon the policy does not grant, a
    // non-loopback address, a host PID file another host holds.
    let dir = tempfile::tempdir().expect("dir");
    let run = |config: &str| {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, config).expect("write");
        let out = Command::new(cli_path())
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .expect("serve");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = format!(
        "[serve]\nlisten = \"127.0.0.1:0\"\nregistry_dir = \"{}\"\n",
        dir.path().join("reg").display()
    );
    let (code, err) = run(&format!(
        "{base}[[daemon]]\nname = \"x\"\nprogram = \"sleep\"\n"
    ));
    assert_ne!(code, Some(0));
    assert!(err.contains("not granted"), "{err}");
    let (code, err) = run("[serve]\nlisten = \"0.0.0.0:0\"\n");
    assert_ne!(code, Some(0));
    assert!(err.contains("loopback"), "{err}");
    let held = dir.path().join("held.pid");
    let _lock = PidFile::acquire(&held).expect("lock");
    let (code, err) = run(&format!("{base}pid_file = \"{}\"\n", held.display()));
    assert_ne!(code, Some(0));
    assert!(err.contains("held by another process"), "{err}");
}

#[test]
fn serve_sigterm_ugly() {
    // SIGTERM while a daemon ignores SIGTERM: serve still exits cleanly
    // after the daemon's grace period, leaving nothing behind.
    let (mut s, _spare) = serve(
        "serve-ugly",
        r#"
[[daemon]]
name = "stubborn"
program = "sh"
args = ["-c", "trap '' TERM; while :; do sleep 0.05; done"]
env = { {MARK} }
stop_grace_ms = 300
"#,
    );
    wait_serving(&mut s);
    assert!(eventually(LIMIT, || !pids_with_env(MARK, &s.marker).is_empty()));
    let exit = s.terminate();
    assert_eq!(exit.code(), Some(0));
    assert!(
        pids_with_env(MARK, &s.marker).is_empty(),
        "the daemon's group was killed"
    );
    assert!(!s.dir.path().join("host.pid").exists());
}

#[test]
fn daemon_runtime_link_good() {
    // With a supervisor the runtime links the daemon interface too; guests
    // of the plain `guest` world, with or without the process import, keep
    // instantiating.
    let f = fixture("runtime-link", "");
    let runtime = wasmproc_host::Runtime::new(wasmproc_host::RuntimeConfig {
        daemons: Some(Arc::clone(&f.supervisor)),
        ..wasmproc_host::RuntimeConfig::default()
    })
    .expect("runtime");
    let policy = wasmproc_tests::harness::policy(&[]);
    let out = wasmproc_tests::harness::run_guest(
        &runtime,
        wasmproc_tests::guests::HELLO,
        &["0"],
        Arc::clone(&policy),
    );
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from guest\n");
    let out =
        wasmproc_tests::harness::run_guest(&runtime, wasmproc_tests::guests::CAPS, &[], policy);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.exit_code, 1, "{said}");
    assert!(
        said.contains("not granted"),
        "instantiated, and its calls reach the policy: {said}"
    );
}

#[test]
fn daemon_guest_wit_ugly() {
    // A real component of the `supervised-guest` world, through the WIT
    // interface: what its policy grants works, the rest is refused with a
    // WIT error, never a trap.
    let f = fixture(
        "guest-wit",
        r#"
[[daemon]]
name = "echo"
program = "sh"
args = ["-c", "echo from-echo; exec sleep 60"]
[[daemon]]
name = "worker"
program = "sleep"
args = ["60"]
[[daemon]]
name = "secret"
program = "sleep"
args = ["60"]
"#,
    );
    f.supervisor.start("echo").expect("start");
    f.wait_for("echo", "running", |s| s.state == DaemonState::Running);
    let runtime = wasmproc_host::Runtime::new(wasmproc_host::RuntimeConfig {
        daemons: Some(Arc::clone(&f.supervisor)),
        ..wasmproc_host::RuntimeConfig::default()
    })
    .expect("runtime");
    let policy = Arc::new(
        Policy::builder()
            .observe_daemon("echo")
            .control_daemon("worker")
            .observe_daemon("ghost")
            .build()
            .expect("policy"),
    );
    assert!(eventually(LIMIT, || f
        .supervisor
        .recent_output("echo", 64)
        .is_ok_and(|o| !o.stdout.is_empty())));
    let steps = [
        "list",
        "status:echo",
        "output:echo",
        "stop:echo",
        "start:worker",
        "status:secret",
        "stop:secret",
        "status:ghost",
        "status:other",
    ];
    let out = wasmproc_tests::harness::run_guest(
        &runtime,
        wasmproc_tests::guests::DAEMONCTL,
        &steps,
        policy,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.exit_code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "list  ok echo,worker",
            "status echo ok DaemonState::Running ready=true pid=true",
            "output echo ok from-echo",
            "stop echo err denied",
            "start worker ok",
            "status secret err denied",
            "stop secret err denied",
            "status ghost err not-found",
            "status other err denied",
        ]
    );
    f.wait_for("worker", "started by the guest", |s| {
        s.state == DaemonState::Running
    });
    assert_eq!(f.status("secret").state, DaemonState::Stopped);
    assert_eq!(f.status("echo").state, DaemonState::Running);
}

#[test]
fn daemon_import_only_where_used_good() {
    // The test guests share one SDK built with its `daemon` feature (world
    // `supervised-guest`), but a component imports only the interfaces it
    // calls: only `daemonctl` needs a host with a supervisor. The imports are
    // read without compiling, which would slow the timing tests around.
    for (name, path) in wasmproc_tests::guests::ALL {
        let bytes = std::fs::read(path).expect("read guest");
        let mut imports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
            if let wasmparser::Payload::ComponentImportSection(section) = payload.expect("parse") {
                for import in section {
                    imports.push(import.expect("import").name.name.to_string());
                }
            }
        }
        assert!(
            imports.iter().any(|i| i.starts_with("wasi:")),
            "guest `{name}`: {imports:?}"
        );
        let daemon = imports.iter().any(|i| i == "wasmproc:process/daemon@0.1.0");
        assert_eq!(daemon, *name == "daemonctl", "guest `{name}`: {imports:?}");
    }
}
