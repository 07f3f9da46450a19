//! The soak's figures, its table, and the bounds it holds the host to.

use super::audit_disk::AuditTally;
use super::census::Census;
use super::config::{DAEMONS, PLUGINS};
use std::fmt;

/// Open fds the host may hold at the end beyond those at the start.
pub const SPARE_FDS: usize = 16;
/// Threads the host may have at the end beyond those at the start.
pub const SPARE_THREADS: usize = 8;
/// Resident memory the host may add, in KiB, beyond half its start.
pub const SPARE_RSS_KIB: u64 = 64 << 10;
/// Zombies the host may have at any moment (as `reap_zombie_storm_ugly`).
pub const MAX_ZOMBIES: usize = 64;
/// Live processes below the host: one per daemon and at most one started
/// process per plugin.
pub const MAX_LIVE: usize = DAEMONS + PLUGINS;
/// Cgroups the host may have at the end beyond those at the start: one per
/// plugin's process in flight.
pub const SPARE_CGROUPS: usize = PLUGINS;

/// Requests of the soak itself to `/health` and `/daemons`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requests {
    /// Sent.
    pub made: u64,
    /// Answered with 200 or 503 (a status the host means).
    pub answered: u64,
    /// Answered with any other status.
    pub failed: u64,
    /// Not answered within the request limit (connection refused, reset or
    /// timed out).
    pub lost: u64,
}

/// The faults inflicted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Children killed with SIGKILL.
    pub kills: u64,
    /// Periods with the open-file limit lowered.
    pub nofile_periods: u64,
    /// Periods with the audit disk full.
    pub disk_full_periods: u64,
    /// Cgroups removed under the host (`None`: no cgroup containment).
    pub cgroups_removed: Option<u64>,
}

/// Everything the soak measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Minutes of faults.
    pub minutes: f64,
    /// The generator's seed (`--seed` repeats the choices).
    pub seed: u64,
    /// After the warm-up.
    pub start: Census,
    /// After the faults stopped and the host settled.
    pub end: Census,
    /// The plugins' calls: made, ok, refused, failed.
    pub guest_calls: [u64; 4],
    /// Guest calls that ended otherwise than expected, by kind.
    pub guest_failures: Vec<(String, u64)>,
    /// Calls for an ungranted program that succeeded.
    pub violations: u64,
    /// The soak's own requests.
    pub requests: Requests,
    /// Audit records the host emitted (its log).
    pub audited: u64,
    /// Records it reported it could not write to the file.
    pub audit_write_errors: u64,
    /// What the audit file held.
    pub audit_file: AuditTally,
    /// The faults.
    pub faults: Faults,
    /// Daemons not running at the end, with their state.
    pub daemons_not_running: Vec<String>,
    /// Plugins that made no call in the last settle period.
    pub stalled_plugins: Vec<String>,
    /// How the host ended on SIGTERM (`None`: it did not exit in time).
    pub exit: Option<String>,
    /// What its sessions left in the host's `TMPDIR` after it exited.
    pub tmpdirs_left: Vec<String>,
    /// Set when SIGINT or SIGTERM cut the soak short.
    pub interrupted: bool,
}

