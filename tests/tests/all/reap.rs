//! Reaping under a fork storm: orphans of a guest's tree are reaped as
//! they end (the host is a subreaper and sweeps at every `SIGCHLD`), so a
//! loop that forks and exits never piles up zombies of the host.

use std::time::{Duration, Instant};
use wasmproc_host::{CommandSpec, StartSpec};
use wasmproc_tests::harness::{policy, session};
use wasmproc_tests::os::{GroupCensus, eventually, group_census};

/// The most zombies of the storm's group seen at any one sample. A sweep
/// runs about 10 ms after an orphan ends (see the process core's
/// `sweep_delay`), so at a few thousand forks a second a handful are
/// waiting at any time; the bound leaves room for a loaded machine.
const MAX_ZOMBIES: usize = 64;

/// How long the storm runs.
const STORM: Duration = Duration::from_secs(3);

#[test]
fn reap_zombie_storm_ugly() {
    // A shell forks subshells that each leave a background `true` and exit:
    // every `true` becomes an orphan of the host, then its zombie. No
    // managed process ends meanwhile, so only the `SIGCHLD` sweep reaps.
    let (_manager, mut ctx) = session(policy(&["sh"]));
    let id = ctx
        .start(
            CommandSpec {
                program: "sh".into(),
                args: vec!["-c".into(), "while :; do (/bin/true &); done".into()],
                ..CommandSpec::default()
            },
            StartSpec::default(),
        )
        .expect("start the storm");
    let group = ctx.get(&id).expect("the storm's record").facts.pid as i32;
    let began = Instant::now();
    let (mut worst, mut samples, mut busy) = (0, 0, 0);
    while began.elapsed() < STORM {
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
    wasmproc_host::block_on(ctx.kill(&id)).expect("kill the storm");
    assert!(
        eventually(Duration::from_secs(10), || group_census(group)
            == GroupCensus::default()),
        "the storm's pids were not all given back: {:?}",
        group_census(group)
    );
    println!("worst: {worst} zombies over {samples} samples");
}
