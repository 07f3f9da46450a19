//! Audit: every decision (allowed or denied), start, exit and kill becomes a
//! structured event, sent through `tracing` (target `wasmproc::audit`) and to
//! any configured sinks, such as a JSON-lines file.
//!
//! A guest cannot grow the audit trail without bound:
//! - every text field is capped at [`MAX_FIELD_BYTES`] *as written*, after
//!   JSON escaping (the argument list as a whole too), with the original
//!   length noted;
//! - each guest has a budget of bytes ([`AUDIT_BURST_BYTES`], refilled at
//!   [`AUDIT_BYTES_PER_SECOND`]); past it its records are counted, not
//!   written, and one `audit-suppressed` record per
//!   [`SUPPRESSED_INTERVAL`] says how many were dropped, so no record is
//!   lost uncounted.

use crate::types::Exit;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most bytes an audit field takes in a written record, after JSON
/// escaping (the argument list counts as one field); the rest is replaced
/// by a note of the original length.
pub const MAX_FIELD_BYTES: usize = 4096;

/// Bytes of records one guest may have written at once, above the
/// sustained [`AUDIT_BYTES_PER_SECOND`].
pub const AUDIT_BURST_BYTES: u64 = 256 << 10;

/// Bytes of records per second one guest may have written, sustained
/// (about twenty records).
pub const AUDIT_BYTES_PER_SECOND: u64 = 4 << 10;

/// A budget below this many bytes holds no record: the record is counted
/// as suppressed before it is capped or serialized, so a flood past the
/// budget costs little.
const MIN_RECORD_BYTES: f64 = 128.0;

/// How often, at most, an `audit-suppressed` record is written per guest.
pub const SUPPRESSED_INTERVAL: Duration = Duration::from_secs(1);

/// Guests whose budgets are kept before idle ones are forgotten.
const BUDGETS_KEPT: usize = 4096;

/// Bytes `c` takes inside a JSON string as `serde_json` writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

/// How much of a text fits a budget of escaped bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// All of it, taking this many escaped bytes.
    Whole(usize),
    /// The prefix up to this byte index, taking this many escaped bytes.
    Cut(usize, usize),
}

/// How much of `text` fits in `budget` bytes once escaped; reads no
/// further than the cut.
fn escaped_fit(text: &str, budget: usize) -> Fit {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        let len = escaped_len(c);
        if used + len > budget {
            return Fit::Cut(at, used);
        }
        used += len;
    }
    Fit::Whole(used)
}

/// `text` cut so that it takes at most [`MAX_FIELD_BYTES`] once escaped,
/// with the original length noted when cut.
fn cap_text(text: &mut String) {
    let Fit::Cut(end, _) = escaped_fit(text, MAX_FIELD_BYTES) else {
        return;
    };
    let original = text.len();
    text.truncate(end);
    text.push_str(&format!("… ({original} bytes in all)"));
}

/// The argument list cut so that all arguments together take at most
/// [`MAX_FIELD_BYTES`] once escaped, with a last element noting what was
/// left out.
fn cap_args(args: &mut Vec<String>) {
    let mut room = MAX_FIELD_BYTES;
    let fits = args.iter().all(|a| match escaped_fit(a, room) {
        Fit::Whole(used) => {
            room -= used;
            true
        }
        Fit::Cut(..) => false,
    });
    if fits {
        return;
    }
    let count = args.len();
    let total: usize = args.iter().map(String::len).sum();
    let mut budget = MAX_FIELD_BYTES;
    let mut kept = Vec::new();
    for mut arg in args.drain(..) {
        if budget == 0 {
            break;
        }
        match escaped_fit(&arg, budget) {
            Fit::Cut(end, used) => {
                arg.truncate(end);
                budget -= used;
            }
            Fit::Whole(used) => budget -= used,
        }
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
    /// How many records of this guest an `audit-suppressed` record stands
    /// for (dropped over the guest's audit budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
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
            suppressed: None,
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

    /// The event with every field capped at [`MAX_FIELD_BYTES`] as
    /// written, after JSON escaping (the argument list as a whole too),
    /// noting the original length where cut.
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

/// Appends events as JSON lines to a file, one write per record. A record
/// that does not fit (a full disk) is cut off again and reported on
/// `tracing` as `cannot write audit record`, so the file holds only whole
/// records and every one missing is counted.
#[derive(Debug)]
pub struct JsonLinesSink {
    out: Mutex<File>,
}

impl JsonLinesSink {
    /// Creates (or appends to) the file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            out: Mutex::new(file),
        })
    }
}

