use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::policy::Limits;
use wasmproc_host::process::Stream;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
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
    block_on(other.kill(&canary)).unwrap();
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
    assert_eq!(
        crate::confine::env_without_tmpdir(&ok(&r[1])["stdout"]),
        format!("{MARKER_VAR}=x\n")
    );
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
    steps.push(json!({"op": "run", "program": "env", "args": [], "env": [["LANG", "C"]]}));
    let r = probe(shared_runtime(), wide, json!(steps));
    for result in &r[..8] {
        assert_eq!(err_kind(result), "denied", "{result}");
        assert!(err_detail(result).contains("exact name"), "{result}");
    }
    assert_eq!(err_kind(&r[8]), "invalid");
    assert_eq!(err_kind(&r[9]), "invalid");
    assert_eq!(
        crate::confine::env_without_tmpdir(&ok(&r[10])["stdout"]),
        "LANG=C\n"
    );
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
    assert!(err.to_string().contains("others can write to"), "{err}");
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
    let looping = policy_with(&[], limits(|l| l.guest_time = Duration::from_millis(500)));
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
    assert!(
        matches!(err, GuestError::TimeLimit(t) if t == Duration::from_millis(500)),
        "{err}"
    );
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

/// Kills every process carrying `marker` (escapees a test made on purpose).
fn kill_marked(marker: &str) {
    for pid in pids_with_env(MARKER_VAR, marker) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn security_env_git_config_ugly() {
    // The attack of a granted `git status --porcelain` plus a `GIT_*`
    // variable grant: GIT_CONFIG_* sets core.fsmonitor, which git runs
    // through a shell. It is denied, naming the variable, and runs nothing.
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.path().join("a"), "a").unwrap();
    git(&["add", "a"]);
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("x");
    let attack = [
        ("GIT_CONFIG_COUNT", "1".to_string()),
        ("GIT_CONFIG_KEY_0", "core.fsmonitor".to_string()),
        (
            "GIT_CONFIG_VALUE_0",
            format!("touch {}; false", marker.display()),
        ),
    ];
    let policy_file = scratch.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        format!(
            "[[program]]\nname = \"git\"\nargs = [[\"status\", \"--porcelain\"]]\n\
             [env]\nallow = [\"GIT_*\"]\n[dirs]\nroots = [{:?}]\n",
            repo.path().display().to_string()
        ),
    )
    .unwrap();
    let policy = Arc::new(Policy::from_file(&policy_file).unwrap());
    let env: Vec<[&str; 2]> = attack.iter().map(|(k, v)| [*k, v.as_str()]).collect();
    let r = probe(
        shared_runtime(),
        policy,
        json!([
            {"op": "run", "program": "git", "args": ["status", "--porcelain"], "env": env},
            {"op": "run", "program": "git", "args": ["status", "--porcelain"]},
            {"op": "run", "program": "git", "args": ["status", "--porcelain"],
             "env": [["GIT_AUTHOR_NAME", "someone"]]},
        ]),
    );
    assert_eq!(err_kind(&r[0]), "denied", "{}", r[0]);
    assert!(err_detail(&r[0]).contains("GIT_CONFIG_COUNT"), "{}", r[0]);
    assert!(!marker.exists(), "the fsmonitor command ran");
    // The grant itself still works, and so does a variable the catalogue
    // does not know.
    assert_eq!(ok(&r[1])["status"], json!({"exited": 0}));
    assert_eq!(ok(&r[2])["stdout"], "A  a\n");
    // The premise: this git does run the command when nothing stops it.
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .envs(attack.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        marker.exists(),
        "git ignored core.fsmonitor: the test proves nothing"
    );
}

#[test]
fn security_run_deadline_escaped_writer_ugly() {
    // A `setsid` escapee keeps writing to the run's stdout. `run` still
    // returns by its deadline (timeout + 2 s): once when the leader exits
    // early, once when the leader never exits and the escapee never pauses.
    let marker = unique_marker("escaped_writer");
    let (_manager, mut ctx) = wasmproc_tests::harness::session(policy(&["sh"]));
    let cases = [
        "setsid sh -c 'while :; do echo x; sleep 0.2; done' & sleep 0.3; exit 0",
        "setsid sh -c 'while :; do echo x; done' & sleep 30",
    ];
    let mut results = Vec::new();
    for script in cases {
        let cmd = CommandSpec::new("sh")
            .args(["-c", script])
            .env(MARKER_VAR, marker.as_str())
            .timeout_ms(1000);
        let started = Instant::now();
        let result = block_on(ctx.run(cmd));
        results.push((started.elapsed(), result));
    }
    kill_marked(&marker);
    for (took, result) in &results {
        assert!(
            *took < Duration::from_secs(3),
            "run took {took:?}: {result:?}"
        );
    }
    let first = results[0].1.as_ref().expect("the leader exited 0");
    assert_eq!(first.exit, Some(wasmproc_host::process::Exit::Code(0)));
    assert!(
        matches!(results[1].1, Err(wasmproc_host::CallError::TimedOut)),
        "{results:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || pids_with_env(
            MARKER_VAR, &marker
        )
        .is_empty()),
        "escapees left behind"
    );
}

