//! The Python and JavaScript example guests, run end to end through the
//! `wasmproc` CLI, and the compiled-component cache.
//!
//! The guests are built by `scripts/build-polyglot.sh`; these tests fail,
//! saying so, when they are missing. They share one cache directory,
//! `target/polyglot/cache`, warmed once per run by `wasmproc compile`, so
//! each component is compiled once per change rather than once per test.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests run the wasmproc CLI as a child process"
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use wasmproc_host::{
    CacheConfig, CacheError, CacheStatus, ComponentCache, GuestOptions, GuestStdio, Policy,
    Runtime, RuntimeConfig,
};
use wasmproc_tests::{guests, harness, polyglot};

/// The cache shared by the polyglot tests, with both components compiled.
fn warm_cache() -> &'static Path {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    WARM.get_or_init(|| {
        let components = [
            polyglot::component(polyglot::PYTHON),
            polyglot::component(polyglot::JS),
        ];
        let dir = polyglot::dir().join("cache");
        let output = Command::new(harness::cli_path())
            .arg("compile")
            .args(&components)
            .env(CacheConfig::DIR_ENV, &dir)
            .output()
            .expect("run wasmproc compile");
        assert!(
            output.status.success(),
            "wasmproc compile failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// The outcome of one `wasmproc run`.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn has(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    fn assert_has(&self, line: &str) {
        assert!(
            self.has(line),
            "no line {line:?} in the guest's output: {self:#?}"
        );
    }

    fn assert_has_prefix(&self, prefix: &str) {
        assert!(
            self.stdout.lines().any(|l| l.starts_with(prefix)),
            "no line starting {prefix:?} in the guest's output: {self:#?}"
        );
    }
}