impl Figures {
    /// Everything that breaks a promise: empty when the soak passed.
    pub fn problems(&self) -> Vec<String> {
        let (s, e) = (&self.start, &self.end);
        let mut p = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                p.push(what);
            }
        };
        check(!self.interrupted, "the soak was interrupted".into());
        check(
            e.fds <= s.fds + SPARE_FDS,
            format!("fds grew from {} to {} (bound: +{SPARE_FDS})", s.fds, e.fds),
        );
        check(
            e.threads <= s.threads + SPARE_THREADS,
            format!(
                "threads grew from {} to {} (bound: +{SPARE_THREADS})",
                s.threads, e.threads
            ),
        );
        check(
            e.rss_kib <= s.rss_kib + s.rss_kib / 2 + SPARE_RSS_KIB,
            format!(
                "RSS grew from {} to {} KiB (bound: +50% +{} KiB)",
                s.rss_kib, e.rss_kib, SPARE_RSS_KIB
            ),
        );
        if let (Some(sc), Some(ec)) = (s.cgroups, e.cgroups) {
            check(
                ec <= sc + SPARE_CGROUPS,
                format!("cgroups grew from {sc} to {ec} (bound: +{SPARE_CGROUPS})"),
            );
        }
        check(
            e.zombies <= MAX_ZOMBIES,
            format!("{} zombies at the end (bound: {MAX_ZOMBIES})", e.zombies),
        );
        check(
            e.live <= MAX_LIVE,
            format!("{} live processes at the end (bound: {MAX_LIVE})", e.live),
        );
        check(
            self.requests.lost == 0 && self.requests.failed == 0,
            format!(
                "the host stopped serving: {} of {} requests lost, {} failed",
                self.requests.lost, self.requests.made, self.requests.failed
            ),
        );
        check(
            self.violations == 0,
            format!(
                "{} calls for an ungranted program succeeded",
                self.violations
            ),
        );
        check(
            self.daemons_not_running.is_empty(),
            format!(
                "daemons not running at the end: {}",
                self.daemons_not_running.join("; ")
            ),
        );
        check(
            self.stalled_plugins.is_empty(),
            format!(
                "plugins stopped calling: {}",
                self.stalled_plugins.join(", ")
            ),
        );
        check(
            self.exit.as_deref() == Some("exit status: 0"),
            format!(
                "on SIGTERM the host {}",
                self.exit.as_deref().unwrap_or("did not exit in time")
            ),
        );
        check(
            self.exit.is_none() || self.tmpdirs_left.is_empty(),
            format!(
                "private TMPDIRs left after the host exited: {}",
                self.tmpdirs_left.join(", ")
            ),
        );
        let accounted = self.audit_file.records + self.audit_write_errors;
        check(
            self.audited == accounted,
            format!(
                "audit records lost uncounted: {} emitted, {} in the file, {} write failures reported",
                self.audited, self.audit_file.records, self.audit_write_errors
            ),
        );
        check(
            self.audit_file.corrupt == 0,
            format!(
                "{} corrupt lines in the audit file",
                self.audit_file.corrupt
            ),
        );
        p
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, e) = (&self.start, &self.end);
        let opt = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            f,
            "soak: {} minutes, seed {}, {PLUGINS} plugins, {DAEMONS} daemons",
            self.minutes, self.seed
        )?;
        writeln!(f, "| measure | start | end | bound at the end |")?;
        writeln!(f, "|---|---:|---:|---|")?;
        writeln!(f, "| fds | {} | {} | start + {SPARE_FDS} |", s.fds, e.fds)?;
        writeln!(
            f,
            "| threads | {} | {} | start + {SPARE_THREADS} |",
            s.threads, e.threads
        )?;
        writeln!(
            f,
            "| RSS (KiB) | {} | {} | start × 1.5 + {SPARE_RSS_KIB} |",
            s.rss_kib, e.rss_kib
        )?;
        writeln!(
            f,
            "| cgroups | {} | {} | start + {SPARE_CGROUPS} |",
            opt(s.cgroups),
            opt(e.cgroups)
        )?;
        writeln!(
            f,
            "| zombies | {} | {} | {MAX_ZOMBIES} |",
            s.zombies, e.zombies
        )?;
        writeln!(
            f,
            "| live processes | {} | {} | {MAX_LIVE} |",
            s.live, e.live
        )?;
        let [made, ok, refused, failed] = self.guest_calls;
        let r = &self.requests;
        writeln!(f, "\n| calls | made | ok | refused | failed | lost |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        writeln!(
            f,
            "| plugins' process calls | {made} | {ok} | {refused} | {failed} | - |"
        )?;
        writeln!(
            f,
            "| soak's /health and /daemons | {} | {} | - | {} | {} |",
            r.made, r.answered, r.failed, r.lost
        )?;
        for (kind, count) in &self.guest_failures {
            writeln!(f, "failed plugin calls `{kind}`: {count}")?;
        }
        let a = &self.audit_file;
        writeln!(
            f,
            "\n| audit | emitted | in the file | write failures (reported) | suppressed (in {} notes) | corrupt lines |",
            a.notes
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        writeln!(
            f,
            "| records | {} | {} | {} | {} | {} |",
            self.audited, a.records, self.audit_write_errors, a.suppressed, a.corrupt
        )?;
        let x = &self.faults;
        writeln!(
            f,
            "\nfaults: {} children killed, {} periods with RLIMIT_NOFILE lowered, {} with the audit disk full, {} cgroups removed",
            x.kills,
            x.nofile_periods,
            x.disk_full_periods,
            x.cgroups_removed
                .map_or("no cgroup containment: no".to_string(), |n| n.to_string())
        )?;
        writeln!(
            f,
            "end: {} of {DAEMONS} daemons running; on SIGTERM the host {}, leaving {} private TMPDIRs",
            DAEMONS.saturating_sub(self.daemons_not_running.len()),
            self.exit.as_deref().unwrap_or("did not exit in time"),
            self.tmpdirs_left.len()
        )
    }
}
