//! `cargo bench --bench scale`: how the host carries many processes.
//! Prints `key: value` lines, measured in one run:
//!
//! - `live_processes`: background `sleep` processes with piped stdout and
//!   stderr, all live at once: 10,000, or as many as the hard fd limit
//!   allows (three fds each, and a margin).
//! - `host_threads_at_peak`: threads of this process with all of them live.
//! - `fds_per_live_process`: fds this process holds for them (pipes and
//!   pidfds, found through /proc), per process.
//! - `start_ms_at_0_live`, `start_ms_at_peak_live`: median time of one
//!   `start` call with none, and with all of them, live; `start_flatness`
//!   is the second over the first. The samples are taken the same way at
//!   both points: each starts `sleep 0` (stdout and stderr piped), and its
//!   process ends and is reaped, untimed, before the next start, so the
//!   two points differ only in the number of live processes. The samples
//!   at peak are taken once every live process has finished starting and
//!   sleeps (`settle_ms`, the median over visits, is how long that took
//!   after the last start, and `unsettled_at_peak` says how many had not
//!   within 60 s, if any): until then thousands of dynamic loaders compete
//!   for the CPU with the host.
//!   The host goes from 0 live to the peak and back six times, and
//!   each point is sampled every time it is reached, 300 starts each (the
//!   0-live point once more first, after as many untimed starts, which pay
//!   what a host sets up once); the figures are the medians of all samples
//!   of a point, so a drift of the machine's speed over the run weighs on
//!   both points alike. Six visits, not three: on a small virtual machine
//!   whole visits run in a fast or a slow mode (where the kernel places
//!   each new child), and three visits of a point are too few for its
//!   median not to depend on how many of them drew the slow one. `start_ms_at_0_live_each` and
//!   `start_ms_at_peak_live_each` list the median of each visit. The
//!   native baselines below are sampled at the same visits.
//! - `start_cpu_ms_at_0_live`, `start_cpu_ms_at_peak_live`,
//!   `start_cpu_flatness`: the same starts, timed by the CPU time of this
//!   process, every thread of the host included (`CLOCK_PROCESS_CPUTIME_ID`),
//!   instead of the wall clock: the work the host does per start, which
//!   time spent waiting for a CPU on a busy machine does not move (the
//!   child's own time is not in it).
//! - `native_start_ms_at_0_live`, `native_start_ms_at_peak_live`,
//!   `native_start_flatness`: the same starts (`sleep`, stdout and stderr
//!   piped) by `std::process::Command::spawn` in this process, at the same
//!   two points: a native Rust host holding the same pipes and pidfds.
//! - `kernel_start_ms_at_0_live`, `kernel_start_ms_at_peak_live`,
//!   `kernel_start_flatness`: `Command::spawn` again, from a thread that
//!   took an fd table of its own before any process was live, so the copy
//!   of the table costs nothing: what creating and executing a process
//!   costs the kernel with that many processes live, the floor under
//!   `start_flatness`.
//! - `stop_all_ms`: stopping every live process at once (the session's
//!   end), the median over the visits of the peak.
//! - `concurrent_ratio_<N>` for N of 16, 100 and 1,000: N guest
//!   components (the `bench` test guest) run at once through the
//!   `Runtime` API (`run_async`, each from its own task on a multi-thread
//!   tokio runtime with a worker per core, the default `RuntimeConfig`),
//!   each calling `run /bin/true` 200 times; `guest_runs_per_s_<N>` is
//!   their combined rate, `native_runs_per_s_<N>` the rate of N threads
//!   each running `Command::new("/bin/true").env_clear().output()` 200
//!   times, and the ratio the first over the second: the median over
//!   rounds that take both back to back, in alternating order (5 rounds
//!   below 1,000 guests, 1 at 1,000), so a drift of the machine's speed
//!   weighs on both alike. With `SCALE_CONCURRENT_ONLY` set, only these
//!   figures are taken; `SCALE_CONCURRENCY` (e.g. `16,100`) sets the
//!   values of N.
//! - `concurrent_confined_ratio_<N>` for N of 16 and 100: the same with
//!   the default confinement on (Landlock, seccomp, no capabilities),
//!   measured in a child bench process, over the same native baseline.
//!
//! Containment is by process groups (`WASMPROC_CGROUPS=off`) and the
//! programs are not confined (`WASMPROC_UNCONFINED_FOR_TESTS=1`) but where
//! a figure says otherwise, as for `guest_run_ratio` in the spawn
//! benchmark: the native baseline makes no cgroups and confines nothing.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the native baseline spawns directly"
)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Plugin;
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::policy::Limits;
use wasmproc_host::session::CommandSpec;
use wasmproc_tests::guests;
use wasmproc_tests::scale::{
    child_pipes, fds_held_for, policy_for, start_sleep, threads, wait_until_asleep,
};

