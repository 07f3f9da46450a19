//! Health probes: exec (exit 0 is healthy), TCP connect, HTTP GET (2xx is
//! healthy), each bounded by its timeout. An exec probe is a process like
//! any other: checked against the daemon policy, started by the spawner in
//! its own group, and at its timeout killed with its group and reaped.

use crate::capture::{self, RunRequest};
use crate::manager::ProcessManager;
use crate::policy::{Approved, CommandRequest, Operation, Policy};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A probe as configured (`[daemon.liveness]`, `[daemon.readiness]`):
/// exactly one of `exec`, `tcp` or `http`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// A command (program, then arguments); exit 0 is healthy.
    pub exec: Option<Vec<String>>,
    /// `HOST:PORT`; a completed connect is healthy.
    pub tcp: Option<String>,
    /// `http://HOST:PORT/PATH`; a 2xx status is healthy.
    pub http: Option<String>,
    /// Time between probes, in ms. Default 1 000.
    #[serde(default = "default_period")]
    pub period_ms: u64,
    /// Time one probe may take, in ms; past it the probe fails (an exec
    /// probe is killed and reaped). Default 1 000.
    #[serde(default = "default_period")]
    pub timeout_ms: u64,
    /// Consecutive failures that make the daemon unhealthy. Default 3.
    #[serde(default = "default_failures")]
    pub failure_threshold: u32,
    /// Consecutive successes that make it healthy again. Default 1.
    #[serde(default = "default_successes")]
    pub success_threshold: u32,
    /// Wait before the first probe of an instance, in ms. Default 0.
    #[serde(default)]
    pub initial_delay_ms: u64,
}

fn default_period() -> u64 {
    1_000
}
fn default_failures() -> u32 {
    3
}
fn default_successes() -> u32 {
    1
}

/// What a probe checks, resolved.
#[derive(Debug, Clone)]
pub(crate) enum ProbeKind {
    /// A policy-approved command.
    Exec(Approved),
    /// A TCP address.
    Tcp(String),
    /// An HTTP URL, split.
    Http {
        /// `HOST:PORT` to connect to.
        authority: String,
        /// The request path.
        path: String,
    },
}

/// A resolved probe.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub kind: ProbeKind,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub initial_delay: Duration,
}

