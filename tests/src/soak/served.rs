//! The host under test: the real `wasmproc serve` binary as a child of
//! the soak, its stdout (the plugins' call lines) and stderr (JSON logs,
//! audit events included) read by threads that count what they see, and
//! HTTP requests to its `/health` and `/daemons`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one HTTP request may take before it counts as lost.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// What the plugins' call lines said.
#[derive(Debug, Default)]
pub struct GuestCalls {
    /// Calls made (one line each).
    pub made: u64,
    /// Answered with success.
    pub ok: u64,
    /// Refused by the policy or a limit (`denied`, `limit-reached`,
    /// `invalid`, `not-found`).
    pub refused: u64,
    /// Failed in the OS (`spawn-failed`, `io`, `timed-out`).
    pub failed: u64,
    /// Calls for a program the policy does not grant that succeeded.
    pub violations: u64,
    /// When each plugin last reported a call.
    pub last_call: HashMap<String, Instant>,
    /// Failures by kind and operation, for the report.
    pub failures: HashMap<String, u64>,
}

/// What the host's stderr said.
#[derive(Debug, Default)]
pub struct HostLog {
    /// The `/health` address, once the host serves.
    pub addr: Option<String>,
    /// Audit records the host emitted (its `wasmproc::audit` log events).
    pub audited: u64,
    /// Audit records it could not write to the file, each one logged.
    pub audit_write_errors: u64,
    /// The last lines that were neither, for error messages.
    pub tail: Vec<String>,
}

/// A running `wasmproc serve`.
#[derive(Debug)]
pub struct Served {
    child: Child,
    /// The plugins' calls.
    pub calls: Arc<Mutex<GuestCalls>>,
    /// The host's log.
    pub log: Arc<Mutex<HostLog>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The host's `TMPDIR`, where its sessions' private directories go.
    tmp: tempfile::TempDir,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_call(calls: &Mutex<GuestCalls>, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["soak-call", plugin, op, outcome, rest @ ..] = words.as_slice() else {
        return;
    };
    let mut calls = lock(calls);
    calls.made += 1;
    calls.last_call.insert(plugin.to_string(), Instant::now());
    match (*outcome, rest.first().copied()) {
        ("ok", _) if *op == "denied" => {
            calls.violations += 1;
            calls.ok += 1;
        }
        ("ok", _) => calls.ok += 1,
        ("err", Some("denied" | "limit-reached" | "invalid" | "not-found")) => calls.refused += 1,
        ("err", kind) => {
            calls.failed += 1;
            *calls
                .failures
                .entry(format!("{op} {}", kind.unwrap_or("?")))
                .or_default() += 1;
        }
        _ => {}
    }
}

fn count_log(log: &Mutex<HostLog>, line: &str) {
    let mut log = lock(log);
    if line.contains(r#""target":"wasmproc::audit""#) {
        log.audited += 1;
    } else if line.contains("cannot write audit record") {
        log.audit_write_errors += 1;
    } else {
        if let Some(rest) = line.strip_prefix("wasmproc: serving http://") {
            log.addr = rest.split('/').next().map(str::to_string);
        }
        log.tail.push(line.to_string());
        if log.tail.len() > 20 {
            log.tail.remove(0);
        }
    }
}

fn read_lines(
    stream: impl Read + Send + 'static,
    mut each: impl FnMut(&str) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            each(String::from_utf8_lossy(&line).trim_end());
            line.clear();
        }
    })
}

impl Served {
    /// Starts `wasmproc serve --config config`, logging JSON with every
    /// audit event.
    pub fn start(wasmproc: &Path, config: &Path) -> Result<Self, String> {
        let tmp = tempfile::Builder::new()
            .prefix("wasmproc-soak-tmp")
            .tempdir()
            .map_err(|e| format!("cannot make the host's TMPDIR: {e}"))?;
        let mut child = Command::new(wasmproc)
            .args(["serve", "--config"])
            .arg(config)
            .env("TMPDIR", tmp.path())
            .env("WASMPROC_LOG", "warn,wasmproc::audit=info")
            .env("WASMPROC_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", wasmproc.display()))?;
        let calls = Arc::new(Mutex::new(GuestCalls::default()));
        let log = Arc::new(Mutex::new(HostLog::default()));
        let readers = vec![
            read_lines(child.stdout.take().expect("piped"), {
                let calls = Arc::clone(&calls);
                move |line| count_call(&calls, line)
            }),
            read_lines(child.stderr.take().expect("piped"), {
                let log = Arc::clone(&log);
                move |line| count_log(&log, line)
            }),
        ];
        Ok(Self {
            child,
            calls,
            log,
            readers,
            tmp,
        })
    }

    /// The host's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The exit status, if the host has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The host's last log lines, for an error message.
    pub fn tail(&self) -> String {
        lock(&self.log).tail.join("\n")
    }

    /// `GET path`: the status code and body, or `None` if no answer came
    /// within [`REQUEST_LIMIT`].
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let addr = lock(&self.log).addr.clone()?;
        crate::http::get(&addr, path, REQUEST_LIMIT)
    }

    /// Sends SIGTERM and waits up to `limit` for the host to exit, then
    /// for its output to be read to the end.
    pub fn stop(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: a signal to our own child, which has not been reaped.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.exited() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.is_some() {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
        status
    }

    /// The entries in the host's `TMPDIR`: its sessions' private
    /// directories not removed yet.
    pub fn tmp_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp.path())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
