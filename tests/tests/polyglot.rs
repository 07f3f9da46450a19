//! The Python and JavaScript example guests, run end to end through the
//! `wasmproc` CLI, and the compiled-component cache.
//!
//! The guests are built by `scripts/build-polyglot.sh`; these tests fail,
//! saying so, when they are missing. They share one cache directory,
//! `target/polyglot/cache`, warmed once per run by `wasmproc compile`
//! (`polyglot::warm_cache`), so each component is compiled once per change
//! rather than once per test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run the wasmproc CLI as a child process"
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::CacheConfig;
use wasmproc_host::embed::CacheError;
use wasmproc_host::embed::CacheStatus;
use wasmproc_host::embed::Compiler;
use wasmproc_host::embed::ComponentCache;
use wasmproc_host::{Plugin, Runtime};
use wasmproc_tests::{guests, harness, polyglot};
use wasmtime::component::Component;

/// `wasmproc run <component> --allow <program>... -- <args>...`.
fn run(component: &str, allowed: &[&str], args: &[&str]) -> polyglot::Run {
    let flags = polyglot::allow(allowed);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    polyglot::run(component, &flags, args)
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

/// Bytes of an entry's trailer.
const TRAILER: usize = 88;

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
/// Runs the hello guest compiled as `component` (from the cache).
fn assert_runs(runtime: &Runtime, component: &Component) {
    let plugin = Plugin::new(component.clone(), Path::new(guests::HELLO)).expect("manifest");
    let outcome = runtime
        .run(
            &plugin,
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
    // One compiler, one entry (tiers: tests/tests/all/tier.rs).
    let runtime = harness::own_runtime(RuntimeConfig {
        cache: Some(CacheConfig::new(dir.path())),
        compiler: Compiler::Cranelift,
        ..RuntimeConfig::default()
    });
    let component = runtime.load(Path::new(guests::HELLO)).unwrap();
    assert_eq!(entries(dir.path()).len(), 1);
    assert_runs(&runtime, component.component());
    let component = runtime.load(Path::new(guests::HELLO)).unwrap();
    assert_runs(&runtime, component.component());
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
    assert_runs(&runtime, component.component());
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

    // An entry is the artifact followed by an 88-byte trailer: length (8),
    // BLAKE3 hash (32), key (32), magic (16).
    let artifact_len = good.len() - TRAILER;
    let trailer = &good[artifact_len..];
    let flipped_artifact = {
        let mut b = good.clone();
        b[artifact_len / 2] ^= 0x40;
        b
    };
    let flipped_hash = {
        let mut b = good.clone();
        b[artifact_len + 8 + 3] ^= 1;
        b
    };
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("cut to 50 bytes", good[..50].to_vec()),
        ("trailer only", trailer.to_vec()),
        ("truncated artifact", good[..good.len() / 2].to_vec()),
        (
            "truncated artifact, trailer kept",
            [&good[..artifact_len / 2], trailer].concat(),
        ),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("trailing garbage", [good.as_slice(), b"junk"].concat()),
        ("flipped artifact byte", flipped_artifact),
        ("flipped trailer hash", flipped_hash),
        (
            "raw wasmtime artifact, no trailer",
            good[..artifact_len].to_vec(),
        ),
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
/// is refused: the key in its trailer does not match.
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

/// Files in `dir` with extension `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

/// Long enough for a file's timestamps to settle (2 s): only then does the
/// cache trust a file by its identity.
fn wait_until_settled() {
    std::thread::sleep(std::time::Duration::from_millis(2200));
}

/// `bytes` with every occurrence of `from` replaced by `to` (same length);
/// panics if there is none.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "{:?} not found", String::from_utf8_lossy(from));
    out
}

/// An entry changed after it was verified — written in place with its size
/// and mtime kept, or renamed over while loads run — never gets the changed
/// artifact executed: the tampered artifact would print "jello from guest".
#[test]
fn cache_entry_swapped_after_verify_ugly() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let runtime = harness::shared_runtime();
    let bytes = hello_bytes();
    let (_, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(status, CacheStatus::Miss);
    let entry = cache.entry_path(runtime.engine(), &bytes);
    let good = fs::read(&entry).unwrap();
    let tampered = replace_all(&good, b"hello from guest", b"jello from guest");

    // Verified once the entry settled, then trusted by its identity.
    wait_until_settled();
    for _ in 0..2 {
        let (component, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert_runs(runtime, &component);
    }
    assert_eq!(
        files(dir.path(), "verified").len(),
        1,
        "the entry is stamped"
    );

    // Written in place: same inode, same size, mtime set back. Only the
    // ctime moves, and that is enough.
    let before = fs::metadata(&entry).unwrap();
    {
        let file = fs::OpenOptions::new().write(true).open(&entry).unwrap();
        file.write_all_at(&tampered, 0).unwrap();
        file.set_modified(before.modified().unwrap()).unwrap();
    }
    let after = fs::metadata(&entry).unwrap();
    assert_eq!(
        (after.ino(), after.len(), after.modified().unwrap()),
        (before.ino(), before.len(), before.modified().unwrap())
    );
    let (component, status) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
    assert_eq!(
        status,
        CacheStatus::Replaced,
        "a changed entry is verified again"
    );
    assert_runs(runtime, &component);

    // Renamed over, again and again, while loads verify and map it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, entry, dir) = (Arc::clone(&stop), entry.clone(), dir.path().to_path_buf());
        let (good, tampered) = (good.clone(), tampered.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let temp = dir.join("swap");
                let contents = if swaps.is_multiple_of(2) {
                    &tampered
                } else {
                    &good
                };
                fs::write(&temp, contents).unwrap();
                fs::rename(&temp, &entry).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    for _ in 0..20 {
        let (component, _) = cache.load_or_compile(runtime.engine(), &bytes).unwrap();
        assert_runs(runtime, &component);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(swapper.join().unwrap() > 0, "the entry was swapped");
}

/// Touching the component without changing it still hits the cache, and
/// once the touched file settles its identity is indexed; a change of its
/// bytes that keeps its size and mtime misses.
#[test]
fn cache_component_touched_good() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let component = dir.path().join("hello.wasm");
    fs::copy(guests::HELLO, &component).unwrap();
    // One compiler, one entry per content (tiers: tests/tests/all/tier.rs).
    let runtime = harness::own_runtime(RuntimeConfig {
        cache: Some(CacheConfig::new(&cache_dir)),
        compiler: Compiler::Cranelift,
        ..RuntimeConfig::default()
    });
    let load = || {
        let (loaded, status) = runtime.load_with_status(&component).unwrap();
        assert_runs(&runtime, loaded.component());
        status.expect("the cache is used")
    };
    assert_eq!(load(), CacheStatus::Miss);
    assert_eq!(load(), CacheStatus::Hit);

    let touch = || {
        let file = fs::OpenOptions::new().write(true).open(&component).unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
    };
    touch();
    assert_eq!(load(), CacheStatus::Hit, "touched, not changed");
    wait_until_settled();
    assert_eq!(load(), CacheStatus::Hit);
    assert!(
        !files(&cache_dir, "index").is_empty(),
        "the settled file is indexed"
    );
    assert_eq!(load(), CacheStatus::Hit, "hit through the index");
    touch();
    assert_eq!(load(), CacheStatus::Hit, "touched again");
    assert_eq!(entries(&cache_dir).len(), 1);

    // A custom section at the end, then one byte of it changed in place
    // with the mtime set back: the index must not name the old bytes.
    let mut with_note = fs::read(&component).unwrap();
    with_note.extend_from_slice(&[0, 6, 4, b'n', b'o', b't', b'e', b'a']);
    fs::write(&component, &with_note).unwrap();
    assert_eq!(load(), CacheStatus::Miss, "new bytes");
    wait_until_settled();
    assert_eq!(load(), CacheStatus::Hit);
    let mtime = fs::metadata(&component).unwrap().modified().unwrap();
    {
        let file = fs::OpenOptions::new().write(true).open(&component).unwrap();
        file.write_all_at(b"b", with_note.len() as u64 - 1).unwrap();
        file.set_modified(mtime).unwrap();
    }
    assert_eq!(
        load(),
        CacheStatus::Miss,
        "same size and mtime, other bytes"
    );
    assert_eq!(entries(&cache_dir).len(), 3);
}

/// A prepared component instantiates again and again in one host, each
/// instance fresh.
#[test]
fn runtime_reinstantiate_good() {
    let runtime = harness::shared_runtime();
    let component = harness::component(runtime, guests::HELLO);
    let pre = runtime.prepare(&component).unwrap();
    for _ in 0..3 {
        let instance = runtime
            .instantiate(
                &pre,
                GuestOptions {
                    name: "hello".into(),
                    args: vec![],
                    policy: Arc::new(Policy::builder().build().unwrap()),
                    stdio: GuestStdio::Capture,
                },
            )
            .unwrap();
        let outcome = instance.run().unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(
            String::from_utf8_lossy(&outcome.stdout),
            "hello from guest\n"
        );
    }
}

/// `wasmproc compile|run` with an empty cache and stderr not a terminal,
/// with `WASMPROC_LOG` set to `log`.
fn cli_stderr(args: &[&str], cache: &Path, log: Option<&str>) -> (String, Vec<u8>) {
    let mut command = Command::new(harness::cli_path());
    command.args(args).env(CacheConfig::DIR_ENV, cache);
    match log {
        Some(level) => command.env("WASMPROC_LOG", level),
        None => command.env_remove("WASMPROC_LOG"),
    };
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.stderr,
    )
}

/// How the first-compile line names the tier of `compiler` (`auto` is
/// Cranelift where the load compiles in the foreground with it).
fn tier_named(compiler: Compiler) -> &'static str {
    match compiler {
        Compiler::Winch => "baseline (Winch)",
        Compiler::Auto | Compiler::Cranelift => "optimized (Cranelift)",
    }
}

/// The first compile of a component says so on one line when stderr is not
/// a terminal (no escape codes), naming the tier, for `compile` and `run`
/// alike; a cached load says nothing.
#[test]
fn progress_first_compile_line_good() {
    let dir = tempfile::tempdir().unwrap();
    let lines = |stderr: &[u8]| -> Vec<String> {
        assert!(!stderr.contains(&0x1b), "no escape codes: {stderr:?}");
        String::from_utf8_lossy(stderr)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let assert_compiling = |line: &str, ending: &str| {
        assert!(
            line.starts_with("wasmproc: compiling hello.wasm (")
                && line.ends_with(&format!("MB) for this machine, {ending}")),
            "{line}"
        );
    };
    let one_line = |stderr: &[u8], ending: &str| {
        let lines = lines(stderr);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_compiling(&lines[0], ending);
    };
    // `wasmproc compile` makes the optimized entry (or, with `winch`, the
    // baseline one), in the foreground.
    let configured = harness::compiler();
    let cached = format!("{}; cached for next time", tier_named(configured));
    let (_, stderr) = cli_stderr(&["compile", guests::HELLO], &dir.path().join("a"), None);
    one_line(&stderr, &cached);
    let (_, stderr) = cli_stderr(&["compile", guests::HELLO], &dir.path().join("a"), None);
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));

    // One compiler: one line, then silence.
    let cranelift = ["run", "--compiler", "cranelift", guests::HELLO];
    let (stdout, stderr) = cli_stderr(&cranelift, &dir.path().join("b"), None);
    assert_eq!(stdout, "hello from guest\n");
    one_line(&stderr, "optimized (Cranelift); cached for next time");
    let (_, stderr) = cli_stderr(&cranelift, &dir.path().join("b"), None);
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));

    // `auto` on an empty cache: the baseline runs, then the optimized
    // compile is either cached or abandoned at exit, and the line says so.
    let auto = ["run", "--compiler", "auto", guests::HELLO];
    let (stdout, stderr) = cli_stderr(&auto, &dir.path().join("c"), None);
    assert_eq!(stdout, "hello from guest\n");
    let lines = lines(&stderr);
    assert!(lines.len() <= 2, "{lines:?}");
    assert_compiling(&lines[0], "baseline (Winch); cached for next time");
    if let Some(second) = lines.get(1) {
        assert!(
            second.starts_with("wasmproc: optimized (Cranelift) code for hello.wasm cached after ")
                || second.starts_with(
                    "wasmproc: the optimized (Cranelift) compile of hello.wasm did not finish"
                ),
            "{second}"
        );
    }

    let (_, stderr) = cli_stderr(
        &["run", "--no-cache", guests::HELLO],
        &dir.path().join("b"),
        None,
    );
    let no_cache = match configured {
        Compiler::Winch => Compiler::Winch,
        Compiler::Auto | Compiler::Cranelift => Compiler::Cranelift,
    };
    one_line(&stderr, tier_named(no_cache));
}

/// `WASMPROC_LOG=warn` (or quieter) silences the progress line.
#[test]
fn progress_quiet_at_warn_good() {
    let dir = tempfile::tempdir().unwrap();
    for (level, cache) in [("warn", "a"), ("error", "b"), ("off", "c")] {
        let (_, stderr) = cli_stderr(
            &["compile", guests::HELLO],
            &dir.path().join(cache),
            Some(level),
        );
        assert!(
            stderr.is_empty(),
            "{level}: {}",
            String::from_utf8_lossy(&stderr)
        );
    }
    let (_, stderr) = cli_stderr(
        &["compile", guests::HELLO],
        &dir.path().join("d"),
        Some("info"),
    );
    assert!(String::from_utf8_lossy(&stderr).contains("compiling hello.wasm"));
}
