//! Many live processes through one guest session: the host's threads stay
//! bounded whatever their number, and each process holds at most three fds
//! (pidfd, stdout, stderr), all released when it ends.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use wasmproc_host::process::block_on;
use wasmproc_tests::harness::session;
use wasmproc_tests::os::{eventually, open_fds};
use wasmproc_tests::scale::{
    child_pipes, fds_held_for, policy_for, start_sleep, steady_threads, thread_bound,
};

/// The two tests run one at a time: each measures the whole host process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Fds other tests running beside these may open meanwhile.
const OTHER_TESTS_SLACK: usize = 64;

#[test]
fn scale_threads_bounded_good() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const LIVE: u32 = 1_000;
    // The harness's own threads (and other tests') before this test adds any.
    let baseline = steady_threads();
    let (_manager, mut ctx) = session(policy_for(LIVE));
    let ids: Vec<String> = (0..LIVE).map(|_| start_sleep(&mut ctx, 60).0).collect();
    let running = ids
        .iter()
        .filter(|id| ctx.get(id).unwrap().exit.is_none())
        .count();
    assert_eq!(running, LIVE as usize, "every process is live at the peak");
    let peak = steady_threads();
    assert!(
        peak <= baseline + thread_bound(),
        "{peak} threads with {LIVE} live processes; baseline {baseline}, bound +{}",
        thread_bound()
    );
    // Stopping them all is part of the behaviour: dropping the session does.
    drop(ctx);
}

#[test]
fn scale_fds_released_good() {
    const LIVE: usize = 200;
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let baseline = open_fds();
    let (_manager, mut ctx) = session(policy_for(LIVE as u32));
    let mut pipes = HashSet::new();
    let mut pids = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..LIVE {
        let (id, _) = start_sleep(&mut ctx, 2);
        let pid = ctx.get(&id).unwrap().facts.pid;
        pipes.extend(child_pipes(pid));
        pids.push(pid);
        ids.push(id);
    }
    assert_eq!(pipes.len(), 2 * LIVE, "stdout and stderr of each are pipes");
    let held = fds_held_for(&pipes, &pids);
    assert!(
        (LIVE..=3 * LIVE).contains(&held),
        "{held} fds held for {LIVE} live processes (at most 3 each)"
    );
    // Nothing else per process either (no waker, no thread's fds).
    let open = open_fds();
    assert!(
        open <= baseline + 3 * LIVE + OTHER_TESTS_SLACK,
        "{open} fds open with {LIVE} live processes; {baseline} before"
    );
    for id in &ids {
        let exit = block_on(ctx.wait(id, Some(10_000))).unwrap();
        assert!(exit.is_some(), "process {id} ended");
    }
    assert!(
        eventually(Duration::from_secs(10), || fds_held_for(&pipes, &pids) == 0),
        "{} fds still held after the processes ended",
        fds_held_for(&pipes, &pids)
    );
    for id in &ids {
        ctx.remove(id).unwrap();
    }
    assert!(ctx.list().is_empty());
    assert!(
        eventually(Duration::from_secs(10), || open_fds()
            <= baseline + OTHER_TESTS_SLACK),
        "{} fds open after every record was removed; {baseline} before",
        open_fds()
    );
}