/// A file records are appended to: its space can be reserved ahead of a
/// write, and it can be cut back to a length.
trait AppendOnly: Write {
    fn len(&self) -> std::io::Result<u64>;
    fn reserve(&mut self, at: u64, len: u64) -> std::io::Result<()>;
    fn cut(&mut self, len: u64) -> std::io::Result<()>;
}

impl AppendOnly for File {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    /// `fallocate` without changing the size; a file system that cannot
    /// reserve space leaves it to the write (and [`AppendOnly::cut`]).
    fn reserve(&mut self, at: u64, len: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(at), Ok(len)) = (libc::off_t::try_from(at), libc::off_t::try_from(len)) else {
            return Err(std::io::Error::from_raw_os_error(libc::EFBIG));
        };
        // SAFETY: fallocate on an fd this File owns.
        if unsafe { libc::fallocate(self.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, at, len) } == 0 {
            return Ok(());
        }
        match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            e => Err(e),
        }
    }

    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
}

/// Appends `line` whole or not at all. Its space is reserved first, so a
/// full disk refuses the record before any of it is written (a reader
/// following the file never sees half a record); where space cannot be
/// reserved, a short write is cut off again, so the next record does not
/// follow half of this one.
fn append_whole(out: &mut impl AppendOnly, line: &[u8]) -> std::io::Result<()> {
    let before = out.len()?;
    out.reserve(before, line.len() as u64)?;
    out.write_all(line).inspect_err(|_| {
        let _ = out.cut(before);
    })
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let written = serde_json::to_vec(event)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                append_whole(&mut *out, &line)
            });
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write audit record");
        }
    }
}

/// A guest's audit budget: a token bucket of bytes, and the records
/// dropped since the last `audit-suppressed` record.
#[derive(Debug)]
struct Budget {
    bytes: f64,
    last: Instant,
    suppressed: u64,
    noted: Option<Instant>,
}

impl Budget {
    fn new(now: Instant) -> Self {
        Self {
            bytes: AUDIT_BURST_BYTES as f64,
            last: now,
            suppressed: 0,
            noted: None,
        }
    }

    /// Adds what the budget earned since it was last looked at.
    fn refill(&mut self, now: Instant) {
        let earned = now.duration_since(self.last).as_secs_f64() * AUDIT_BYTES_PER_SECOND as f64;
        self.bytes = (self.bytes + earned).min(AUDIT_BURST_BYTES as f64);
        self.last = now;
    }

    /// Takes `len` bytes if the budget holds them.
    fn take(&mut self, len: usize, now: Instant) -> bool {
        self.refill(now);
        if self.bytes >= len as f64 {
            self.bytes -= len as f64;
            true
        } else {
            false
        }
    }

    /// Whether the budget is as a fresh one: nothing owed, nothing spent.
    fn idle(&self, now: Instant) -> bool {
        let earned = now.duration_since(self.last).as_secs_f64() * AUDIT_BYTES_PER_SECOND as f64;
        self.suppressed == 0 && self.bytes + earned >= AUDIT_BURST_BYTES as f64
    }
}

/// How many records the audit trail wrote and suppressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Records written (to `tracing` and every sink), suppression notes
    /// included.
    pub written: u64,
    /// Records dropped over a guest's budget (each counted in a later
    /// `audit-suppressed` record).
    pub suppressed: u64,
}

#[derive(Debug, Default)]
struct Shared {
    budgets: Mutex<HashMap<String, Budget>>,
    written: AtomicU64,
    suppressed: AtomicU64,
}

