//! What the supervisor reports about a daemon: [`DaemonStatus`] (also the
//! JSON of `/daemons` and `wasmproc daemon status`) and [`RecentOutput`].

use super::machine::{DaemonState, Machine};
use super::probe_state::ProbeState;
use serde::Serialize;
use wasmproc_host::process::Exit;

/// Results of one probe, for status reports.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Whether the probe passes (by its thresholds).
    pub passing: bool,
    /// Probes run for the current instance.
    pub runs: u64,
    /// Of which failed.
    pub failures: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Why the last failure failed.
    pub last_error: Option<String>,
}

impl From<&ProbeState> for ProbeReport {
    fn from(s: &ProbeState) -> Self {
        Self {
            passing: s.passing,
            runs: s.runs,
            failures: s.failures,
            consecutive_failures: s.consecutive_failures,
            last_error: s.last_error.clone(),
        }
    }
}

/// A snapshot of one daemon.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    /// The declared name.
    pub name: String,
    /// Current state.
    pub state: DaemonState,
    /// PID of the running instance.
    pub pid: Option<u32>,
    /// When the running instance started, ms since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// Automatic restarts so far.
    pub restarts: u32,
    /// How the previous instance ended.
    #[serde(serialize_with = "exit_text")]
    pub last_exit: Option<Exit>,
    /// Whether it is ready (readiness probe passing, or running if none).
    pub ready: bool,
    /// Whether its liveness probe passes (true without one).
    pub live: bool,
    /// Why it failed or was last restarted.
    pub reason: Option<String>,
    /// The most recent restart delays chosen, in ms, oldest first.
    pub recent_delays_ms: Vec<u64>,
    /// When the most recent instances started, in ms on the supervisor's
    /// monotonic clock, oldest first.
    pub recent_starts_ms: Vec<u64>,
    /// The liveness probe's results.
    pub liveness: Option<ProbeReport>,
    /// The readiness probe's results.
    pub readiness: Option<ProbeReport>,
}

impl DaemonStatus {
    /// The status a machine describes, with the running instance's PID and
    /// start time.
    pub(crate) fn of(
        name: &str,
        m: &Machine,
        instance: Option<(u32, u64)>,
        probes: (bool, bool),
    ) -> Self {
        let (has_liveness, has_readiness) = probes;
        Self {
            name: name.to_string(),
            state: m.state(),
            pid: instance.map(|(pid, _)| pid),
            started_at_ms: instance.map(|(_, at)| at),
            restarts: m.restarts(),
            last_exit: m.last_exit(),
            ready: m.ready(),
            live: m.live(),
            reason: m.reason().map(String::from),
            recent_delays_ms: m.recent_delays_ms(),
            recent_starts_ms: m.recent_starts_ms(),
            liveness: has_liveness.then(|| m.liveness().into()),
            readiness: has_readiness.then(|| m.readiness().into()),
        }
    }
}

fn exit_text<S: serde::Serializer>(exit: &Option<Exit>, s: S) -> Result<S::Ok, S::Error> {
    match exit {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// The newest output of a daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentOutput {
    /// Newest stdout bytes.
    pub stdout: Vec<u8>,
    /// Newest stderr bytes.
    pub stderr: Vec<u8>,
    /// Bytes written but no longer held.
    pub dropped: u64,
}
