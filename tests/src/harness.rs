//! Runtimes, policies and guest runs shared by the end-to-end tests.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use wasmproc_host::Admission;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Plugin;
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::Compiler;
use wasmproc_host::embed::GuestOutcome;
use wasmproc_host::policy::Limits;
use wasmproc_host::process::HostEffects;
use wasmtime::component::Component;

/// The environment variable tests tag their children with, so they can be
/// found (and their absence proven) by scanning `/proc`.
pub const MARKER_VAR: &str = "WASMPROC_TEST_MARKER";

/// The environment variable that picks the compiler of the tests'
/// runtimes, as it picks the `wasmproc` CLI's (`--compiler`): CI runs the
/// parity and polyglot suites again with `winch`.
pub const COMPILER_VAR: &str = "WASMPROC_COMPILER";

/// The compiler named by [`COMPILER_VAR`] (default: the runtime's own).
pub fn compiler() -> Compiler {
    match std::env::var(COMPILER_VAR) {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("{COMPILER_VAR}: {e}")),
        Err(_) => Compiler::default(),
    }
}

/// A runtime shared by the tests of one binary.
pub fn shared_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| own_runtime(RuntimeConfig::default()))
}

/// A fresh runtime of its own (for tests that shut a runtime down), with
/// the compiler of [`COMPILER_VAR`] when that is set.
pub fn own_runtime(mut config: RuntimeConfig) -> Runtime {
    if std::env::var_os(COMPILER_VAR).is_some() {
        config.compiler = compiler();
    }
    // The tests' host is set up as the CLI's is.
    config.host_effects = HostEffects::ALL;
    Runtime::new(config).expect("runtime")
}

/// Loads a guest, compiling each file once per test binary and reusing the
/// compiled artifact on any runtime (all runtimes share one configuration).
pub fn component<T: Send + 'static>(runtime: &Runtime<T>, path: &str) -> Plugin {
    static COMPILED: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    if let Some(bytes) = cache.get(path) {
        // SAFETY: the bytes were produced by `Component::serialize` in this
        // process, by an engine configured exactly like this one.
        let component =
            unsafe { Component::deserialize(runtime.engine(), bytes) }.expect("deserialize");
        return Plugin::new(component, Path::new(path)).expect("manifest");
    }
    let plugin = runtime.load(Path::new(path)).expect("load guest");
    let bytes = plugin.component().serialize().expect("serialize");
    cache.insert(path.to_string(), bytes);
    plugin
}

/// A policy granting `programs` (any arguments), the test marker variable,
/// and the given limits.
pub fn policy_with(programs: &[&str], limits: Limits) -> Arc<Policy> {
    let mut builder = Policy::builder().allow_env(MARKER_VAR).limits(limits);
    for p in programs {
        builder = builder.allow_program(p);
    }
    Arc::new(builder.build().expect("policy"))
}

/// A policy granting `programs` with default limits.
pub fn policy(programs: &[&str]) -> Arc<Policy> {
    policy_with(programs, Limits::default())
}

/// Runs a guest with captured stdio.
pub fn run_guest(
    runtime: &Runtime,
    guest: &str,
    args: &[&str],
    policy: Arc<Policy>,
) -> GuestOutcome {
    run_guest_with(runtime, guest, args, policy, ())
}

/// [`run_guest`] on a runtime whose guests carry embedder data: `data` is
/// this guest's.
pub fn run_guest_with<T: Send + 'static>(
    runtime: &Runtime<T>,
    guest: &str,
    args: &[&str],
    policy: Arc<Policy>,
    data: T,
) -> GuestOutcome {
    let component = component(runtime, guest);
    runtime
        .run_with(
            &component,
            GuestOptions {
                name: Path::new(guest)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                args: args.iter().map(|s| s.to_string()).collect(),
                policy,
                stdio: GuestStdio::Capture,
            },
            data,
        )
        .unwrap_or_else(|e| panic!("guest {guest} failed: {e}"))
}

/// Runs the `probe` guest with a JSON list of steps; returns one JSON value
/// per step (`{"ok": …}` or `{"err": …}`).
pub fn probe(runtime: &Runtime, policy: Arc<Policy>, steps: Value) -> Vec<Value> {
    let outcome = run_guest(runtime, crate::guests::PROBE, &[&steps.to_string()], policy);
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.exit_code,
        0,
        "probe exited {}; stdout: {stdout}; stderr: {}",
        outcome.exit_code,
        String::from_utf8_lossy(&outcome.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad probe line {l:?}: {e}")))
        .collect()
}

/// The `ok` value of a probe result, or a panic showing the error.
pub fn ok(result: &Value) -> &Value {
    result
        .get("ok")
        .unwrap_or_else(|| panic!("expected ok, got {result}"))
}

/// The error kind of a probe result, or a panic showing the success.
pub fn err_kind(result: &Value) -> &str {
    result
        .get("err")
        .and_then(|e| e.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected an error, got {result}"))
}

/// The error detail of a probe result.
pub fn err_detail(result: &Value) -> String {
    result["err"]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A guest session driven directly through the host API, without wasm.
pub fn session(policy: Arc<Policy>) -> (Arc<ProcessManager>, ProcessCtx) {
    let manager = ProcessManager::builder()
        .host_effects(HostEffects::ALL)
        .build();
    let ctx = ProcessCtx::builder(admit(policy), Arc::clone(&manager))
        .guest("direct")
        .build();
    (manager, ctx)
}

/// The admission of a guest without a component file under `policy`.
pub fn admit(policy: Arc<Policy>) -> Arc<Admission> {
    Arc::new(Admission::policy_only(policy).expect("admission"))
}

/// A unique marker value for one test.
pub fn unique_marker(test: &str) -> String {
    format!(
        "{test}-{}-{}",
        std::process::id(),
        wasmproc_host::audit::AuditEvent::new("", "").time_ms
    )
}

/// The `wasmproc` CLI binary (package `wasmproc`, in `cli/`) built beside
/// the test binaries.
pub fn cli_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let cli = dir.join("wasmproc");
    assert!(
        cli.exists(),
        "{} not built (cargo test --workspace builds it, or cargo build -p wasmproc)",
        cli.display()
    );
    cli
}

/// Starts `program args` in a session of its own on `runtime`'s manager,
/// as another guest would; returns that session and the process id.
pub fn start_in_other_session(
    runtime: &Runtime,
    policy: &Arc<Policy>,
    program: &str,
    args: &[&str],
) -> (ProcessCtx, String) {
    let mut other = ProcessCtx::builder(admit(Arc::clone(policy)), Arc::clone(runtime.manager()))
        .guest("other")
        .build();
    let spec = wasmproc_host::session::CommandSpec::new(program).args(args.iter().copied());
    let id = other
        .start(spec, wasmproc_host::session::StartSpec::default())
        .expect("start in the other session");
    (other, id)
}

/// Starts the `wasmproc` CLI running the `probe` guest with `steps`,
/// granting `programs` and the test marker variable; its stdout (one JSON
/// line per step) is piped.
pub fn spawn_cli_probe(programs: &[&str], steps: &Value) -> std::process::Child {
    let mut cmd = std::process::Command::new(cli_path());
    cmd.args(["run", crate::guests::PROBE]);
    for p in programs {
        cmd.args(["--allow", p]);
    }
    cmd.args(["--allow-env", MARKER_VAR, "--"])
        .arg(steps.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the wasmproc CLI")
}