impl ProbeSpec {
    /// Checks the probe and resolves it; an exec probe's command must pass
    /// the daemon policy for `run`.
    pub(crate) fn resolve(&self, policy: &Policy) -> Result<Probe, String> {
        let kind = match (&self.exec, &self.tcp, &self.http) {
            (Some(cmd), None, None) => {
                let (program, args) = cmd.split_first().ok_or("`exec` is empty")?;
                let approved = policy
                    .check(
                        Operation::Run,
                        CommandRequest {
                            program,
                            args,
                            env: &[],
                            cwd: None,
                        },
                    )
                    .map_err(|e| format!("exec probe `{program}`: {e}"))?;
                ProbeKind::Exec(approved)
            }
            (None, Some(addr), None) => ProbeKind::Tcp(authority(addr)?),
            (None, None, Some(url)) => {
                let rest = url
                    .strip_prefix("http://")
                    .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
                let (auth, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err(format!(
                        "`{url}` has a control character or space in its path"
                    ));
                }
                ProbeKind::Http {
                    authority: authority(auth)?,
                    path: path.to_string(),
                }
            }
            _ => return Err("a probe needs exactly one of `exec`, `tcp`, `http`".into()),
        };
        if self.period_ms == 0 || self.timeout_ms == 0 {
            return Err("`period_ms` and `timeout_ms` must be above 0".into());
        }
        for (field, ms) in [
            ("period_ms", self.period_ms),
            ("timeout_ms", self.timeout_ms),
            ("initial_delay_ms", self.initial_delay_ms),
        ] {
            if ms > crate::limits::MAX_MILLIS {
                return Err(format!(
                    "`{field} = {ms}` is above {} (ten years)",
                    crate::limits::MAX_MILLIS
                ));
            }
        }
        if self.failure_threshold == 0 || self.success_threshold == 0 {
            return Err("`failure_threshold` and `success_threshold` must be at least 1".into());
        }
        Ok(Probe {
            kind,
            period: Duration::from_millis(self.period_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            initial_delay: Duration::from_millis(self.initial_delay_ms),
        })
    }
}

fn authority(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` has no port (HOST:PORT)"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("`{text}` is not HOST:PORT"));
    }
    Ok(text.to_string())
}

impl Probe {
    /// Runs the probe once; `Err` says why it failed.
    pub(crate) fn run(&self, manager: &ProcessManager) -> Result<(), String> {
        match &self.kind {
            ProbeKind::Exec(cmd) => run_exec(cmd, manager, self.timeout),
            ProbeKind::Tcp(addr) => {
                connect(addr, crate::limits::deadline_after(self.timeout)).map(drop)
            }
            ProbeKind::Http { authority, path } => http_get(authority, path, self.timeout),
        }
    }
}

/// Most bytes of an exec probe's output quoted in a failure.
const EXEC_OUTPUT_CAP: usize = 512;

fn run_exec(cmd: &Approved, manager: &ProcessManager, timeout: Duration) -> Result<(), String> {
    // One deadline for the whole probe, spawn included, fixed now.
    let deadline = crate::limits::deadline_after(timeout);
    // interim: the manager's `run` path, blocking this probe thread. It
    // kills the group at the deadline and closes the pipes either way.
    let request = RunRequest {
        cmd,
        scope: manager.host_scope(),
        owner: "host",
        guest: "host",
        stdin: None,
        cap: EXEC_OUTPUT_CAP,
        deadline,
    };
    let got = ProcessManager::block_on(capture::run_captured(manager, request))
        .map_err(|e| e.to_string())?;
    let exit = match got.exit {
        Some(exit) if !got.timed_out => exit,
        _ => {
            return Err(format!(
                "timed out after {} ms (killed)",
                timeout.as_millis()
            ));
        }
    };
    if exit.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(if got.stderr.is_empty() {
        &got.stdout
    } else {
        &got.stderr
    });
    let said = said.trim();
    Err(if said.is_empty() {
        format!("{exit}")
    } else {
        format!("{exit}: {said}")
    })
}

fn connect(authority: &str, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last = format!("{authority} resolves to no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("connect to {authority} timed out"));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn http_get(authority: &str, path: &str, timeout: Duration) -> Result<(), String> {
    let deadline = crate::limits::deadline_after(timeout);
    let mut stream = connect(authority, deadline)?;
    let left = |what: &str| {
        let l = deadline.saturating_duration_since(Instant::now());
        if l.is_zero() {
            Err(format!("{what} timed out"))
        } else {
            Ok(l)
        }
    };
    stream
        .set_write_timeout(Some(left("request")?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: wasmproc-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        stream
            .set_read_timeout(Some(left("response")?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no response within {} ms", timeout.as_millis()));
            }
            Err(e) => return Err(format!("read response: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let status: u16 = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP response: `{}`",
                line.chars().take(80).collect::<String>()
            )
        })?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Consecutive results of one probe against its thresholds.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeState {
    pub passing: bool,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub runs: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

impl ProbeState {
    /// A state starting out passing (liveness) or not (readiness).
    pub(crate) fn new(passing: bool) -> Self {
        Self {
            passing,
            ..Self::default()
        }
    }

    /// Records a result; returns `true` when this result turned the probe
    /// from passing to failing.
    pub(crate) fn record(&mut self, result: Result<(), String>, probe: &Probe) -> bool {
        self.runs += 1;
        match result {
            Ok(()) => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if self.consecutive_successes >= probe.success_threshold {
                    self.passing = true;
                }
                false
            }
            Err(why) => {
                self.failures += 1;
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(why);
                let was = self.passing;
                if self.consecutive_failures >= probe.failure_threshold {
                    self.passing = false;
                }
                was && !self.passing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> ProbeSpec {
        toml::from_str(toml_text).expect("probe spec")
    }

    fn resolve(text: &str) -> Result<Probe, String> {
        spec(text).resolve(&Policy::deny_all())
    }

    #[test]
    fn health_probe_spec_good() {
        let p = resolve("http = \"http://127.0.0.1:8080/healthz\"\nperiod_ms = 50").expect("http");
        assert!(
            matches!(&p.kind, ProbeKind::Http { authority, path } if authority == "127.0.0.1:8080" && path == "/healthz")
        );
        assert_eq!(p.period, Duration::from_millis(50));
        assert_eq!(p.failure_threshold, 3);
        let t = resolve("tcp = \"localhost:22\"").expect("tcp");
        assert!(matches!(t.kind, ProbeKind::Tcp(_)));
    }

    #[test]
    fn health_probe_spec_bad() {
        assert!(
            resolve("tcp = \"x:1\"\nhttp = \"http://x:1/\"").is_err(),
            "two kinds"
        );
        assert!(resolve("period_ms = 5").is_err(), "no kind");
        assert!(resolve("http = \"https://127.0.0.1:1/\"").is_err());
        assert!(resolve("tcp = \"127.0.0.1\"").is_err());
        assert!(resolve("tcp = \"127.0.0.1:1\"\nfailure_threshold = 0").is_err());
        let denied = resolve("exec = [\"true\"]").expect_err("deny-all policy");
        assert!(denied.contains("not granted"), "{denied}");
    }

    #[test]
    fn health_thresholds_ugly() {
        let probe = resolve("tcp = \"127.0.0.1:1\"\nfailure_threshold = 3\nsuccess_threshold = 2")
            .expect("probe");
        let mut s = ProbeState::new(true);
        assert!(!s.record(Err("a".into()), &probe));
        assert!(!s.record(Err("b".into()), &probe));
        assert!(s.passing, "two failures stay below the threshold");
        assert!(s.record(Err("c".into()), &probe), "the third turns it");
        assert!(!s.record(Err("d".into()), &probe), "turns only once");
        assert!(!s.record(Ok(()), &probe));
        assert!(!s.passing, "one success is below the success threshold");
        assert!(!s.record(Ok(()), &probe));
        assert!(s.passing);
        assert_eq!((s.runs, s.failures), (6, 4));
    }

    #[test]
    fn health_tcp_http_good() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let mut s = stream.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let status = if i == 0 {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
            }
        });
        let url = format!("http = \"http://{addr}/health\"");
        let probe = resolve(&url).expect("probe");
        let manager = ProcessManager::new(Duration::from_secs(1));
        assert_eq!(probe.run(&manager), Ok(()));
        assert_eq!(probe.run(&manager), Err("HTTP 503".into()));
        server.join().expect("server");
        let closed = resolve(&format!("tcp = \"{addr}\"")).expect("probe");
        assert!(closed.run(&manager).is_err(), "nothing listens any more");
    }
}
