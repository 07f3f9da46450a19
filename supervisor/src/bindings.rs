//! Bindings of the `supervised-guest` world: only the `daemon` interface is
//! generated here; the process types are those of `wasmproc_host::wit::bindings`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmproc:process/supervised-guest",
    // `stop` waits for the daemon to end: awaited, so it never parks the
    // thread that runs the guest.
    imports: {
        "wasmproc:process/daemon.stop": async,
    },
    with: {
        "wasmproc:process/types": wasmproc_host::wit::bindings::types,
        "wasmproc:process/process": wasmproc_host::wit::bindings::sync::process,
    },
});

/// The fully qualified name of the daemon interface, as guests import it.
pub const DAEMON_INTERFACE_NAME: &str = "wasmproc:process/daemon@0.1.0";
