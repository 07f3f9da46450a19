//! `cargo bench --bench spawn`: the cost of starting a process through the
//! capability, against native Rust in the same run, plus streaming
//! throughput. Prints `key: value` lines.
//!
//! - `native_spawn_ms`: median `std::process::Command::output()` of
//!   `/bin/true`, host RSS small, the bench's environment inherited.
//! - `native_spawn_empty_env_ms`: the same with an empty environment, as
//!   wasmproc starts every child. The child's own start-up depends on its
//!   environment (with `LANG` set, `true` loads locale files), so this is
//!   the baseline that does the same work as the guest's child.
//! - `guest_run_ms`: median guest `run` of the same, timed inside the guest,
//!   with containment by process groups (`WASMPROC_CGROUPS=off`) and no
//!   confinement (`WASMPROC_UNCONFINED_FOR_TESTS=1`).
//! - `guest_run_ratio`: guest / native with an empty environment, the
//!   median over 31 rounds of the ratio within a round (each round times
//!   40 runs of each: native, native with an empty environment, guest): a
//!   drift in the machine's speed weighs on both sides of each ratio alike.
//! - `guest_run_contained_ms`, `guest_run_contained_ratio`: the same guest
//!   run with a cgroup per process (measured in a child bench process that
//!   keeps cgroups on; absent where the host cannot create cgroups), and
//!   its ratio taken as `guest_run_ratio` is, within rounds in that child.
//! - `guest_run_confined_ms`, `guest_run_confined_ratio`: the same guest
//!   run under the default confinement (Landlock, no_new_privs, seccomp,
//!   no capabilities; measured in a child bench process with confinement
//!   on and cgroups off), its ratio taken within rounds in that child.
//! - `guest_run_4gib_ms`, `guest_run_4gib_ratio`: the same guest run with
//!   4 GiB of touched host memory, over native (empty environment) at
//!   small RSS; `native_spawn_4gib_ms` is native at 4 GiB.
//! - `stream_native_mib_s`, `stream_guest_mib_s`, `stream_ratio`: reading
//!   256 MiB of a child's stdout natively and through a guest.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the native baseline spawns directly"
)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::os::CGROUPS_OFF_VAR;
use wasmproc_host::os::Containment;
use wasmproc_host::os::confine::OFF_VAR as CONFINE_OFF_VAR;
use wasmproc_host::policy::Limits;
use wasmproc_tests::guests;

/// Runs per round, and rounds: each round times native and guest runs
/// back to back.
const RUNS: usize = 40;
const ROUNDS: usize = 31;
/// Rounds of the 256 MiB streaming figure.
const STREAM_ROUNDS: usize = 3;
const STREAM_BYTES: u64 = 256 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn native_spawn_ms() -> f64 {
    native_ms(false)
}

/// `clean_env`: start the child with an empty environment, as wasmproc
/// does, to separate that effect from the capability's own cost.
fn native_ms(clean_env: bool) -> f64 {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut cmd = Command::new("/bin/true");
        if clean_env {
            cmd.env_clear();
        }
        let out = cmd.output().unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(out.status.success());
    }
    median(samples)
}

fn guest(
    runtime: &Runtime,
    component: &wasmproc_host::Plugin,
    policy: &Arc<Policy>,
    args: &[String],
) -> String {
    let outcome = runtime
        .run(
            component,
            GuestOptions {
                name: "bench".into(),
                args: args.to_vec(),
                policy: Arc::clone(policy),
                stdio: GuestStdio::Capture,
            },
        )
        .unwrap();
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    String::from_utf8(outcome.stdout).unwrap()
}

fn value(output: &str, key: &str) -> f64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {output}"))
        .parse()
        .unwrap()
}

fn guest_run_ms(runtime: &Runtime, component: &wasmproc_host::Plugin, policy: &Arc<Policy>) -> f64 {
    let out = guest(
        runtime,
        component,
        policy,
        &["run".into(), RUNS.to_string(), "/bin/true".into()],
    );
    value(&out, "median_ns") / 1e6
}

fn native_stream_mib_s() -> f64 {
    let started = Instant::now();
    let mut child = Command::new("head")
        .args(["-c", &STREAM_BYTES.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    child.wait().unwrap();
    assert_eq!(total, STREAM_BYTES);
    total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

fn guest_stream_mib_s(
    runtime: &Runtime,
    component: &wasmproc_host::Plugin,
    policy: &Arc<Policy>,
) -> f64 {
    let args = [
        "stream",
        "head",
        "-c",
        &STREAM_BYTES.to_string(),
        "/dev/zero",
    ]
    .map(String::from);
    let out = guest(runtime, component, policy, &args);
    assert_eq!(value(&out, "bytes") as u64, STREAM_BYTES);
    STREAM_BYTES as f64 / (1 << 20) as f64 / value(&out, "seconds")
}

/// Touches `bytes` of memory so the host's resident set really is that big.
fn ballast(bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        v[i] = 1;
    }
    v
}

/// The argument that makes this bench measure only the contained guest run.
const CONTAINED_ARG: &str = "--contained-only";
/// The argument that makes this bench measure only the confined guest run.
const CONFINED_ARG: &str = "--confined-only";

/// The median guest run and its median ratio to native (empty
/// environment) within a round, measured by a child bench process given
/// `arg`, with `on` (a switch-off variable) removed from its environment;
/// `None` where it prints no `{key}_ms` (the host cannot contain or
/// confine).
fn guest_run_child(arg: &str, on: &str, key: &str) -> Option<(f64, f64)> {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg(arg)
        .env_remove(on)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |suffix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}_{suffix}: ")))
            .map(|v| v.parse().unwrap())
    };
    Some((value("ms")?, value("ratio")?))
}