/// The audit trail: `tracing` plus zero or more sinks, with a budget per
/// guest. Cheap to clone; clones share the budgets.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    sinks: Vec<Arc<dyn AuditSink>>,
    shared: Arc<Shared>,
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

    /// Records an event everywhere, with its fields capped, if the guest's
    /// budget holds it; otherwise counts it, and at most once per
    /// [`SUPPRESSED_INTERVAL`] writes how many were dropped.
    pub fn record(&self, event: AuditEvent) {
        let now = Instant::now();
        // A spent budget is found before any work on the event.
        let spent = {
            let mut budgets = self.budgets();
            let budget = Self::budget(&mut budgets, &event.guest, now);
            budget.refill(now);
            budget.bytes < MIN_RECORD_BYTES
        };
        if spent {
            return self.suppress(&event.guest, now);
        }
        let event = event.capped();
        let len = serde_json::to_vec(&event).map_or(0, |line| line.len() + 1);
        let taken = {
            let mut budgets = self.budgets();
            Self::budget(&mut budgets, &event.guest, now).take(len, now)
        };
        if taken {
            self.write(&event);
        } else {
            self.suppress(&event.guest, now);
        }
    }

    /// The budget of `guest`, made if it has none; idle budgets of other
    /// guests are forgotten when too many are kept.
    fn budget<'a>(
        budgets: &'a mut HashMap<String, Budget>,
        guest: &str,
        now: Instant,
    ) -> &'a mut Budget {
        if budgets.len() >= BUDGETS_KEPT && !budgets.contains_key(guest) {
            budgets.retain(|_, b| !b.idle(now));
        }
        budgets
            .entry(guest.to_string())
            .or_insert_with(|| Budget::new(now))
    }

    /// Counts one record of `guest` dropped over its budget, and writes
    /// the count if the last one is [`SUPPRESSED_INTERVAL`] old.
    fn suppress(&self, guest: &str, now: Instant) {
        self.shared.suppressed.fetch_add(1, Ordering::Relaxed);
        let count = {
            let mut budgets = self.budgets();
            let budget = Self::budget(&mut budgets, guest, now);
            budget.suppressed += 1;
            let due = budget
                .noted
                .is_none_or(|at| now.duration_since(at) >= SUPPRESSED_INTERVAL);
            if !due {
                return;
            }
            budget.noted = Some(now);
            std::mem::take(&mut budget.suppressed)
        };
        self.write(&suppressed_note(guest, count));
    }

    /// Writes the `audit-suppressed` record `guest` still owes, if any: call
    /// when a guest's session ends, so no dropped record goes uncounted.
    pub fn settle(&self, guest: &str) {
        let count = {
            let mut budgets = self.budgets();
            match budgets.get_mut(guest) {
                Some(b) if b.suppressed > 0 => {
                    b.noted = Some(Instant::now());
                    std::mem::take(&mut b.suppressed)
                }
                _ => return,
            }
        };
        self.write(&suppressed_note(guest, count));
    }

    /// How many records were written and suppressed so far (by this trail
    /// and its clones).
    pub fn counts(&self) -> AuditCounts {
        AuditCounts {
            written: self.shared.written.load(Ordering::Relaxed),
            suppressed: self.shared.suppressed.load(Ordering::Relaxed),
        }
    }

    fn budgets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Budget>> {
        self.shared
            .budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, event: &AuditEvent) {
        self.shared.written.fetch_add(1, Ordering::Relaxed);
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
            suppressed = event.suppressed,
        );
        for sink in &self.sinks {
            sink.record(event);
        }
    }
}

