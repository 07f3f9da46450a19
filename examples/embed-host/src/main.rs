//! A host application that embeds wasmproc: its own store type, its own
//! `Linker` (WASI p2 plus the process capability), a policy built in code,
//! and an audit sink of its own.
//!
//! ```text
//! cargo run -p embed-host -- target/wasm32-wasip2/debug/git-summary.wasm
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::ProcessView;
use wasmproc_host::add_to_linker_sync;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::AuditEvent;
use wasmproc_host::audit::AuditSink;
use wasmproc_host::process::{HostEffects, block_on};
use wasmproc_host::{Admission, Policy};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The application's per-plugin state: WASI plus the process capability.
struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    process: ProcessCtx,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ProcessView for PluginState {
    fn process_ctx(&mut self) -> &mut ProcessCtx {
        &mut self.process
    }
}

/// An audit sink that prints one line per decision.
#[derive(Debug)]
struct PrintAudit;

impl AuditSink for PrintAudit {
    fn record(&self, e: &AuditEvent) {
        eprintln!(
            "[audit] {} {} {} {}",
            e.operation,
            e.program.as_deref().unwrap_or("-"),
            e.decision.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("")
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: embed-host PLUGIN.wasm")?;
    let engine = Engine::default();
    let mut linker: Linker<PluginState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
    add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;

    // This application lets plugins read git history, nothing else.
    let policy = Policy::builder()
        .allow_program_args(
            "git",
            &[
                &["log", "**"],
                &["status", "**"],
                &["rev-parse", "**"],
                &["rev-list", "**"],
            ],
        )
        .pass_env("HOME")
        // git runs confined to the working-directory roots: this one.
        .allow_dir(".")
        .build()?;
    // This application is a short-lived tool: it has the manager reap the
    // orphans of its plugins' programs, as the `wasmproc` CLI does.
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(HostEffects::ALL)
        .build();
    let audit = Audit::new().with_sink(Arc::new(PrintAudit));
    // The plugin's own manifest, if it carries one, narrows the policy.
    let admission = Admission::for_component(Arc::new(policy), Path::new(&path), false)?;
    let session = ProcessCtx::builder(Arc::new(admission), Arc::clone(&manager))
        .guest("plugin")
        .audit(audit)
        .build();
    let state = PluginState {
        wasi: WasiCtx::builder().inherit_stdio().args(&["plugin"]).build(),
        table: ResourceTable::new(),
        process: session,
    };
    let mut store = Store::new(&engine, state);
    let component = Component::from_file(&engine, &path).map_err(|e| e.to_string())?;
    let command =
        Command::instantiate(&mut store, &component, &linker).map_err(|e| e.to_string())?;
    let result = command
        .wasi_cli_run()
        .call_run(&mut store)
        .map_err(|e| e.to_string())?;
    // Stop what the plugin left gracefully, then end its session.
    block_on(store.data().process.shutdown());
    drop(store);
    block_on(manager.shutdown());
    if result.is_err() {
        std::process::exit(1);
    }
    Ok(())
}
