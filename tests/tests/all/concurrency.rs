//! Many guests at once: more guests than the instance pool has slots all
//! run to their end (each waits its turn for a slot); a guest whose
//! deadline passes while it waits, or that meets a full pool which fails
//! fast, gets a typed error; and a slot comes back however its guest ends.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::GuestOutcome;
use wasmproc_host::embed::InstancePool;
use wasmproc_host::embed::NoSlot;
use wasmproc_host::embed::WhenFull;
use wasmproc_host::policy::Limits;
use wasmproc_tests::{guests, harness};

/// A policy granting `sleep`, with the given `guest_time` in ms (0: none).
fn sleep_policy(guest_time_ms: u64) -> Arc<Policy> {
    harness::policy_with(
        &["sleep"],
        Limits {
            guest_time: Duration::from_millis(guest_time_ms),
            ..Limits::default()
        },
    )
}

/// Probe steps that run `sleep <secs>` to its end.
fn sleep_steps(secs: &str) -> String {
    json!([{"op": "run", "program": "sleep", "args": [secs]}]).to_string()
}

/// Runs the probe with `steps` as a guest of `runtime`, on the caller's
/// executor.
async fn probe_async(
    runtime: &Runtime,
    component: &wasmproc_host::Plugin,
    policy: Arc<Policy>,
    steps: String,
) -> Result<GuestOutcome, GuestError> {
    runtime
        .run_async(
            component,
            GuestOptions {
                name: "probe".into(),
                args: vec![steps],
                policy,
                stdio: GuestStdio::Capture,
            },
        )
        .await
}

/// Asserts the probe ran its one `run` step to exit 0 and exited 0.
fn assert_ran_clean(outcome: &GuestOutcome, which: &str) {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.exit_code,
        0,
        "{which}: probe exited {}; stdout {stdout}; stderr {}",
        outcome.exit_code,
        String::from_utf8_lossy(&outcome.stderr)
    );
    let line: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(
        harness::ok(&line)["status"],
        json!({"exited": 0}),
        "{which}: {line}"
    );
}

/// A pool of `guests` slots that does `when_full` when they are all taken.
fn small_pool(guests: u32, when_full: WhenFull) -> RuntimeConfig {
    RuntimeConfig {
        pool: Some(InstancePool {
            when_full,
            ..InstancePool::with_guests(guests)
        }),
        ..RuntimeConfig::default()
    }
}

fn executor() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("executor")
}

/// On a runtime whose pool has one slot: a guest that sleeps
/// `holder_secs` takes it, and 200 ms later a guest under `late_policy`
/// asks for it. Both outcomes, and how long the late guest's call took.
fn hold_then_ask(
    runtime: &Runtime,
    holder_secs: &str,
    late_policy: Arc<Policy>,
) -> (
    Result<GuestOutcome, GuestError>,
    (Result<GuestOutcome, GuestError>, Duration),
) {
    let component = harness::component(runtime, guests::PROBE);
    executor().block_on(async {
        tokio::join!(
            probe_async(
                runtime,
                &component,
                sleep_policy(0),
                sleep_steps(holder_secs)
            ),
            async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let asking = Instant::now();
                let late = probe_async(runtime, &component, late_policy, sleep_steps("0")).await;
                (late, asking.elapsed())
            }
        )
    })
}

