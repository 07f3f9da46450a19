use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::{GuestError, GuestOptions, GuestStdio, Limits, Policy};
use wasmproc_tests::guests;
use wasmproc_tests::harness::{
    MARKER_VAR, component, err_detail, err_kind, ok, policy, policy_with, probe, shared_runtime,
    start_in_other_session, unique_marker,
};
use wasmproc_tests::os::{alive, eventually, pids_with_env};

#[test]
fn security_kill_foreign_id_bad() {
    // Another guest's id, a made-up id, and ids shaped like PIDs or groups
    // are all not-found; the other guest's process (the canary) lives on.
    let runtime = shared_runtime();
    let policy = policy(&["sleep"]);
    let (mut other, canary) = start_in_other_session(runtime, &policy, "sleep", &["30"]);
    let canary_pid = other.get(&canary).unwrap().facts.pid as i32;
    let host_pid = std::process::id().to_string();
    let r = probe(
        runtime,
        policy,
        json!([
            {"op": "kill", "id": canary},
            {"op": "signal", "id": canary, "sig": "kill"},
            {"op": "get", "id": canary},
            {"op": "wait", "id": canary, "timeout_ms": 0},
            {"op": "kill", "id": "6f1c2a9e-3b7d-4c1e-9f00-1234567890ab"},
            {"op": "kill", "id": host_pid},
            {"op": "kill", "id": "0"},
            {"op": "kill", "id": "-1"},
        ]),
    );
    for (i, result) in r.iter().enumerate() {
        assert_eq!(err_kind(result), "not-found", "step {i}: {result}");
    }
    assert!(alive(canary_pid), "the canary was signalled");
    other.kill(&canary).unwrap();
}

#[test]
fn security_kill_after_exit_ugly() {
    // Once a process has exited and been reaped, kill and signal do nothing:
    // its PID may already belong to a stranger.
    let r = probe(
        shared_runtime(),
        policy(&["true"]),
        json!([
            {"op": "start", "program": "true", "args": []},
            {"op": "wait", "id": "$0", "timeout_ms": 10000},
            {"op": "kill", "id": "$0"},
            {"op": "signal", "id": "$0", "sig": "kill"},
            {"op": "get", "id": "$0"},
        ]),
    );
    assert_eq!(ok(&r[1]), &json!({"exited": 0}));
    ok(&r[2]);
    ok(&r[3]);
    let info = ok(&r[4]);
    assert_eq!(info["state"], "exited");
    assert_eq!(info["exit"], json!({"exited": 0}));
}

#[test]
fn security_group_kill_grandchildren_ugly() {
    let marker = unique_marker("group_kill");
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([
            {"op": "start", "program": "sh", "args": ["-c", "sleep 300 & sleep 300 & wait"],
             "env": [[MARKER_VAR, marker]]},
            {"op": "sleep_ms", "ms": 300},
            {"op": "kill", "id": "$0"},
        ]),
    );
    ok(&r[2]);
    assert!(
        eventually(Duration::from_secs(2), || pids_with_env(
            MARKER_VAR, &marker
        )
        .is_empty()),
        "grandchildren survived: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
}

#[test]
fn security_group_leftovers_die_with_leader_ugly() {
    // `run` of a command that leaves a background grandchild holding the
    // pipes returns promptly: the group ends with its leader.
    let marker = unique_marker("leftovers");
    let started = Instant::now();
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([{"op": "run", "program": "sh", "args": ["-c", "echo hi; sleep 300 &"],
                "env": [[MARKER_VAR, marker]]}]),
    );
    assert_eq!(ok(&r[0])["stdout"], "hi\n");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(eventually(Duration::from_secs(2), || pids_with_env(
        MARKER_VAR, &marker
    )
    .is_empty()));
}

#[test]
fn security_host_sigkill_no_orphans_ugly() {
    // The CLI host starts processes that fork, then is SIGKILLed: the
    // watchdog kills every group within 2 s.
    let marker = unique_marker("host_sigkill");
    let steps = json!([
        {"op": "start", "program": "sh", "args": ["-c", "sleep 300 & sleep 300 & wait"],
         "env": [[MARKER_VAR, marker]]},
        {"op": "start", "program": "sleep", "args": ["300"], "env": [[MARKER_VAR, marker]]},
        {"op": "sleep_ms", "ms": 60000},
    ]);
    let mut host = wasmproc_tests::harness::spawn_cli_probe(&["sh", "sleep"], &steps);
    // Both `start` calls have returned (the guest printed their results), so
    // the host has recorded both groups; then the grandchildren are up.
    let mut results = std::io::BufRead::lines(std::io::BufReader::new(host.stdout.take().unwrap()));
    let both_returned = (0..2).all(|_| {
        results
            .next()
            .is_some_and(|l| l.is_ok_and(|l| l.contains("\"ok\"")))
    });
    let all_started = both_returned
        && eventually(Duration::from_secs(60), || {
            pids_with_env(MARKER_VAR, &marker).len() >= 4
        });
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(host.id() as i32, libc::SIGKILL) };
    host.wait().unwrap();
    assert!(all_started, "children never started");
    assert!(
        eventually(Duration::from_secs(2), || pids_with_env(
            MARKER_VAR, &marker
        )
        .is_empty()),
        "orphans after host SIGKILL: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
}

