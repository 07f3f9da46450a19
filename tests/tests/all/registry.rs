//! The registry directory and its entries against a hostile local user.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;
use wasmproc_supervisor::identity::ProcessIdentity;
use wasmproc_supervisor::registry_dir::{EntryKind, RegistryDir, RegistryEntry};
use wasmproc_tests::os::alive;

fn entry(kind: EntryKind, name: &str, process: ProcessIdentity) -> RegistryEntry {
    RegistryEntry {
        kind,
        name: name.into(),
        host: process.clone(),
        process,
        host_name: "h".into(),
        health: None,
        binary: "/bin/x".into(),
        started_at_ms: 1,
        control: None,
    }
}

fn private(base: &Path) -> RegistryDir {
    RegistryDir::open(&base.join("registry")).expect("a fresh registry directory")
}

#[test]
fn registry_dir_world_writable_bad() {
    // A pre-created 0777 directory, a group-readable one and a symlink to a
    // good one are all refused with a reason; the CLI says so and fails.
    let base = tempfile::tempdir().unwrap();
    let open = base.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = RegistryDir::open(&open).unwrap_err().to_string();
    assert!(
        err.contains("0777") && err.contains("group or others"),
        "{err}"
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = RegistryDir::open(&open).unwrap_err().to_string();
    assert!(err.contains("0750"), "{err}");
    let good = private(base.path());
    let link = base.path().join("link");
    std::os::unix::fs::symlink(good.path(), &link).unwrap();
    let err = RegistryDir::open(&link).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = std::process::Command::new(wasmproc_tests::harness::cli_path())
        .args(["daemon", "--registry"])
        .arg(&open)
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("0777"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn registry_entry_symlink_ugly() {
    // Links planted at an entry's name and at a name of the form its temp
    // files take are never followed: the file they point at is neither
    // truncated nor read.
    let base = tempfile::tempdir().unwrap();
    let reg = private(base.path());
    let victim = base.path().join("victim");
    let me = ProcessIdentity::current();
    let planted = serde_json::to_string(&entry(EntryKind::Host, "planted", me.clone())).unwrap();
    std::fs::write(&victim, &planted).unwrap();
    let tmp = format!(".host.h.json.{}.000000000000.tmp", std::process::id());
    std::os::unix::fs::symlink(&victim, reg.path().join(&tmp)).unwrap();
    std::os::unix::fs::symlink(&victim, reg.path().join("host.h.json")).unwrap();
    std::os::unix::fs::symlink(&victim, reg.path().join("host.planted.json")).unwrap();
    reg.register(&entry(EntryKind::Host, "h", me)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        planted,
        "victim changed"
    );
    assert!(
        !std::fs::symlink_metadata(reg.path().join("host.h.json"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the entry is a file of its own"
    );
    let names: Vec<String> = reg.entries().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["h"], "the planted link was read");
    let (_, pruned) = reg.prune();
    assert_eq!(pruned, ["host.planted.json"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), planted);
}

#[test]
fn registry_entry_fifo_ugly() {
    // A FIFO, a link to /dev/zero and an oversized file among the entries
    // neither hang nor exhaust the reader; they are skipped, then pruned.
    let base = tempfile::tempdir().unwrap();
    let reg = private(base.path());
    let fifo =
        std::ffi::CString::new(reg.path().join("daemon.fifo.json").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", reg.path().join("daemon.zero.json")).unwrap();
    std::fs::write(reg.path().join("daemon.big.json"), vec![b' '; 1 << 20]).unwrap();
    reg.register(&entry(EntryKind::Host, "real", ProcessIdentity::current()))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = reg.clone();
    std::thread::spawn(move || {
        let names: Vec<String> = reader.entries().into_iter().map(|e| e.name).collect();
        let (_, pruned) = reader.prune();
        let _ = tx.send((names, pruned));
    });
    let (names, mut pruned) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading the registry hung");
    assert_eq!(names, ["real"]);
    pruned.sort();
    assert_eq!(
        pruned,
        ["daemon.big.json", "daemon.fifo.json", "daemon.zero.json"]
    );
}

#[test]
fn registry_foreign_entry_no_signal_ugly() {
    // A planted leftover entry names a live victim. The victim started
    // before the host the entry claims, so that host cannot have started
    // it: no signal, and the entry goes. (Run as root, also: a victim of
    // another uid, and an entry file of another uid.)
    let base = tempfile::tempdir().unwrap();
    let reg = private(base.path());
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .unwrap();
    let victim_id = ProcessIdentity::of(victim.id()).unwrap();
    let mut dead_host = victim_id.clone();
    dead_host.pid = u32::MAX / 2;
    dead_host.start_time += 100;
    let mut planted = entry(EntryKind::Daemon, "victim", victim_id.clone());
    planted.host = dead_host.clone();
    reg.register(&planted).unwrap();
    let cleanup = reg.clean_leftovers(Duration::from_millis(200));
    assert!(cleanup.stopped.is_empty(), "{cleanup:?}");
    assert_eq!(cleanup.refused.len(), 1, "{cleanup:?}");
    assert!(cleanup.refused[0].contains("started before"), "{cleanup:?}");
    assert!(reg.entries().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(victim.id() as i32), "the victim was signalled");

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // A victim running as another user, and a host that claims to
        // predate it: refused on the uid.
        let mut stranger = std::process::Command::new("sleep")
            .arg("30")
            .uid(65534)
            .gid(65534)
            .process_group(0)
            .spawn()
            .unwrap();
        let stranger_id = ProcessIdentity::of(stranger.id()).unwrap();
        let mut old_host = stranger_id.clone();
        old_host.pid = u32::MAX / 2;
        old_host.start_time = 1;
        let mut planted = entry(EntryKind::Daemon, "stranger", stranger_id);
        planted.host = old_host.clone();
        reg.register(&planted).unwrap();
        let cleanup = reg.clean_leftovers(Duration::from_millis(200));
        assert!(cleanup.stopped.is_empty(), "{cleanup:?}");
        assert!(cleanup.refused[0].contains("uid 65534"), "{cleanup:?}");
        // An entry file another user wrote is not even read.
        let mut ours = entry(EntryKind::Daemon, "ours", victim_id);
        ours.host = old_host;
        reg.register(&ours).unwrap();
        let file = reg.path().join("daemon.ours.json");
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let cleanup = reg.clean_leftovers(Duration::from_millis(200));
        assert!(cleanup.stopped.is_empty(), "{cleanup:?}");
        assert_eq!(cleanup.pruned, ["daemon.ours.json"], "{cleanup:?}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(stranger.id() as i32) && alive(victim.id() as i32));
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn registry_default_dir_good() {
    // Without XDG_RUNTIME_DIR the default lies under the user's home (a
    // directory only this user can create in), created private.
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(wasmproc_tests::harness::cli_path())
        .args(["daemon", "list"])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = home.path().join(".local/state/wasmproc/registry");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{}", dir.display());
}

#[test]
fn registry_dir_squatted_bad() {
    // Another user created the registry directory first: it is refused,
    // and the message says which setting picks another directory, never
    // that someone else's directory should be removed.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "chown to another user needs root (CI runs as root)");
    let base = tempfile::tempdir().unwrap();
    let squatted = base.path().join("wasmproc-reg");
    std::fs::create_dir(&squatted).unwrap();
    std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&squatted, Some(65534), Some(65534)).unwrap();
    let out = std::process::Command::new(wasmproc_tests::harness::cli_path())
        .args(["daemon", "list"])
        .env("WASMPROC_REGISTRY", &squatted)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    assert!(stderr.contains("WASMPROC_REGISTRY"), "{stderr}");
    assert!(
        !stderr.contains("remove") && !stderr.contains("delete"),
        "{stderr}"
    );
    // Same for a world-writable one of another user.
    std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = RegistryDir::open(&squatted).unwrap_err().to_string();
    assert!(
        err.contains("owned by uid 65534") && !err.contains("remove"),
        "{err}"
    );
}