#[test]
fn security_call_within_guest_time_good() {
    // A guest with 1.5 s of guest time: a `run` with a long timeout, a
    // `wait` with none and a `kill` of a TERM-ignoring process all return
    // within the guest's remaining time (plus slack), never after it.
    let limits = limits(|l| {
        l.guest_time = Duration::from_millis(1500);
        l.kill_grace = Duration::from_secs(60);
    });
    let (_manager, mut ctx) =
        wasmproc_tests::harness::session(policy_with(&["sleep", "sh"], limits));
    let started = Instant::now();
    let run = block_on(ctx.run(CommandSpec::new("sleep").args(["30"])));
    assert!(
        matches!(run, Err(wasmproc_host::CallError::TimedOut)),
        "{run:?}"
    );
    let id = ctx
        .start(
            CommandSpec::new("sh").args(["-c", "trap '' TERM; sleep 30"]),
            StartSpec::default(),
        )
        .unwrap();
    assert_eq!(
        block_on(ctx.wait(&id, None)).unwrap(),
        None,
        "still running"
    );
    let _ = block_on(ctx.kill(&id));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(3500),
        "calls took {took:?}"
    );
}

/// The fds this process holds on the given pipes, pidfds of the given
/// pids, and monitor threads of the given pids.
fn held_resources(pipes: &[String], pids: &[u32]) -> Vec<String> {
    let mut held = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if pipes.contains(&target) {
            held.push(format!("fd {:?} -> {target}", fd.file_name()));
        }
        if target == "anon_inode:[pidfd]" {
            let info = std::fs::read_to_string(
                std::path::Path::new("/proc/self/fdinfo").join(fd.file_name()),
            )
            .unwrap_or_default();
            if pids.iter().any(|p| info.contains(&format!("Pid:\t{p}\n"))) {
                held.push(format!("pidfd {:?}: {info}", fd.file_name()));
            }
        }
    }
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if pids.iter().any(|p| comm.trim() == format!("pmon-{p}")) {
            held.push(format!("thread {}", comm.trim()));
        }
    }
    held
}

