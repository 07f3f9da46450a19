//! The host as a child subreaper: it sweeps orphans of its own process
//! trees, and never a child that the embedding application started itself,
//! even one in a session of its own.

use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmproc_host::os::CGROUPS_OFF_VAR;
use wasmproc_host::os::Containment;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::guests;
use wasmproc_tests::harness::{MARKER_VAR, cli_path, policy, session, unique_marker};
use wasmproc_tests::os::{eventually, group_and_session, is_zombie, pids_with_env};

/// How long a process gets to start, end or be killed.
const LIMIT: Duration = Duration::from_secs(10);
/// Set in the copy of the embedder test that runs with cgroups off.
const INNER_VAR: &str = "WASMPROC_TEST_SUBREAPER_INNER";

/// Starts `program args` as the embedding application's own child, in a
/// new session (`setsid` without a fork: the child does not lead a group),
/// and waits until it leads that session.
fn own_setsid_child(program: &str, args: &[&str]) -> Child {
    let child = Command::new("/usr/bin/setsid")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the embedder's own child");
    let pid = child.id() as i32;
    assert!(
        eventually(LIMIT, || group_and_session(pid) == Some((pid, pid))),
        "the embedder's child {pid} never led a session of its own"
    );
    child
}

#[test]
fn subreaper_embedder_setsid_child_untouched_good() {
    let inner = std::env::var_os(INNER_VAR).is_some();
    let containment = Containment::detect();
    if inner {
        assert!(
            !containment.is_cgroup(),
            "{CGROUPS_OFF_VAR}=off is in force"
        );
    }
    println!("containment: {containment}");
    let mut alive = own_setsid_child("/usr/bin/sleep", &["1005"]);
    let mut ended = own_setsid_child("/bin/sh", &["-c", "exit 7"]);
    assert!(
        eventually(LIMIT, || is_zombie(ended.id() as i32)),
        "the embedder's short child never ended"
    );

    // The host starts and stops processes of its own meanwhile: each reap
    // and the shutdown sweep the host's orphans.
    let (manager, mut ctx) = session(policy(&["sleep"]));
    let spec = CommandSpec::new("sleep").args(["300"]);
    let id = ctx.start(spec, StartSpec::default()).expect("start");
    wasmproc_host::process::block_on(ctx.kill(&id)).expect("kill");
    drop(ctx);
    wasmproc_host::process::block_on(manager.shutdown());
    drop(manager);

    // The ended child is still the embedder's to reap, with its status.
    let status = ended.wait().expect("the host reaped the embedder's child");
    assert_eq!(status.code(), Some(7), "{status:?}");
    // The live one was neither killed nor reaped.
    assert_eq!(
        alive.try_wait().expect("still the embedder's child"),
        None,
        "the host killed the embedder's child"
    );
    alive.kill().expect("kill the embedder's child");
    let status = alive.wait().expect("reap the embedder's child");
    assert_eq!(status.signal(), Some(9), "{status:?}");

    if !inner {
        // The same without cgroups, where only process groups and the
        // subreaper contain the host's children.
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "subreaper::subreaper_embedder_setsid_child_untouched_good",
                "--nocapture",
            ])
            .env(CGROUPS_OFF_VAR, "off")
            .env(INNER_VAR, "1")
            .output()
            .expect("run the test with cgroups off");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "with {CGROUPS_OFF_VAR}=off: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn subreaper_cli_setsid_orphan_killed_good() {
    // The `wasmproc` binary starts no children of its own, so without
    // cgroups a `setsid` escapee whose parent exited is still its orphan,
    // killed when the guest ends.
    let marker = unique_marker("subreaper_cli_orphan");
    let steps = json!([{"op": "run", "program": "sh", "args": ["-c",
        "/usr/bin/setsid /usr/bin/sleep 1006 >/dev/null 2>&1 </dev/null & echo $!"],
        "env": [[MARKER_VAR, marker]]}]);
    let out = Command::new(cli_path())
        .env(CGROUPS_OFF_VAR, "off")
        .args([
            "run",
            guests::PROBE,
            "--allow",
            "sh",
            "--allow-env",
            MARKER_VAR,
            "--",
        ])
        .arg(steps.to_string())
        .output()
        .expect("run the CLI");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stdout"),
        "the escapee was started: {stdout}"
    );
    assert!(
        eventually(LIMIT, || pids_with_env(MARKER_VAR, &marker).is_empty()),
        "the escapee outlived the CLI: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
}

#[test]
fn subreaper_orphan_reaped_amid_churn_good() {
    // A `run` whose shell leaves a background child: the group is killed
    // when the shell exits, and the child, an orphan of the host's own
    // tree, becomes the host's zombie. While the session keeps reaping its
    // own leaders (sweeps that find one of them first skip the scan), the
    // orphan is still reaped.
    let (_manager, mut ctx) = session(policy(&["sh", "true"]));
    let spec = CommandSpec::new("sh").args(["-c", "sleep 30 & echo $!"]);
    let out = wasmproc_host::process::block_on(ctx.run(spec)).expect("run");
    let orphan: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the background child's pid");
    for _ in 0..50 {
        wasmproc_host::process::block_on(ctx.run(CommandSpec::new("true"))).expect("run true");
    }
    assert!(
        eventually(LIMIT, || !std::path::Path::new(&format!("/proc/{orphan}"))
            .exists()),
        "the orphan {orphan} was left behind (zombie: {})",
        is_zombie(orphan as i32)
    );
}
