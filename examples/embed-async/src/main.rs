//! A tokio application embedding wasmproc: one multi-thread runtime with
//! four workers runs 100 plugin guests at once. Each guest (the `converse`
//! example) starts a shell service and streams five questions and answers
//! through its stdin and stdout; a guest waiting on its child holds no
//! thread. At the end the application prints what was done: guests, the
//! capability's audit events by operation, answers streamed, wall time,
//! and the host's threads.
//!
//! ```text
//! cargo build --manifest-path examples/converse/Cargo.toml --target wasm32-wasip2 --target-dir target
//! cargo run -p embed-async -- target/wasm32-wasip2/debug/converse.wasm
//! ```
//!
//! An optional second argument sets the number of guests (default 100).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::AuditEvent;
use wasmproc_host::audit::AuditSink;

const DEFAULT_GUESTS: usize = 100;
const WORKER_THREADS: usize = 4;

/// Counts the capability's audit events by operation and decision.
#[derive(Debug, Default)]
struct CountingAudit {
    decisions: Mutex<BTreeMap<String, usize>>,
}

impl AuditSink for CountingAudit {
    fn record(&self, e: &AuditEvent) {
        let key = match &e.decision {
            Some(decision) => format!("{} {decision}", e.operation),
            None => e.operation.clone(),
        };
        *self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: embed-async CONVERSE.wasm [GUESTS]")?;
    let guests = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("GUESTS `{n}`: {e}"))?,
        None => DEFAULT_GUESTS,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()?;
    tokio.block_on(run(path, guests))
}

async fn run(path: String, guests: usize) -> Result<(), Box<dyn std::error::Error>> {
    let audit = Arc::new(CountingAudit::default());
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        audit: Audit::new().with_sink(Arc::clone(&audit) as Arc<dyn AuditSink>),
        ..RuntimeConfig::default()
    })?);
    let component = runtime.load(path.as_ref())?;
    let policy = Arc::new(Policy::builder().allow_program("sh").build()?);

    let peak_threads = Arc::new(AtomicUsize::new(host_threads()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (peak, sampling) = (Arc::clone(&peak_threads), Arc::clone(&sampling));
        async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(host_threads(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let started = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for index in 0..guests {
        let (runtime, component, policy) =
            (Arc::clone(&runtime), component.clone(), Arc::clone(&policy));
        runs.spawn(async move {
            let options = GuestOptions {
                name: format!("plugin-{index}"),
                args: vec![],
                policy,
                stdio: GuestStdio::Capture,
            };
            runtime.run_async(&component, options).await
        });
    }
    let (mut succeeded, mut failed, mut answers) = (0, 0, 0);
    while let Some(joined) = runs.join_next().await {
        match joined? {
            Ok(outcome) if outcome.exit_code == 0 => {
                succeeded += 1;
                answers += String::from_utf8_lossy(&outcome.stdout)
                    .lines()
                    .filter(|line| line.contains("  = ") || line.contains("  ? "))
                    .count();
            }
            Ok(outcome) => {
                failed += 1;
                eprintln!(
                    "a guest exited {}: {}",
                    outcome.exit_code,
                    String::from_utf8_lossy(&outcome.stderr).trim_end()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("a guest failed: {e}");
            }
        }
    }
    let wall = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    runtime.shutdown().await;

    println!("guests: {guests} ({succeeded} succeeded, {failed} failed)");
    println!("tokio worker threads: {WORKER_THREADS}");
    for (decision, count) in audit
        .decisions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        println!("audit {decision}: {count}");
    }
    println!("answers streamed: {answers}");
    println!("wall time: {:.0} ms", wall.as_secs_f64() * 1e3);
    println!(
        "host threads: {} at peak, {} now",
        peak_threads.load(Ordering::Relaxed),
        host_threads()
    );
    if failed > 0 {
        return Err(format!("{failed} of {guests} guests failed").into());
    }
    Ok(())
}

/// The threads of this process, from `/proc/self/task` (0 if unreadable).
fn host_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.count())
        .unwrap_or(0)
}