#[test]
fn security_sigpipe_default_good() {
    // The host ignores SIGPIPE; children must not inherit that, or
    // `yes | head -1` would never end.
    let started = Instant::now();
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([{"op": "run", "program": "sh", "args": ["-c", "yes | head -1"], "timeout_ms": 20000}]),
    );
    assert_eq!(ok(&r[0])["stdout"], "y\n");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn security_child_hygiene_good() {
    // Only fds 0-2, an environment holding only what was granted, stdin
    // closed, no shell: `ls -l /proc/self/fd` is run directly.
    let r = probe(
        shared_runtime(),
        policy(&["ls", "env", "cat"]),
        json!([
            {"op": "run", "program": "ls", "args": ["/proc/self/fd"]},
            {"op": "run", "program": "env", "args": [], "env": [[MARKER_VAR, "x"]]},
            {"op": "run", "program": "cat", "args": []},
        ]),
    );
    // ls itself opens one directory fd (3) to list the others.
    assert_eq!(ok(&r[0])["stdout"], "0\n1\n2\n3\n");
    assert_eq!(ok(&r[1])["stdout"], format!("{MARKER_VAR}=x\n"));
    assert_eq!(ok(&r[2])["stdout"], "");
    assert_eq!(ok(&r[2])["status"], json!({"exited": 0}));
}

#[test]
fn security_env_injection_bad() {
    let wide = Arc::new(
        Policy::builder()
            .allow_program("env")
            .allow_env("*")
            .build()
            .unwrap(),
    );
    let mut steps = Vec::new();
    for name in [
        "LD_PRELOAD",
        "LD_AUDIT",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "GCONV_PATH",
        "BASH_ENV",
        "ENV",
        "PATH",
    ] {
        steps
            .push(json!({"op": "run", "program": "env", "args": [], "env": [[name, "/tmp/evil"]]}));
    }
    steps.push(json!({"op": "run", "program": "env", "args": [], "env": [["A=B", "x"]]}));
    steps.push(json!({"op": "run", "program": "env", "args": [], "env": [["A", "x\u{0}y"]]}));
    steps.push(json!({"op": "run", "program": "env", "args": [], "env": [["FINE", "1"]]}));
    let r = probe(shared_runtime(), wide, json!(steps));
    for result in &r[..8] {
        assert_eq!(err_kind(result), "denied", "{result}");
        assert!(err_detail(result).contains("hook"), "{result}");
    }
    assert_eq!(err_kind(&r[8]), "invalid");
    assert_eq!(err_kind(&r[9]), "invalid");
    assert_eq!(ok(&r[10])["stdout"], "FINE=1\n");
    // A variable that no grant covers.
    let narrow = policy(&["env"]);
    let r = probe(
        shared_runtime(),
        narrow,
        json!([{"op": "run", "program": "env", "args": [], "env": [["OTHER", "1"]]}]),
    );
    assert_eq!(err_kind(&r[0]), "denied");
    assert!(err_detail(&r[0]).contains("OTHER"));
}

#[test]
fn security_cwd_escape_bad() {
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("work");
    std::fs::create_dir(&inside).unwrap();
    std::os::unix::fs::symlink("/etc", inside.join("out")).unwrap();
    let policy = Arc::new(
        Policy::builder()
            .allow_program("pwd")
            .allow_dir(inside.to_str().unwrap())
            .build()
            .unwrap(),
    );
    let r = probe(
        shared_runtime(),
        policy,
        json!([
            {"op": "run", "program": "pwd", "args": [], "cwd": ".."},
            {"op": "run", "program": "pwd", "args": [], "cwd": "out"},
            {"op": "run", "program": "pwd", "args": [], "cwd": "/etc"},
            {"op": "run", "program": "pwd", "args": [], "cwd": "a\u{0}b"},
            {"op": "run", "program": "pwd", "args": [], "cwd": "."},
            {"op": "run", "program": "pwd", "args": []},
        ]),
    );
    for result in &r[..3] {
        assert_eq!(err_kind(result), "denied", "{result}");
        assert!(
            err_detail(result).contains("outside the granted roots"),
            "{result}"
        );
    }
    assert_eq!(err_kind(&r[3]), "invalid");
    let canonical = inside.canonicalize().unwrap();
    assert_eq!(ok(&r[4])["stdout"], format!("{}\n", canonical.display()));
    assert_eq!(ok(&r[5])["stdout"], format!("{}\n", canonical.display()));
}

