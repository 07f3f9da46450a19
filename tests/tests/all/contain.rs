//! Containment of whole process trees (cgroup v2): a child that leaves its
//! process group with `setsid` is still ended by kill, session end, host
//! SIGKILL and daemon stop; no cgroup stays behind; limits whose controller
//! is missing are refused at load; the weaker fallback is reported.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmproc_host::Policy;
use wasmproc_host::os::CGROUPS_OFF_VAR;
use wasmproc_host::os::Containment;
use wasmproc_host::policy::CgroupLimits;
use wasmproc_host::policy::Limits;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::guests;
use wasmproc_tests::harness::{
    MARKER_VAR, cli_path, ok, policy, probe, session, shared_runtime, spawn_cli_probe,
    unique_marker,
};
use wasmproc_tests::os::{eventually, group_and_session, pids_with_env};

/// How long the kernel gets to end a killed tree.
const LIMIT: Duration = Duration::from_secs(10);

/// The attack: a grandchild that leaves the group and the session, then a
/// leader that stays (so the escapee is not just an orphan of a dead shell).
fn escapee_script(leader_sleep: &str) -> String {
    format!(
        "/usr/bin/setsid /usr/bin/sleep 1004 >/dev/null 2>&1 </dev/null & echo $!; /usr/bin/sleep {leader_sleep}"
    )
}

/// Cgroups must be active on the machines the tests run on (root, cgroup2).
fn require_cgroups() -> &'static Containment {
    let c = Containment::detect();
    assert!(
        c.is_cgroup(),
        "these tests need cgroup v2 containment (root, or a delegated cgroup): {c}"
    );
    c
}

/// Starts the attack in `ctx`, waits for the escapee, checks that it really
/// left the leader's group and session; returns (id, escapee pid).
fn start_escapee(ctx: &mut wasmproc_host::ProcessCtx, marker: &str) -> (String, i32) {
    let id = ctx
        .start(
            CommandSpec::new("sh")
                .args(["-c".to_string(), escapee_script("300")])
                .env(MARKER_VAR, marker),
            StartSpec::default(),
        )
        .expect("start");
    let leader = ctx.get(&id).expect("get").facts.pid as i32;
    let mut escapee = None;
    assert!(
        eventually(LIMIT, || {
            escapee = pids_with_env(MARKER_VAR, marker).into_iter().find(|p| {
                *p != leader && group_and_session(*p).is_some_and(|(g, s)| g == *p && s == *p)
            });
            escapee.is_some()
        }),
        "the setsid escapee never started"
    );
    let escapee = escapee.unwrap();
    let (group, sid) = group_and_session(escapee).unwrap();
    assert_ne!(group, leader, "the escapee left the leader's group");
    assert_eq!(sid, escapee, "the escapee leads a session of its own");
    (id, escapee)
}

fn gone(marker: &str) -> bool {
    eventually(LIMIT, || pids_with_env(MARKER_VAR, marker).is_empty())
}

