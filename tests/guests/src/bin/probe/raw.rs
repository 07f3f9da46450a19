//! Host calls with ids the probe does not hold.
//!
//! The SDK makes process handles only from ids the host returned, so made-up
//! ids and other guests' ids reach the host through these bindings instead.

use serde_json::{Value, json};
use wasmproc_guest::{Error, Signal};

use crate::digest::StreamDigest;
use crate::failure::Failure;

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "guest",
        // The SDK embeds the same world; a distinct section name keeps the
        // two descriptions apart until they are merged into the component.
        type_section_suffix: "probe-raw-ids",
    });
}

use bindings::wasmproc::process::process as host;
use bindings::wasmproc::process::types as wit;

/// How long one `read` or `write` call waits.
const WAIT_MS: u64 = 1000;

/// Bytes asked for per `read` call.
const READ_BYTES: u32 = 64 * 1024;

pub fn kill(id: &str) -> Result<Value, Failure> {
    host::kill(id).map_err(failure)?;
    Ok(Value::Null)
}

pub fn get(id: &str) -> Result<Value, Failure> {
    let info = host::get(id).map_err(failure)?;
    Ok(json!({
        "id": info.id,
        "pid": info.pid,
        "program": info.program,
        "args": info.args,
        "started_at_ms": info.started_at_ms,
        "state": match info.state {
            wit::State::Running => "running",
            wit::State::Exited => "exited",
            wit::State::Killed => "killed",
        },
        "exit": info.exit.map(status),
        "stdout_received": info.stdout.received,
        "stdout_dropped": info.stdout.dropped,
        "stderr_received": info.stderr.received,
        "stderr_dropped": info.stderr.dropped,
        "memory_peak_bytes": info.memory_peak_bytes,
        "cpu_time_us": info.cpu_time_us,
    }))
}

pub fn wait(id: &str, timeout_ms: Option<u64>) -> Result<Value, Failure> {
    let ended = host::wait(id, timeout_ms).map_err(failure)?;
    Ok(ended.map_or(Value::Null, status))
}

pub fn signal(id: &str, signal: Signal) -> Result<Value, Failure> {
    let signal = match signal {
        Signal::Terminate => wit::Signal::Terminate,
        Signal::Kill => wit::Signal::Kill,
        Signal::Interrupt => wit::Signal::Interrupt,
        Signal::Hangup => wit::Signal::Hangup,
        Signal::Quit => wit::Signal::Quit,
        Signal::User1 => wit::Signal::User1,
        Signal::User2 => wit::Signal::User2,
    };
    host::send_signal(id, signal).map_err(failure)?;
    Ok(Value::Null)
}

pub fn read_all(id: &str, stderr: bool) -> Result<Value, Failure> {
    let stream = if stderr {
        wit::OutputStream::Stderr
    } else {
        wit::OutputStream::Stdout
    };
    let mut digest = StreamDigest::new();
    let (mut cursor, mut dropped) = (0, 0);
    loop {
        let chunk = host::read(id, stream, cursor, READ_BYTES, WAIT_MS).map_err(failure)?;
        digest.update(&chunk.data);
        cursor = chunk.next;
        dropped += chunk.dropped;
        if chunk.ended {
            return Ok(digest.to_json(dropped));
        }
    }
}

pub fn write(id: &str, mut data: &[u8]) -> Result<Value, Failure> {
    while !data.is_empty() {
        let taken = host::write(id, data, WAIT_MS).map_err(failure)?;
        data = &data[usize::try_from(taken).map_or(data.len(), |n| n.min(data.len()))..];
    }
    Ok(Value::Null)
}

pub fn close_stdin(id: &str) -> Result<Value, Failure> {
    host::close_stdin(id).map_err(failure)?;
    Ok(Value::Null)
}

pub fn remove(id: &str) -> Result<Value, Failure> {
    host::remove(id).map_err(failure)?;
    Ok(Value::Null)
}

fn status(status: wit::ExitStatus) -> Value {
    match status {
        wit::ExitStatus::Exited(code) => json!({ "exited": code }),
        wit::ExitStatus::Signaled(number) => json!({ "signaled": number }),
    }
}

fn failure(error: wit::Error) -> Failure {
    Failure::Host(match error {
        wit::Error::Denied(text) => Error::Denied(text),
        wit::Error::NotFound(id) => Error::NotFound(id),
        wit::Error::Invalid(text) => Error::Invalid(text),
        wit::Error::LimitReached(text) => Error::LimitReached(text),
        wit::Error::SpawnFailed(text) => Error::SpawnFailed(text),
        wit::Error::TimedOut => Error::TimedOut,
        wit::Error::Io(text) => Error::Io(text),
    })
}