/// After one warm-up, `ROUNDS` rounds each timing native runs (empty
/// environment) and guest runs back to back: the median guest run and the
/// median ratio within a round, as `guest_run_ratio` is taken.
fn measured_rounds(
    runtime: &Runtime,
    component: &wasmproc_host::Plugin,
    policy: &Arc<Policy>,
) -> (f64, f64) {
    native_ms(true);
    guest_run_ms(runtime, component, policy);
    let mut guest = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        let native = native_ms(true);
        let ms = guest_run_ms(runtime, component, policy);
        guest.push(ms);
        ratios.push(ms / native);
    }
    (median(guest), median(ratios))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let contained_only = std::env::args().any(|a| a == CONTAINED_ARG);
    let confined_only = std::env::args().any(|a| a == CONFINED_ARG);
    // SAFETY: no other thread exists yet; the variables are read when the
    // first runtime starts and at the first start.
    unsafe {
        if !contained_only {
            std::env::set_var(CGROUPS_OFF_VAR, "off");
        }
        if !confined_only {
            std::env::set_var(CONFINE_OFF_VAR, "1");
        }
    }
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let component = runtime.load(guests::BENCH.as_ref()).unwrap();
    let limits = Limits {
        starts_per_second: 1_000_000,
        start_burst: 1_000_000,
        ..Limits::default()
    };
    let policy = Arc::new(
        Policy::builder()
            .allow_program("/bin/true")
            .allow_program("head")
            .limits(limits)
            .build()
            .unwrap(),
    );
    if contained_only {
        if Containment::detect().is_cgroup() {
            let (ms, ratio) = measured_rounds(&runtime, &component, &policy);
            println!("guest_run_contained_ms: {ms:.4}");
            println!("guest_run_contained_ratio: {ratio:.3}");
        }
        return;
    }
    if confined_only {
        if wasmproc_host::os::confine::support().landlock_abi > 0 {
            let (ms, ratio) = measured_rounds(&runtime, &component, &policy);
            println!("guest_run_confined_ms: {ms:.4}");
            println!("guest_run_confined_ratio: {ratio:.3}");
        }
        return;
    }
    // Warm up both paths.
    native_spawn_ms();
    guest_run_ms(&runtime, &component, &policy);

    let mut native = Vec::new();
    let mut native_clean = Vec::new();
    let mut guest_small = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        native.push(native_spawn_ms());
        let native_round = native_ms(true);
        let guest_round = guest_run_ms(&runtime, &component, &policy);
        native_clean.push(native_round);
        guest_small.push(guest_round);
        ratios.push(guest_round / native_round);
    }
    let guest_ratio = median(ratios);
    let native = median(native);
    let native_clean = median(native_clean);
    let guest_small = median(guest_small);
    let contained = guest_run_child(CONTAINED_ARG, CGROUPS_OFF_VAR, "guest_run_contained");
    let confined = guest_run_child(CONFINED_ARG, CONFINE_OFF_VAR, "guest_run_confined");

    let mut stream_native = Vec::new();
    let mut stream_guest = Vec::new();
    for _ in 0..STREAM_ROUNDS {
        stream_native.push(native_stream_mib_s());
        stream_guest.push(guest_stream_mib_s(&runtime, &component, &policy));
    }
    let stream_native = median(stream_native);
    let stream_guest = median(stream_guest);

    let big = ballast(4 << 30);
    let mut guest_big = Vec::new();
    let mut native_big = Vec::new();
    for _ in 0..ROUNDS {
        guest_big.push(guest_run_ms(&runtime, &component, &policy));
        native_big.push(native_ms(true));
    }
    let guest_big = median(guest_big);
    let native_big = median(native_big);
    std::hint::black_box(&big);
    drop(big);

    println!("native_spawn_ms: {native:.4}");
    println!("native_spawn_empty_env_ms: {native_clean:.4}");
    println!("guest_run_ms: {guest_small:.4}");
    println!("guest_run_ratio: {guest_ratio:.3}");
    match contained {
        Some((ms, ratio)) => {
            println!("guest_run_contained_ms: {ms:.4}");
            println!("guest_run_contained_ratio: {ratio:.3}");
        }
        None => println!("guest_run_contained_ms: unavailable (the host cannot create cgroups)"),
    }
    match confined {
        Some((ms, ratio)) => {
            println!("guest_run_confined_ms: {ms:.4}");
            println!("guest_run_confined_ratio: {ratio:.3}");
        }
        None => println!("guest_run_confined_ms: unavailable (the kernel has no Landlock)"),
    }
    println!("native_spawn_4gib_ms: {native_big:.4}");
    println!("guest_run_4gib_ms: {guest_big:.4}");
    println!("guest_run_4gib_ratio: {:.3}", guest_big / native_clean);
    println!("stream_native_mib_s: {stream_native:.1}");
    println!("stream_guest_mib_s: {stream_guest:.1}");
    println!("stream_ratio: {:.3}", stream_guest / stream_native);
}
