//! The two gates: a plugin's manifest (what it declares, carried in the
//! component) intersected with the host's policy (what this host grants).
//!
//! The tests use the `probe` guest with a manifest written into a copy of
//! it by `wasmproc_host::manifest::embed` (what `wasmproc manifest add`
//! does), and drive it through the library and through the CLI.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run the wasmproc CLI as a child process"
)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use wasmproc_host::Admission;
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::AuditEvent;
use wasmproc_host::audit::AuditSink;
use wasmproc_host::embed::CacheConfig;
use wasmproc_host::manifest::{self, Manifest, ManifestError};
use wasmproc_tests::{guests, harness, polyglot};

/// What the manifested probe declares.
const PROBE_MANIFEST: &str = r#"
version = 1

[[program]]
name = "echo"
args = [["declared", "*"]]
operations = ["run"]
reason = "prints a declared word"

[[program]]
name = "sleep"
operations = ["start"]
reason = "waits in the background"

[[program]]
name = "sh"
args = [["-c", "exit 0"]]
operations = ["run"]
reason = "checks that a shell starts"

[[variable]]
name = "GREETING"
reason = "tells echo's environment how to greet"
"#;

/// A directory shared by the tests of this binary: the manifested probe
/// and the CLI's compiled-component cache.
fn workdir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// The probe guest with [`PROBE_MANIFEST`] written into it.
fn manifested_probe() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let bytes = std::fs::read(guests::PROBE).expect("read probe");
        let with = manifest::embed("probe", &bytes, PROBE_MANIFEST).expect("embed manifest");
        let path = workdir().join("probe-manifested.wasm");
        std::fs::write(&path, with).expect("write probe");
        path
    })
}

/// An audit sink that keeps events in memory.
#[derive(Debug, Default)]
struct Collected(Mutex<Vec<AuditEvent>>);

