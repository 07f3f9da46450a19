//! Tiered compilation (`Compiler::Auto`): a miss runs Winch's code at once,
//! Cranelift's entry follows in the background and then wins; a host killed
//! mid-compile leaves no entry that could be read half-written; a component
//! Winch cannot compile falls back to Cranelift.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::CacheConfig;
use wasmproc_host::embed::CacheStatus;
use wasmproc_host::embed::CompileProgress;
use wasmproc_host::embed::Compiler;
use wasmproc_host::embed::ComponentCache;
use wasmproc_host::embed::Tier;
use wasmproc_host::policy::Limits;
use wasmproc_tests::guests::{HELLO, SPIN};
use wasmproc_tests::harness::cli_path;

/// How long the background compile of a test guest may take at most.
const TIER_UP_LIMIT: Duration = Duration::from_secs(300);

/// Whether this machine has Winch (x86-64 only in wasmtime 48).
const WINCH_HERE: bool = cfg!(target_arch = "x86_64");

/// What the runtime told its progress hook.
#[derive(Debug, Default)]
struct Recorded {
    started: Mutex<Vec<Tier>>,
    optimized_ready: Mutex<usize>,
}

impl CompileProgress for Recorded {
    fn started(&self, _: &Path, _: u64, _: bool, tier: Tier) {
        self.started.lock().unwrap().push(tier);
    }

    fn finished(&self, _: &Path, _: Duration, _: bool) {}

    fn optimized_ready(&self, _: &Path, _: Duration) {
        *self.optimized_ready.lock().unwrap() += 1;
    }
}

fn auto_runtime(cache: &Path, progress: &Arc<Recorded>) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache: Some(CacheConfig::new(cache)),
        compile_progress: Some(Arc::clone(progress) as Arc<dyn CompileProgress>),
        compiler: Compiler::Auto,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn run_hello(runtime: &Runtime, component: &wasmproc_host::Plugin) {
    let outcome = runtime
        .run(
            component,
            GuestOptions {
                name: "hello".into(),
                args: vec![],
                policy: Arc::new(Policy::deny_all()),
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

/// The optimized entry's path: the runtime's own engine is Cranelift's.
fn optimized_entry(runtime: &Runtime, cache: &Path, component: &str) -> PathBuf {
    let bytes = std::fs::read(component).expect("read the component");
    ComponentCache::open(&CacheConfig::new(cache))
        .expect("open the cache")
        .entry_path(runtime.engine(), &bytes)
}

fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < TIER_UP_LIMIT,
            "the optimized entry {} did not appear within {TIER_UP_LIMIT:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tier_first_run_uses_baseline_good() {
    let cache = tempfile::tempdir().expect("tempdir");
    let progress = Arc::new(Recorded::default());
    let runtime = auto_runtime(cache.path(), &progress);
    let (component, status) = runtime
        .load_with_status(Path::new(HELLO))
        .expect("load hello");
    assert_eq!(status, Some(CacheStatus::Miss));
    let expected = if WINCH_HERE {
        Tier::Baseline
    } else {
        Tier::Optimized
    };
    assert_eq!(runtime.tier_of(&component), expected);
    assert_eq!(*progress.started.lock().unwrap(), vec![expected]);
    run_hello(&runtime, &component);
}

#[test]
fn tier_up_replaces_entry_good() {
    if !WINCH_HERE {
        return;
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let progress = Arc::new(Recorded::default());
    let runtime = auto_runtime(cache.path(), &progress);
    let baseline = runtime.load(Path::new(HELLO)).expect("first load");
    assert_eq!(runtime.tier_of(&baseline), Tier::Baseline);
    let entry = optimized_entry(&runtime, cache.path(), HELLO);
    wait_for(&entry);
    // Stored, then announced: give the announcement a moment.
    let started = Instant::now();
    while *progress.optimized_ready.lock().unwrap() == 0 && started.elapsed() < TIER_UP_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*progress.optimized_ready.lock().unwrap(), 1);

    // The same host's next load, and a new host's, use the optimized entry.
    let (again, status) = runtime
        .load_with_status(Path::new(HELLO))
        .expect("load again");
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(runtime.tier_of(&again), Tier::Optimized);
    run_hello(&runtime, &again);
    // The baseline instance made earlier still runs.
    run_hello(&runtime, &baseline);

    let fresh = auto_runtime(cache.path(), &Arc::new(Recorded::default()));
    let (loaded, status) = fresh
        .load_with_status(Path::new(HELLO))
        .expect("load in a new host");
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(fresh.tier_of(&loaded), Tier::Optimized);
}

/// Every `.cwasm` file in `dir` is a complete entry: its trailer ends in
/// the magic, records the artifact's length, and the artifact hashes to
/// the trailer's hash (the format of host/src/embed/cache/entry.rs).
fn assert_entries_complete(dir: &Path) -> usize {
    let mut entries = 0;
    for file in std::fs::read_dir(dir).expect("read the cache") {
        let path = file.expect("cache entry").path();
        if path.extension().is_none_or(|x| x != "cwasm") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read an entry");
        assert!(bytes.len() > 88, "{} is truncated", path.display());
        let (artifact, trailer) = bytes.split_at(bytes.len() - 88);
        assert_eq!(
            &trailer[72..],
            b"wasmproc-cwasm\0\x02",
            "{}",
            path.display()
        );
        let length = u64::from_le_bytes(trailer[..8].try_into().unwrap());
        assert_eq!(length, artifact.len() as u64, "{}", path.display());
        assert_eq!(
            blake3::hash(artifact).as_bytes()[..],
            trailer[8..40],
            "{} is not whole",
            path.display()
        );
        entries += 1;
    }
    entries
}

/// How long `auto`'s background compile of `component` takes here, from
/// the first load until the optimized entry is in a fresh cache.
fn tier_up_time(component: &str) -> Duration {
    let cache = tempfile::tempdir().expect("tempdir");
    let runtime = auto_runtime(cache.path(), &Arc::new(Recorded::default()));
    let started = Instant::now();
    let loaded = runtime.load(Path::new(component)).expect("first load");
    assert_eq!(runtime.tier_of(&loaded), Tier::Baseline);
    wait_for(&optimized_entry(&runtime, cache.path(), component));
    started.elapsed()
}

/// Whether `dir` holds a `.cwasm` file yet.
fn has_entry(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
    })
}

