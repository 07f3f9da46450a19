//! Tests that measure process-wide resources (fds, zombies, memory). They
//! run one at a time, in a binary of their own, so nothing else moves the
//! numbers.

use std::sync::Mutex;
use wasmproc_host::CallError;
use wasmproc_host::policy::Limits;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::{policy_with, session};
use wasmproc_tests::os::{open_fds, rss_kib, zombie_children};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn generous() -> Limits {
    Limits {
        starts_per_second: 100_000,
        start_burst: 100_000,
        ..Limits::default()
    }
}

#[test]
fn security_start_kill_cycles_no_zombies_ugly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_manager, mut ctx) = session(policy_with(&["sleep"], generous()));
    // Warm up once so lazily opened fds are in the baseline.
    let id = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    block_on(ctx.kill(&id)).unwrap();
    ctx.remove(&id).unwrap();
    let fds = open_fds();
    for _ in 0..2000 {
        let id = ctx
            .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
            .unwrap();
        block_on(ctx.kill(&id)).unwrap();
    }
    assert_eq!(zombie_children(), 0);
    // Ended records hold no fds once their monitors finish.
    assert!(
        wasmproc_tests::os::eventually(std::time::Duration::from_secs(5), || open_fds() <= fds),
        "fds: {} before, {} after",
        fds,
        open_fds()
    );
}

#[test]
fn security_start_quota_bad() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits {
        max_live_processes: 16,
        ..generous()
    };
    let (_manager, mut ctx) = session(policy_with(&["sleep"], limits));
    let rss_before = rss_kib();
    let mut started = 0;
    let mut refused = 0;
    for _ in 0..10_000 {
        match ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default()) {
            Ok(_) => started += 1,
            Err(CallError::LimitReached(reason)) => {
                assert!(reason.contains("max_live_processes"), "{reason}");
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(started, 16);
    assert_eq!(refused, 10_000 - 16);
    let grew = rss_kib().saturating_sub(rss_before);
    assert!(grew < 20 * 1024, "RSS grew {grew} KiB");
    drop(ctx);

    // The start rate is capped too.
    let limits = Limits {
        starts_per_second: 1,
        start_burst: 5,
        ..Limits::default()
    };
    let (_manager, mut ctx) = session(policy_with(&["true"], limits));
    for _ in 0..5 {
        block_on(ctx.run(CommandSpec::new("true"))).unwrap();
    }
    let err = block_on(ctx.run(CommandSpec::new("true"))).unwrap_err();
    assert!(
        matches!(&err, CallError::LimitReached(r) if r.contains("starts per second")),
        "{err}"
    );
}

#[test]
fn security_live_quota_freed_on_exit_good() {
    // A process that ended frees its live slot, whether it was killed or
    // exited by itself, while its record stays (`get` still finds it).
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits {
        max_live_processes: 2,
        ..generous()
    };
    let (_manager, mut ctx) = session(policy_with(&["sleep"], limits));
    let long = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    let short = ctx
        .start(CommandSpec::new("sleep").args(["0"]), StartSpec::default())
        .unwrap();
    block_on(ctx.wait(&short, Some(10_000)))
        .unwrap()
        .expect("sleep 0 ended");
    let third = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    let refused = ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default());
    assert!(
        matches!(&refused, Err(CallError::LimitReached(r)) if r.contains("max_live_processes")),
        "{refused:?}"
    );
    block_on(ctx.kill(&long)).unwrap();
    ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .expect("a killed process frees its slot");
    assert!(ctx.get(&short).is_ok() && ctx.get(&third).is_ok());
}

#[test]
fn security_oversized_args_bad() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_manager, mut ctx) = session(policy_with(&["echo"], Limits::default()));
    let million = CommandSpec::new("echo").args(std::iter::repeat_n("x", 1_000_000));
    let huge = CommandSpec::new("echo").args(["y".repeat(100 << 20)]);
    let many_env = (0..100_000).fold(CommandSpec::new("echo"), |spec, i| {
        spec.env(format!("V{i}"), "1")
    });
    let rss_before = rss_kib();
    for (what, spec) in [
        ("a million args", million),
        ("a 100 MB arg", huge),
        ("100k env vars", many_env),
    ] {
        let err = block_on(ctx.run(spec)).unwrap_err();
        assert!(matches!(err, CallError::Invalid(_)), "{what}: {err}");
    }
    let grew = rss_kib().saturating_sub(rss_before);
    assert!(grew < 10 * 1024, "RSS grew {grew} KiB");
}

