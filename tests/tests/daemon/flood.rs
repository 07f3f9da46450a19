//! Audit floods: a guest making bad calls of every kind, process and
//! daemon calls alike, as fast as it can, cannot grow the audit file past
//! its budget, never gets a malformed id into it, and does not slow the
//! host down for another guest.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmproc_host::ProcessCtx;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::audit::MAX_FIELD_BYTES;
use wasmproc_host::process::Signal;
use wasmproc_host::process::Stream;
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;

/// Bad calls of each kind.
const CALLS: usize = 100_000;
/// The audit file's ceiling after the flood.
const MAX_AUDIT_BYTES: u64 = 1 << 20;

#[test]
fn audit_flood_bounded_ugly() {
    let f = fixture(
        "audit-flood",
        r#"
[[daemon]]
name = "worker"
program = "sleep"
args = ["60"]
env = { {MARK} }
"#,
    );
    let path = f.dir.path().join("audit.jsonl");
    let audit = Audit::new().with_sink(Arc::new(JsonLinesSink::open(&path).expect("sink")));
    // The flooding guest may observe `worker` but run and control nothing.
    let policy = Arc::new(Policy::deny_all());
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let mut process = ProcessCtx::builder(
        wasmproc_tests::harness::admit(Arc::clone(&policy)),
        Arc::clone(&manager),
    )
    .guest("flood")
    .audit(audit.clone())
    .build();
    let worker = wasmproc_supervisor::DaemonAccess {
        observe: vec!["worker".into()],
        control: Vec::new(),
    };
    let daemons = DaemonCtx::new(
        "flood",
        policy,
        worker,
        Arc::clone(&f.supervisor),
        audit.clone(),
    );

    // Another guest works meanwhile; each of its calls must stay quick.
    let flooding = Arc::new(AtomicBool::new(true));
    let other = {
        let (flooding, manager, audit) =
            (Arc::clone(&flooding), Arc::clone(&manager), audit.clone());
        std::thread::spawn(move || {
            let policy = Policy::builder()
                .allow_program("true")
                .build()
                .expect("policy");
            let mut ctx =
                ProcessCtx::builder(wasmproc_tests::harness::admit(Arc::new(policy)), manager)
                    .guest("bystander")
                    .audit(audit)
                    .build();
            let (mut runs, mut slowest) = (0, Duration::ZERO);
            while flooding.load(Ordering::Relaxed) {
                let began = Instant::now();
                block_on(ctx.run(CommandSpec::new("true"))).expect("the bystander's run");
                slowest = slowest.max(began.elapsed());
                runs += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (runs, slowest)
        })
    };

    // Ids and names of control characters: each byte would take six once
    // escaped, were they ever written.
    let junk = "\u{1}".repeat(8 << 10);
    let unknown = "6f1c2a9e-3b7d-4c1e-9f00-1234567890ab";
    let denied = CommandSpec::new(junk.clone()).args(vec![junk.clone(); 4]);
    let began = Instant::now();
    for i in 0..CALLS {
        let id = if i % 2 == 0 { junk.as_str() } else { unknown };
        let name = if i % 2 == 0 { junk.as_str() } else { "ghost" };
        assert!(block_on(process.run(denied.clone())).is_err());
        assert!(process.start(denied.clone(), StartSpec::default()).is_err());
        assert!(block_on(process.kill(id)).is_err());
        assert!(process.signal(id, Signal::Kill).is_err());
        assert!(process.remove(id).is_err());
        assert!(process.get(id).is_err());
        assert!(block_on(process.wait(id, Some(0))).is_err());
        assert!(block_on(process.read(id, Stream::Stdout, 0, 1, 0)).is_err());
        assert!(block_on(process.write(id, b"x", 0)).is_err());
        assert!(process.close_stdin(id).is_err());
        assert!(daemons.status(name).is_err());
        assert!(daemons.start("worker").is_err());
        assert!(block_on(daemons.stop("worker")).is_err());
        assert!(daemons.restart(name).is_err());
        assert!(daemons.recent_output(name, 1).is_err());
    }
    let flood_time = began.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let (runs, slowest) = other.join().expect("the bystander");
    drop(process);
    drop(daemons);

    let size = std::fs::metadata(&path).expect("audit file").len();
    let text = std::fs::read_to_string(&path).expect("audit file");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    println!(
        "{} calls in {flood_time:?}: {size} bytes, {} records; bystander: {runs} runs, slowest {slowest:?}",
        15 * CALLS,
        records.len()
    );
    assert!(size < MAX_AUDIT_BYTES, "{size} bytes of audit");
    assert!(
        records
            .iter()
            .all(|r| r["id"].as_str().is_none_or(|id| !id.contains('\u{1}'))),
        "a malformed id or name reached the audit file"
    );
    // Each field is capped as written: a record holds at most a few.
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4 * MAX_FIELD_BYTES, "a record of {longest} bytes");
    let noted: u64 = records
        .iter()
        .filter(|r| r["operation"] == "audit-suppressed" && r["guest"] == "flood")
        .map(|r| r["suppressed"].as_u64().expect("a count"))
        .sum();
    let written = records.iter().filter(|r| r["guest"] == "flood").count() as u64;
    assert_eq!(
        audit.counts().suppressed,
        noted,
        "every suppressed record is counted in the file"
    );
    assert!(noted > 0, "the flood went past the budget");
    // Every call of the flood is either in the file or counted there; the
    // `get`, `wait`, `read`, `write` and `close-stdin` calls are not
    // audited (they change nothing).
    assert_eq!(
        written
            - records
                .iter()
                .filter(|r| r["operation"] == "audit-suppressed" && r["guest"] == "flood")
                .count() as u64
            + noted,
        10 * CALLS as u64,
        "every audited call written or counted"
    );
    assert!(runs > 0, "the bystander ran");
    assert!(
        slowest < Duration::from_secs(5),
        "a bystander's run took {slowest:?} during the flood"
    );
    assert!(
        records
            .iter()
            .any(|r| r["guest"] == "bystander" && r["operation"] == "exit"),
        "the bystander's records are written: its budget is its own"
    );
}
