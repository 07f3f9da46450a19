use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::ProcessCtx;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::{MARKER_VAR, ok, own_runtime, policy, probe, unique_marker};
use wasmproc_tests::os::{eventually, pids_with_env};

fn marked(program: &str, args: &[&str], marker: &str) -> CommandSpec {
    CommandSpec::new(program)
        .args(args.iter().copied())
        .env(MARKER_VAR, marker)
}

#[test]
fn runtime_shutdown_good() {
    // Processes of two live sessions, one with a grandchild and one that
    // ignores SIGTERM: shutdown stops and reaps every one.
    let runtime = own_runtime(RuntimeConfig {
        shutdown_grace: Duration::from_millis(300),
        ..RuntimeConfig::default()
    });
    let marker = unique_marker("runtime_shutdown_good");
    let policy = policy(&["sleep", "sh"]);
    let mut a = ProcessCtx::builder(
        wasmproc_tests::harness::admit(Arc::clone(&policy)),
        Arc::clone(runtime.manager()),
    )
    .guest("a")
    .build();
    let mut b = ProcessCtx::builder(
        wasmproc_tests::harness::admit(Arc::clone(&policy)),
        Arc::clone(runtime.manager()),
    )
    .guest("b")
    .build();
    a.start(marked("sleep", &["30"], &marker), StartSpec::default())
        .unwrap();
    a.start(
        marked("sh", &["-c", "sleep 30 & sleep 30"], &marker),
        StartSpec::default(),
    )
    .unwrap();
    b.start(
        marked("sh", &["-c", "trap '' TERM; sleep 30"], &marker),
        StartSpec::default(),
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(5), || pids_with_env(
        MARKER_VAR, &marker
    )
    .len()
        >= 5));
    wasmproc_host::process::block_on(runtime.shutdown());
    let left = pids_with_env(MARKER_VAR, &marker);
    assert!(left.is_empty(), "left running after shutdown: {left:?}");
    assert!(runtime.manager().processes().is_empty());
    assert!(a.list().is_empty() && b.list().is_empty());
}

#[test]
fn runtime_session_end_stops_processes_good() {
    // A guest that starts processes and returns: its session's processes
    // are stopped when it ends.
    let runtime = own_runtime(RuntimeConfig::default());
    let marker = unique_marker("runtime_session_end");
    let r = probe(
        &runtime,
        policy(&["sleep"]),
        json!([{"op": "start", "program": "sleep", "args": ["30"], "env": [[MARKER_VAR, marker]]}]),
    );
    ok(&r[0]);
    assert!(pids_with_env(MARKER_VAR, &marker).is_empty());
    assert!(runtime.manager().processes().is_empty());
}