#[test]
fn security_ended_process_holds_no_fd_good() {
    // Ended processes whose 1-byte lossless buffers are full hold no pipe,
    // no pidfd and no monitor thread, without any read; their output stays
    // readable, whole.
    let (_manager, mut ctx) = wasmproc_tests::harness::session(policy(&["sh"]));
    let mut started = Vec::new();
    for _ in 0..16 {
        let id = ctx
            .start(
                CommandSpec::new("sh").args(["-c", "printf abcdef; sleep 0.5"]),
                StartSpec {
                    buffer_bytes: Some(1),
                    ..StartSpec::default()
                },
            )
            .unwrap();
        let pid = ctx.get(&id).unwrap().facts.pid;
        let pipe = std::fs::read_link(format!("/proc/{pid}/fd/1"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(pipe.starts_with("pipe:"), "{pipe}");
        started.push((id, pid, pipe));
    }
    let pipes: Vec<String> = started.iter().map(|s| s.2.clone()).collect();
    let pids: Vec<u32> = started.iter().map(|s| s.1).collect();
    assert!(
        !held_resources(&pipes, &pids).is_empty(),
        "nothing to measure"
    );
    for (id, _, _) in &started {
        assert!(block_on(ctx.wait(id, Some(10_000))).unwrap().is_some());
    }
    assert!(
        eventually(Duration::from_secs(10), || held_resources(&pipes, &pids)
            .is_empty()),
        "still held: {:?}",
        held_resources(&pipes, &pids)
    );
    for (id, _, _) in &started {
        let mut text = Vec::new();
        let mut cursor = 0;
        loop {
            let chunk = block_on(ctx.read(id, Stream::Stdout, cursor, 1024, 1000)).unwrap();
            text.extend_from_slice(&chunk.data);
            cursor = chunk.next;
            if chunk.ended {
                break;
            }
        }
        assert_eq!(text, b"abcdef");
    }
}

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn security_refused_calls_audit_capped_good() {
    // 100 refused calls with 900 KB arguments (90 MB in all) leave an audit
    // file under 1 MiB: one capped record per call, each saying how long
    // the arguments really were, until the guest's audit budget is spent,
    // and then a count of the records not written.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::new().with_sink(Arc::new(JsonLinesSink::open(&path).unwrap()));
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let mut ctx = ProcessCtx::builder(wasmproc_tests::harness::admit(policy(&["true"])), manager)
        .guest("hoarder")
        .audit(audit.clone())
        .build();
    let huge = "A".repeat(900_000);
    for _ in 0..100 {
        let err = block_on(ctx.run(CommandSpec::new("nope").args([&huge]))).unwrap_err();
        assert!(
            matches!(
                err,
                wasmproc_host::CallError::Denied(_) | wasmproc_host::CallError::LimitReached(_)
            ),
            "{err}"
        );
    }
    drop(ctx);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 1 << 20, "audit file is {size} bytes");
    let events = audit_lines(&path);
    let refusals: Vec<&Value> = events.iter().filter(|e| e["operation"] == "run").collect();
    let suppressed: u64 = events
        .iter()
        .filter(|e| e["operation"] == "audit-suppressed")
        .map(|e| e["suppressed"].as_u64().unwrap())
        .sum();
    assert!(refusals.len() >= 50, "{} records written", refusals.len());
    assert_eq!(
        refusals.len() as u64 + suppressed,
        100,
        "every call written or counted"
    );
    assert_eq!(audit.counts().suppressed, suppressed);
    let args = refusals[0]["args"].as_array().unwrap();
    assert!(
        args.last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("900000 bytes"),
        "{args:?}"
    );
}

#[test]
fn security_refused_calls_rate_limited_bad() {
    // Refused calls draw from the rate bucket: past the burst, even a
    // request the policy would deny gets limit-reached.
    let limits = limits(|l| {
        l.starts_per_second = 1;
        l.start_burst = 5;
    });
    let (_manager, mut ctx) = wasmproc_tests::harness::session(policy_with(&["true"], limits));
    let kinds: Vec<&str> = (0..10)
        .map(|_| {
            block_on(ctx.run(CommandSpec::new("nope")))
                .unwrap_err()
                .kind()
        })
        .collect();
    assert_eq!(kinds[..5], ["denied"; 5], "{kinds:?}");
    assert_eq!(kinds[5..], ["limit-reached"; 5], "{kinds:?}");
}

#[test]
fn security_preadmission_refusals_audited_bad() {
    // Oversized run stdin, an oversized buffer, an oversized timeout and
    // `remove` are refused (or done) and every one is audited.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::new().with_sink(Arc::new(JsonLinesSink::open(&path).unwrap()));
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let limits = limits(|l| {
        l.default_stream_buffer_bytes = 1024;
        l.max_stream_buffer_bytes = 4096;
    });
    let mut ctx = ProcessCtx::builder(
        wasmproc_tests::harness::admit(policy_with(&["cat", "true"], limits)),
        manager,
    )
    .guest("edge")
    .audit(audit)
    .build();
    let big_stdin = CommandSpec::new("cat").stdin(vec![b'x'; 8192]);
    let err = block_on(ctx.run(big_stdin)).unwrap_err();
    assert!(err.to_string().contains("max_stream_buffer_bytes"), "{err}");
    let small_stdin = CommandSpec::new("cat").stdin(b"fine".to_vec());
    assert_eq!(block_on(ctx.run(small_stdin)).unwrap().stdout, b"fine");
    let err = ctx
        .start(
            CommandSpec::new("true"),
            StartSpec {
                buffer_bytes: Some(1 << 30),
                ..StartSpec::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("max_stream_buffer_bytes"), "{err}");
    let long = CommandSpec::new("true").timeout_ms(u64::MAX);
    assert!(
        block_on(ctx.run(long))
            .unwrap_err()
            .to_string()
            .contains("(max_timeout)")
    );
    let id = ctx
        .start(CommandSpec::new("true"), StartSpec::default())
        .unwrap();
    block_on(ctx.wait(&id, Some(10_000))).unwrap();
    ctx.remove(&id).unwrap();
    assert_eq!(ctx.remove(&id).unwrap_err().kind(), "not-found");
    let events = audit_lines(&path);
    let refused = |op: &str, needle: &str| {
        events.iter().any(|e| {
            e["operation"] == op
                && e["decision"] == "refused"
                && e["reason"].as_str().unwrap_or_default().contains(needle)
        })
    };
    assert!(refused("run", "stdin"), "{events:#?}");
    assert!(refused("start", "buffer of"), "{events:#?}");
    assert!(refused("run", "(max_timeout)"), "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["operation"] == "remove" && e["decision"] == "allowed"),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["operation"] == "remove" && e["decision"] == "refused"),
        "{events:#?}"
    );
}

#[test]
fn security_run_stopped_at_shutdown_good() {
    // A `run` in progress when the host shuts down: its child gets SIGTERM,
    // then SIGKILL after the grace, like a started process.
    let manager = ProcessManager::builder()
        .grace(Duration::from_millis(1500))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let calls: Vec<_> = [
        "trap 'exit 7' TERM; sleep 30 & wait",
        "trap '' TERM; sleep 30",
    ]
    .into_iter()
    .map(|script| {
        let mut ctx = ProcessCtx::builder(
            wasmproc_tests::harness::admit(policy(&["sh"])),
            Arc::clone(&manager),
        )
        .guest("shut")
        .build();
        std::thread::spawn(move || block_on(ctx.run(CommandSpec::new("sh").args(["-c", script]))))
    })
    .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    wasmproc_host::process::block_on(manager.shutdown());
    let took = started.elapsed();
    let results: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(
        results[0].as_ref().unwrap().exit,
        Some(wasmproc_host::process::Exit::Code(7))
    );
    assert_eq!(
        results[1].as_ref().unwrap().exit,
        Some(wasmproc_host::process::Exit::Signal(libc::SIGKILL))
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "shutdown took {took:?}"
    );
}
