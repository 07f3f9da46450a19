//! Audit: every decision (allowed or denied), start, exit and kill becomes a
//! structured event, sent through `tracing` (target `wasmproc::audit`) and to
//! any configured sinks, such as a JSON-lines file.

use crate::managed::Exit;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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

    /// Records an event everywhere.
    pub fn record(&self, event: AuditEvent) {
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