#[test]
fn contain_setsid_escapee_kill_good() {
    require_cgroups();
    let marker = unique_marker("contain_kill");
    let (_manager, mut ctx) = session(policy(&["sh"]));
    let (id, escapee) = start_escapee(&mut ctx, &marker);
    block_on(ctx.kill(&id)).expect("kill");
    assert!(
        gone(&marker),
        "escapee {escapee} survived kill: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
}

#[test]
fn contain_setsid_escapee_session_end_good() {
    require_cgroups();
    let marker = unique_marker("contain_session_end");
    let (_manager, mut ctx) = session(policy(&["sh"]));
    let (_id, escapee) = start_escapee(&mut ctx, &marker);
    drop(ctx);
    assert!(
        eventually(LIMIT, || gone(&marker)),
        "escapee {escapee} survived the session: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
    // The issue's exact attack through a guest's `run`: the shell exits
    // after 0.3 s and its escapee must not outlive the call.
    let marker = unique_marker("contain_run_attack");
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([{"op": "run", "program": "sh", "args": ["-c", escapee_script("0.3")],
                "env": [[MARKER_VAR, marker]]}]),
    );
    let escapee: i32 = ok(&r[0])["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone(&marker),
        "escapee {escapee} of `run` survived the guest"
    );
}

#[test]
fn contain_setsid_escapee_host_sigkill_ugly() {
    require_cgroups();
    let marker = unique_marker("contain_host_sigkill");
    let steps = json!([
        {"op": "start", "program": "sh", "args": ["-c", escapee_script("300")],
         "env": [[MARKER_VAR, marker]]},
        {"op": "sleep_ms", "ms": 60000},
    ]);
    let mut host = spawn_cli_probe(&["sh"], &steps);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(host.stdout.take().unwrap()));
    let started = lines
        .next()
        .is_some_and(|l| l.is_ok_and(|l| l.contains("\"ok\"")));
    let escaped = started
        && eventually(LIMIT, || {
            pids_with_env(MARKER_VAR, &marker)
                .iter()
                .any(|p| group_and_session(*p).is_some_and(|(g, s)| g == *p && s == *p))
        });
    let host_pid = host.id();
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(host_pid as i32, libc::SIGKILL) };
    host.wait().unwrap();
    assert!(escaped, "the escapee never started");
    assert!(
        gone(&marker),
        "escapee survived a host SIGKILL: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
    assert!(
        eventually(LIMIT, || host_subtrees(host_pid).is_empty()),
        "the watchdog left cgroups behind: {:?}",
        host_subtrees(host_pid)
    );
}

/// However the CLI ends (a compile, a guest run to its end, a guest that
/// leaves a background tree running, a component that cannot be read),
/// its cgroup subtree is gone after it: a leftover would hold a name a
/// later host with the same pid wants.
#[test]
fn contain_cli_exit_leaves_no_cgroup_good() {
    require_cgroups();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("contain_cli_exit");
    let left_running = json!([
        {"op": "start", "program": "sh", "args": ["-c", escapee_script("300")],
         "env": [[MARKER_VAR, marker]]},
    ]);
    let missing = dir.path().join("missing.wasm");
    let cli = |args: &[&str]| {
        std::process::Command::new(cli_path())
            .args(args)
            .env("WASMPROC_CACHE_DIR", dir.path().join("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the wasmproc CLI")
    };
    let cases = [
        ("compile", cli(&["compile", guests::HELLO])),
        ("run", cli(&["run", guests::HELLO])),
        (
            "run, a background tree left",
            spawn_cli_probe(&["sh"], &left_running),
        ),
        (
            "run, unreadable component",
            cli(&["run", missing.to_str().unwrap()]),
        ),
    ];
    for (case, mut cli) in cases {
        let pid = cli.id();
        cli.wait().unwrap();
        assert!(
            eventually(LIMIT, || host_subtrees(pid).is_empty()),
            "{case}: cgroups left behind: {:?}",
            host_subtrees(pid)
        );
    }
    assert!(gone(&marker), "the background tree outlived the CLI");
}

/// The cgroup subtrees a host process made under the cgroup base.
fn host_subtrees(pid: u32) -> Vec<PathBuf> {
    let Containment::Cgroup { base, .. } = Containment::detect() else {
        return Vec::new();
    };
    let prefix = format!("wasmproc-{pid}-");
    std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn contain_daemon_tree_stop_good() {
    require_cgroups();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("contain_daemon");
    let text = format!(
        r#"
[[policy.program]]
name = "sh"
[policy.env]
allow = ["{MARKER_VAR}"]

[[daemon]]
name = "forker"
program = "sh"
args = ["-c", "{}"]
env = {{ {MARKER_VAR} = "{marker}" }}
stop_grace = "5s"
"#,
        escapee_script("300")
    );
    let config = wasmproc_supervisor::HostConfig::parse(&text, dir.path()).expect("config");
    let supervisor = wasmproc_supervisor::Supervisor::new(
        &config,
        wasmproc_host::ProcessManager::builder()
            .grace(Duration::from_secs(2))
            .host_effects(wasmproc_host::process::HostEffects::ALL)
            .build(),
        wasmproc_supervisor::SupervisorOptions::default(),
    )
    .expect("supervisor");
    supervisor.start("forker").expect("start");
    assert!(
        eventually(LIMIT, || pids_with_env(MARKER_VAR, &marker).iter().any(
            |p| group_and_session(*p).is_some_and(|(g, s)| g == *p && s == *p)
        )),
        "the daemon's escapee never started"
    );
    supervisor.stop("forker").expect("stop");
    assert!(
        gone(&marker),
        "the daemon's escapee survived stop: {:?}",
        pids_with_env(MARKER_VAR, &marker)
    );
}

/// Zombie children of this process that were in a cgroup below `root` (a
/// zombie keeps its cgroup path).
fn zombies_from(root: &Path) -> Vec<u32> {
    let relative = format!("/{}/", root.file_name().unwrap().to_string_lossy());
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            stat.contains(&format!(") Z {me} ")) && cgroup.contains(&relative)
        })
        .collect()
}

