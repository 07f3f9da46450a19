//! SDK values as the JSON the tests read.

use std::time::UNIX_EPOCH;

use serde_json::{Value, json};
use wasmproc_guest::{ExitStatus, Output, ProcessInfo, State};

/// `{"exited": code}` or `{"signaled": number}`.
pub fn status(status: ExitStatus) -> Value {
    match (status.code(), status.signal()) {
        (Some(code), _) => json!({ "exited": code }),
        (None, Some(number)) => json!({ "signaled": number }),
        (None, None) => Value::Null,
    }
}

/// The ok value of `run`.
pub fn output(output: &Output) -> Value {
    json!({
        "status": status(output.status),
        "stdout": text_prefix(&output.stdout),
        "stderr": text_prefix(&output.stderr),
        "stdout_len": output.stdout.len(),
        "stderr_len": output.stderr.len(),
        "stdout_dropped": output.stdout_dropped,
        "stderr_dropped": output.stderr_dropped,
    })
}

/// The ok value of `get`.
pub fn info(info: &ProcessInfo) -> Value {
    let started_at_ms = info
        .started_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    json!({
        "id": info.id,
        "pid": info.pid,
        "program": info.program,
        "args": info.args,
        "started_at_ms": started_at_ms,
        "state": state(info.state),
        "exit": info.exit.map(status),
        "stdout_received": info.stdout.received,
        "stdout_dropped": info.stdout.dropped,
        "stderr_received": info.stderr.received,
        "stderr_dropped": info.stderr.dropped,
        "memory_peak_bytes": info.memory_peak_bytes,
        "cpu_time_us": info.cpu_time.map(|t| t.as_micros() as u64),
    })
}

/// `"running"`, `"exited"` or `"killed"`.
pub fn state(state: State) -> &'static str {
    match state {
        State::Running => "running",
        State::Exited => "exited",
        State::Killed => "killed",
    }
}

/// At most the first 64 KiB of captured output, as text (the full length
/// is reported separately).
fn text_prefix(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).into_owned()
}
