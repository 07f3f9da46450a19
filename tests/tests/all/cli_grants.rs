//! Grants given on the `wasmproc run` command line, through the CLI binary.

use serde_json::Value;
use wasmproc_tests::guests::PROBE;
use wasmproc_tests::harness::cli_path;

/// Runs the probe guest through the CLI with `grants`; returns one JSON
/// value per step.
fn probe_cli(grants: &[&str], steps: &str) -> Vec<Value> {
    let out = std::process::Command::new(cli_path())
        .arg("run")
        .arg(PROBE)
        .args(grants)
        .args(["--", steps])
        .output()
        .expect("run wasmproc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn cli_allow_args_good() {
    // Only the arguments a pattern matches run; `*` is one argument and a
    // trailing `**` the rest.
    let results = probe_cli(
        &[
            "--allow-args",
            "echo",
            "hello *",
            "--allow-args",
            "echo",
            "bye **",
        ],
        r#"[{"op": "run", "program": "echo", "args": ["hello", "world"]},
            {"op": "run", "program": "echo", "args": ["bye", "a", "b"]},
            {"op": "run", "program": "echo", "args": ["hello", "big", "world"]},
            {"op": "run", "program": "echo", "args": ["--help"]}]"#,
    );
    assert_eq!(
        results[0]["ok"]["stdout"], "hello world\n",
        "{}",
        results[0]
    );
    assert_eq!(results[1]["ok"]["stdout"], "bye a b\n", "{}", results[1]);
    for denied in &results[2..] {
        assert_eq!(denied["err"]["kind"], "denied", "{denied}");
    }
}