/// `wasmproc run <component> --allow <program>... -- <args>...`.
fn run(component: &str, allow: &[&str], args: &[&str]) -> Run {
    let path = polyglot::component(component);
    let mut command = Command::new(harness::cli_path());
    command.arg("run").arg(&path);
    for program in allow {
        command.args(["--allow", program]);
    }
    let output = command
        .arg("--")
        .args(args)
        .env(CacheConfig::DIR_ENV, warm_cache())
        .output()
        .expect("run wasmproc");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The same tests for each language: the guests print the same lines.
macro_rules! polyglot_tests {
    ($component:expr, $run_good:ident, $run_bad:ident, $start_kill_good:ident, $start_bad:ident,
     $list_good:ident, $get_bad:ident, $demo_good:ident) => {
        #[test]
        fn $run_good() {
            let out = run($component, &["echo"], &["run", "echo", "hello", "world"]);
            assert_eq!(out.code, 0, "{out:#?}");
            out.assert_has("hello world");
            out.assert_has("status: exited 0");
            let out = run($component, &["sh"], &["run", "sh", "-c", "exit 3"]);
            assert_eq!(out.code, 0, "{out:#?}");
            out.assert_has("status: exited 3");
        }

        /// A program the guest's manifest does not declare, and one that
        /// does not exist: both `denied`, and the guest exits 1.
        #[test]
        fn $run_bad() {
            let out = run($component, &["echo"], &["run", "rm", "-rf", "/nonexistent"]);
            assert_eq!(out.code, 1, "{out:#?}");
            out.assert_has("error: denied: program `rm` is not declared by the plugin");
            let out = run($component, &["echo"], &["run", "no-such-program"]);
            assert_eq!(out.code, 1, "{out:#?}");
            out.assert_has(
                "error: denied: program `no-such-program` is not declared by the plugin",
            );
            assert!(
                !out.stderr.contains("trapped"),
                "a WIT error is not a trap: {out:#?}"
            );
        }

        #[test]
        fn $start_kill_good() {
            let out = run($component, &["sleep"], &["start-kill", "sleep", "30"]);
            assert_eq!(out.code, 0, "{out:#?}");
            out.assert_has_prefix("started: ");
            out.assert_has_prefix("state: running pid: ");
            out.assert_has("listed: yes");
            out.assert_has("after kill: killed signaled 15");
        }

        #[test]
        fn $start_bad() {
            let out = run($component, &["echo"], &["start-kill", "sleep", "30"]);
            assert_eq!(out.code, 1, "{out:#?}");
            // Declared by the guest's manifest, not granted by this policy.
            out.assert_has(
                "error: denied: declared by the plugin, not granted by this host: add \
                 `[[program]] name = \"sleep\" args = [[\"*\"]] operations = [\"start\"]` \
                 to allow it (program `sleep` is not granted)",
            );
            assert!(!out.stdout.contains("started:"), "{out:#?}");
        }

        #[test]
        fn $list_good() {
            let out = run($component, &["sleep"], &["list"]);
            assert_eq!(out.code, 0, "{out:#?}");
            out.assert_has("count: 2");
            out.assert_has("in start order: yes");
            out.assert_has("killed: 2");
        }

        #[test]
        fn $get_bad() {
            let out = run($component, &[], &["get", "made-up-id"]);
            assert_eq!(out.code, 1, "{out:#?}");
            out.assert_has("error: not-found: made-up-id");
        }

        #[test]
        fn $demo_good() {
            let out = run($component, &["echo", "sleep"], &[]);
            assert_eq!(out.code, 0, "{out:#?}");
            for line in [
                "status: exited 0",
                "listed: yes",
                "after kill: killed signaled 15",
                "count: 3",
                "killed: 2",
                "error: denied: program `rm` is not declared by the plugin",
                "error: denied: program `no-such-program` is not declared by the plugin",
                "error: not-found: made-up-id",
            ] {
                out.assert_has(line);
            }
        }
    };
}

polyglot_tests!(
    polyglot::PYTHON,
    polyglot_python_run_good,
    polyglot_python_run_bad,
    polyglot_python_start_kill_good,
    polyglot_python_start_bad,
    polyglot_python_list_good,
    polyglot_python_get_bad,
    polyglot_python_demo_good
);

polyglot_tests!(
    polyglot::JS,
    polyglot_js_run_good,
    polyglot_js_run_bad,
    polyglot_js_start_kill_good,
    polyglot_js_start_bad,
    polyglot_js_list_good,
    polyglot_js_get_bad,
    polyglot_js_demo_good
);

// ---- the compiled-component cache, on a small Rust guest ----

fn hello_bytes() -> Vec<u8> {
    fs::read(guests::HELLO).expect("read the hello guest")
}

fn open(dir: &Path) -> ComponentCache {
    ComponentCache::open(&CacheConfig::new(dir)).expect("open the cache")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

/// Runs the hello guest from a loaded component: proves it is usable.
fn assert_runs(runtime: &Runtime, component: &wasmtime::component::Component) {
    let outcome = runtime
        .run(
            component,
            GuestOptions {
                name: "hello".into(),
                args: vec![],
                policy: Arc::new(Policy::builder().build().unwrap()),
                stdio: GuestStdio::Capture,
            },
        )
        .expect("run hello");
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "hello from guest\n"
    );
}

#[test]
fn cache_load_good() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = harness::shared_runtime();
    let cache = open(dir.path());
    let bytes = hello_bytes();
    let (_, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(status, CacheStatus::Miss);
    assert_eq!(
        entries(dir.path()),
        vec![cache.entry_path(runtime.engine(), &bytes)]
    );
    let mode = fs::metadata(&entries(dir.path())[0])
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "entries are private to the user: {mode:o}");
    let (component, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert_runs(runtime, &component);
}

/// `Runtime::load` goes through the cache of `RuntimeConfig::cache`.
#[test]
fn cache_runtime_load_good() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = harness::own_runtime(RuntimeConfig {
        cache: Some(CacheConfig::new(dir.path())),
        ..RuntimeConfig::default()
    });
    let component = runtime.load(Path::new(guests::HELLO)).unwrap();
    assert_eq!(entries(dir.path()).len(), 1);
    assert_runs(&runtime, &component);
    let component = runtime.load(Path::new(guests::HELLO)).unwrap();
    assert_runs(&runtime, &component);
    assert_eq!(entries(dir.path()).len(), 1);
}