const MAX_LIVE: usize = 10_000;
const START_SAMPLES: usize = 300;
/// Native starts per point (at peak each costs a copy of the host's whole
/// fd table).
const NATIVE_SAMPLES: usize = 50;
/// Guests (and native threads) at once of the concurrent figures.
const CONCURRENCY: [usize; 3] = [16, 100, 1_000];
/// `run`s of `/bin/true` per guest (and per native thread).
const RUNS_PER_GUEST: usize = 200;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time of this process (all its threads), in ms.
fn process_cpu_ms() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `now`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    now.tv_sec as f64 * 1e3 + now.tv_nsec as f64 / 1e6
}

/// One `start_sleep`: its id, wall time and host CPU time (ms).
fn timed_start(ctx: &mut ProcessCtx, secs: u32) -> (String, f64, f64) {
    let cpu = process_cpu_ms();
    let (id, took) = start_sleep(ctx, secs);
    (id, ms(took), process_cpu_ms() - cpu)
}

/// How many processes the hard fd limit leaves room for.
fn live_target() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let by_fds = (hard.saturating_sub(1_000) / 3) as usize;
    MAX_LIVE.min(by_fds)
}

/// One native start of `sleep 0` with piped stdout and stderr: the child
/// and the wall time (ms).
fn native_start(program: &Path) -> (Child, f64) {
    let started = Instant::now();
    let child = Command::new(program)
        .arg("0")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("native start");
    (child, ms(started.elapsed()))
}

/// `samples` native starts of `sleep 0` (ms), each waited for (untimed)
/// before the next, as the host's own samples are.
fn native_starts(program: &Path, samples: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (child, took) = native_start(program);
        times.push(took);
        child.wait_with_output().expect("native wait");
    }
    times
}

/// A thread with an fd table of its own, taken now (while the host holds
/// few fds), that runs native starts on request.
struct SmallTableStarter {
    requests: mpsc::Sender<()>,
    results: mpsc::Receiver<Vec<f64>>,
}

impl SmallTableStarter {
    fn new(program: PathBuf, samples: usize) -> Self {
        let (requests, asked) = mpsc::channel::<()>();
        let (answer, results) = mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: unshare only changes this thread's fd table.
            let rc = unsafe { libc::unshare(libc::CLONE_FILES) };
            assert_eq!(rc, 0, "own fd table: {}", std::io::Error::last_os_error());
            // Ready: the copy is taken. Fds the other threads open from now
            // on (pipes of their children) are not in this table.
            let _ = answer.send(Vec::new());
            for () in asked {
                let _ = answer.send(native_starts(&program, samples));
            }
        });
        results.recv().expect("starter thread ready");
        Self { requests, results }
    }

    fn samples(&self) -> Vec<f64> {
        self.requests.send(()).expect("starter thread");
        self.results.recv().expect("starter thread")
    }
}

