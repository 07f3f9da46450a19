use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::Policy;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::{
    MARKER_VAR, err_detail, err_kind, ok, policy, probe, session, shared_runtime,
    start_in_other_session, unique_marker,
};
use wasmproc_tests::os::{alive, eventually, pids_with_env};

#[test]
fn process_run_good() {
    let r = probe(
        shared_runtime(),
        policy(&["echo"]),
        json!([{"op": "run", "program": "echo", "args": ["hello", "world"]}]),
    );
    let out = ok(&r[0]);
    assert_eq!(out["status"], json!({"exited": 0}));
    assert_eq!(out["stdout"], "hello world\n");
    assert_eq!(out["stderr"], "");
}

#[test]
fn process_run_bad() {
    // The program was there when the policy loaded; at call time its
    // interpreter does not exist, so the OS refuses: spawn-failed.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tool");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = script.to_str().unwrap();
    let policy = Arc::new(Policy::builder().allow_program(program).build().unwrap());
    let r = probe(
        shared_runtime(),
        policy,
        json!([{"op": "run", "program": program, "args": []}]),
    );
    assert_eq!(err_kind(&r[0]), "spawn-failed", "{}", r[0]);
    assert!(err_detail(&r[0]).contains("tool"), "{}", r[0]);
}

#[test]
fn process_run_ugly() {
    // Past its timeout the child (and its group) is killed: timed-out, and
    // nothing carrying the marker is left.
    let marker = unique_marker("process_run_ugly");
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([{"op": "run", "program": "sh", "args": ["-c", "sleep 30 & sleep 30"],
                "env": [[MARKER_VAR, marker]], "timeout_ms": 300}]),
    );
    assert_eq!(err_kind(&r[0]), "timed-out", "{}", r[0]);
    assert!(
        pids_with_env(MARKER_VAR, &marker).is_empty(),
        "children left behind"
    );
}

#[test]
fn process_start_good() {
    let r = probe(
        shared_runtime(),
        policy(&["sleep"]),
        json!([{"op": "start", "program": "sleep", "args": ["30"]}, {"op": "get", "id": "$0"}]),
    );
    let id = ok(&r[0]).as_str().unwrap();
    assert_eq!(id.len(), 36, "uuid text: {id}");
    assert_eq!(&id[14..15], "4", "uuid v4: {id}");
    let info = ok(&r[1]);
    assert_eq!(info["state"], "running");
    assert_eq!(info["id"], id);
    assert!(info["pid"].as_u64().unwrap() > 1);
    assert!(info["program"].as_str().unwrap().ends_with("/sleep"));
}

#[test]
fn process_start_bad() {
    let r = probe(
        shared_runtime(),
        policy(&["sleep"]),
        json!([
            {"op": "start", "program": "", "args": []},
            {"op": "start", "program": "sleep", "args": ["1\u{0}0"]},
            {"op": "start", "program": "sleep", "args": ["1"], "timeout_ms": 999_999_999_999u64},
        ]),
    );
    assert_eq!(err_kind(&r[0]), "invalid", "{}", r[0]);
    assert_eq!(err_kind(&r[1]), "invalid", "{}", r[1]);
    assert_eq!(err_kind(&r[2]), "invalid", "{}", r[2]);
}

#[test]
fn process_kill_good() {
    let r = probe(
        shared_runtime(),
        policy(&["sleep"]),
        json!([
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "get", "id": "$0"},
            {"op": "kill", "id": "$0"},
            {"op": "get", "id": "$0"},
        ]),
    );
    let pid = ok(&r[1])["pid"].as_i64().unwrap() as i32;
    ok(&r[2]);
    let after = ok(&r[3]);
    assert_eq!(after["state"], "killed");
    assert_eq!(after["exit"], json!({"signaled": 15}));
    assert!(!alive(pid), "pid {pid} still alive");
}

#[test]
fn process_kill_bad() {
    let r = probe(
        shared_runtime(),
        policy(&[]),
        json!([{"op": "kill", "id": "00000000-0000-4000-8000-000000000000"}, {"op": "kill", "id": "1"}]),
    );
    assert_eq!(err_kind(&r[0]), "not-found");
    assert_eq!(err_kind(&r[1]), "not-found");
}

#[test]
fn process_list_good() {
    // Another session on the same manager holds a process; the guest lists
    // only its own two.
    let runtime = shared_runtime();
    let policy = policy(&["sleep"]);
    let (_other, foreign) = start_in_other_session(runtime, &policy, "sleep", &["30"]);
    let r = probe(
        runtime,
        policy,
        json!([
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "list"},
        ]),
    );
    let mine = [ok(&r[0]).clone(), ok(&r[1]).clone()];
    assert_eq!(ok(&r[2]), &json!(mine));
    assert!(!ok(&r[2]).as_array().unwrap().contains(&json!(foreign)));
}

#[test]
fn process_wait_timeout_good() {
    let (_manager, mut ctx) = session(policy(&["sleep"]));
    let id = ctx
        .start(
            CommandSpec::new("sleep").args(["0.2"]),
            StartSpec::default(),
        )
        .unwrap();
    assert_eq!(
        block_on(ctx.wait(&id, Some(0))).unwrap(),
        None,
        "still running"
    );
    assert!(eventually(Duration::from_secs(10), || block_on(
        ctx.wait(&id, Some(100))
    )
    .unwrap()
    .is_some()));
    assert_eq!(
        block_on(ctx.wait(&id, Some(0))).unwrap(),
        Some(wasmproc_host::process::Exit::Code(0))
    );
}

#[test]
fn process_signal_ignored_by_host_reaches_child_good() {
    // A host started with SIGINT and SIGQUIT ignored (a background job of a
    // shell): its children still get the default dispositions, so SIGINT
    // ends `sleep` at once instead of being ignored with the host.
    let steps = json!([
        {"op": "start", "program": "sleep", "args": ["60"], "stdout": "null", "stderr": "null"},
        {"op": "signal", "id": "$0", "sig": "interrupt"},
        {"op": "wait", "id": "$0", "timeout_ms": 5000},
        {"op": "start", "program": "sleep", "args": ["60"], "stdout": "null", "stderr": "null"},
        {"op": "signal", "id": "$3", "sig": "quit"},
        {"op": "wait", "id": "$3", "timeout_ms": 5000},
    ]);
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", "trap '' INT QUIT; exec \"$0\" \"$@\""])
        .arg(wasmproc_tests::harness::cli_path())
        .args([
            "run",
            wasmproc_tests::guests::PROBE,
            "--allow",
            "sleep",
            "--",
        ])
        .arg(steps.to_string())
        .output()
        .expect("run the CLI with SIGINT and SIGQUIT ignored");
    assert!(out.status.success(), "{out:?}");
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON result per line"))
        .collect();
    assert_eq!(
        ok(&results[2]),
        &json!({"signaled": libc::SIGINT}),
        "{results:?}"
    );
    assert_eq!(
        ok(&results[5]),
        &json!({"signaled": libc::SIGQUIT}),
        "{results:?}"
    );
}
