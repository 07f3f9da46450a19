use serde_json::json;
use std::sync::Arc;
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::wit::CAPABILITY_NAME;
use wasmproc_tests::guests;
use wasmproc_tests::harness::{
    component, err_detail, err_kind, own_runtime, probe, shared_runtime,
};

#[test]
fn permission_unregistered_ugly() {
    // Without registration, a guest importing the capability does not even
    // instantiate, and the error names the capability.
    let runtime = own_runtime(RuntimeConfig {
        register_process: false,
        ..RuntimeConfig::default()
    });
    let probe_component = component(&runtime, guests::PROBE);
    let err = runtime
        .run(
            &probe_component,
            GuestOptions {
                name: "probe".into(),
                args: vec!["[]".into()],
                policy: Arc::new(Policy::deny_all()),
                stdio: GuestStdio::Capture,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, GuestError::CapabilityNotRegistered(_)),
        "{err}"
    );
    assert!(err.to_string().contains(CAPABILITY_NAME), "{err}");
    // A guest that does not import it still runs on that host.
    let plain = component(&runtime, guests::PLAIN);
    let outcome = runtime
        .run(
            &plain,
            GuestOptions {
                name: "plain".into(),
                args: vec![],
                policy: Arc::new(Policy::deny_all()),
                stdio: GuestStdio::Capture,
            },
        )
        .unwrap();
    assert_eq!(outcome.exit_code, 0);

    // Registered but granted nothing: every run and start is a typed
    // denial, never a trap, and the guest goes on to the next step.
    let r = probe(
        shared_runtime(),
        Arc::new(Policy::deny_all()),
        json!([
            {"op": "run", "program": "/bin/echo", "args": ["x"]},
            {"op": "start", "program": "sleep", "args": ["1"]},
            {"op": "list"},
        ]),
    );
    assert_eq!(err_kind(&r[0]), "denied");
    assert!(err_detail(&r[0]).contains("/bin/echo"), "{}", r[0]);
    assert_eq!(err_kind(&r[1]), "denied");
    assert_eq!(r[2], json!({"ok": []}));
}

#[test]
fn permission_denied_guest_sees_typed_error_good() {
    // The SDK surfaces the WIT error as `Error::Denied`.
    let outcome = wasmproc_tests::harness::run_guest(
        shared_runtime(),
        guests::DENIED,
        &[],
        Arc::new(Policy::deny_all()),
    );
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stdout)
    );
}

#[test]
fn permission_not_a_component_bad() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = shared_runtime().load(&core).unwrap_err();
    assert!(err.to_string().contains("core wasm module"), "{err}");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"hello").unwrap();
    let err = shared_runtime().load(&junk).unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");
    let err = shared_runtime()
        .load(&dir.path().join("missing.wasm"))
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}
