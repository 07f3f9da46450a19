//! One declared daemon (`[[daemon]]`), as written in the host
//! configuration: typed so that a parsed value is well-formed (durations
//! with units, one stop signal by name, probes of exactly one kind).
//! What depends on the policy is checked when the configuration loads.

use super::backoff::{BackoffSpec, StartLimitSpec};
use super::probe_spec::ProbeSpec;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use wasmproc_host::policy::{CgroupLimits, InvalidCgroupLimit, check_limit};
use wasmproc_host::process::Signal;

/// When a daemon that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never.
    Never,
    /// When it exits non-zero, is killed by a signal it was not sent by the
    /// host, or fails its liveness probe.
    #[default]
    OnFailure,
    /// Whenever it ends, unless it was stopped.
    Always,
}

/// One `[[daemon]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSpec {
    /// Unique name: letters, digits, `-`, `_`, `.`; at most 64 bytes.
    pub name: String,
    /// Program, as the policy grants it.
    pub program: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables to set (each must be allowed by `[policy.env]`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (under a `[policy.dirs]` root).
    pub cwd: Option<String>,
    /// Restart policy. Default `on-failure`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Restart delays.
    #[serde(default)]
    pub backoff: BackoffSpec,
    /// Start limit.
    #[serde(default)]
    pub start_limit: StartLimitSpec,
    /// Liveness probe: failing it restarts the daemon.
    pub liveness: Option<ProbeSpec>,
    /// Readiness probe: failing it only marks the daemon not ready.
    pub readiness: Option<ProbeSpec>,
    /// PID file (relative to the configuration file).
    pub pid_file: Option<PathBuf>,
    /// Ring buffer per output stream, in bytes. Default 64 KiB.
    #[serde(default = "default_output_buffer")]
    pub output_buffer_bytes: u64,
    /// Signal that asks it to stop: `TERM`, `INT`, `HUP`, `QUIT`, `USR1`,
    /// `USR2` or `KILL` (with or without `SIG`). Default `TERM`.
    #[serde(default = "default_stop_signal", deserialize_with = "signal_by_name")]
    pub stop_signal: Signal,
    /// Time between the stop signal and SIGKILL. Default `5s`.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Whether `serve` starts it. Default true.
    #[serde(default = "yes")]
    pub autostart: bool,
    /// cgroup v2 limits of its whole process tree. Default none.
    #[serde(default)]
    pub cgroup: DaemonCgroup,
}

/// The `cgroup` table of a `[[daemon]]`: limits of the cgroup that holds
/// the daemon's whole process tree (what it forks included). Every field
/// is optional; a limit whose controller is not enabled is refused when
/// the configuration loads.
///
/// ```toml
/// cgroup = { pids_max = 64, memory_max = 268435456, cpu_max = "50000 100000" }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonCgroup {
    /// `pids.max`: processes and threads.
    pub pids_max: Option<u64>,
    /// `memory.max`, in bytes.
    pub memory_max: Option<u64>,
    /// `cpu.max`: `"<quota µs|max> <period µs>"`.
    pub cpu_max: Option<String>,
}

impl DaemonCgroup {
    /// Checks each limit's value and that its controller is enabled here;
    /// the error names the field as written.
    pub fn validate(&self) -> Result<(), InvalidCgroupLimit> {
        let limits = [
            ("pids_max", "pids", self.pids_max.map(|v| v.to_string())),
            (
                "memory_max",
                "memory",
                self.memory_max.map(|v| v.to_string()),
            ),
            ("cpu_max", "cpu", self.cpu_max.clone()),
        ];
        for (field, controller, value) in limits {
            if let Some(value) = value {
                check_limit(field, controller, &value)?;
            }
        }
        Ok(())
    }

    /// As the limits of the daemon's scope (its cgroup, one level above
    /// each process's).
    pub fn limits(&self) -> CgroupLimits {
        CgroupLimits {
            guest_pids_max: self.pids_max,
            guest_memory_max: self.memory_max,
            guest_cpu_max: self.cpu_max.clone(),
            ..CgroupLimits::default()
        }
    }
}

fn default_output_buffer() -> u64 {
    64 << 10
}
fn default_stop_signal() -> Signal {
    Signal::Term
}
fn default_grace() -> Duration {
    Duration::from_secs(5)
}
fn yes() -> bool {
    true
}

/// A signal by name (`TERM`, `SIGTERM`, `term`), with the error that
/// lists the accepted names.
fn signal_by_name<'de, D: Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
}
