use wasmproc_tests::guests;
use wasmproc_tests::harness::{policy, run_guest, shared_runtime};

#[test]
fn capability_register_good() {
    // The runtime registers the capability; a guest importing it
    // instantiates and runs.
    let out = run_guest(shared_runtime(), guests::HELLO, &["0"], policy(&[]));
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from guest"
    );
}

#[test]
fn capability_links_operations_good() {
    // One guest calls run, start, list, get and kill through the SDK.
    let out = run_guest(
        shared_runtime(),
        guests::CAPS,
        &[],
        policy(&["echo", "sleep"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.exit_code,
        0,
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["run ok", "start ok", "list ok", "get ok", "kill ok"] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in {stdout}"
        );
    }
}
