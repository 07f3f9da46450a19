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
    // file (from a writer that did not rename): both are recognised. The
    // next owner removes the temp files, of this host's naming and of the
    // older one, and no other file.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    std::fs::write(dir.path().join("d.pid.tmp"), "12").expect("write");
    let leftover = dir.path().join(".d.pid.4242.0123456789ab.tmp");
    let other = dir.path().join(".e.pid.4242.0123456789ab.tmp");
    std::fs::write(&leftover, "1").expect("write");
    std::fs::write(&other, "1").expect("write");
    std::fs::write(&path, "12").expect("write");
    assert!(matches!(pidfile::inspect(&path), Existing::Corrupt(_)));
    let f = daemon_with_pidfile("pid-crash", &path, "on-failure");
    assert_pidfile_replaced(&f, &path);
    assert!(
        !dir.path().join("d.pid.tmp").exists() && !leftover.exists(),
        "the leftover temp files were removed"
    );
    assert!(
        other.exists(),
        "another PID file's temp file is not this owner's"
    );
}

/// Runs `args` as `nobody` through `setpriv` (needs root).
fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args);
    cmd
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn pidfile_lock_foreign_user_bad() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test runs a locker as another user through setpriv, which needs root (CI runs as root)"
    );
    // A PID directory others may read and traverse (like /run): the PID
    // file and its lock are still only this user's to open.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.path().join("d.pid");
    let lock = dir.path().join("d.pid.lock");
    let f = daemon_with_pidfile("pid-foreign", &path, "on-failure");
    f.supervisor.start("d").expect("start");
    f.wait_for("d", "running", |s| s.state == DaemonState::Running);
    assert_eq!(mode_of(&path), 0o600, "PID file");
    assert_eq!(mode_of(&lock), 0o600, "lock file");
    let lock_str = lock.to_str().expect("utf-8");
    for attempt in [
        &["flock", "-n", "-s", lock_str, "true"][..],
        &["flock", "-n", "-x", lock_str, "true"][..],
        &["cat", path.to_str().expect("utf-8")][..],
        &["touch", dir.path().join("planted").to_str().expect("utf-8")][..],
    ] {
        let out = as_nobody(attempt).output().expect("setpriv");
        assert!(
            !out.status.success(),
            "{attempt:?} as nobody must fail: {out:?}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{attempt:?}: {out:?}"
        );
    }
    f.supervisor.stop("d").expect("stop");

    // A lock file left readable by an older host: another user opens it
    // and holds its lock. The daemon still starts (the exposed file is
    // replaced, its holder is not signalled) and the new lock is private.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut locker = as_nobody(&[
        "flock",
        "-n",
        "-x",
        lock_str,
        "-c",
        "echo held; exec sleep 60",
    ])
    .stdout(Stdio::piped())
    .process_group(0)
    .spawn()
    .expect("locker");
    let mut line = [0u8; 5];
    locker
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut line)
        .expect("the locker reports its lock");
    assert_eq!(&line, b"held\n");
    f.supervisor.start("d").expect("start");
    let s = f.wait_for("d", "running", |s| s.state == DaemonState::Running);
    assert_eq!(mode_of(&lock), 0o600, "the exposed lock file was replaced");
    assert!(matches!(pidfile::inspect(&path), Existing::Live(id) if Some(id.pid) == s.pid));
    // The host's own PID file goes the same way.
    let host_pid = dir.path().join("host.pid");
    std::fs::write(dir.path().join("host.pid.lock"), "").expect("write");
    let host_lock = dir.path().join("host.pid.lock");
    std::fs::set_permissions(&host_lock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut host_locker = as_nobody(&[
        "flock",
        "-n",
        "-s",
        host_lock.to_str().expect("utf-8"),
        "-c",
        "echo held; exec sleep 60",
    ])
    .stdout(Stdio::piped())
    .process_group(0)
    .spawn()
    .expect("locker");
    host_locker
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut line)
        .expect("the locker reports its lock");
    let host = PidFile::acquire(&host_pid).expect("a foreign holder of an exposed lock is ignored");
    assert_eq!(mode_of(&host_lock), 0o600);
    assert!(
        matches!(
            PidFile::acquire(&host_pid),
            Err(pidfile::PidFileError::Held { .. })
        ),
        "the new lock is held"
    );
    for l in [&mut locker, &mut host_locker] {
        assert!(
            l.try_wait().expect("try_wait").is_none(),
            "a foreign locker is never signalled"
        );
        l.kill().expect("kill");
        l.wait().expect("reap");
    }
    drop(host);
    f.supervisor.stop("d").expect("stop");
}

#[test]
fn pidfile_exposed_lock_own_holder_ugly() {
    // An exposed lock file held by a process of this user (an older host
    // still running) keeps its meaning: the start is refused, not stolen.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.pid");
    let lock = dir.path().join("d.pid.lock");
    std::fs::write(&lock, "").expect("write");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(&lock).expect("open read-only"),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .expect("lock");
    assert!(matches!(
        PidFile::acquire(&path),
        Err(pidfile::PidFileError::Held { .. })
    ));
    drop(held);
    let got = PidFile::acquire(&path).expect("free now");
    assert_eq!(mode_of(&lock), 0o600, "replaced while held");
    drop(got);
}