/// Cgroup directories below `dir` (itself included).
fn cgroups_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.is_dir() {
        out.push(dir.to_path_buf());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(cgroups_under(&entry.path()));
            }
        }
    }
    out
}

/// A session granted `sh` and `true`, after one run of `true`; with its
/// manager and the manager's cgroup.
fn session_after_a_run() -> (
    std::sync::Arc<wasmproc_host::ProcessManager>,
    wasmproc_host::ProcessCtx,
    PathBuf,
) {
    let (manager, mut ctx) = session(policy(&["sh", "true"]));
    let root = manager
        .cgroup()
        .expect("the manager has a cgroup")
        .to_path_buf();
    block_on(ctx.run(CommandSpec::new("true"))).expect("run");
    (manager, ctx, root)
}

#[test]
fn contain_no_cgroup_left_behind_good() {
    require_cgroups();
    let marker = unique_marker("contain_leftovers");
    // A run, a started process killed, and one still running at session end.
    let (manager, mut ctx, root) = session_after_a_run();
    let (killed, _) = start_escapee(&mut ctx, &marker);
    let (running, _) = start_escapee(&mut ctx, &format!("{marker}-2"));
    let during = cgroups_under(&root);
    // root, the session's scope, and one cgroup per live process (the
    // run's, kept when it ended, serves the first).
    assert_eq!(during.len(), 4, "{during:?}");
    block_on(ctx.kill(&killed)).expect("kill");
    // The killed process's cgroup, escapee and all, is empty: removed, or
    // kept for the session's next process. Only the running one holds
    // processes.
    let running_pid = ctx.get(&running).expect("get").facts.pid;
    let running_cgroup =
        std::fs::read_to_string(format!("/proc/{running_pid}/cgroup")).expect("its cgroup");
    let populated: Vec<PathBuf> = cgroups_under(&root)
        .into_iter()
        .filter(|dir| {
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("p-"))
        })
        .filter(|dir| {
            std::fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l == "populated 1"))
        })
        .collect();
    assert_eq!(populated.len(), 1, "{populated:?}");
    let name = populated[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        running_cgroup.trim_end().ends_with(&format!("/{name}")),
        "{running_cgroup} in {populated:?}"
    );
    assert!(
        eventually(LIMIT, || gone(&marker)),
        "the killed process's escapee was ended with its cgroup"
    );
    // A drop kills at once and waits for nothing: the cgroups go once the
    // killed processes have left them.
    drop(ctx);
    assert!(
        eventually(LIMIT, || cgroups_under(&root) == vec![root.clone()]),
        "the session's cgroups were removed: {:?}",
        cgroups_under(&root)
    );
    assert!(eventually(LIMIT, || gone(&marker) && gone(&format!("{marker}-2"))));
    drop(manager);
    assert!(
        eventually(LIMIT, || !root.exists()),
        "the manager's cgroup was removed"
    );
    // Orphans killed with their cgroup were reaped by the host (a
    // subreaper): no zombie child is left from this manager's cgroups.
    let leftover = || zombies_from(&root);
    assert!(
        eventually(LIMIT, || leftover().is_empty()),
        "{:?}",
        leftover()
    );
}

