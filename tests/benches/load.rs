//! `cargo bench --bench load`: how long loading and running the Python and
//! JavaScript example components takes, without and with the
//! compiled-component cache, beside native CPython and Node start-up
//! measured in the same run. Prints `key: value` lines.
//!
//! For the Python component (the JavaScript one prints the same keys with a
//! `js_` prefix):
//!
//! - `component_mb`, `cache_entry_mb`: sizes of the component and its entry.
//! - `first_run_ms`: with an empty cache and the default compiler (`auto`),
//!   `Runtime::load` (Winch) plus one guest run of `run true`. Goal: at most
//!   2,000.
//! - `tier_up_ms`: from that load's start until Cranelift's entry, compiled
//!   in the background, is in the cache.
//! - `cold_load_ms`: `Runtime::load` with an empty cache and
//!   `--compiler cranelift`: the optimized compile alone, then storing it.
//! - `first_warm_load_ms`: the first load once the entry is 2 s old (older
//!   entries are never written in the same timestamp tick): it hashes the
//!   component and the entry once and records both.
//! - `warm_load_ms` (median) and `warm_load_min_ms`: later loads, which map
//!   the entry without reading it. Goal: at most 15.
//! - `warm_run_ms`: median of a warm load plus one guest run of `run true`,
//!   as `wasmproc run` does it. Goal: at most 20.
//! - `winch_warm_run_ms`: the same with `--compiler winch` (Winch's entry):
//!   what the baseline tier costs while it runs.
//! - `reinstantiate_ms`: median of instantiating the same prepared component
//!   again in one host (`Runtime::instantiate` on a `GuestPre`). Goal: at
//!   most 1.
//! - `reinstantiate_page_faults`: median page faults the host process took
//!   during one of those instantiations (a reused pool slot whose pages
//!   stayed resident takes none).
//! - `python_native_ms` (`/usr/bin/python3 -c pass`), `node_native_ms`
//!   (`node -e 0`), and `warm_run_ratio` / `js_warm_run_ratio`: the warm run
//!   against the native interpreter's start-up.
//!
//! The components are built with `scripts/build-polyglot.sh` if missing.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the benchmark runs the build script and the native interpreters"
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::CacheConfig;
use wasmproc_host::embed::Compiler;
use wasmproc_host::embed::ComponentCache;
use wasmproc_tests::polyglot;

const WARM_LOADS: usize = 15;
const WARM_RUNS: usize = 7;
const REINSTANTIATIONS: usize = 15;
const NATIVE_RUNS: usize = 10;
/// The longest the background compile may take before the bench gives up.
const TIER_UP_LIMIT: Duration = Duration::from_secs(600);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn main() {
    for (file, language) in [(polyglot::PYTHON, "python"), (polyglot::JS, "js")] {
        if !polyglot::dir().join(file).is_file() {
            let status = Command::new("bash")
                .arg(polyglot::build_script())
                .arg(language)
                .status()
                .expect("run scripts/build-polyglot.sh");
            assert!(status.success(), "scripts/build-polyglot.sh failed");
        }
    }
    let python = measure(&polyglot::component(polyglot::PYTHON), "python-guest");
    let js = measure(&polyglot::component(polyglot::JS), "js-guest");
    let python_native = native("/usr/bin/python3", &["-c", "pass"]);
    let node_native = native("node", &["-e", "0"]);

    python.print("");
    js.print("js_");
    if let Some(native) = python_native {
        println!("python_native_ms: {native:.1}");
        println!("warm_run_ratio: {:.2}", python.warm_run / native);
    }
    if let Some(native) = node_native {
        println!("node_native_ms: {native:.1}");
        println!("js_warm_run_ratio: {:.2}", js.warm_run / native);
    }
}

/// The figures of one component.
struct Figures {
    component_mb: f64,
    entry_mb: f64,
    first_run: f64,
    tier_up: f64,
    cold_load: f64,
    first_warm_load: f64,
    warm_load: f64,
    warm_load_min: f64,
    warm_run: f64,
    winch_warm_run: f64,
    reinstantiate: f64,
    reinstantiate_page_faults: i64,
}

impl Figures {
    fn print(&self, prefix: &str) {
        println!("{prefix}component_mb: {:.1}", self.component_mb);
        println!("{prefix}cache_entry_mb: {:.1}", self.entry_mb);
        println!("{prefix}first_run_ms: {:.0}", self.first_run);
        println!("{prefix}tier_up_ms: {:.0}", self.tier_up);
        println!("{prefix}cold_load_ms: {:.0}", self.cold_load);
        println!("{prefix}first_warm_load_ms: {:.1}", self.first_warm_load);
        println!("{prefix}warm_load_ms: {:.1}", self.warm_load);
        println!("{prefix}warm_load_min_ms: {:.1}", self.warm_load_min);
        println!("{prefix}warm_run_ms: {:.1}", self.warm_run);
        println!("{prefix}winch_warm_run_ms: {:.1}", self.winch_warm_run);
        println!("{prefix}reinstantiate_ms: {:.2}", self.reinstantiate);
        println!(
            "{prefix}reinstantiate_page_faults: {}",
            self.reinstantiate_page_faults
        );
    }
}

fn options(name: &str) -> GuestOptions {
    GuestOptions {
        name: name.into(),
        args: vec!["run".into(), "true".into()],
        policy: Arc::new(
            Policy::builder()
                .allow_program("true")
                .build()
                .expect("policy"),
        ),
        stdio: GuestStdio::Capture,
    }
}