/// The record standing for `count` records of `guest` dropped over its
/// budget (already capped: the guest's name is capped as in any record).
fn suppressed_note(guest: &str, count: u64) -> AuditEvent {
    let mut note = AuditEvent::new(guest, "audit-suppressed").reason(format!(
        "{count} records over the guest's audit budget were not written"
    ));
    note.suppressed = Some(count);
    note.capped()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk with `room` bytes left, which can reserve space or not.
    struct Disk {
        bytes: Vec<u8>,
        room: usize,
        reserving: bool,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.bytes.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl AppendOnly for Disk {
        fn len(&self) -> std::io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }

        fn reserve(&mut self, _at: u64, len: u64) -> std::io::Result<()> {
            match self.reserving {
                true if len as usize > self.room => {
                    Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
                }
                _ => Ok(()),
            }
        }

        fn cut(&mut self, len: u64) -> std::io::Result<()> {
            self.room += self.bytes.len() - len as usize;
            self.bytes.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn audit_sink_full_disk_keeps_whole_records_ugly() {
        // A record that fits only in part is never left in part, whether
        // the disk reserves space (refused before any byte is written) or
        // not (cut off again): the file holds whole records, and the next
        // one that fits follows the last whole one.
        for reserving in [true, false] {
            let mut disk = Disk {
                bytes: Vec::new(),
                room: 10,
                reserving,
            };
            append_whole(&mut disk, b"{\"a\":1}\n").expect("fits");
            let full = append_whole(&mut disk, b"{\"b\":22}\n").expect_err("does not fit");
            assert_eq!(full.raw_os_error(), Some(libc::ENOSPC));
            assert_eq!(disk.bytes, b"{\"a\":1}\n");
            disk.room += 8;
            append_whole(&mut disk, b"{\"c\":3}\n").expect("fits again");
            assert_eq!(disk.bytes, b"{\"a\":1}\n{\"c\":3}\n");
        }
    }

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

    #[test]
    fn audit_field_cap_counts_escaped_bytes_ugly() {
        // Control characters take six bytes each once escaped: the cap
        // holds for what is written, not for the raw text.
        let raw = "\u{1}".repeat(MAX_FIELD_BYTES * 2);
        let mut event = AuditEvent::new("g", "kill");
        event.id = Some(raw.clone());
        let event = event.program("p", &[raw.clone(), raw]).capped();
        let id = serde_json::to_string(event.id.as_ref().unwrap()).unwrap();
        assert!(id.len() <= MAX_FIELD_BYTES + 64, "{}", id.len());
        let args = event.args.as_ref().unwrap();
        let kept: usize = args[..args.len() - 1]
            .iter()
            .map(|a| serde_json::to_string(a).unwrap().len() - 2)
            .sum();
        assert!(kept <= MAX_FIELD_BYTES, "{kept}");
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.len() < 3 * MAX_FIELD_BYTES, "{}", line.len());
    }

    #[derive(Debug, Default)]
    struct Lines(Mutex<Vec<AuditEvent>>);

    impl AuditSink for Lines {
        fn record(&self, event: &AuditEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn audit_budget_suppresses_and_counts_ugly() {
        // A guest past its budget gets one `audit-suppressed` record per
        // interval; every dropped record is counted, and other guests keep
        // their own budgets.
        let lines = Arc::new(Lines::default());
        let audit = Audit::new().with_sink(lines.clone());
        let calls = 20_000u64;
        for _ in 0..calls {
            audit.record(AuditEvent::new("flood", "kill").refused("not-found", "x".repeat(100)));
        }
        audit.record(AuditEvent::new("other", "run").allowed());
        audit.settle("flood");
        let got = lines.0.lock().unwrap();
        let bytes: usize = got
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len() + 1)
            .sum();
        assert!(
            bytes as u64 <= AUDIT_BURST_BYTES + (64 << 10),
            "{bytes} bytes written"
        );
        let notes: Vec<_> = got
            .iter()
            .filter(|e| e.operation == "audit-suppressed")
            .collect();
        let noted: u64 = notes.iter().filter_map(|e| e.suppressed).sum();
        let kept = got
            .iter()
            .filter(|e| e.guest == "flood" && e.operation == "kill")
            .count() as u64;
        assert!(noted > 0 && notes.len() <= 3, "{} notes", notes.len());
        assert_eq!(kept + noted, calls, "every record written or counted");
        assert!(got.iter().any(|e| e.guest == "other"));
        let counts = audit.counts();
        assert_eq!(counts.suppressed, noted);
        assert_eq!(counts.written, got.len() as u64);
    }
}
