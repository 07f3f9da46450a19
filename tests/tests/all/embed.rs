//! Embedding: the async runtime on an embedder's tokio executor, and the
//! synchronous path for embedders without one.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::ProcessView;
use wasmproc_host::add_to_linker_sync;
use wasmproc_host::policy::Limits;
use wasmproc_tests::guests;
use wasmproc_tests::harness::{component, ok, policy, policy_with, shared_runtime};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The JSON lines a probe guest printed.
fn probe_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad probe line {l:?}: {e}")))
        .collect()
}

#[test]
fn async_embed_good() {
    // 50 guests, each blocked in `wait` on a 2 s child, share two tokio
    // workers: none holds a worker while it waits, so they finish together
    // in about 2 s, not one pair after another (50 s). The bound leaves
    // room for a loaded machine and still fails if waits hold threads.
    const GUESTS: usize = 50;
    let runtime = shared_runtime();
    let probe = component(runtime, guests::PROBE);
    let policy = policy(&["sleep"]);
    let steps = json!([
        {"op": "start", "program": "sleep", "args": ["2"]},
        {"op": "wait", "id": "$0"},
    ])
    .to_string();
    let executor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = executor.block_on(async {
        let mut runs = tokio::task::JoinSet::new();
        for index in 0..GUESTS {
            let (probe, policy, steps) = (probe.clone(), Arc::clone(&policy), steps.clone());
            runs.spawn(async move {
                let options = GuestOptions {
                    name: format!("waiter-{index}"),
                    args: vec![steps],
                    policy,
                    stdio: GuestStdio::Capture,
                };
                runtime.run_async(&probe, options).await
            });
        }
        runs.join_all().await
    });
    let elapsed = started.elapsed();
    eprintln!("{GUESTS} guests waiting on a 2 s child, on 2 workers: {elapsed:?}");
    assert_eq!(outcomes.len(), GUESTS);
    for outcome in outcomes {
        let outcome = outcome.expect("guest run");
        assert_eq!(outcome.exit_code, 0, "{outcome:?}");
        let lines = probe_lines(&outcome.stdout);
        assert_eq!(ok(&lines[1]), &json!({"exited": 0}), "{lines:?}");
    }
    assert!(
        elapsed >= Duration::from_secs(2),
        "each guest waited on a 2 s child, yet all finished in {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(15),
        "{GUESTS} guests waiting 2 s each on 2 workers took {elapsed:?}: waits hold threads"
    );
}

#[test]
fn async_embed_spinning_guest_yields_good() {
    // A guest spinning in a loop on a single-threaded executor still lets
    // another task run: it gives its thread back on every epoch tick.
    let runtime = shared_runtime();
    let spin = component(runtime, guests::SPIN);
    let limits = Limits {
        guest_time: Duration::from_secs(3),
        ..Limits::default()
    };
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (timer_done, guest_done, guest) = executor.block_on(async {
        let started = Instant::now();
        let guest = tokio::spawn(async move {
            let options = GuestOptions {
                name: "spin".into(),
                args: vec![],
                policy: policy_with(&[], limits),
                stdio: GuestStdio::Capture,
            };
            let result = runtime.run_async(&spin, options).await;
            (started.elapsed(), result)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let timer_done = started.elapsed();
        let (guest_done, result) = guest.await.unwrap();
        (timer_done, guest_done, result)
    });
    let err = guest.expect_err("a spinning guest ends at its time limit");
    assert!(
        matches!(err, wasmproc_host::GuestError::TimeLimit(t) if t == Duration::from_secs(3)),
        "{err}"
    );
    assert!(
        timer_done < Duration::from_millis(2000) && timer_done < guest_done,
        "the 100 ms timer fired at {timer_done:?}, the spinning guest ended at {guest_done:?}"
    );
}

/// A sync embedder's store: WASI plus the process capability.
struct SyncState {
    wasi: WasiCtx,
    table: ResourceTable,
    process: ProcessCtx,
}

impl WasiView for SyncState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ProcessView for SyncState {
    fn process_ctx(&mut self) -> &mut ProcessCtx {
        &mut self.process
    }
}

#[test]
fn async_embed_sync_wrapper_good() {
    // An engine without async support, a linker with the sync WASI and the
    // sync capability: run, start, write, read and wait all work, each
    // blocking the calling thread.
    let engine = Engine::default();
    let mut linker = Linker::<SyncState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    add_to_linker_sync(&mut linker).unwrap();
    let component = Component::from_file(&engine, guests::PROBE).expect("compile the probe");
    let steps = json!([
        {"op": "run", "program": "echo", "args": ["sync"]},
        {"op": "start", "program": "cat", "stdin_mode": "piped"},
        {"op": "write", "id": "$1", "data": "through cat"},
        {"op": "close_stdin", "id": "$1"},
        {"op": "wait", "id": "$1"},
        {"op": "read_all", "id": "$1", "stream": "stdout"},
    ]);
    let stdout = MemoryOutputPipe::new(1 << 20);
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let state = SyncState {
        wasi: WasiCtx::builder()
            .args(&["probe".to_string(), steps.to_string()])
            .stdout(stdout.clone())
            .build(),
        table: ResourceTable::new(),
        process: ProcessCtx::builder(
            wasmproc_tests::harness::admit(policy(&["echo", "cat"])),
            Arc::clone(&manager),
        )
        .guest("sync-embedder")
        .build(),
    };
    let mut store = Store::new(&engine, state);
    let command = Command::instantiate(&mut store, &component, &linker).expect("instantiate");
    let result = command.wasi_cli_run().call_run(&mut store).expect("run");
    assert_eq!(result, Ok(()));
    drop(store);
    wasmproc_host::process::block_on(manager.shutdown());
    let lines = probe_lines(&stdout.contents());
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(ok(&lines[0])["stdout"], "sync\n");
    assert_eq!(ok(&lines[4]), &json!({"exited": 0}));
    assert_eq!(ok(&lines[5])["text"], "through cat");
}
