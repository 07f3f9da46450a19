//! PID files: whatever a PID file held, the supervisor never signals a
//! stranger, and two hosts never both own one.

use super::*;

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