impl AuditSink for Collected {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// Runs the manifested probe in-process under `policy` (with the probe's
/// manifest attached, as `wasmproc run` does); returns the step results
/// and the audit events.
fn probe_gated(policy: Policy, steps: Value) -> (Vec<Value>, Vec<AuditEvent>) {
    let sink = Arc::new(Collected::default());
    let runtime = harness::own_runtime(RuntimeConfig {
        audit: Audit::new().with_sink(sink.clone()),
        ..RuntimeConfig::default()
    });
    let path = manifested_probe();
    // The runtime reads the manifest the component carries and admits each
    // run by it and the policy together.
    let component = harness::component(&runtime, path.to_str().unwrap());
    assert!(
        component.manifest().is_some(),
        "the probe carries a manifest"
    );
    let outcome = runtime
        .run(
            &component,
            GuestOptions {
                name: "probe".into(),
                args: vec![steps.to_string()],
                policy: Arc::new(policy),
                stdio: GuestStdio::Capture,
            },
        )
        .expect("run the probe");
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(outcome.exit_code, 0, "probe failed: {stdout}");
    let results = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = sink.0.lock().unwrap().clone();
    (results, events)
}

fn run_step(program: &str, args: &[&str]) -> Value {
    json!({"op": "run", "program": program, "args": args})
}

fn denial(result: &Value) -> String {
    assert_eq!(harness::err_kind(result), "denied", "{result}");
    harness::err_detail(result)
}

/// `wasmproc ARGS...` with the shared cache; returns exit code, stdout, stderr.
fn cli(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(harness::cli_path())
        .args(args)
        .env(CacheConfig::DIR_ENV, workdir().join("cache"))
        .output()
        .expect("run wasmproc");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A policy granting everything the probe might ask for, and more.
fn wide_policy() -> Policy {
    Policy::builder()
        .allow_program("echo")
        .allow_program("sleep")
        .allow_program("sh")
        .allow_program("true")
        .allow_env("GREETING")
        .allow_env("OTHER")
        .build()
        .expect("policy")
}

#[test]
fn manifest_intersection_good() {
    let (results, events) = probe_gated(
        wide_policy(),
        json!([
            // Declared and granted: runs.
            run_step("echo", &["declared", "word"]),
            // Declared variable, granted: runs with it.
            {"op": "run", "program": "sh", "args": ["-c", "exit 0"], "env": [["GREETING", "hi"]]},
            // Declared for `start`, granted: starts.
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "kill", "id": "$2"},
            // Granted by the policy, outside the manifest: each part refused.
            run_step("echo", &["undeclared"]),
            run_step("true", &[]),
            {"op": "run", "program": "sleep", "args": ["0"]},
            {"op": "run", "program": "sh", "args": ["-c", "exit 0"], "env": [["OTHER", "x"]]},
            {"op": "run", "program": "sh", "args": ["-c", "exit 0"], "cwd": "/"},
        ]),
    );
    assert_eq!(harness::ok(&results[0])["stdout"], "declared word\n");
    assert_eq!(harness::ok(&results[1])["status"], json!({"exited": 0}));
    assert!(harness::ok(&results[2]).is_string(), "{}", results[2]);
    harness::ok(&results[3]);
    for (i, what) in [
        (4, "arguments [\"undeclared\"] of program `echo`"),
        (5, "program `true`"),
        (6, "program `sleep`"),
        (7, "environment variable `OTHER`"),
        (8, "a working directory"),
    ] {
        let why = denial(&results[i]);
        assert!(
            why.contains(what) && why.contains("not declared by the plugin"),
            "step {i}: {why}"
        );
    }
    let allowed = events
        .iter()
        .filter(|e| e.operation != "kill" && e.decision.as_deref() == Some("allowed"))
        .count();
    assert_eq!(allowed, 3, "{events:#?}");
}

#[test]
fn manifest_undeclared_denied_bad() {
    let audit = workdir().join("undeclared.jsonl");
    let steps = json!([run_step("sh", &["-c", "exit 7"])]).to_string();
    let (code, stdout, stderr) = cli(&[
        "run",
        manifested_probe().to_str().unwrap(),
        "--allow",
        "sh",
        "--audit",
        audit.to_str().unwrap(),
        "--",
        &steps,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let result: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        denial(&result),
        "arguments [\"-c\", \"exit 7\"] of program `sh` are not declared by the plugin (declared: `-c exit 0`)"
    );
    let events: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = events
        .iter()
        .find(|e| e["operation"] == "run")
        .unwrap_or_else(|| panic!("no run event: {events:#?}"));
    assert_eq!(refused["decision"], "denied", "{refused}");
    assert_eq!(refused["gate"], "manifest", "{refused}");
}

#[test]
fn manifest_declared_not_granted_bad() {
    let policy = Policy::builder()
        .allow_program_args("echo", &[&["declared", "only"]])
        .build()
        .unwrap();
    let (results, events) = probe_gated(
        policy,
        json!([
            run_step("echo", &["declared", "word"]),
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "run", "program": "echo", "args": ["declared", "only"], "env": [["GREETING", "hi"]]},
        ]),
    );
    assert_eq!(
        denial(&results[0]),
        "declared by the plugin, not granted by this host: add [\"declared\", \"*\"] to `args` \
         of program `echo` to allow it (argument 2 `word` does not match grant `echo declared only`)"
    );
    assert_eq!(
        denial(&results[1]),
        "declared by the plugin, not granted by this host: add `[[program]] name = \"sleep\" \
         operations = [\"start\"]` to allow it (program `sleep` is not granted)"
    );
    assert_eq!(
        denial(&results[2]),
        "declared by the plugin, not granted by this host: add \"GREETING\" to `env` of program \
         `echo` to allow it (environment variable `GREETING` is not granted; grant it by its exact \
         name (env.allow, or `env` of program `echo`) if the program needs it)"
    );
    let gates: Vec<_> = events
        .iter()
        .filter(|e| e.decision.as_deref() == Some("denied"))
        .map(|e| e.gate.as_deref())
        .collect();
    assert_eq!(gates, [Some("policy"); 3], "{events:#?}");
}

#[test]
fn manifest_inspect_good() {
    let probe = manifested_probe().to_str().unwrap();
    let (code, table, stderr) = cli(&["inspect", probe]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(lines[0], ["REQUEST", "PATTERN", "REASON"], "{table}");
    for row in [
        ["program echo (run)", "declared *", "prints a declared word"],
        [
            "program sleep (start)",
            "(any arguments)",
            "waits in the background",
        ],
        [
            "program sh (run)",
            "-c exit 0",
            "checks that a shell starts",
        ],
        [
            "variable",
            "GREETING",
            "tells echo's environment how to greet",
        ],
    ] {
        assert!(
            lines.iter().any(|l| *l == row),
            "no row {row:?} in\n{table}"
        );
    }

    let policy = workdir().join("inspect-policy.toml");
    std::fs::write(
        &policy,
        "[[program]]\nname = \"echo\"\nargs = [[\"declared\", \"only\"]]\n\n\
         [[program]]\nname = \"sh\"\n\n\
         [[program]]\nname = \"sleep\"\noperations = [\"run\"]\n",
    )
    .unwrap();
    let (code, table, stderr) = cli(&["inspect", probe, "--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for (request, verdict) in [
        (
            "program echo (run)",
            "narrowed: only arguments `declared only`",
        ),
        ("program sh (run)", "granted"),
        (
            "program sleep (start)",
            "refused: program `sleep` is not granted for start",
        ),
        ("variable", "refused: [env] does not allow `GREETING`"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(request))
            .unwrap_or_else(|| panic!("no {request} row in\n{table}"));
        assert!(line.ends_with(verdict), "{request}: {line}");
    }
    assert!(table.starts_with("REQUEST"), "{table}");
    assert!(
        table.lines().next().unwrap().ends_with("UNDER THIS POLICY"),
        "{table}"
    );
}

#[test]
fn manifest_grant_roundtrip_good() {
    let (code, text, stderr) = cli(&["grant", manifested_probe().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // Catalogued code-running programs are flagged for review.
    assert!(
        text.contains("# WARNING: sh can run code"),
        "sh is not flagged:\n{text}"
    );
    assert!(!text.contains("WARNING: echo"), "{text}");
    let path = workdir().join("granted.toml");
    std::fs::write(&path, &text).unwrap();
    let policy = Policy::from_file(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(policy.require_manifest(), "{text}");
    let (results, _) = probe_gated(
        policy,
        json!([
            // Everything declared runs.
            run_step("echo", &["declared", "x"]),
            {"op": "run", "program": "sh", "args": ["-c", "exit 0"], "env": [["GREETING", "hi"]]},
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "kill", "id": "$2"},
            // Nothing else does.
            run_step("echo", &["other"]),
            run_step("sh", &["-c", "exit 1"]),
            {"op": "run", "program": "sleep", "args": ["0"]},
        ]),
    );
    for (i, r) in results.iter().enumerate().take(4) {
        assert!(r.get("ok").is_some(), "step {i}: {r}");
    }
    for r in &results[4..] {
        assert!(denial(r).contains("not declared by the plugin"), "{r}");
    }
}

#[test]
fn manifest_required_missing_bad() {
    let policy_file = workdir().join("strict.toml");
    std::fs::write(
        &policy_file,
        "require_manifest = true\n[[program]]\nname = \"echo\"\n",
    )
    .unwrap();
    let steps = json!([run_step("echo", &["hi"])]).to_string();
    // The CLI refuses a component without a manifest before running it.
    let (code, stdout, stderr) = cli(&[
        "run",
        guests::PROBE,
        "--policy",
        policy_file.to_str().unwrap(),
        "--",
        &steps,
    ]);
    assert_eq!(code, 125, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "the guest ran: {stdout}");
    assert!(
        stderr.contains("carries no plugin manifest") && stderr.contains("require_manifest"),
        "{stderr}"
    );
    // So does the runtime.
    let policy = Arc::new(Policy::from_file(&policy_file).unwrap());
    let runtime = harness::shared_runtime();
    let component = harness::component(runtime, guests::PROBE);
    let refused = runtime.run(
        &component,
        GuestOptions {
            name: "probe".into(),
            args: vec![steps.clone()],
            policy: Arc::clone(&policy),
            stdio: GuestStdio::Capture,
        },
    );
    assert!(
        matches!(
            refused,
            Err(GuestError::Manifest(ref e)) if matches!(
                **e,
                ManifestError::Required { ref component }
                    if component.ends_with(Path::new(guests::PROBE).file_name().unwrap())
            )
        ),
        "{refused:?}"
    );
    // And no session can be made without one: admission checks it once,
    // so there is no session whose calls would have to.
    let refused = Admission::policy_only(Arc::clone(&policy)).expect_err("refused");
    assert!(
        matches!(refused, ManifestError::Required { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("require_manifest"),
        "{refused}"
    );
    // The same component with a manifest runs under the same policy.
    let (code, stdout, stderr) = cli(&[
        "run",
        manifested_probe().to_str().unwrap(),
        "--policy",
        policy_file.to_str().unwrap(),
        "--",
        &json!([run_step("echo", &["declared", "yes"])]).to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("declared yes"), "{stdout}\n{stderr}");
}

#[test]
fn manifest_python_js_good() {
    for file in [polyglot::PYTHON, polyglot::JS] {
        let path = polyglot::component(file);
        let manifest = Manifest::from_file(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{} carries no manifest", path.display()));
        for program in ["echo", "sh", "sleep"] {
            let declared = manifest
                .program(program)
                .unwrap_or_else(|| panic!("{file} does not declare {program}"));
            assert!(!declared.reason.is_empty());
        }
        assert!(manifest.program("rm").is_none(), "{file} declares rm");
        let (code, table, stderr) = cli(&["inspect", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert!(table.contains("program sleep"), "{table}");
    }
}

/// `component` with one more top-level custom section (name, data).
fn with_custom_section(component: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                break;
            }
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut out = component.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend(body);
    out
}

#[test]
fn manifest_malformed_ugly() {
    let probe = std::fs::read(guests::PROBE).unwrap();
    let section = manifest::SECTION_NAME;
    let good = "version = 1\n[[program]]\nname = \"echo\"\nreason = \"r\"\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not UTF-8",
            with_custom_section(&probe, section, &[0xff, 0xfe, 0x00]),
            "not UTF-8",
        ),
        (
            "not TOML",
            with_custom_section(&probe, section, b"version = = 1"),
            "malformed",
        ),
        (
            "unknown key",
            with_custom_section(&probe, section, b"version = 1\nprograms = []"),
            "unknown field `programs`",
        ),
        (
            "future version",
            with_custom_section(&probe, section, b"version = 2"),
            "version 2 is not supported",
        ),
        (
            "no reason",
            with_custom_section(&probe, section, b"version = 1\n[[program]]\nname = \"sh\"\nreason = \" \""),
            "`reason` is empty",
        ),
        (
            "bad pattern",
            with_custom_section(
                &probe,
                section,
                b"version = 1\n[[program]]\nname = \"sh\"\nargs = [[\"**\", \"x\"]]\nreason = \"r\"",
            ),
            "`**` may only be the last element",
        ),
        (
            "oversized",
            with_custom_section(&probe, section, &vec![b'#'; manifest::MAX_SECTION_BYTES + 1]),
            "above the limit",
        ),
        (
            "two manifests",
            with_custom_section(
                &with_custom_section(&probe, section, good.as_bytes()),
                section,
                good.as_bytes(),
            ),
            "more than one",
        ),
        (
            "truncated component",
            with_custom_section(&probe, section, good.as_bytes())[..probe.len() / 2].to_vec(),
            "not a well-formed WebAssembly binary",
        ),
    ];
    for (what, bytes, expected) in cases {
        let err: ManifestError = Manifest::from_component("plugin.wasm", &bytes).expect_err(what);
        let text = err.to_string();
        assert!(
            text.contains(expected) && text.contains("plugin.wasm"),
            "{what}: {text}"
        );
        // The CLI says the same and runs nothing.
        let path = workdir().join(format!("malformed-{}.wasm", what.replace(' ', "-")));
        std::fs::write(&path, &bytes).unwrap();
        let (code, stdout, stderr) = cli(&["inspect", path.to_str().unwrap()]);
        assert_eq!(code, 125, "{what}: {stdout}\n{stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
    // A malformed manifest file is refused before anything is written.
    let target = workdir().join("untouched.wasm");
    std::fs::write(&target, &probe).unwrap();
    let bad = workdir().join("bad-manifest.toml");
    std::fs::write(&bad, "version = 1\n[[program]]\nname = \"sh\"\n").unwrap();
    let (code, _, stderr) = cli(&[
        "manifest",
        "add",
        target.to_str().unwrap(),
        "--manifest",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("missing field `reason`"), "{stderr}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        probe,
        "the component changed"
    );
}

#[test]
fn manifest_sdk_macro_good() {
    // The SDK's `manifest!` survives the guest build (here, release) into
    // the component, and gates its calls.
    let manifest = Manifest::from_file(Path::new(guests::DECLARED))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the declared guest carries its manifest");
    let echo = manifest.program("echo").expect("echo declared");
    assert_eq!(
        echo.args,
        Some(vec![vec!["from".to_string(), "*".to_string()]])
    );
    assert_eq!(echo.reason, "prints where it runs from");
    let (code, stdout, stderr) = cli(&[
        "run",
        guests::DECLARED,
        "--allow",
        "echo",
        "--",
        "echo",
        "from",
        "wasm",
    ]);
    assert_eq!((code, stdout.as_str()), (0, "from wasm\n"), "{stderr}");
    let (code, stdout, stderr) = cli(&[
        "run",
        guests::DECLARED,
        "--allow",
        "echo",
        "--",
        "echo",
        "elsewhere",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("not declared by the plugin"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn manifest_file_renamed_over_after_load_ugly() {
    // A plugin loaded, then another component renamed over its path (as a
    // local user with write access to the directory could): the plugin
    // keeps the manifest of the file it was compiled from, and a policy
    // pinned to that file's digest still admits it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(manifested_probe(), &path).unwrap();
    let original = manifest::ComponentDigest::of_file(&path).unwrap();
    let runtime = harness::own_runtime(RuntimeConfig::default());
    let plugin = runtime.load(&path).expect("load");
    let other = dir.path().join("other.wasm");
    std::fs::copy(guests::HELLO, &other).unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert!(
        Manifest::from_file(&path).unwrap().is_none(),
        "the file now at the path carries no manifest"
    );
    assert!(
        plugin.manifest().is_some(),
        "the manifest is the compiled file's"
    );
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, format!("component_digest = \"{original}\"\n")).unwrap();
    let pinned = Arc::new(Policy::from_file(&policy_file).unwrap());
    plugin
        .admit(pinned, false)
        .expect("pinned to the compiled file, whatever is at the path now");
}