#[test]
fn contain_scope_removed_from_outside_ugly() {
    // Another root process kills and removes the manager's whole cgroup
    // subtree under a running session. The next start makes the subtree
    // and the session's cgroup again (instead of failing every start with
    // ENOENT for the rest of the session), and its process is contained.
    require_cgroups();
    let marker = unique_marker("contain_removed");
    let (manager, mut ctx, root) = session_after_a_run();
    assert_eq!(
        cgroups_under(&root).len(),
        3,
        "the root, the session's scope, and the cgroup of its ended run, kept for reuse"
    );
    std::fs::write(root.join("cgroup.kill"), "1").expect("cgroup.kill");
    for dir in cgroups_under(&root).into_iter().rev() {
        assert!(
            eventually(LIMIT, || std::fs::remove_dir(&dir).is_ok()),
            "cannot remove {}",
            dir.display()
        );
    }
    assert!(!root.exists());
    let (id, _) = start_escapee(&mut ctx, &marker);
    let during = cgroups_under(&root);
    assert_eq!(during.len(), 3, "root, scope and the process's: {during:?}");
    let leader = ctx.get(&id).expect("get").facts.pid;
    let own = std::fs::read_to_string(format!("/proc/{leader}/cgroup")).expect("cgroup");
    let root_name = root.file_name().unwrap().to_string_lossy().into_owned();
    assert!(own.contains(&root_name), "{own}");
    drop(ctx);
    assert!(
        eventually(LIMIT, || gone(&marker)),
        "the escapee was ended with the remade cgroup"
    );
    drop(manager);
}

#[test]
fn contain_fork_bomb_pids_max_ugly() {
    let containment = require_cgroups();
    let limits = Limits {
        cgroup: CgroupLimits {
            process_pids_max: Some(16),
            ..CgroupLimits::default()
        },
        ..Limits::default()
    };
    let Err(missing) = containment_allows(containment, "pids") else {
        let policy = wasmproc_tests::harness::policy_with(&["sh"], limits);
        let marker = unique_marker("contain_fork_bomb");
        let (_manager, mut ctx) = session(policy);
        // A bounded bomb: 200 background sleeps; pids.max lets 16 exist.
        let id = ctx
            .start(
                CommandSpec::new("sh")
                    .args([
                        "-c",
                        "n=0; while [ $n -lt 200 ]; do /usr/bin/sleep 30 & n=$((n+1)); done 2>/dev/null; wait",
                    ])
                    .env(MARKER_VAR, marker.as_str()),
                StartSpec::default(),
            )
            .expect("start");
        assert!(eventually(LIMIT, || pids_with_env(MARKER_VAR, &marker)
            .len()
            >= 8));
        std::thread::sleep(Duration::from_secs(1));
        let live = pids_with_env(MARKER_VAR, &marker).len();
        assert!(live <= 16, "pids.max did not hold: {live} processes");
        block_on(ctx.kill(&id)).expect("kill");
        assert!(gone(&marker));
        return;
    };
    // The controller is missing here: the limit is refused at load, so a
    // fork bomb is never believed to be capped.
    println!("pids controller missing ({missing}); asserting the refusal path instead");
    let refused = Policy::builder()
        .allow_program("sh")
        .limits(limits)
        .build()
        .expect_err("a pids limit without the pids controller must be refused");
    let text = refused.to_string();
    assert!(text.contains("process_pids_max"), "{text}");
    assert!(text.contains("`pids` controller"), "{text}");
}

fn containment_allows(c: &Containment, controller: &str) -> Result<(), String> {
    match c {
        Containment::Cgroup { controllers, .. } if controllers.iter().any(|x| x == controller) => {
            Ok(())
        }
        other => Err(other.to_string()),
    }
}

