//! The host side of the WIT contract in `wit/process.wit`: the crate's
//! `bindgen!` output, public so that an embedder's own `bindgen!` can reuse
//! the interface instead of generating it again.
//!
//! The imports that wait (`run`, `kill`, `wait`, `read`, `write`) are
//! `async` on the host: a guest blocked in one of them holds no thread, only
//! its store's fiber. The others answer at once and stay synchronous. No
//! import traps: every policy or OS failure is a WIT `error` the guest can
//! handle.
//!
//! A guest linked with these bindings is instantiated and called with
//! wasmtime's `*_async` methods. [`sync`] has the same interface with every
//! import synchronous, for hosts that call guests synchronously
//! ([`add_to_linker_sync`](crate::add_to_linker_sync)).
//!
//! # Reusing the interface in an embedder's world
//!
//! A world that imports `wasmproc:process/process` beside interfaces of its
//! own maps the process interface (and its types) onto these bindings with
//! `with:`, implements only its own interfaces, and registers the
//! capability with [`add_to_linker_async`](crate::add_to_linker_async)
//! beside its own interfaces:
//!
//! ```
//! mod app {
//!     wasmtime::component::bindgen!({
//!         inline: "
//!             package my:app;
//!             interface log { log: func(message: string); }
//!             world plugin {
//!                 import wasmproc:process/process@0.1.0;
//!                 import log;
//!             }
//!         ",
//!         path: "../wit",
//!         with: {
//!             "wasmproc:process/types": wasmproc_host::wit::bindings::types,
//!             "wasmproc:process/process": wasmproc_host::wit::bindings::process,
//!         },
//!         // The process imports are async, so the store data must be Send.
//!         require_store_data_send: true,
//!     });
//! }
//!
//! use wasmproc_host::{ProcessCtx, ProcessView};
//! use wasmtime::component::{HasSelf, Linker};
//!
//! struct AppState {
//!     process: ProcessCtx,
//!     lines: Vec<String>,
//! }
//! impl ProcessView for AppState {
//!     fn process_ctx(&mut self) -> &mut ProcessCtx {
//!         &mut self.process
//!     }
//! }
//! impl app::my::app::log::Host for AppState {
//!     fn log(&mut self, message: String) {
//!         self.lines.push(message);
//!     }
//! }
//!
//! let engine = wasmtime::Engine::default();
//! let mut linker = Linker::<AppState>::new(&engine);
//! wasmproc_host::add_to_linker_async(&mut linker)?;
//! app::my::app::log::add_to_linker::<AppState, HasSelf<AppState>>(&mut linker, |s| s)?;
//! # Ok::<(), wasmtime::Error>(())
//! ```

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmproc:process/guest",
    imports: {
        "wasmproc:process/process.run": async,
        "wasmproc:process/process.kill": async,
        "wasmproc:process/process.wait": async,
        "wasmproc:process/process.read": async,
        "wasmproc:process/process.write": async,
    },
});

pub use wasmproc::process::process;
pub use wasmproc::process::process::Host as ProcessHost;
pub use wasmproc::process::types;

/// The same interface with every import synchronous, for hosts that call
/// guests synchronously. Its types are those of the async bindings.
pub mod sync {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasmproc:process/guest",
        with: {
            "wasmproc:process/types": super::types,
        },
    });

    pub use wasmproc::process::process;
    pub use wasmproc::process::process::Host as ProcessHost;
}

/// The fully qualified name of the capability interface, as guests import it.
pub const CAPABILITY_NAME: &str = "wasmproc:process/process@0.1.0";
