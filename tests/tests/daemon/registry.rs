//! The on-disk registry of hosts and daemons.

use super::*;

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
    let entry = wasmproc_supervisor::registry_dir::RegistryEntry {
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
