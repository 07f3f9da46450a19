//! Audit: every decision (allowed or denied), start, exit and kill becomes a
//! structured event, sent through `tracing` (target `wasmproc::audit`) and to
//! any configured sinks, such as a JSON-lines file.
//!
//! Every text field is capped at [`MAX_FIELD_BYTES`] (the argument list as a
//! whole too), with the original length noted, so a guest cannot grow the
//! audit trail by sending huge requests.

use crate::process_types::Exit;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most bytes an audit field keeps (the argument list counts as one
/// field); the rest is replaced by a note of the original length.
pub const MAX_FIELD_BYTES: usize = 4096;

/// `text` cut at [`MAX_FIELD_BYTES`] (on a character boundary), with the
/// original length noted when cut.
fn cap_text(text: &mut String) {
    if text.len() <= MAX_FIELD_BYTES {
        return;
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let original = text.len();
    text.truncate(end);
    text.push_str(&format!("… ({original} bytes in all)"));
}

/// The argument list cut so that all arguments together keep at most
/// [`MAX_FIELD_BYTES`], with a last element noting what was left out.
fn cap_args(args: &mut Vec<String>) {
    let total: usize = args.iter().map(String::len).sum();
    if total <= MAX_FIELD_BYTES {
        return;
    }
    let count = args.len();
    let mut budget = MAX_FIELD_BYTES;
    let mut kept = Vec::new();
    for arg in args.drain(..) {
        if budget == 0 {
            break;
        }
        let mut arg = arg;
        if arg.len() > budget {
            let mut end = budget;
            while !arg.is_char_boundary(end) {
                end -= 1;
            }
            arg.truncate(end);
        }
        budget -= arg.len();
        kept.push(arg);
    }
    kept.push(format!("… ({count} arguments, {total} bytes in all)"));
    *args = kept;
}

/// One audit record. Serialized as one JSON object per line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The guest the event concerns.
    pub guest: String,
    /// `run`, `start`, `kill`, `signal`, `exit`, `killed`, …
    pub operation: String,
    /// The program as requested (decisions) or executed (later events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// `allowed` or `denied` for decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Why a call was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The process id the host issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The OS pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How the process ended (`exit 0`, `signal 9`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Which gate refused a call: `manifest` (the plugin did not declare
    /// it) or `policy` (this host did not grant it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// What confined a started program (`confined (…)` or `not enforced:
    /// …`), on the events of a start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confinement: Option<String>,
}

impl AuditEvent {
    /// An event for `guest` doing `operation`, stamped now.
    pub fn new(guest: &str, operation: &str) -> Self {
        Self {
            time_ms: now_ms(),
            guest: guest.to_string(),
            operation: operation.to_string(),
            program: None,
            args: None,
            decision: None,
            reason: None,
            id: None,
            pid: None,
            exit: None,
            gate: None,
            confinement: None,
        }
    }

    /// Adds the program and arguments.
    pub fn program(mut self, program: &str, args: &[String]) -> Self {
        self.program = Some(program.to_string());
        self.args = Some(args.to_vec());
        self
    }

    /// Marks the call allowed.
    pub fn allowed(mut self) -> Self {
        self.decision = Some("allowed".into());
        self
    }

    /// Marks the call refused (policy, quota or validation) with a reason.
    pub fn refused(mut self, kind: &str, reason: String) -> Self {
        self.decision = Some(
            if kind == "denied" {
                "denied"
            } else {
                "refused"
            }
            .into(),
        );
        self.reason = Some(format!("{kind}: {reason}"));
        self
    }

    /// Names the gate that refused the call.
    pub fn gate(mut self, gate: &str) -> Self {
        self.gate = Some(gate.to_string());
        self
    }

    /// Adds a failure reason without a decision.
    pub fn reason(mut self, reason: String) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Adds what confined the started program.
    pub fn confinement(mut self, summary: String) -> Self {
        self.confinement = Some(summary);
        self
    }

    /// Adds the process id and pid.
    pub fn process(mut self, id: &str, pid: u32) -> Self {
        self.id = Some(id.to_string());
        self.pid = Some(pid);
        self
    }

    /// Adds how the process ended.
    pub fn exit(mut self, exit: Exit) -> Self {
        self.exit = Some(exit.to_string());
        self
    }

    /// The event with every field capped at 4 KiB (the argument list as a
    /// whole too), noting the original length where cut.
    pub fn capped(mut self) -> Self {
        cap_text(&mut self.guest);
        cap_text(&mut self.operation);
        for text in [
            &mut self.program,
            &mut self.decision,
            &mut self.reason,
            &mut self.id,
            &mut self.exit,
        ]
        .into_iter()
        .flatten()
        {
            cap_text(text);
        }
        if let Some(args) = &mut self.args {
            cap_args(args);
        }
        self
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Somewhere audit events go besides `tracing`.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records one event. Must not block for long.
    fn record(&self, event: &AuditEvent);
}

/// Writes events as JSON lines to a file, flushing after each.
#[derive(Debug)]
pub struct JsonLinesSink {
    out: Mutex<BufWriter<File>>,
}

impl JsonLinesSink {
    /// Creates (or appends to) the file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            out: Mutex::new(BufWriter::new(file)),
        })
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let written = serde_json::to_writer(&mut *out, event)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write audit record");
        }
    }
}

/// The audit trail: `tracing` plus zero or more sinks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl Audit {
    /// An audit trail that only emits `tracing` events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink.
    pub fn with_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Records an event everywhere, with its fields capped.
    pub fn record(&self, event: AuditEvent) {
        let event = event.capped();
        tracing::info!(
            target: "wasmproc::audit",
            guest = %event.guest,
            operation = %event.operation,
            program = event.program.as_deref(),
            decision = event.decision.as_deref(),
            reason = event.reason.as_deref(),
            id = event.id.as_deref(),
            pid = event.pid,
            exit = event.exit.as_deref(),
            gate = event.gate.as_deref(),
        );
        for sink in &self.sinks {
            sink.record(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_fields_capped_ugly() {
        let huge = "é".repeat(MAX_FIELD_BYTES);
        let event = AuditEvent::new("g", "run")
            .program(&huge, &[huge.clone(), "x".into(), huge.clone()])
            .reason(huge.clone())
            .capped();
        let program = event.program.unwrap();
        assert!(program.len() < MAX_FIELD_BYTES + 64, "{}", program.len());
        assert!(program.ends_with(&format!("({} bytes in all)", huge.len())));
        let args = event.args.unwrap();
        let kept: usize = args[..args.len() - 1].iter().map(String::len).sum();
        assert!(kept <= MAX_FIELD_BYTES, "{kept}");
        assert_eq!(
            args.last().unwrap(),
            &format!("… (3 arguments, {} bytes in all)", 2 * huge.len() + 1)
        );
        assert!(event.reason.unwrap().len() < MAX_FIELD_BYTES + 64);
        // Small events pass unchanged.
        let small = AuditEvent::new("g", "run").program("ls", &["-l".into()]);
        assert_eq!(small.clone().capped(), small);
    }
}