/// The timed starts of one point, the same at 0 and at peak live: each
/// sample starts `sleep 0`, and its process ends and is reaped (untimed)
/// before the next, so the number of live processes stays what it was.
/// Wall and host CPU times (ms).
fn sampled_starts(ctx: &mut ProcessCtx) -> (Vec<f64>, Vec<f64>) {
    let mut wall = Vec::with_capacity(START_SAMPLES);
    let mut cpu = Vec::with_capacity(START_SAMPLES);
    for _ in 0..START_SAMPLES {
        let (id, took, used) = timed_start(ctx, 0);
        wall.push(took);
        cpu.push(used);
        wasmproc_host::process::block_on(ctx.wait(&id, Some(10_000))).unwrap();
        ctx.remove(&id).unwrap();
    }
    (wall, cpu)
}

/// Samples of one point: the host's starts (wall and CPU), and the two
/// native baselines.
#[derive(Default)]
struct Point {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    native: Vec<f64>,
    kernel: Vec<f64>,
}

impl Point {
    fn take(ctx: &mut ProcessCtx, sleep: &Path, kernel: &SmallTableStarter) -> Self {
        let (wall, cpu) = sampled_starts(ctx);
        Self {
            wall,
            cpu,
            native: native_starts(sleep, NATIVE_SAMPLES),
            kernel: kernel.samples(),
        }
    }

    fn join(mut self, other: Self) -> Self {
        self.wall.extend(other.wall);
        self.cpu.extend(other.cpu);
        self.native.extend(other.native);
        self.kernel.extend(other.kernel);
        self
    }
}

/// Prints `<name>_at_0_live`, `<name>_at_peak_live` and `<flatness>`.
fn print_flatness(name: &str, flatness: &str, zero: Vec<f64>, peak: Vec<f64>) {
    let (zero, peak) = (median(zero), median(peak));
    println!("{name}_at_0_live: {zero:.3}");
    println!("{name}_at_peak_live: {peak:.3}");
    println!("{flatness}: {:.3}", peak / zero);
}

/// How many times the host goes from 0 live processes to the peak and
/// back: the two points are sampled in turn, so a drift in the machine's
/// speed weighs on both alike.
const CYCLES: usize = 6;

/// Starts `live` background `sleep 600`; their pids.
fn ramp(ctx: &mut ProcessCtx, live: usize) -> Vec<u32> {
    (0..live)
        .map(|_| {
            let (id, _) = start_sleep(ctx, 600);
            ctx.get(&id).unwrap().facts.pid
        })
        .collect()
}

/// The medians of each sample set, as one line.
fn medians(points: &[Vec<f64>]) -> String {
    let each: Vec<String> = points
        .iter()
        .map(|p| format!("{:.3}", median(p.clone())))
        .collect();
    each.join(" ")
}

