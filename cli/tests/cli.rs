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

/// An empty component (no `wasi:cli/run` export) and a cache directory
/// anyone may write to: `run` logs a warning (the cache is refused), then
/// fails to instantiate the component. Returns (dir, component, cache).
fn warning_fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("broken.wasm");
    std::fs::write(&component, b"\0asm\x0d\0\x01\0").unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    (dir, component, cache)
}

/// Runs `wasmproc run` on the warning fixture with stderr piped (not a
/// terminal) and the given extra environment.
fn run_logging(vars: &[(&str, &str)]) -> Output {
    let (_dir, component, cache) = warning_fixture();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmproc"));
    command
        .args(["run", component.to_str().unwrap()])
        .env("WASMPROC_CACHE_DIR", &cache)
        .env_remove("NO_COLOR")
        .env_remove("WASMPROC_LOG_FORMAT")
        .env_remove("WASMPROC_LOG");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run wasmproc")
}

#[test]
fn cli_run_log_plain_when_piped_good() {
    let out = run_logging(&[("WASMPROC_LOG", "info")]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{text}");
    assert!(text.contains("WARN"), "a log line was written: {text}");
    assert!(text.contains("compiling without the cache"), "{text}");
    assert!(
        !out.stderr.contains(&0x1b),
        "escape codes in piped logs: {text:?}"
    );
}

#[test]
fn cli_serve_log_plain_when_piped_good() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wasmproc.toml");
    std::fs::write(
        &config,
        r#"[serve]
name = "log-test"
listen = "127.0.0.1:0"
pid_file = "host.pid"
registry_dir = "registry"
shutdown_grace = "2s"

[[policy.program]]
name = "sh"

[[daemon]]
name = "fails"
program = "sh"
args = ["-c", "exit 3"]
restart = "on-failure"

[daemon.backoff]
initial = "50ms"

[daemon.start_limit]
burst = 2
interval = "1m"
"#,
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_wasmproc"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("WASMPROC_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("WASMPROC_LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("daemon failed") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Our own child, not yet reaped: the pid is still its.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal wasmproc serve");
    let status = serve.wait().expect("wait for serve");
    let bytes = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        logged.contains("daemon failed"),
        "no warning within 10 s: {text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        !bytes.contains(&0x1b),
        "escape codes in piped logs: {text:?}"
    );
}

#[test]
fn cli_log_format_json_good() {
    let out = run_logging(&[("WASMPROC_LOG", "info"), ("WASMPROC_LOG_FORMAT", "json")]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{text}");
    // The CLI's own error message stays a plain `wasmproc: error:` line;
    // every log line is one JSON object.
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|line| !line.starts_with("wasmproc: "))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let warning = records
        .iter()
        .find(|r| r["level"] == "WARN")
        .unwrap_or_else(|| panic!("no warning record in {text}"));
    let message = warning["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("compiling without the cache"), "{warning}");
    assert!(!out.stderr.contains(&0x1b), "{text:?}");
}

#[test]
fn cli_log_format_bad() {
    let out = run_logging(&[("WASMPROC_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("WASMPROC_LOG_FORMAT=xml is not a log format"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_allow_args_bad() {
    let out = wasmproc(&["run", "x.wasm", "--allow-args", "echo", "** hello"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("`**` may only be the last element"),
        "{}",
        stderr(&out)
    );

    let out = wasmproc(&["run", "x.wasm", "--allow-args", "echo"]);
    assert_eq!(out.status.code(), Some(2), "a pattern is required");
    assert!(stderr(&out).contains("PATTERN"), "{}", stderr(&out));
}