#[test]
fn concurrency_beyond_pool_good() {
    const GUESTS: usize = 1_000;
    let slots = InstancePool::default().guests;
    assert!(
        (slots as usize) < GUESTS,
        "the default pool ({slots} slots) is smaller than the guests run here"
    );
    let runtime = Arc::new(harness::own_runtime(RuntimeConfig::default()));
    let component = Arc::new(harness::component(&runtime, guests::PROBE));
    let policy = sleep_policy(0);
    let started = Instant::now();
    let outcomes = executor().block_on(async {
        let tasks: Vec<_> = (0..GUESTS)
            .map(|_| {
                let (runtime, component, policy) = (
                    Arc::clone(&runtime),
                    Arc::clone(&component),
                    Arc::clone(&policy),
                );
                tokio::spawn(async move {
                    probe_async(&runtime, &component, policy, sleep_steps("1")).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(GUESTS);
        for task in tasks {
            outcomes.push(task.await.expect("guest task"));
        }
        outcomes
    });
    let took = started.elapsed();
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(outcome) => assert_ran_clean(outcome, &format!("guest {i}")),
            Err(e) => panic!("guest {i} of {GUESTS} ({slots} slots) failed: {e}"),
        }
    }
    // Liveness: the guests take turns in the slots, each turn a second of
    // sleep; the bound leaves room for a slow debug build on a busy machine.
    let turns = GUESTS.div_ceil(slots as usize) as u64;
    let bound = Duration::from_secs(60 + 10 * turns);
    assert!(
        took < bound,
        "{GUESTS} guests through {slots} slots took {took:?} (bound {bound:?})"
    );
}

#[test]
fn concurrency_pool_wait_good() {
    // One slot: the second guest waits for the first to end, then runs.
    let runtime = harness::own_runtime(small_pool(1, WhenFull::Wait));
    let (first, second) = hold_then_ask(&runtime, "1", sleep_policy(0));
    assert_ran_clean(&first.expect("first guest"), "first guest");
    let (second, waited) = second;
    assert_ran_clean(&second.expect("second guest"), "second guest");
    assert!(
        waited >= Duration::from_millis(500),
        "the second guest ran in {waited:?}, so it did not wait for the one slot"
    );
}

#[test]
fn concurrency_pool_wait_deadline_bad() {
    let runtime = harness::own_runtime(small_pool(1, WhenFull::Wait));
    let (holder, (late, waited)) = hold_then_ask(&runtime, "3", sleep_policy(300));
    match late {
        Err(GuestError::NoSlot(NoSlot::WaitedPastDeadline {
            slots: 1,
            time_limit,
            waited_ms,
        })) if time_limit == Duration::from_millis(300) => assert!(
            (250..2_500).contains(&waited_ms),
            "waited {waited_ms} ms for a 300 ms deadline"
        ),
        other => panic!("expected a typed wait-past-deadline error, got {other:?}"),
    }
    assert!(
        waited < Duration::from_millis(2_500),
        "the call returned after {waited:?}, not at its deadline"
    );
    // The guest in the slot was not disturbed.
    assert_ran_clean(&holder.expect("guest in the slot"), "guest in the slot");
    let message = GuestError::NoSlot(NoSlot::WaitedPastDeadline {
        slots: 1,
        time_limit: Duration::from_millis(300),
        waited_ms: 300,
    })
    .to_string();
    assert!(
        message.contains("guest_time 300ms") && message.contains("slot"),
        "the error says what ran out: {message}"
    );
}

#[test]
fn concurrency_pool_full_fail_fast_bad() {
    let runtime = harness::own_runtime(small_pool(1, WhenFull::Fail));
    let (holder, (refused, took)) = hold_then_ask(&runtime, "2", sleep_policy(0));
    assert!(
        matches!(refused, Err(GuestError::NoSlot(NoSlot::Full { slots: 1 }))),
        "expected a fail-fast full-pool error, got {refused:?}"
    );
    assert!(
        took < Duration::from_millis(1_000),
        "failing fast took {took:?}"
    );
    assert_ran_clean(&holder.expect("guest in the slot"), "guest in the slot");
    // Once the slot is free again, a guest gets it.
    let component = harness::component(&runtime, guests::PROBE);
    let again = executor().block_on(probe_async(
        &runtime,
        &component,
        sleep_policy(0),
        sleep_steps("0"),
    ));
    assert_ran_clean(&again.expect("guest after the slot freed"), "later guest");
}

#[test]
fn concurrency_cancelled_guests_free_their_slot_ugly() {
    // A guest cancelled while it runs, and one cancelled while it waits for
    // the slot, both give the slot back: the next guest gets it (its time
    // limit turns a leaked slot into an error rather than a hang).
    let runtime = harness::own_runtime(small_pool(1, WhenFull::Wait));
    let component = harness::component(&runtime, guests::PROBE);
    executor().block_on(async {
        let (running, waiting) = tokio::join!(
            tokio::time::timeout(
                Duration::from_millis(500),
                probe_async(&runtime, &component, sleep_policy(0), sleep_steps("30")),
            ),
            tokio::time::timeout(
                Duration::from_millis(300),
                probe_async(&runtime, &component, sleep_policy(0), sleep_steps("0")),
            ),
        );
        assert!(running.is_err(), "the running guest was cancelled");
        assert!(waiting.is_err(), "the waiting guest was cancelled");
        let next = probe_async(&runtime, &component, sleep_policy(20_000), sleep_steps("0")).await;
        assert_ran_clean(&next.expect("the slot came back"), "next guest");
    });
}