fn live_part() {
    let live = live_target();
    let sleep = std::fs::canonicalize("/bin/sleep").expect("sleep");
    let kernel = SmallTableStarter::new(sleep.clone(), NATIVE_SAMPLES);
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let policy = policy_for((live + START_SAMPLES) as u32);
    let session = |cycle: usize| {
        ProcessCtx::builder(
            wasmproc_tests::harness::admit(Arc::clone(&policy)),
            Arc::clone(&manager),
        )
        .guest(format!("scale-{cycle}"))
        .build()
    };
    let mut ctx = session(0);
    // Untimed: the first starts of a host pay for what it sets up once.
    sampled_starts(&mut ctx);
    let first_zero = Point::take(&mut ctx, &sleep, &kernel);
    let mut zero_walls = vec![first_zero.wall.clone()];
    let mut zero = first_zero;
    let mut peak_walls = Vec::new();
    let mut peak = Point::default();
    let (mut peak_threads, mut held) = (0, 0);
    let (mut settle_ms, mut unsettled, mut stop_all_ms) = (Vec::new(), 0, Vec::new());
    for cycle in 1..=CYCLES {
        let pids = ramp(&mut ctx, live);
        if cycle == 1 {
            let pipes: HashSet<String> = pids.iter().flat_map(|p| child_pipes(*p)).collect();
            peak_threads = threads();
            held = fds_held_for(&pipes, &pids);
        }
        let settling = Instant::now();
        unsettled += wait_until_asleep(&pids, Duration::from_secs(60));
        settle_ms.push(ms(settling.elapsed()));
        let at_peak = Point::take(&mut ctx, &sleep, &kernel);
        peak_walls.push(at_peak.wall.clone());
        peak = peak.join(at_peak);
        let stopping = Instant::now();
        drop(ctx);
        stop_all_ms.push(ms(stopping.elapsed()));
        ctx = session(cycle);
        let at_zero = Point::take(&mut ctx, &sleep, &kernel);
        zero_walls.push(at_zero.wall.clone());
        zero = zero.join(at_zero);
    }
    println!("live_processes: {live}");
    println!("host_threads_at_peak: {peak_threads}");
    println!("fds_per_live_process: {:.2}", held as f64 / live as f64);
    println!("settle_ms: {:.0}", median(settle_ms));
    if unsettled > 0 {
        println!("unsettled_at_peak: {unsettled}");
    }
    println!("start_ms_at_0_live_each: {}", medians(&zero_walls));
    println!("start_ms_at_peak_live_each: {}", medians(&peak_walls));
    print_flatness("start_ms", "start_flatness", zero.wall, peak.wall);
    print_flatness("start_cpu_ms", "start_cpu_flatness", zero.cpu, peak.cpu);
    print_flatness(
        "native_start_ms",
        "native_start_flatness",
        zero.native,
        peak.native,
    );
    print_flatness(
        "kernel_start_ms",
        "kernel_start_flatness",
        zero.kernel,
        peak.kernel,
    );
    println!("stop_all_ms: {:.0}", median(stop_all_ms));
}

/// The guest side of the concurrent figures: a runtime, the `bench`
/// guest, and a policy granting `/bin/true` with rate limits out of the
/// way.
struct ConcurrentGuests {
    runtime: Arc<Runtime>,
    component: Arc<Plugin>,
    policy: Arc<Policy>,
}

impl ConcurrentGuests {
    fn new() -> Self {
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let component = runtime.load(guests::BENCH.as_ref()).expect("bench guest");
        let limits = Limits {
            starts_per_second: 1_000_000,
            start_burst: 1_000_000,
            ..Limits::default()
        };
        let policy = Policy::builder()
            .allow_program("/bin/true")
            .limits(limits)
            .build()
            .expect("policy");
        Self {
            runtime: Arc::new(runtime),
            component: Arc::new(component),
            policy: Arc::new(policy),
        }
    }

