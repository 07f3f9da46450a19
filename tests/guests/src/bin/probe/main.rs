//! The workhorse guest of the end-to-end tests: runs a script of process
//! operations and reports each result as one JSON line.
//!
//! # Usage
//!
//! `probe '<steps>'`, where `<steps>` is a JSON array of step objects. The
//! steps run in order; for each, exactly one line is printed to stdout:
//!
//! - `{"ok": <value>}` when the step succeeded, or
//! - `{"err": {"kind": "<kind>", "detail": <text or null>}}` when it failed,
//!   where `<kind>` is the WIT error case (`denied`, `not-found`, `invalid`,
//!   `limit-reached`, `spawn-failed`, `timed-out`, `io`) and `detail` its
//!   text (the id for `not-found`, `null` for `timed-out`). A step the probe
//!   itself cannot understand reports kind `probe`.
//!
//! After the last step the probe exits 0. A missing or malformed step list
//! prints one `probe` error line and exits 2.
//!
//! # Ids
//!
//! Wherever a step takes an `"id"`, the string `"$N"` means the id returned
//! by step `N` (counted from 0), and `"$N.K"` the `K`-th id (from 0) in the
//! `ids` (or array) result of step `N`. Any other string is sent to the host
//! as it is, so made-up ids and other guests' ids can be tried.
//!
//! # Command fields
//!
//! `run`, `start`, `repeat_start` and `repeat_start_kill` take:
//! `"program"` (required), `"args": ["..."]`, `"env": [["KEY", "VALUE"]]`,
//! `"cwd": "/dir"`, `"stdin": "text"` and `"timeout_ms": N`, all optional
//! (`null` is the same as absent). The spawning steps also take
//! `"stdin_mode"`, `"stdout_mode"`, `"stderr_mode"` (`"null"`, `"piped"`,
//! `"inherit"`; defaults null, piped, piped), `"buffering"` (`"lossless"`,
//! `"ring"`) and `"buffer_bytes": N`.
//!
//! # Steps
//!
//! | step | ok value |
//! | --- | --- |
//! | `{"op":"run", <command>}` | `{"status", "stdout", "stderr", "stdout_len", "stderr_len", "stdout_dropped", "stderr_dropped"}`; text is UTF-8 (lossy) |
//! | `{"op":"start", <command>}` | the id |
//! | `{"op":"kill","id":I}` | `null` |
//! | `{"op":"list"}` | array of ids |
//! | `{"op":"get","id":I}` | `{"id", "pid", "program", "args", "started_at_ms", "state", "exit", "stdout_received", "stdout_dropped", "stderr_received", "stderr_dropped", "memory_peak_bytes", "cpu_time_us"}`; state is `"running"`, `"exited"` or `"killed"` |
//! | `{"op":"wait","id":I,"timeout_ms":N}` | status, or `null` if still running; `timeout_ms` `null` or absent waits until the end |
//! | `{"op":"signal","id":I,"sig":S}` | `null`; S is `terminate`, `kill`, `interrupt`, `hangup`, `quit`, `user1` or `user2` |
//! | `{"op":"read_all","id":I,"stream":"stdout"}` | `{"len", "fnv1a64", "text", "dropped"}`: bytes read to the end, their FNV-1a 64 hash (16 hex digits), the first 4096 bytes as text, bytes dropped by ring buffering; stream `stdout` or `stderr` |
//! | `{"op":"write","id":I,"data":"text","repeat":N}` | `null`; writes `data` `repeat` times (default 1) |
//! | `{"op":"close_stdin","id":I}` | `null` |
//! | `{"op":"remove","id":I}` | `null` |
//! | `{"op":"repeat_start","count":N, <command>}` | `{"started", "error", "ids"}`: processes started before the first error (`null` if none), and the first 10 ids |
//! | `{"op":"repeat_start_kill","count":N,"remove":B, <command>}` | `{"cycles", "error"}`: start-then-kill cycles completed (and `remove` after each kill if `remove` is true) |
//! | `{"op":"sleep_ms","ms":N}` | `null` |
//!
//! A status is `{"exited": code}` or `{"signaled": number}`.

mod digest;
mod failure;
mod raw;
mod report;
mod session;
mod step;

use std::process::ExitCode;

use failure::Failure;
use serde_json::{Value, json};
use session::Session;

fn main() -> ExitCode {
    let steps = match read_steps() {
        Ok(steps) => steps,
        Err(why) => {
            println!("{}", json!({ "err": Failure::Probe(why).to_json() }));
            return ExitCode::from(2);
        }
    };
    let mut session = Session::default();
    for step in &steps {
        let result = session.run(step);
        let line = match &result {
            Ok(value) => json!({ "ok": value }),
            Err(failure) => json!({ "err": failure.to_json() }),
        };
        println!("{line}");
        session.remember(result.ok());
    }
    ExitCode::SUCCESS
}

/// The step list from the first argument.
fn read_steps() -> Result<Vec<Value>, String> {
    let text = std::env::args()
        .nth(1)
        .ok_or("usage: probe '<JSON array of steps>'")?;
    serde_json::from_str(&text).map_err(|e| format!("the steps are not a JSON array: {e}"))
}
