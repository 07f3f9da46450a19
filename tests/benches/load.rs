//! `cargo bench --bench load`: how long loading the Python example component
//! takes without and with the compiled-component cache. Prints `key: value`
//! lines.
//!
//! - `component_mb`: size of the component.
//! - `cold_load_ms`: `Runtime::load` with an empty cache: compile, then
//!   store the entry.
//! - `warm_load_ms`: median `Runtime::load` of the same file with the entry
//!   present: read, verify, deserialize. Goal: at most 50.
//! - `warm_load_min_ms`: the fastest of those loads.
//! - `cache_entry_mb`: size of the entry on disk.
//! - `warm_run_ms`: warm load plus one guest run of `run true`, as the CLI
//!   would do it.
//!
//! The component is built with `scripts/build-polyglot.sh` if it is missing.

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark runs the build script"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use wasmproc_host::{CacheConfig, GuestOptions, GuestStdio, Policy, Runtime, RuntimeConfig};
use wasmproc_tests::polyglot;

const WARM_LOADS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let path = polyglot::dir().join(polyglot::PYTHON);
    if !path.is_file() {
        let status = std::process::Command::new("bash")
            .arg(polyglot::build_script())
            .arg("python")
            .status()
            .expect("run scripts/build-polyglot.sh");
        assert!(status.success(), "scripts/build-polyglot.sh failed");
    }
    let path = polyglot::component(polyglot::PYTHON);
    let cache_dir = tempfile::tempdir().expect("temporary cache directory");
    let runtime = Runtime::new(RuntimeConfig {
        cache: Some(CacheConfig::new(cache_dir.path())),
        ..RuntimeConfig::default()
    })
    .expect("runtime");

    let started = Instant::now();
    runtime.load(&path).expect("cold load");
    let cold = ms(started);

    let mut warm = Vec::with_capacity(WARM_LOADS);
    for _ in 0..WARM_LOADS {
        let started = Instant::now();
        let component = runtime.load(&path).expect("warm load");
        warm.push(ms(started));
        drop(component);
    }
    let warm_min = warm.iter().copied().fold(f64::INFINITY, f64::min);

    let policy = Arc::new(
        Policy::builder()
            .allow_program("true")
            .build()
            .expect("policy"),
    );
    let started = Instant::now();
    let component = runtime.load(&path).expect("warm load");
    let outcome = runtime
        .run(
            &component,
            GuestOptions {
                name: "python-guest".into(),
                args: vec!["run".into(), "true".into()],
                policy,
                stdio: GuestStdio::Capture,
            },
        )
        .expect("guest run");
    let warm_run = ms(started);
    assert_eq!(
        outcome.exit_code,
        0,
        "guest failed: {}",
        String::from_utf8_lossy(&outcome.stdout)
    );

    println!("component_mb: {:.1}", file_mb(&path));
    println!("cold_load_ms: {cold:.0}");
    println!("warm_load_ms: {:.1}", median(warm));
    println!("warm_load_min_ms: {warm_min:.1}");
    println!("cache_entry_mb: {:.1}", dir_mb(cache_dir.path()));
    println!("warm_run_ms: {warm_run:.1}");
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
}

fn dir_mb(dir: &Path) -> f64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| file_mb(&e.path()))
        .sum()
}