#[test]
fn security_registry_entries_evicted_good() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Ended records are evicted oldest first; running ones never are.
    let limits = Limits {
        max_registry_entries: 40,
        max_live_processes: 32,
        ..generous()
    };
    let (_manager, mut ctx) = session(policy_with(&["true", "sleep"], limits));
    let mut ids = Vec::new();
    for _ in 0..200 {
        let id = ctx
            .start(CommandSpec::new("true"), StartSpec::default())
            .unwrap();
        block_on(ctx.wait(&id, Some(10_000))).unwrap();
        ids.push(id);
    }
    assert_eq!(ctx.list().len(), 40);
    assert_eq!(ctx.list(), ids[160..].to_vec());
    for _ in 0..32 {
        ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
            .unwrap();
    }
    let err = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap_err();
    assert!(matches!(err, CallError::LimitReached(_)), "{err}");
}

#[test]
fn registry_remove_keeps_start_order_good() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Removing records from the middle leaves the others in start order,
    // findable by id, and makes room for new ones at the end.
    let limits = Limits {
        max_registry_entries: 5,
        max_live_processes: 5,
        ..generous()
    };
    let (_manager, mut ctx) = session(policy_with(&["true", "sleep"], limits));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = ctx
            .start(CommandSpec::new("true"), StartSpec::default())
            .unwrap();
        block_on(ctx.wait(&id, Some(10_000))).unwrap();
        ids.push(id);
    }
    ctx.remove(&ids[1]).unwrap();
    ctx.remove(&ids[3]).unwrap();
    assert_eq!(
        ctx.list(),
        vec![ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    assert_eq!(ctx.remove(&ids[3]).unwrap_err().kind(), "not-found");
    assert_eq!(ctx.get(&ids[1]).unwrap_err().kind(), "not-found");
    assert_eq!(ctx.get(&ids[2]).unwrap().facts.id, ids[2]);
    let running = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    assert_eq!(ctx.remove(&running).unwrap_err().kind(), "invalid");
    let last = ctx
        .start(CommandSpec::new("true"), StartSpec::default())
        .unwrap();
    assert_eq!(
        ctx.list(),
        vec![
            ids[0].clone(),
            ids[2].clone(),
            ids[4].clone(),
            running.clone(),
            last.clone()
        ]
    );
    // Full again: the next start evicts the oldest ended record.
    block_on(ctx.wait(&last, Some(10_000))).unwrap();
    let next = ctx
        .start(CommandSpec::new("true"), StartSpec::default())
        .unwrap();
    assert_eq!(
        ctx.list(),
        vec![ids[2].clone(), ids[4].clone(), running, last, next]
    );
}

#[test]
fn security_buffer_quota_bad() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Two piped streams of 256 KiB each: two processes fill a 1 MiB quota.
    let limits = Limits {
        max_buffered_bytes: 1 << 20,
        default_stream_buffer_bytes: 256 << 10,
        ..generous()
    };
    let (_manager, mut ctx) = session(policy_with(&["sleep"], limits));
    let first = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    let err = ctx
        .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap_err();
    assert!(
        matches!(&err, CallError::LimitReached(r) if r.contains("max_buffered_bytes")),
        "{err}"
    );
    // An ended record's buffers are evicted to make room.
    block_on(ctx.kill(&first)).unwrap();
    ctx.start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
        .unwrap();
    assert!(!ctx.list().contains(&first), "the ended record was evicted");
    // A single request above the quota is refused outright.
    let huge = StartSpec {
        buffer_bytes: Some(8 << 20),
        ..StartSpec::default()
    };
    let err = ctx
        .start(CommandSpec::new("sleep").args(["30"]), huge)
        .unwrap_err();
    assert!(matches!(err, CallError::LimitReached(_)), "{err}");
}
