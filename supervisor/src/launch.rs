//! Starting and forgetting one daemon instance: a leftover of a crashed
//! host is stopped by identity, the PID file taken, the process started
//! through the process manager with its output in ring buffers, and its
//! registry entry written; on the way out the entry and the PID file go.

use super::identity::{Liveness, ProcessIdentity, stop_verified};
use super::pidfile::{Existing, PidFile, PidFileError};
use super::registry_dir::{EntryKind, RegistryDir, RegistryEntry};
use super::resolve::Resolved;
use super::spec::DaemonSpec;
use std::sync::Arc;
use wasmproc_host::ProcessManager;
use wasmproc_host::audit::Audit;
use wasmproc_host::os::Scope;
use wasmproc_host::process::Buffering;
use wasmproc_host::process::Spec;
use wasmproc_host::process::StdioMode;
use wasmproc_host::process::{Buffers, ByteBuffer, Process};

/// What every daemon of one supervisor shares.
#[derive(Debug)]
pub(crate) struct HostSide {
    pub manager: Arc<ProcessManager>,
    pub registry: Option<RegistryDir>,
    pub host: ProcessIdentity,
    pub host_name: String,
    pub audit: Audit,
}

/// A running instance.
#[derive(Debug)]
pub(crate) struct Instance {
    pub process: Arc<Process>,
    pub identity: ProcessIdentity,
    pub started_at_ms: u64,
    /// When the spawn returned: a run is measured from here, not from
    /// after the PID file and registry entry are written.
    pub spawned: std::time::Instant,
    pub pidfile: Option<PidFile>,
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Another live host runs a daemon of this name.
    #[error("daemon `{name}` is already run by host `{host}` (pid {pid})")]
    RunElsewhere {
        /// The daemon.
        name: String,
        /// The other host's name.
        host: String,
        /// The other host's PID.
        pid: u32,
    },
    /// The PID file could not be taken.
    #[error("PID file: {0}")]
    PidFile(#[source] PidFileError),
    /// The process could not be started.
    #[error("{0}")]
    Spawn(#[source] wasmproc_host::CallError),
}

/// Starts one instance of `spec`.
pub(crate) fn launch(
    side: &HostSide,
    spec: &DaemonSpec,
    resolved: &Resolved,
    scope: &Scope,
) -> Result<Instance, LaunchError> {
    let name = &spec.name;
    stop_leftover_of_crashed_host(side, name, resolved)?;
    let pidfile = match &spec.pid_file {
        None => None,
        Some(path) => Some(take_pid_file(path, name, resolved)?),
    };
    let capacity = spec.output_buffer_bytes as usize;
    let output = || Some(Arc::new(ByteBuffer::new(capacity, Buffering::Ring)));
    let id = format!("daemon:{name}");
    let process = side
        .manager
        .spawn(
            Spec::new(&resolved.cmd, scope)
                .id(&id)
                .owner(&id, &id)
                .stdio(StdioMode::Null, StdioMode::Piped, StdioMode::Piped)
                .buffers(Buffers {
                    stdout: output(),
                    stderr: output(),
                    stdin: None,
                    close_stdin_when_drained: true,
                })
                .audit(side.audit.clone()),
        )
        .map_err(LaunchError::Spawn)?;
    let spawned = std::time::Instant::now();
    let started_at_ms = process.facts().started_at_ms;
    // A child that already exited and was reaped falls back to its PID.
    let pid = process.facts().pid;
    let identity = ProcessIdentity::of(pid).unwrap_or(ProcessIdentity {
        pid,
        start_time: 0,
        boot_id: String::new(),
    });
    if let Some(f) = &pidfile
        && let Err(e) = f.write(&identity)
    {
        tracing::error!(daemon = %name, error = %e, "cannot write the PID file");
    }
    if let Some(reg) = &side.registry {
        let health = [&spec.readiness, &spec.liveness]
            .into_iter()
            .flatten()
            .find_map(|p| p.target())
            .map(String::from);
        let entry = RegistryEntry {
            kind: EntryKind::Daemon,
            name: name.clone(),
            process: identity.clone(),
            host: side.host.clone(),
            host_name: side.host_name.clone(),
            health,
            binary: resolved.cmd.program().to_string_lossy().into_owned(),
            started_at_ms,
            control: None,
        };
        if let Err(e) = reg.register(&entry) {
            tracing::error!(daemon = %name, error = %e, "cannot write the registry entry");
        }
    }
    Ok(Instance {
        process,
        identity,
        started_at_ms,
        spawned,
        pidfile,
    })
}

/// Refuses a daemon another live host runs; stops, by identity, one that a
/// crashed host left running.
fn stop_leftover_of_crashed_host(
    side: &HostSide,
    name: &str,
    resolved: &Resolved,
) -> Result<(), LaunchError> {
    let Some(reg) = &side.registry else {
        return Ok(());
    };
    let Some(entry) = reg.get(EntryKind::Daemon, name) else {
        return Ok(());
    };
    if entry.host == side.host || entry.process.liveness() != Liveness::Alive {
        return Ok(());
    }
    if entry.host.liveness() == Liveness::Alive {
        return Err(LaunchError::RunElsewhere {
            name: name.to_string(),
            host: entry.host_name,
            pid: entry.host.pid,
        });
    }
    if let Ok(true) = stop_verified(
        &entry.process,
        resolved.stop_signal.number(),
        resolved.grace,
    ) {
        tracing::warn!(daemon = %name, pid = entry.process.pid, "stopped a leftover of a crashed host");
    }
    Ok(())
}

/// Takes the daemon's PID file; a process it still names (its owner
/// crashed without releasing the lock) is stopped by identity.
fn take_pid_file(
    path: &std::path::Path,
    name: &str,
    resolved: &Resolved,
) -> Result<PidFile, LaunchError> {
    let file = PidFile::acquire(path).map_err(LaunchError::PidFile)?;
    match file.previous() {
        Existing::Live(id) => {
            if let Ok(true) = stop_verified(id, resolved.stop_signal.number(), resolved.grace) {
                tracing::warn!(daemon = %name, pid = id.pid, "stopped the leftover named by the PID file");
            }
        }
        Existing::Missing => {}
        other => tracing::info!(daemon = %name, previous = ?other, "replacing a PID file"),
    }
    Ok(file)
}

/// Forgets an ended instance: registry entry and PID file.
pub(crate) fn release(side: &HostSide, name: &str, instance: Instance) {
    if let Some(reg) = &side.registry {
        reg.unregister(EntryKind::Daemon, name, &instance.identity);
    }
    if let Some(f) = instance.pidfile {
        f.release();
    }
}