/// A fresh runtime with `compiler` and the cache in `dir`, as each
/// `wasmproc run` has one.
fn runtime_in(dir: &Path, compiler: Compiler) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache: Some(CacheConfig::new(dir)),
        compiler,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// Load plus one run, checked, in milliseconds.
fn load_and_run(rt: &Runtime, path: &Path, name: &str) -> f64 {
    let started = Instant::now();
    let component = rt.load(path).expect("load");
    let outcome = rt.run(&component, options(name)).expect("guest run");
    let elapsed = ms(started);
    assert_eq!(
        outcome.exit_code,
        0,
        "guest failed: {}{}",
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&outcome.stderr)
    );
    elapsed
}

/// `first_run_ms` and `tier_up_ms`: a cold cache with `auto`.
fn first_run_and_tier_up(path: &Path, name: &str) -> (f64, f64) {
    let cache_dir = tempfile::tempdir().expect("temporary cache directory");
    let rt = runtime_in(cache_dir.path(), Compiler::Auto);
    let started = Instant::now();
    let first_run = load_and_run(&rt, path, name);
    let bytes = std::fs::read(path).expect("read the component");
    let optimized = ComponentCache::open(&CacheConfig::new(cache_dir.path()))
        .expect("cache")
        .entry_path(rt.engine(), &bytes);
    while !optimized.exists() {
        assert!(
            started.elapsed() < TIER_UP_LIMIT,
            "no optimized entry after {TIER_UP_LIMIT:?}: the background compile failed (see the log)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (first_run, ms(started))
}

/// `winch_warm_run_ms`: warm runs of Winch's entry.
fn winch_warm_run(path: &Path, name: &str) -> f64 {
    let cache_dir = tempfile::tempdir().expect("temporary cache directory");
    load_and_run(&runtime_in(cache_dir.path(), Compiler::Winch), path, name);
    std::thread::sleep(Duration::from_millis(2100));
    let runs = (0..WARM_RUNS)
        .map(|_| load_and_run(&runtime_in(cache_dir.path(), Compiler::Winch), path, name))
        .collect();
    median(runs)
}

fn measure(path: &Path, name: &str) -> Figures {
    let (first_run, tier_up) = first_run_and_tier_up(path, name);
    let winch_warm_run = winch_warm_run(path, name);
    let cache_dir = tempfile::tempdir().expect("temporary cache directory");
    let runtime = || runtime_in(cache_dir.path(), Compiler::Cranelift);

    let rt = runtime();
    let started = Instant::now();
    rt.load(path).expect("cold load");
    let cold_load = ms(started);
    drop(rt);

    // An entry is trusted by its identity once it is 2 s old.
    std::thread::sleep(Duration::from_millis(2100));
    let rt = runtime();
    let started = Instant::now();
    rt.load(path).expect("first warm load");
    let first_warm_load = ms(started);

    let mut warm = Vec::with_capacity(WARM_LOADS);
    for _ in 0..WARM_LOADS {
        let rt = runtime();
        let started = Instant::now();
        let component = rt.load(path).expect("warm load");
        warm.push(ms(started));
        drop(component);
    }
    let warm_load_min = warm.iter().copied().fold(f64::INFINITY, f64::min);

    let runs = (0..WARM_RUNS)
        .map(|_| load_and_run(&runtime(), path, name))
        .collect();

    let rt = runtime();
    let component = rt.load(path).expect("warm load");
    let pre = rt.prepare(&component).expect("prepare");
    drop(rt.instantiate(&pre, options(name)).expect("first instance"));
    let mut again = Vec::with_capacity(REINSTANTIATIONS);
    let mut faults = Vec::with_capacity(REINSTANTIATIONS);
    for _ in 0..REINSTANTIATIONS {
        // The policy is built once per plugin, not per instance: outside
        // the timed window.
        let options = options(name);
        let faults_before = page_faults();
        let started = Instant::now();
        let instance = rt.instantiate(&pre, options).expect("instance");
        again.push(ms(started));
        faults.push(page_faults() - faults_before);
        let outcome = instance.run().expect("guest run");
        assert_eq!(outcome.exit_code, 0);
    }

    Figures {
        component_mb: file_mb(path),
        entry_mb: entries_mb(cache_dir.path()),
        first_run,
        tier_up,
        cold_load,
        first_warm_load,
        warm_load: median(warm),
        warm_load_min,
        warm_run: median(runs),
        winch_warm_run,
        reinstantiate: median(again),
        reinstantiate_page_faults: {
            faults.sort_unstable();
            faults[faults.len() / 2]
        },
    }
}

/// Median wall time of `program args` from start to exit; `None` (and a
/// note) if it cannot be run.
fn native(program: &str, args: &[&str]) -> Option<f64> {
    let mut times = Vec::with_capacity(NATIVE_RUNS);
    for _ in 0..NATIVE_RUNS {
        let started = Instant::now();
        match Command::new(program).args(args).status() {
            Ok(status) if status.success() => times.push(ms(started)),
            _ => {
                eprintln!("{program} {args:?} did not run; its figures are left out");
                return None;
            }
        }
    }
    Some(median(times))
}

/// Page faults (minor and major) this process has taken so far.
fn page_faults() -> i64 {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    usage.ru_minflt + usage.ru_majflt
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
}

fn entries_mb(dir: &Path) -> f64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .map(|e| file_mb(&e.path()))
        .sum()
}
