//! The `wasmproc` command line: bad input gets exit code 125 and a message
//! that says what was wrong.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests run the CLI binary"
)]

use std::process::{Command, Output};

fn wasmproc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmproc"))
        .args(args)
        .env(
            "WASMPROC_CACHE_DIR",
            std::env::temp_dir().join("wasmproc-cli-test-cache"),
        )
        .output()
        .expect("run wasmproc")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cli_run_missing_file_bad() {
    let out = wasmproc(&["run", "/no/such/plugin.wasm"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("cannot read /no/such/plugin.wasm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_run_not_component_bad() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = wasmproc(&["run", core.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("is not a WebAssembly component"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("core wasm module"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_policy_bad() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[program]]\nname = \"git\"\nargs = [[\"**\", \"log\"]]\n",
    )
    .unwrap();
    let out = wasmproc(&["run", "x.wasm", "--policy", policy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("`**` may only be the last element"),
        "{}",
        stderr(&out)
    );

    let out = wasmproc(&["run", "x.wasm", "--allow", "no-such-program-anywhere"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("program `no-such-program-anywhere`"),
        "{}",
        stderr(&out)
    );

    let out = wasmproc(&["run", "x.wasm", "--allow-dir", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("dirs.roots `/no/such/dir`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_flags_bad() {
    let out = wasmproc(&["run"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(stderr(&out).contains("COMPONENT.wasm"), "{}", stderr(&out));
}
