//! A daemon's configuration checked against the daemon policy: its command
//! for `start`, its exec probes for `run`.

use super::probe::{Probe, ProbeDenied, ProbeSpec};
use super::spec::DaemonSpec;
use std::time::Duration;
use wasmproc_host::Admission;
use wasmproc_host::CallError;
use wasmproc_host::policy::{Approved, CommandRequest, Operation};
use wasmproc_host::process::Signal;

/// A daemon's configuration, checked against the policy.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub cmd: Approved,
    pub liveness: Option<Probe>,
    pub readiness: Option<Probe>,
    pub stop_signal: Signal,
    pub grace: Duration,
}

/// Why a daemon's command or probe is refused by the policy.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The command is not granted for `start`.
    #[error("{0}")]
    Command(#[source] CallError),
    /// An exec probe is not granted for `run`.
    #[error("{role} probe: {source}")]
    Probe {
        /// `liveness` or `readiness`.
        role: &'static str,
        /// The refusal.
        #[source]
        source: ProbeDenied,
    },
}

/// Checks a daemon's command (for `start`) and probes (for `run`) against
/// the policy.
pub(crate) fn resolve(spec: &DaemonSpec, admission: &Admission) -> Result<Resolved, ResolveError> {
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cmd = admission
        .approve(
            Operation::Start,
            CommandRequest {
                program: &spec.program,
                args: &spec.args,
                env: &env,
                cwd: spec.cwd.as_deref(),
            },
        )
        .map_err(ResolveError::Command)?;
    let probe = |p: &Option<ProbeSpec>, role: &'static str| {
        p.as_ref()
            .map(|p| {
                p.resolve(admission)
                    .map_err(|source| ResolveError::Probe { role, source })
            })
            .transpose()
    };
    Ok(Resolved {
        cmd,
        liveness: probe(&spec.liveness, "liveness")?,
        readiness: probe(&spec.readiness, "readiness")?,
        stop_signal: spec.stop_signal,
        grace: spec.stop_grace,
    })
}