#[test]
fn security_program_path_hijack_bad() {
    // 1. A bare name found through a world-writable directory is refused
    //    when the policy loads.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("git");
    std::fs::write(&fake, "#!/bin/sh\necho hijacked\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let search = format!("{}:/usr/bin:/bin", dir.path().display());
    let err = Policy::builder()
        .search_path(&search)
        .allow_program("git")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("every user can write"), "{err}");
    // 2. A relative search-path entry is never used.
    let err = Policy::builder()
        .search_path(".")
        .allow_program("git")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    // 3. The guest cannot reach another binary by path tricks, and cannot
    //    redirect the child's PATH.
    let policy = policy(&["echo"]);
    let r = probe(
        shared_runtime(),
        policy,
        json!([
            {"op": "run", "program": fake.to_str().unwrap(), "args": []},
            {"op": "run", "program": "/usr/bin/../bin/echo", "args": []},
            {"op": "run", "program": "./echo", "args": []},
            {"op": "run", "program": "echo", "args": [], "env": [["PATH", dir.path().to_str().unwrap()]]},
        ]),
    );
    for result in &r {
        assert_eq!(err_kind(result), "denied", "{result}");
    }
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

#[test]
fn security_guest_infinite_loop_ugly() {
    // `loop {}` traps at its deadline while another guest, running at the
    // same time, finishes normally.
    let runtime = shared_runtime();
    let spin = component(runtime, guests::SPIN);
    let looping = policy_with(&[], limits(|l| l.guest_time_ms = 500));
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        runtime.run(
            &spin,
            GuestOptions {
                name: "spin".into(),
                args: vec![],
                policy: looping,
                stdio: GuestStdio::Capture,
            },
        )
    });
    let r = probe(
        runtime,
        policy(&["echo"]),
        json!([{"op": "run", "program": "echo", "args": ["alive"]}]),
    );
    assert_eq!(ok(&r[0])["stdout"], "alive\n");
    let err = handle.join().unwrap().unwrap_err();
    assert!(matches!(err, GuestError::TimeLimit(500)), "{err}");
    assert!(err.to_string().contains("time limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn security_guest_memory_cap_ugly() {
    let runtime = shared_runtime();
    let capped = policy_with(&[], limits(|l| l.guest_memory_bytes = 64 << 20));
    let grow = component(runtime, guests::GROW);
    let outcome = runtime
        .run(
            &grow,
            GuestOptions {
                name: "grow".into(),
                args: vec![],
                policy: capped,
                stdio: GuestStdio::Capture,
            },
        )
        .unwrap();
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let mib: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("grow failed at "))
        .and_then(|l| l.trim_end_matches(" MiB").parse().ok())
        .unwrap_or_else(|| panic!("no failure line in {stdout}"));
    assert!(mib <= 64, "grew to {mib} MiB past a 64 MiB cap");
    assert_ne!(outcome.exit_code, 0);
    // The host and other guests carry on.
    let r = probe(
        runtime,
        policy(&["echo"]),
        json!([{"op": "run", "program": "echo", "args": ["ok"]}]),
    );
    assert_eq!(ok(&r[0])["stdout"], "ok\n");
}

#[test]
fn security_output_bomb_ugly() {
    // 100 MB on each stream: capture keeps the cap, counts the rest, and
    // the run ends promptly. 1 MiB on stderr before any stdout does not
    // deadlock.
    let cap = 1 << 20;
    let policy = policy_with(&["sh"], limits(|l| l.max_capture_bytes = cap));
    let started = Instant::now();
    let r = probe(
        shared_runtime(),
        policy,
        json!([
            {"op": "run", "program": "sh", "args": ["-c", "head -c 100000000 /dev/zero & head -c 100000000 /dev/zero >&2; wait"]},
            {"op": "run", "program": "sh", "args": ["-c", "head -c 1048576 /dev/zero >&2; echo done"]},
        ]),
    );
    let bomb = ok(&r[0]);
    assert_eq!(bomb["stdout_len"], cap);
    assert_eq!(bomb["stderr_len"], cap);
    assert_eq!(bomb["stdout_dropped"], 100_000_000 - cap);
    assert_eq!(bomb["stderr_dropped"], 100_000_000 - cap);
    let late = ok(&r[1]);
    assert_eq!(late["stdout"], "done\n");
    assert_eq!(late["stderr_len"], 1 << 20);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn security_guest_resource_cap_ugly() {
    // A guest that hoards WASI handles traps at the cap instead of growing
    // host memory; the host carries on.
    let runtime = shared_runtime();
    let hoard = component(runtime, guests::HOARD);
    let capped = policy_with(&[], limits(|l| l.guest_resources = 2000));
    let err = runtime
        .run(
            &hoard,
            GuestOptions {
                name: "hoard".into(),
                args: vec![],
                policy: capped,
                stdio: GuestStdio::Capture,
            },
        )
        .unwrap_err();
    assert!(matches!(err, GuestError::ResourceLimit(2000)), "{err}");
    assert!(err.to_string().contains("guest_resources"), "{err}");
    let r = probe(
        runtime,
        policy(&["echo"]),
        json!([{"op": "run", "program": "echo", "args": ["ok"]}]),
    );
    assert_eq!(ok(&r[0])["stdout"], "ok\n");
}
