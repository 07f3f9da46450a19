//! Registration: how a host hands the process capability to its guests.
//!
//! A guest gets the capability only if the host calls
//! [`add_to_linker_async`] (or, for a host that calls guests synchronously,
//! [`add_to_linker_sync`]) on the `Linker` it instantiates with; a
//! component importing `wasmproc:process/process` then fails to instantiate
//! elsewhere, naming the missing import.

use crate::error::LinkError;
use crate::session::ctx::ProcessCtx;
use crate::wit::bindings::{CAPABILITY_NAME, Guest, sync};
use wasmtime::component::{HasData, Linker};

/// Implemented by a store's data type to hand out its guest's
/// [`ProcessCtx`], like `wasmtime_wasi::WasiView` does for WASI.
pub trait ProcessView: Send {
    /// The process capability of this store's guest.
    fn process_ctx(&mut self) -> &mut ProcessCtx;
}

/// Marker type connecting the generated bindings to [`ProcessCtx`].
#[derive(Debug)]
pub struct HasProcess;

impl HasData for HasProcess {
    type Data<'a> = &'a mut ProcessCtx;
}

/// Registers the process capability (`wasmproc:process/process` and its
/// types) on `linker`, with the imports that wait (`run`, `kill`, `wait`,
/// `read`, `write`) as async host functions: a guest blocked in one holds
/// no thread. Guests linked with it are instantiated and called with
/// wasmtime's `*_async` methods (`instantiate_async`, `call_async`) on an
/// async executor.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use wasmproc_host::{add_to_linker_async, Audit, Policy, ProcessCtx, ProcessManager, ProcessView};
/// use wasmtime::component::Linker;
/// use wasmtime::Engine;
///
/// struct MyState {
///     process: ProcessCtx,
/// }
/// impl ProcessView for MyState {
///     fn process_ctx(&mut self) -> &mut ProcessCtx {
///         &mut self.process
///     }
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::<MyState>::new(&engine);
/// add_to_linker_async(&mut linker)?;
///
/// let manager = ProcessManager::new(std::time::Duration::from_secs(2));
/// let policy = Arc::new(Policy::builder().allow_program("sh").build()?);
/// let state = MyState {
///     process: ProcessCtx::new("my-plugin", policy, manager, Audit::new()),
/// };
/// # let _ = state;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn add_to_linker_async<T: ProcessView + 'static>(
    linker: &mut Linker<T>,
) -> Result<(), LinkError> {
    Guest::add_to_linker::<T, HasProcess>(linker, |state| state.process_ctx())
        .map_err(|e| LinkError::new(CAPABILITY_NAME, e))
}

/// Registers the process capability on `linker` with every import
/// synchronous, for hosts that instantiate and call guests with wasmtime's
/// synchronous methods: a call that waits blocks the calling thread until
/// it ends (the async implementation, run to completion there). Prefer
/// [`add_to_linker_async`] in an async host.
///
/// # Example
///
/// ```
/// use wasmproc_host::{add_to_linker_sync, ProcessCtx, ProcessView};
/// use wasmtime::component::Linker;
/// use wasmtime::Engine;
///
/// struct MyState {
///     process: ProcessCtx,
/// }
/// impl ProcessView for MyState {
///     fn process_ctx(&mut self) -> &mut ProcessCtx {
///         &mut self.process
///     }
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::<MyState>::new(&engine);
/// add_to_linker_sync(&mut linker)?;
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn add_to_linker_sync<T: ProcessView + 'static>(
    linker: &mut Linker<T>,
) -> Result<(), LinkError> {
    sync::Guest::add_to_linker::<T, HasProcess>(linker, |state| state.process_ctx())
        .map_err(|e| LinkError::new(CAPABILITY_NAME, e))
}