#[test]
fn contain_limit_without_controller_bad() {
    // In this process: every limit whose controller is not enabled is
    // refused, naming the field and the controller.
    let containment = Containment::detect();
    for (controller, limits) in [
        (
            "pids",
            CgroupLimits {
                guest_pids_max: Some(8),
                ..CgroupLimits::default()
            },
        ),
        (
            "memory",
            CgroupLimits {
                process_memory_max: Some(1 << 26),
                ..CgroupLimits::default()
            },
        ),
        (
            "cpu",
            CgroupLimits {
                guest_cpu_max: Some("50000 100000".into()),
                ..CgroupLimits::default()
            },
        ),
    ] {
        let built = Policy::builder()
            .limits(Limits {
                cgroup: limits,
                ..Limits::default()
            })
            .build();
        match containment_allows(containment, controller) {
            Ok(()) => assert!(built.is_ok(), "{controller} is enabled: {built:?}"),
            Err(_) => {
                println!("{controller} controller missing: asserting the refusal");
                let text = built.expect_err("refused").to_string();
                assert!(
                    text.contains(&format!("`{controller}` controller")),
                    "{text}"
                );
                assert!(text.contains("[limits]"), "{text}");
            }
        }
    }
    // With cgroups turned off every cgroup limit is refused by the CLI at
    // load, with the reason, and nothing runs.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "[limits.cgroup]\nguest_pids_max = 64\n").unwrap();
    let out = std::process::Command::new(cli_path())
        .env(CGROUPS_OFF_VAR, "off")
        .args(["run", guests::HELLO, "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("guest_pids_max"), "{stderr}");
    assert!(
        stderr.contains(&format!("{CGROUPS_OFF_VAR}=off")),
        "{stderr}"
    );
    assert!(stderr.contains("`pids` controller is missing"), "{stderr}");
}

#[test]
fn contain_fallback_reported_good() {
    let run = |off: bool| {
        let mut cmd = std::process::Command::new(cli_path());
        if off {
            cmd.env(CGROUPS_OFF_VAR, "off");
        } else {
            cmd.env_remove(CGROUPS_OFF_VAR);
        }
        let out = cmd
            .args(["run", guests::PROBE, "--allow", "true", "--"])
            .arg(json!([{"op": "run", "program": "true", "args": []}]).to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let weaker = run(true);
    let lines: Vec<&str> = weaker
        .lines()
        .filter(|l| l.contains("containment"))
        .collect();
    assert_eq!(lines.len(), 1, "{weaker}");
    assert!(lines[0].contains("process groups only"), "{weaker}");
    assert!(
        lines[0].contains(&format!("{CGROUPS_OFF_VAR}=off")),
        "{weaker}"
    );
    assert!(
        lines[0].contains("Delegate=yes"),
        "names what would make it stronger: {weaker}"
    );
    require_cgroups();
    let contained = run(false);
    assert!(
        !contained.contains("containment"),
        "nothing is printed with cgroups: {contained}"
    );
}

#[test]
fn contain_get_usage_good() {
    // `get` reports CPU time from the process's cgroup (and memory peak
    // where the memory controller is enabled).
    let containment = require_cgroups();
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([
            {"op": "start", "program": "sh", "args": ["-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 300"]},
            {"op": "sleep_ms", "ms": 1500},
            {"op": "get", "id": "$0"},
            {"op": "kill", "id": "$0"},
            {"op": "get", "id": "$0"},
        ]),
    );
    for i in [2, 4] {
        let info = ok(&r[i]);
        assert!(
            info["cpu_time_us"].as_u64().is_some_and(|t| t > 1000),
            "{info}"
        );
        let has_memory = containment_allows(containment, "memory").is_ok();
        assert_eq!(info["memory_peak_bytes"].is_u64(), has_memory, "{info}");
    }
}

#[test]
fn contain_cgroup_reused_usage_own_good() {
    // A process cgroup whose process ended empty is taken by the next
    // process of the session, and each process's usage is its own: the
    // CPU time the first burnt is not counted again for the second.
    require_cgroups();
    let busy = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
    let r = probe(
        shared_runtime(),
        policy(&["sh"]),
        json!([
            {"op": "start", "program": "sh", "args": ["-c", busy]},
            {"op": "wait", "id": "$0"},
            {"op": "get", "id": "$0"},
            {"op": "start", "program": "sh", "args": ["-c", ":"]},
            {"op": "wait", "id": "$3"},
            {"op": "get", "id": "$3"},
        ]),
    );
    let first = ok(&r[2]);
    let second = ok(&r[5]);
    let busy_us = first["cpu_time_us"]
        .as_u64()
        .expect("cpu time of the busy loop");
    let idle_us = second["cpu_time_us"].as_u64().expect("cpu time of `:`");
    assert!(busy_us > 50_000, "the loop burnt CPU: {first}");
    assert!(
        idle_us < busy_us / 4,
        "the second process is charged only its own time: {idle_us} µs after {busy_us} µs"
    );
}
