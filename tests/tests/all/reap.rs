//! Reaping under a fork storm: orphans of a guest's tree are reaped as
//! they end (the host is a subreaper and sweeps at every `SIGCHLD`), so a
//! loop that forks and exits never piles up zombies of the host; and a
//! guest's live descendants are held at its `max_descendants`.

use std::time::{Duration, Instant};
use wasmproc_host::policy::Limits;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::harness::{policy, policy_with, session};
use wasmproc_tests::os::{GroupCensus, eventually, group_census};

/// The most zombies of the storm's group seen at any one sample. A sweep
/// runs about 10 ms after an orphan ends (see the process core's
/// `sweep_delay`), so at a few thousand forks a second a handful are
/// waiting at any time; the bound leaves room for a loaded machine.
const MAX_ZOMBIES: usize = 64;

/// How long the storm runs, at least.
const STORM: Duration = Duration::from_secs(3);
/// Samples taken, at least: a loaded machine reads `/proc` slowly.
const MIN_SAMPLES: usize = 20;
/// The longest the storm runs, however slow the samples.
const STORM_MAX: Duration = Duration::from_secs(60);

/// Whether to take another sample of a storm that began at `began`.
fn sampling(began: Instant, samples: usize) -> bool {
    (began.elapsed() < STORM || samples < MIN_SAMPLES) && began.elapsed() < STORM_MAX
}

#[test]
fn reap_zombie_storm_ugly() {
    // A shell forks subshells that each leave a background `true` and exit:
    // every `true` becomes an orphan of the host, then its zombie. No
    // managed process ends meanwhile, so only the `SIGCHLD` sweep reaps.
    let (_manager, mut ctx) = session(policy(&["sh"]));
    let id = ctx
        .start(
            CommandSpec::new("sh").args(["-c", "while :; do (/bin/true &); done"]),
            StartSpec::default(),
        )
        .expect("start the storm");
    let group = ctx.get(&id).expect("the storm's record").facts.pid as i32;
    let began = Instant::now();
    let (mut worst, mut samples, mut busy) = (0, 0, 0);
    while sampling(began, samples) {
        let census = group_census(group);
        worst = worst.max(census.zombies);
        samples += 1;
        busy += usize::from(census.live > 1);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(busy > 0, "the storm never forked ({samples} samples)");
    assert!(
        worst <= MAX_ZOMBIES,
        "{worst} zombies of the storm at once (at most {MAX_ZOMBIES})"
    );
    wasmproc_host::process::block_on(ctx.kill(&id)).expect("kill the storm");
    assert!(
        eventually(Duration::from_secs(10), || group_census(group)
            == GroupCensus::default()),
        "the storm's pids were not all given back: {:?}",
        group_census(group)
    );
    println!("worst: {worst} zombies over {samples} samples");
}

#[test]
fn reap_descendants_capped_ugly() {
    // A shell that forks sleepers as fast as it can: the census kills the
    // newest past the cap, whether or not the host has cgroups, and the
    // guest's starts are refused while it is at the cap.
    const CAP: u32 = 16;
    let limits = Limits {
        max_descendants: CAP,
        ..Limits::default()
    };
    let (_manager, mut ctx) = session(policy_with(&["sh", "true"], limits));
    let id = ctx
        .start(
            CommandSpec::new("sh").args(["-c", "while :; do sleep 60 & done"]),
            StartSpec::default(),
        )
        .expect("start the fork loop");
    let group = ctx.get(&id).expect("the loop's record").facts.pid as i32;
    let began = Instant::now();
    let (mut worst, mut refused, mut samples) = (0, None, 0);
    while sampling(began, samples) {
        samples += 1;
        // The loop itself is in its group too.
        worst = worst.max(group_census(group).live.saturating_sub(1));
        if refused.is_none()
            && let Err(e) = wasmproc_host::process::block_on(ctx.run(CommandSpec::new("true")))
        {
            refused = Some(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = refused.expect("a run refused at the cap");
    assert_eq!(refused.kind(), "limit-reached", "{refused}");
    assert!(refused.to_string().contains("max_descendants"), "{refused}");
    // Until the first census (20–100 ms after the start, see
    // `CENSUS_MIN_AGE` and `CENSUS_INTERVAL`) the loop forks as fast as
    // the machine lets it: hundreds on an idle one. The census then kills
    // the newest past the cap and the loop that forked them, so the count
    // falls back to the cap and stays there, whatever the machine's speed.
    // The bound on the worst is a generous liveness bound: a first census
    // later than about half a second would pass it.
    assert!(
        worst < 100 * CAP as usize,
        "{worst} live descendants with a cap of {CAP}: no census in time"
    );
    // Held at the cap (the loop's own process, if it still runs, beside).
    assert!(
        eventually(Duration::from_secs(10), || {
            group_census(group).live <= CAP as usize + 1
        }),
        "not brought back to the cap of {CAP}: {:?}",
        group_census(group)
    );
    let settled = group_census(group).live.saturating_sub(1);
    wasmproc_host::process::block_on(ctx.kill(&id)).expect("kill the loop");
    assert!(
        eventually(Duration::from_secs(10), || group_census(group).live == 0),
        "the loop's descendants outlived it: {:?}",
        group_census(group)
    );
    println!("worst: {worst} live descendants; {settled} before the kill");
}