    /// `guests` guests at once, each running `/bin/true` `RUNS_PER_GUEST`
    /// times: runs per second, all guests together.
    fn runs_per_s(&self, guests: usize) -> f64 {
        let executor = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("executor");
        let started = Instant::now();
        executor.block_on(async {
            let tasks: Vec<_> = (0..guests)
                .map(|i| {
                    let runtime = Arc::clone(&self.runtime);
                    let component = Arc::clone(&self.component);
                    let options = GuestOptions {
                        name: format!("guest-{i}"),
                        args: ["run", &RUNS_PER_GUEST.to_string(), "/bin/true"]
                            .map(String::from)
                            .to_vec(),
                        policy: Arc::clone(&self.policy),
                        stdio: GuestStdio::Capture,
                    };
                    tokio::spawn(async move {
                        let outcome = runtime.run_async(&component, options).await.unwrap();
                        assert_eq!(
                            outcome.exit_code,
                            0,
                            "{}",
                            String::from_utf8_lossy(&outcome.stderr)
                        );
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        (guests * RUNS_PER_GUEST) as f64 / started.elapsed().as_secs_f64()
    }
}

/// `threads` native threads at once, each running `/bin/true`
/// `RUNS_PER_GUEST` times with an empty environment: runs per second.
fn native_runs_per_s(count: usize) -> f64 {
    let started = Instant::now();
    let threads: Vec<_> = (0..count)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..RUNS_PER_GUEST {
                    let out = std::process::Command::new("/bin/true")
                        .env_clear()
                        .output()
                        .unwrap();
                    assert!(out.status.success());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (count * RUNS_PER_GUEST) as f64 / started.elapsed().as_secs_f64()
}

/// Prints the concurrent figures at each of [`CONCURRENCY`].
fn concurrent_part() {
    let guests = ConcurrentGuests::new();
    // Untimed: the first guests pay for what the host sets up once.
    guests.runs_per_s(2);
    let counts: Vec<usize> = match std::env::var("SCALE_CONCURRENCY") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("SCALE_CONCURRENCY: numbers, comma-separated")
            })
            .collect(),
        Err(_) => CONCURRENCY.to_vec(),
    };
    let key = if confined_only() {
        "concurrent_confined_ratio"
    } else {
        "concurrent_ratio"
    };
    for n in counts {
        let rounds = if n < 1_000 { 5 } else { 1 };
        let (mut natives, mut guest_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (native, guest) = if round % 2 == 0 {
                let native = native_runs_per_s(n);
                (native, guests.runs_per_s(n))
            } else {
                let guest = guests.runs_per_s(n);
                (native_runs_per_s(n), guest)
            };
            natives.push(native);
            guest_rates.push(guest);
            ratios.push(guest / native);
        }
        println!("guest_runs_per_s_{n}: {:.0}", median(guest_rates));
        println!("native_runs_per_s_{n}: {:.0}", median(natives));
        println!("{key}_{n}: {:.3}", median(ratios));
    }
}

/// The argument that makes this bench take only the confined concurrent
/// figures.
const CONFINED_ARG: &str = "--confined-only";

fn confined_only() -> bool {
    std::env::args().any(|a| a == CONFINED_ARG)
}

/// The confined concurrent figures, from a child bench process with
/// confinement on.
fn confined_part() {
    let out = Command::new(std::env::current_exe().expect("this bench"))
        .arg(CONFINED_ARG)
        .env("SCALE_CONCURRENCY", "16,100")
        .env_remove(wasmproc_host::os::confine::OFF_VAR)
        .output()
        .expect("the confined bench process");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text
        .lines()
        .filter(|l| l.starts_with("concurrent_confined"))
    {
        println!("{line}");
    }
}

/// Median of sequential `run /bin/true` calls through the sync path.
fn run_latency_ms() -> f64 {
    let manager = ProcessManager::builder()
        .grace(Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    let mut ctx = ProcessCtx::builder(wasmproc_tests::harness::admit(policy_for(16)), manager)
        .guest("latency")
        .build();
    let samples = (0..START_SAMPLES)
        .map(|_| {
            let started = Instant::now();
            let out = wasmproc_host::process::block_on(ctx.run(CommandSpec::new("true"))).unwrap();
            assert!(out.exit.is_some_and(|e| e.success()));
            ms(started.elapsed())
        })
        .collect();
    median(samples)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // SAFETY: set before any other thread of this program starts.
    unsafe {
        std::env::set_var(wasmproc_host::os::CGROUPS_OFF_VAR, "off");
        if !confined_only() {
            std::env::set_var(wasmproc_host::os::confine::OFF_VAR, "1");
        }
    }
    if confined_only() {
        concurrent_part();
        return;
    }
    if std::env::var_os("SCALE_LATENCY_ONLY").is_some() {
        println!("run_latency_ms: {:.3}", run_latency_ms());
        return;
    }
    if std::env::var_os("SCALE_CONCURRENT_ONLY").is_none() {
        live_part();
        println!("run_latency_ms: {:.3}", run_latency_ms());
    }
    concurrent_part();
    confined_part();
}
