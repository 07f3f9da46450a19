//! The host's control socket and the `wasmproc daemon` commands.
//!
//! A running `wasmproc serve` listens on a Unix socket in the registry
//! directory (mode 0700, so only its user reaches it). A request is one
//! line, `list`, `status NAME`, `start NAME`, `stop NAME` or `restart NAME`;
//! the answer is one line of JSON: `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`. The commands below find hosts through the
//! registry, ask them, and fall back to the registry alone when no host
//! answers (a leftover of a crashed host is stopped by identity).

use super::identity::{Liveness, stop_verified};
use super::registry_dir::{EntryKind, RegistryDir};
use super::supervisor::Supervisor;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest a control request may take (a stop waits out its grace period).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// Answers one control request line.
pub fn handle(supervisor: &Supervisor, line: &str) -> Value {
    let mut words = line.split_whitespace();
    let (op, name) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let result = match op {
        "list" => return json!({"ok": true, "daemons": supervisor.statuses()}),
        "status" => supervisor
            .status(name)
            .map(|s| json!({"ok": true, "status": s})),
        "start" => supervisor.start(name).map(|()| json!({"ok": true})),
        "stop" => supervisor.stop(name).map(|()| json!({"ok": true})),
        "restart" => supervisor.restart(name).map(|()| json!({"ok": true})),
        _ => return json!({"ok": false, "error": format!("unknown request `{op}`")}),
    };
    result.unwrap_or_else(|e| json!({"ok": false, "error": e.to_string(), "not_found": matches!(e, super::DaemonError::NotFound(_))}))
}

/// Sends one request to a host's control socket.
pub fn request(socket: &Path, line: &str) -> std::io::Result<Value> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(std::io::Read::take(stream, 16 << 20)).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// Asks every live host in the registry until one knows `name`.
fn ask_hosts(reg: &RegistryDir, line: &str) -> Option<Value> {
    for host in reg
        .entries()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Host)
    {
        if host.process.liveness() != Liveness::Alive {
            continue;
        }
        let Some(socket) = &host.control else {
            continue;
        };
        match request(socket, line) {
            Ok(v) if v["not_found"] == json!(true) => continue,
            Ok(v) => return Some(v),
            Err(e) => tracing::warn!(host = %host.name, error = %e, "host did not answer"),
        }
    }
    None
}

/// Why a `wasmproc daemon` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The registry directory could not be opened.
    #[error("cannot open the registry {}: {source}", .path.display())]
    Registry {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The host that runs the daemon refused the request.
    #[error("{0}")]
    Refused(String),
    /// No running host declares the daemon, and the registry has no
    /// leftover of it.
    #[error("no running host declares a daemon `{0}`")]
    NotDeclared(String),
    /// A leftover of a crashed host could not be stopped.
    #[error("cannot stop {name}: {source}")]
    Stop {
        /// The daemon.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the answer failed.
    #[error("cannot write the answer: {0}")]
    Output(#[source] std::io::Error),
}

/// Opens the registry for a `wasmproc daemon` command.
fn open_registry(registry: &Path) -> Result<RegistryDir, ControlError> {
    RegistryDir::open(registry).map_err(|source| ControlError::Registry {
        path: registry.to_path_buf(),
        source,
    })
}

/// The error a host's answer carries.
fn refused(v: &Value) -> ControlError {
    ControlError::Refused(v["error"].as_str().unwrap_or("unknown error").to_string())
}

/// `wasmproc daemon list`: prunes dead entries, then writes one line per
/// host and daemon with its live state.
pub fn cmd_list(registry: &Path, out: &mut dyn Write) -> Result<(), ControlError> {
    let reg = open_registry(registry)?;
    let (entries, _) = reg.prune();
    let mut states = std::collections::HashMap::new();
    for host in entries.iter().filter(|e| e.kind == EntryKind::Host) {
        if let Some(socket) = &host.control
            && let Ok(v) = request(socket, "list")
        {
            for d in v["daemons"].as_array().into_iter().flatten() {
                let name = d["name"].as_str().unwrap_or_default().to_string();
                states.insert((host.name.clone(), name), d.clone());
            }
        }
    }
    writeln!(
        out,
        "{:<7} {:<20} {:>8} {:<10} {:<6} {:<12} HEALTH",
        "KIND", "NAME", "PID", "STATE", "READY", "HOST"
    )
    .map_err(ControlError::Output)?;
    for e in &entries {
        let (state, ready) = match e.kind {
            EntryKind::Host => ("running".to_string(), "-".to_string()),
            EntryKind::Daemon => match states.get(&(e.host_name.clone(), e.name.clone())) {
                Some(s) => (
                    s["state"].as_str().unwrap_or("?").to_string(),
                    if s["ready"] == json!(true) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ),
                None if e.host.liveness() != Liveness::Alive => ("orphaned".into(), "-".into()),
                None => ("?".into(), "-".into()),
            },
        };
        let kind = if e.kind == EntryKind::Host {
            "host"
        } else {
            "daemon"
        };
        writeln!(
            out,
            "{kind:<7} {:<20} {:>8} {state:<10} {ready:<6} {:<12} {}",
            e.name,
            e.process.pid,
            e.host_name,
            e.health.as_deref().unwrap_or("-")
        )
        .map_err(ControlError::Output)?;
    }
    Ok(())
}

/// `wasmproc daemon status NAME`: the live status from the host that runs
/// it, else what the registry holds.
pub fn cmd_status(registry: &Path, name: &str, out: &mut dyn Write) -> Result<(), ControlError> {
    let reg = open_registry(registry)?;
    reg.prune();
    let shown = if let Some(v) = ask_hosts(&reg, &format!("status {name}")) {
        if v["ok"] != json!(true) {
            return Err(refused(&v));
        }
        v["status"].clone()
    } else {
        let entry = reg
            .get(EntryKind::Daemon, name)
            .ok_or_else(|| ControlError::NotDeclared(name.to_string()))?;
        json!({"name": name, "state": "orphaned", "entry": entry})
    };
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    )
    .map_err(ControlError::Output)
}

/// `wasmproc daemon stop NAME`: asks the host that runs it; a leftover of a
/// crashed host is stopped by identity (never by bare PID).
pub fn cmd_stop(registry: &Path, name: &str, out: &mut dyn Write) -> Result<(), ControlError> {
    let reg = open_registry(registry)?;
    reg.prune();
    if let Some(v) = ask_hosts(&reg, &format!("stop {name}")) {
        if v["ok"] != json!(true) {
            return Err(refused(&v));
        }
        return writeln!(out, "stopped {name}").map_err(ControlError::Output);
    }
    match reg.get(EntryKind::Daemon, name) {
        Some(entry) if entry.host.liveness() != Liveness::Alive => {
            let stopped = stop_verified(&entry.process, libc::SIGTERM, Duration::from_secs(5))
                .map_err(|source| ControlError::Stop {
                    name: name.to_string(),
                    source,
                })?;
            reg.unregister(EntryKind::Daemon, name, &entry.process);
            writeln!(
                out,
                "{} {name} (left by a crashed host)",
                if stopped { "stopped" } else { "removed" }
            )
            .map_err(ControlError::Output)
        }
        _ => Err(ControlError::NotDeclared(name.to_string())),
    }
}
