//! The soak: `wasmproc serve` runs [`PLUGINS`](crate::soak::config::PLUGINS) plugins and
//! [`DAEMONS`](crate::soak::config::DAEMONS) daemons for a number of minutes while the soak kills
//! random children, fills the audit disk, lowers the host's open-file
//! limit and removes cgroups under it; then it compares what the host
//! holds with what it held at the start, and accounts for every audit
//! record. `tests/src/bin/soak.rs` is its command line.

pub mod audit_disk;
pub mod census;
pub mod config;
pub mod faults;
pub mod interrupt;
pub mod random;
pub mod report;
pub mod served;

use audit_disk::{AuditDisk, AuditReader, Filler};
use census::Census;
use faults::LoweredNofile;
use random::Random;
use report::{Faults, Figures, Requests};
use served::Served;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the host may take to run every plugin and daemon.
const WARM_UP_LIMIT: Duration = Duration::from_secs(180);
/// How long the host may take to recover once the faults stop.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// A plugin that made no call for this long has stalled.
const STALL: Duration = Duration::from_secs(20);
/// One fault cycle: the open-file limit is lowered for its first
/// [`NOFILE_PERIOD`], the disk is full from `CYCLE / 2` for
/// [`DISK_FULL_PERIOD`], and a cgroup is removed at its start.
const CYCLE: Duration = Duration::from_secs(20);
const NOFILE_PERIOD: Duration = Duration::from_secs(3);
const DISK_FULL_PERIOD: Duration = Duration::from_secs(5);
/// Between SIGKILLs to random children.
const KILL_EVERY: Duration = Duration::from_secs(2);
/// Between the soak's requests.
const REQUEST_EVERY: Duration = Duration::from_secs(1);
/// Fds the host keeps beyond what it holds when its limit is lowered.
const NOFILE_SPARE: u64 = 4;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Minutes of faults (after the warm-up).
    pub minutes: f64,
    /// The `wasmproc` binary.
    pub wasmproc: PathBuf,
    /// The plugin component (the `soak` test guest).
    pub guest: PathBuf,
    /// The seed of the random choices.
    pub seed: u64,
}

/// The daemons not running, each as `NAME: STATE (REASON)`; `None` if
/// `/daemons` did not answer.
fn daemons_not_running(served: &Served, requests: &mut Requests) -> Option<Vec<String>> {
    let body = request(served, "/daemons", requests)?;
    let daemons: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        daemons
            .as_array()?
            .iter()
            .filter(|d| d["state"] != "running")
            .map(|d| format!("{}: {} ({})", d["name"], d["state"], d["reason"]))
            .collect(),
    )
}

fn request(served: &Served, path: &str, requests: &mut Requests) -> Option<String> {
    requests.made += 1;
    match served.get(path) {
        Some((200 | 503, body)) => {
            requests.answered += 1;
            Some(body)
        }
        Some((code, body)) => {
            requests.failed += 1;
            eprintln!("soak: GET {path}: {code} {body}");
            None
        }
        None => {
            requests.lost += 1;
            eprintln!("soak: GET {path}: no answer");
            None
        }
    }
}

fn stalled(served: &Served, since: Duration) -> Vec<String> {
    let calls = served.calls.lock().unwrap_or_else(|e| e.into_inner());
    (0..config::PLUGINS)
        .map(config::plugin_name)
        .filter(|name| {
            calls
                .last_call
                .get(name)
                .is_none_or(|at| at.elapsed() > since)
        })
        .collect()
}

fn host_exited(served: &mut Served) -> Result<(), String> {
    match served.exited() {
        Some(status) => Err(format!(
            "the host exited ({status}); its last lines:\n{}",
            served.tail()
        )),
        None => Ok(()),
    }
}

/// Fails if the host has exited; counts the audit records it appended.
fn still_serving(served: &mut Served, reader: &mut AuditReader) -> Result<(), String> {
    host_exited(served)?;
    reader
        .drain()
        .map_err(|e| format!("cannot read the audit file: {e}"))
}