/// Runs the spinning guest in the loaded tier with a short time limit: its
/// code runs until the limit stops it.
fn run_spin_briefly(runtime: &Runtime, component: &wasmproc_host::Plugin) {
    let policy = Policy::builder()
        .limits(Limits {
            guest_time: Duration::from_millis(50),
            ..Limits::default()
        })
        .build()
        .expect("policy");
    let outcome = runtime.run(
        component,
        GuestOptions {
            name: "spin".into(),
            args: vec![],
            policy: Arc::new(policy),
            stdio: GuestStdio::Capture,
        },
    );
    assert!(
        matches!(outcome, Err(GuestError::TimeLimit(t)) if t == Duration::from_millis(50)),
        "{outcome:?}"
    );
}

#[test]
fn tier_background_compile_killed_ugly() {
    if !WINCH_HERE {
        return;
    }
    // Killed at moments spread over the whole background compile, and
    // past it: while Cranelift compiles, while its entry is written, after.
    let whole = tier_up_time(SPIN);
    for tenths in [0u32, 2, 4, 6, 8, 9, 10, 12] {
        let delay = whole * tenths / 10;
        let cache = tempfile::tempdir().expect("tempdir");
        let mut host = std::process::Command::new(cli_path())
            .args(["run", "--compiler", "auto", SPIN])
            .env(CacheConfig::DIR_ENV, cache.path())
            .env("WASMPROC_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start wasmproc run");
        let started = Instant::now();
        while !has_entry(cache.path()) && started.elapsed() < TIER_UP_LIMIT {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(delay);
        host.kill().expect("SIGKILL the host");
        host.wait().expect("reap the host");
        assert!(has_entry(cache.path()), "the baseline entry never appeared");

        // Whatever the kill left, every entry under its final name is whole.
        assert!(assert_entries_complete(cache.path()) >= 1);
        // The next host loads what is there, runs it, and finishes the
        // optimized entry if the killed host had not.
        let runtime = auto_runtime(cache.path(), &Arc::new(Recorded::default()));
        let (component, status) = runtime
            .load_with_status(Path::new(SPIN))
            .expect("load spin after the kill");
        assert_eq!(
            status,
            Some(CacheStatus::Hit),
            "killed at {tenths}/10 of the compile: the entries left behind were not loadable"
        );
        run_spin_briefly(&runtime, &component);
        let optimized = optimized_entry(&runtime, cache.path(), SPIN);
        wait_for(&optimized);
        assert_entries_complete(cache.path());
        let (component, status) = runtime
            .load_with_status(Path::new(SPIN))
            .expect("load spin again");
        assert_eq!(status, Some(CacheStatus::Hit));
        assert_eq!(runtime.tier_of(&component), Tier::Optimized);
        run_spin_briefly(&runtime, &component);
    }
}

/// A component whose only core module makes a tail call, which Winch does
/// not support in wasmtime 48 and Cranelift does.
fn tail_calling_component() -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, Function, FunctionSection, Instruction, Module, ModuleSection, TypeSection,
    };
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instruction(&Instruction::ReturnCall(0));
    body.instruction(&Instruction::End);
    code.function(&body);
    module.section(&code);
    let mut component = wasm_encoder::Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}

#[test]
fn tier_winch_unsupported_falls_back_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tail-call.wasm");
    std::fs::write(&path, tail_calling_component()).expect("write the component");
    let cache = dir.path().join("cache");
    let progress = Arc::new(Recorded::default());
    let runtime = auto_runtime(&cache, &progress);
    let (component, status) = runtime
        .load_with_status(&path)
        .expect("auto falls back to Cranelift");
    assert_eq!(status, Some(CacheStatus::Miss));
    assert_eq!(runtime.tier_of(&component), Tier::Optimized);
    let expected = if WINCH_HERE {
        vec![Tier::Baseline, Tier::Optimized]
    } else {
        vec![Tier::Optimized]
    };
    assert_eq!(*progress.started.lock().unwrap(), expected);
    // Cranelift's entry was stored at once, and is what the next load maps.
    let bytes = std::fs::read(&path).unwrap();
    let entry = ComponentCache::open(&CacheConfig::new(&cache))
        .unwrap()
        .entry_path(runtime.engine(), &bytes);
    assert!(entry.is_file(), "no optimized entry at {}", entry.display());
    let (again, status) = runtime.load_with_status(&path).expect("load again");
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(runtime.tier_of(&again), Tier::Optimized);

    // `--compiler winch` has no fallback: the error says what Winch lacks.
    let winch = Runtime::new(RuntimeConfig {
        compiler: Compiler::Winch,
        ..RuntimeConfig::default()
    });
    if let Ok(winch) = winch {
        let error = winch
            .load(&path)
            .expect_err("Winch cannot compile tail calls");
        assert!(
            error.to_string().contains("tail call"),
            "unexpected error: {error}"
        );
    }
}