/// An engine with another configuration never sees the first engine's
/// artifact: it misses and stores its own entry.
#[test]
fn cache_key_bad() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let bytes = hello_bytes();
    let runtime = harness::shared_runtime();
    let (_, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(status, CacheStatus::Miss);

    let mut config = wasmtime::Config::new();
    config.epoch_interruption(false).consume_fuel(true);
    let other = wasmtime::Engine::new(&config).unwrap();
    assert_ne!(
        cache.entry_path(&other, &bytes),
        cache.entry_path(runtime.engine(), &bytes)
    );
    let (_, status) = cache.load_or_compile(&other, &bytes).unwrap();
    assert_eq!(
        status,
        CacheStatus::Miss,
        "a changed engine configuration must miss"
    );
    assert_eq!(entries(dir.path()).len(), 2);

    let (_, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(status, CacheStatus::Hit);
    let (_, status) = cache.load_or_compile(&other, &bytes).unwrap();
    assert_eq!(status, CacheStatus::Hit);
}

/// A cache directory others can write to, or that another user owns, is
/// refused; the runtime then compiles without it and stores nothing there.
#[test]
fn cache_dir_bad() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = ComponentCache::open(&CacheConfig::new(dir.path())).unwrap_err();
    assert!(matches!(err, CacheError::Unsafe { .. }), "{err}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );

    let runtime = harness::own_runtime(RuntimeConfig {
        cache: Some(CacheConfig::new(dir.path())),
        ..RuntimeConfig::default()
    });
    let component = runtime.load(Path::new(guests::HELLO)).unwrap();
    assert_runs(&runtime, &component);
    assert!(entries(dir.path()).is_empty());

    // Owned by another user (only root can arrange that).
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(dir.path(), Some(65534), None).is_ok() {
        let err = ComponentCache::open(&CacheConfig::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    }
}

/// Every way an entry can be damaged: it is never deserialized, the
/// component is recompiled, and the entry overwritten with a good one.
#[test]
fn cache_corrupt_ugly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let bytes = hello_bytes();
    let runtime = harness::shared_runtime();
    cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    let entry = cache.entry_path(runtime.engine(), &bytes);
    let good = fs::read(&entry).unwrap();

    let flipped_artifact = {
        let mut b = good.clone();
        let i = b.len() - 100;
        b[i] ^= 0x40;
        b
    };
    let flipped_hash = {
        let mut b = good.clone();
        b[30] ^= 1;
        b
    };
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("header only, cut", good[..50].to_vec()),
        ("truncated artifact", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("trailing garbage", [good.as_slice(), b"junk"].concat()),
        ("flipped artifact byte", flipped_artifact),
        ("flipped header hash", flipped_hash),
        ("raw wasmtime artifact, no header", good[88..].to_vec()),
    ];
    for (what, contents) in damaged {
        fs::write(&entry, &contents).unwrap();
        let (component, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
        assert_eq!(
            status,
            CacheStatus::Replaced,
            "{what}: must be recompiled, not loaded"
        );
        assert_runs(runtime, &component);
        assert_eq!(
            fs::read(&entry).unwrap().len(),
            good.len(),
            "{what}: the entry is rewritten"
        );
        let (_, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
        assert_eq!(
            status,
            CacheStatus::Hit,
            "{what}: the rewritten entry loads"
        );
    }
}

/// A valid entry of another component, copied under this component's name,
/// is refused: the key inside the header does not match.
#[test]
fn cache_foreign_entry_ugly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let runtime = harness::shared_runtime();
    let hello = hello_bytes();
    let plain = fs::read(guests::PLAIN).unwrap();
    cache.load_or_compile(runtime.engine(), &plain).unwrap();
    let hello_entry = cache.entry_path(runtime.engine(), &hello);
    fs::copy(cache.entry_path(runtime.engine(), &plain), &hello_entry).unwrap();
    fs::set_permissions(&hello_entry, fs::Permissions::from_mode(0o600)).unwrap();
    let (component, status) = cache.load_or_compile(runtime.engine(), &hello).unwrap();
    assert_eq!(status, CacheStatus::Replaced);
    assert_runs(runtime, &component);

    // An entry others may write is not loaded either.
    fs::set_permissions(&hello_entry, fs::Permissions::from_mode(0o666)).unwrap();
    let (_, status) = cache.load_or_compile(runtime.engine(), &hello).unwrap();
    assert_eq!(status, CacheStatus::Replaced);
}

/// `wasmproc compile` warms the cache that `wasmproc run` then uses.
#[test]
fn cache_compile_good() {
    let dir = tempfile::tempdir().unwrap();
    let compile = || {
        let out = Command::new(harness::cli_path())
            .args(["compile", guests::HELLO])
            .env(CacheConfig::DIR_ENV, dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(compile().contains(": compiled in "));
    assert!(compile().contains(": already cached in "));
    assert_eq!(entries(dir.path()).len(), 1);
    let out = Command::new(harness::cli_path())
        .args(["run", guests::HELLO])
        .env(CacheConfig::DIR_ENV, dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from guest\n");
}

#[test]
fn cache_compile_bad() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("not.wasm");
    fs::write(&not_wasm, b"hello").unwrap();
    let out = Command::new(harness::cli_path())
        .arg("compile")
        .arg(&not_wasm)
        .env(CacheConfig::DIR_ENV, dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not.wasm"));
}