/// Runs the soak; `Err` when it could not run at all (or the host died).
pub fn run(options: &Options) -> Result<Figures, String> {
    interrupt::catch();
    let disk = AuditDisk::mount()?;
    let work = tempfile::tempdir().map_err(|e| format!("cannot make a directory: {e}"))?;
    let audit = disk.path().join("audit.jsonl");
    let config = config::write(work.path(), &options.guest.to_string_lossy(), &audit)
        .map_err(|e| format!("cannot write the configuration: {e}"))?;
    let mut served = Served::start(&options.wasmproc, &config)?;
    let mut reader = AuditReader::new(audit);
    let mut random = Random::new(options.seed);
    let mut figures = Figures {
        minutes: options.minutes,
        seed: options.seed,
        ..Figures::default()
    };

    // Warm-up: every plugin calling, every daemon running.
    let warm = Instant::now();
    loop {
        still_serving(&mut served, &mut reader)?;
        let ready = served.get("/daemons").is_some_and(|(_, body)| {
            serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|d| {
                d.as_array().is_some_and(|a| {
                    a.iter().filter(|d| d["state"] == "running").count() == config::DAEMONS
                })
            })
        });
        if ready && stalled(&served, STALL).is_empty() {
            break;
        }
        if warm.elapsed() > WARM_UP_LIMIT || interrupt::interrupted() {
            return Err(format!(
                "the host did not start every plugin and daemon within {WARM_UP_LIMIT:?}; its last lines:\n{}",
                served.tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let host = served.pid();
    figures.start = Census::of(host);
    eprintln!(
        "soak: warmed up in {:.0?}; start: {:?}",
        warm.elapsed(),
        figures.start
    );

    // Faults.
    let mut faults = Faults {
        cgroups_removed: figures.start.cgroups.map(|_| 0),
        ..Faults::default()
    };
    let mut requests = Requests::default();
    let began = Instant::now();
    let length = Duration::from_secs_f64(options.minutes * 60.0);
    let (mut next_kill, mut next_request) = (began, began);
    let mut cycle_start = began;
    let mut cgroup_removed_this_cycle = false;
    let mut lowered: Option<LoweredNofile> = None;
    let mut filler: Option<Filler> = None;
    while began.elapsed() < length && !interrupt::interrupted() {
        host_exited(&mut served)?;
        let now = Instant::now();
        if now.duration_since(cycle_start) >= CYCLE {
            cycle_start = now;
            cgroup_removed_this_cycle = false;
        }
        let in_cycle = now.duration_since(cycle_start);
        if now >= next_kill {
            next_kill = now + KILL_EVERY;
            if faults::kill_random_child(host, &mut random).is_some() {
                faults.kills += 1;
            }
        }
        let want_low = in_cycle < NOFILE_PERIOD;
        if want_low && lowered.is_none() {
            lowered = Some(
                LoweredNofile::lower(host, NOFILE_SPARE)
                    .map_err(|e| format!("cannot lower the host's open-file limit: {e}"))?,
            );
            faults.nofile_periods += 1;
        } else if !want_low {
            lowered = None;
        }
        let want_full = in_cycle >= CYCLE / 2 && in_cycle < CYCLE / 2 + DISK_FULL_PERIOD;
        if want_full && filler.is_none() {
            filler =
                Some(Filler::fill(&disk).map_err(|e| format!("cannot fill the audit disk: {e}"))?);
            faults.disk_full_periods += 1;
        } else if !want_full {
            filler = None;
        }
        if !cgroup_removed_this_cycle && in_cycle >= CYCLE / 4 {
            cgroup_removed_this_cycle = true;
            if let Some(removed) = faults.cgroups_removed.as_mut()
                && faults::remove_random_cgroup(host, &mut random).is_some()
            {
                *removed += 1;
            }
        }
        if now >= next_request {
            next_request = now + REQUEST_EVERY;
            request(&served, "/health", &mut requests);
            reader
                .drain()
                .map_err(|e| format!("cannot read the audit file: {e}"))?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    figures.interrupted = interrupt::interrupted();
    drop(lowered);
    drop(filler);

    // Settle: the faults are over; the host must recover on its own.
    let settle = Instant::now();
    loop {
        still_serving(&mut served, &mut reader)?;
        figures.daemons_not_running = daemons_not_running(&served, &mut requests)
            .unwrap_or_else(|| vec!["/daemons did not answer".into()]);
        std::thread::sleep(STALL.min(Duration::from_secs(5)));
        figures.stalled_plugins = stalled(&served, STALL);
        let recovered =
            figures.daemons_not_running.is_empty() && figures.stalled_plugins.is_empty();
        if recovered || settle.elapsed() > SETTLE_LIMIT || interrupt::interrupted() {
            break;
        }
    }
    figures.end = Census::of(host);
    figures.faults = faults;
    figures.requests = requests;

    // Stop: SIGTERM, a clean exit, then every record accounted for.
    figures.exit = served.stop(Duration::from_secs(30)).map(|s| s.to_string());
    figures.tmpdirs_left = served.tmp_entries();
    reader
        .drain()
        .map_err(|e| format!("cannot read the audit file: {e}"))?;
    figures.audit_file = reader.tally(figures.exit.is_some());
    {
        let calls = served.calls.lock().unwrap_or_else(|e| e.into_inner());
        figures.guest_calls = [calls.made, calls.ok, calls.refused, calls.failed];
        figures.violations = calls.violations;
        figures.guest_failures = calls
            .failures
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        figures.guest_failures.sort();
    }
    {
        let log = served.log.lock().unwrap_or_else(|e| e.into_inner());
        figures.audited = log.audited;
        figures.audit_write_errors = log.audit_write_errors;
    }
    drop(served);
    drop(disk);
    Ok(figures)
}
