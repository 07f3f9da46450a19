//! The host side of the WIT contract in `wit/process.wit`: the only
//! `bindgen!` in the crate.
//!
//! Imports are synchronous and non-trapping: every policy or OS failure is a
//! WIT `error` the guest can handle, never a trap.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmproc:process/guest",
});

pub use wasmproc::process::process::Host as ProcessHost;
pub use wasmproc::process::types;

/// The fully qualified name of the capability interface, as guests import it.
pub const CAPABILITY_NAME: &str = "wasmproc:process/process@0.1.0";
