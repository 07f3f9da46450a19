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

/// Bindings of the `supervised-guest` world: only the `daemon` interface is
/// generated here; the process types are shared with the bindings above.
pub(crate) mod supervised {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasmproc:process/supervised-guest",
        with: {
            "wasmproc:process/types": super::wasmproc::process::types,
            "wasmproc:process/process": super::wasmproc::process::process,
        },
    });
}

/// The fully qualified name of the daemon interface, as guests import it.
pub const DAEMON_INTERFACE_NAME: &str = "wasmproc:process/daemon@0.1.0";
