//! Health probes: exec (exit 0 is healthy), TCP connect, HTTP GET (2xx is
//! healthy), each bounded by its timeout. An exec probe is a process like
//! any other: checked against the daemon policy, started by the spawner in
//! its own group, and at its timeout killed with its group and reaped. The
//! HTTP probe is a hyper client on one connection.
//!
//! A probe table holds exactly one of `exec`, `tcp` or `http`; the parsed
//! [`ProbeSpec`] cannot hold anything else, nor a zero period, timeout or
//! threshold.

use crate::capture::{self, RunRequest};
use crate::manager::ProcessManager;
use crate::policy::{Approved, CommandRequest, Operation, Policy};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What a probe checks, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCheck {
    /// A command (program, then arguments); exit 0 is healthy.
    Exec {
        /// The program, as the policy grants it.
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// `HOST:PORT`; a completed connect is healthy.
    Tcp(String),
    /// `http://HOST:PORT/PATH`; a 2xx status is healthy.
    Http {
        /// The URL as written.
        url: String,
        /// `HOST:PORT` to connect to.
        authority: String,
        /// The request path (with its query).
        path: String,
    },
}

/// Consecutive results that turn a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that make it fail.
    pub failure: u32,
    /// Consecutive successes that make it pass again.
    pub success: u32,
}

/// A probe as configured (`[daemon.liveness]`, `[daemon.readiness]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ProbeTable")]
pub struct ProbeSpec {
    /// What it checks.
    pub check: ProbeCheck,
    /// Time between probes. Default `1s`.
    pub period: Duration,
    /// Time one probe may take; past it the probe fails (an exec probe is
    /// killed and reaped). Default `1s`.
    pub timeout: Duration,
    /// Consecutive failures that make the daemon unhealthy (default 3) and
    /// successes that make it healthy again (default 1).
    pub thresholds: Thresholds,
    /// Wait before the first probe of an instance. Default `0s`.
    pub initial_delay: Duration,
}

/// A probe table as written; [`ProbeSpec`] is what it must turn into.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeTable {
    exec: Option<Vec<String>>,
    tcp: Option<String>,
    http: Option<String>,
    #[serde(default = "one_second", with = "humantime_serde")]
    period: Duration,
    #[serde(default = "one_second", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default = "three")]
    failure_threshold: NonZeroU32,
    #[serde(default = "one")]
    success_threshold: NonZeroU32,
    #[serde(default, with = "humantime_serde")]
    initial_delay: Duration,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn three() -> NonZeroU32 {
    NonZeroU32::new(3).expect("3 is not 0")
}
fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

/// Why a probe table is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeSpecError {
    /// None or several of `exec`, `tcp`, `http`.
    #[error("a probe needs exactly one of `exec`, `tcp`, `http`")]
    NotOneKind,
    /// `exec = []`.
    #[error("`exec` is empty")]
    EmptyExec,
    /// An address without a valid port.
    #[error("`{0}` is not HOST:PORT")]
    NotHostPort(String),
    /// A URL that is not `http://`.
    #[error("`{0}` is not an http:// URL")]
    NotHttp(String),
    /// A URL that does not parse.
    #[error("`{0}` is not a valid URL")]
    BadUrl(String),
    /// A zero period or timeout.
    #[error("`period` and `timeout` must be above 0")]
    ZeroTime,
    /// A time that would overflow clock arithmetic.
    #[error("`{field}` = {value:?} is above ten years")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
}

/// `HOST:PORT` with a non-empty host and a numeric port.
fn host_port(text: &str) -> Result<String, ProbeSpecError> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err(ProbeSpecError::NotHostPort(text.to_string())),
    }
}

fn http_check(url: &str) -> Result<ProbeCheck, ProbeSpecError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| ProbeSpecError::BadUrl(url.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ProbeSpecError::NotHttp(url.to_string()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ProbeSpecError::BadUrl(url.to_string()))?;
    if authority.port_u16().is_none() || authority.as_str().contains('@') {
        return Err(ProbeSpecError::NotHostPort(authority.to_string()));
    }
    Ok(ProbeCheck::Http {
        url: url.to_string(),
        authority: host_port(authority.as_str())?,
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
    })
}

impl TryFrom<ProbeTable> for ProbeSpec {
    type Error = ProbeSpecError;

    fn try_from(t: ProbeTable) -> Result<Self, Self::Error> {
        let check = match (t.exec, t.tcp, t.http) {
            (Some(cmd), None, None) => {
                let (program, args) = cmd.split_first().ok_or(ProbeSpecError::EmptyExec)?;
                ProbeCheck::Exec {
                    program: program.clone(),
                    args: args.to_vec(),
                }
            }
            (None, Some(addr), None) => ProbeCheck::Tcp(host_port(&addr)?),
            (None, None, Some(url)) => http_check(&url)?,
            _ => return Err(ProbeSpecError::NotOneKind),
        };
        if t.period.is_zero() || t.timeout.is_zero() {
            return Err(ProbeSpecError::ZeroTime);
        }
        let max = Duration::from_millis(crate::limits::MAX_MILLIS);
        for (field, value) in [
            ("period", t.period),
            ("timeout", t.timeout),
            ("initial_delay", t.initial_delay),
        ] {
            if value > max {
                return Err(ProbeSpecError::TooLong { field, value });
            }
        }
        Ok(Self {
            check,
            period: t.period,
            timeout: t.timeout,
            thresholds: Thresholds {
                failure: t.failure_threshold.get(),
                success: t.success_threshold.get(),
            },
            initial_delay: t.initial_delay,
        })
    }
}

impl ProbeSpec {
    /// The address a registry entry shows for this probe (HTTP URL or TCP
    /// address); none for an exec probe.
    pub fn target(&self) -> Option<&str> {
        match &self.check {
            ProbeCheck::Exec { .. } => None,
            ProbeCheck::Tcp(addr) => Some(addr),
            ProbeCheck::Http { url, .. } => Some(url),
        }
    }

    /// Resolves the probe; an exec probe's command must pass the daemon
    /// policy for `run`.
    pub(crate) fn resolve(&self, policy: &Policy) -> Result<Probe, ProbeDenied> {
        let kind = match &self.check {
            ProbeCheck::Exec { program, args } => {
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
                    .map_err(|source| ProbeDenied {
                        program: program.clone(),
                        source,
                    })?;
                ProbeKind::Exec(Arc::new(approved))
            }
            ProbeCheck::Tcp(addr) => ProbeKind::Tcp(addr.clone()),
            ProbeCheck::Http {
                authority, path, ..
            } => ProbeKind::Http {
                authority: authority.clone(),
                path: path.clone(),
            },
        };
        Ok(Probe {
            kind,
            period: self.period,
            timeout: self.timeout,
            thresholds: self.thresholds,
            initial_delay: self.initial_delay,
        })
    }
}

/// An exec probe whose command the daemon policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("exec probe `{program}`: {source}")]
pub struct ProbeDenied {
    /// The program.
    pub program: String,
    /// The policy's refusal.
    #[source]
    pub source: crate::CallError,
}

/// What a probe checks, resolved.
#[derive(Debug, Clone)]
pub(crate) enum ProbeKind {
    /// A policy-approved command.
    Exec(Arc<Approved>),
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
    pub thresholds: Thresholds,
    pub initial_delay: Duration,
}

/// Why one probe run failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    /// It took longer than its timeout (an exec probe was killed).
    #[error("timed out after {} ms{}", .after.as_millis(), if *.killed { " (killed)" } else { "" })]
    TimedOut {
        /// The timeout.
        after: Duration,
        /// Whether a process was killed for it.
        killed: bool,
    },
    /// The exec probe could not be started.
    #[error("cannot start: {0}")]
    Spawn(#[source] crate::CallError),
    /// The exec probe ended unhealthy; what it said, if anything.
    #[error("{exit}{}", if .said.is_empty() { String::new() } else { format!(": {}", .said) })]
    Unhealthy {
        /// How it ended.
        exit: crate::Exit,
        /// Its stderr (or stdout), trimmed.
        said: String,
    },
    /// The connection failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    /// The HTTP request could not be built.
    #[error("HTTP request: {0}")]
    Request(#[source] hyper::http::Error),
    /// A non-2xx status.
    #[error("HTTP {0}")]
    Status(u16),
}

impl Probe {
    /// Runs the probe once, within its timeout.
    pub(crate) async fn run(&self, manager: &Arc<ProcessManager>) -> Result<(), ProbeFailure> {
        match &self.kind {
            ProbeKind::Exec(cmd) => run_exec(cmd, manager, self.timeout).await,
            ProbeKind::Tcp(addr) => self.bounded(connect(addr)).await.map(drop),
            ProbeKind::Http { authority, path } => self.bounded(http_get(authority, path)).await,
        }
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, ProbeFailure>>,
    ) -> Result<T, ProbeFailure> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(ProbeFailure::TimedOut {
                after: self.timeout,
                killed: false,
            }))
    }
}

/// Most bytes of an exec probe's output quoted in a failure.
const EXEC_OUTPUT_CAP: usize = 512;

/// Runs the exec probe through the process core's `run` path: one
/// deadline for the whole probe, spawn included; at it the group is killed
/// and reaped.
async fn run_exec(
    cmd: &Approved,
    manager: &ProcessManager,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    let request = RunRequest {
        cmd,
        scope: manager.host_scope(),
        owner: "host",
        guest: "host",
        stdin: None,
        cap: EXEC_OUTPUT_CAP,
        deadline: crate::limits::deadline_after(timeout),
    };
    let got = capture::run_captured(manager, request)
        .await
        .map_err(ProbeFailure::Spawn)?;
    let exit = match got.exit {
        Some(exit) if !got.timed_out => exit,
        _ => {
            return Err(ProbeFailure::TimedOut {
                after: timeout,
                killed: true,
            });
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
    Err(ProbeFailure::Unhealthy {
        exit,
        said: said.trim().to_string(),
    })
}

async fn connect(addr: &str) -> Result<tokio::net::TcpStream, ProbeFailure> {
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| ProbeFailure::Connect {
            addr: addr.to_string(),
            source,
        })
}

async fn http_get(authority: &str, path: &str) -> Result<(), ProbeFailure> {
    let stream = connect(authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ProbeFailure::Http)?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "wasmproc-probe")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(ProbeFailure::Request)?;
    let response = sender.send_request(request).await;
    conn.abort();
    let status = response.map_err(ProbeFailure::Http)?.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(ProbeFailure::Status(status.as_u16()))
    }
}

/// One probe result, as the supervisor records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Healthy.
    Passed,
    /// Unhealthy, and why.
    Failed(String),
}

impl From<Result<(), ProbeFailure>> for ProbeOutcome {
    fn from(result: Result<(), ProbeFailure>) -> Self {
        match result {
            Ok(()) => Self::Passed,
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

/// Consecutive results of one probe against its thresholds.
#[derive(Debug, Clone, Default)]
pub struct ProbeState {
    /// Whether it passes, by its thresholds.
    pub passing: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// Probes recorded.
    pub runs: u64,
    /// Of which failed.
    pub failures: u64,
    /// Why the last failure failed.
    pub last_error: Option<String>,
}

impl ProbeState {
    /// A state starting out passing (liveness) or not (readiness).
    pub fn new(passing: bool) -> Self {
        Self {
            passing,
            ..Self::default()
        }
    }

    /// Records a result; returns `true` when this result turned the probe
    /// from passing to failing.
    pub fn record(&mut self, outcome: ProbeOutcome, t: Thresholds) -> bool {
        self.runs += 1;
        match outcome {
            ProbeOutcome::Passed => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if self.consecutive_successes >= t.success {
                    self.passing = true;
                }
                false
            }
            ProbeOutcome::Failed(why) => {
                self.failures += 1;
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(why);
                let was = self.passing;
                if self.consecutive_failures >= t.failure {
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
    use std::io::{Read, Write};

    fn spec(text: &str) -> Result<ProbeSpec, toml::de::Error> {
        toml::from_str(text)
    }

    fn resolve(text: &str) -> Result<Probe, ProbeDenied> {
        spec(text)
            .expect("probe table")
            .resolve(&Policy::deny_all())
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn health_probe_spec_good() {
        let p = resolve("http = \"http://127.0.0.1:8080/healthz?x=1\"\nperiod = \"50ms\"")
            .expect("http");
        assert!(
            matches!(&p.kind, ProbeKind::Http { authority, path } if authority == "127.0.0.1:8080" && path == "/healthz?x=1")
        );
        assert_eq!(p.period, Duration::from_millis(50));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!(
            p.thresholds,
            Thresholds {
                failure: 3,
                success: 1
            }
        );
        let t = resolve("tcp = \"localhost:22\"\ninitial_delay = \"2s\"").expect("tcp");
        assert!(matches!(t.kind, ProbeKind::Tcp(_)));
        assert_eq!(t.initial_delay, Duration::from_secs(2));
        let e = spec("exec = [\"true\", \"-x\"]").expect("exec");
        assert_eq!(
            e.check,
            ProbeCheck::Exec {
                program: "true".into(),
                args: vec!["-x".into()]
            }
        );
    }

    #[test]
    fn health_probe_spec_bad() {
        let cases = [
            ("tcp = \"x:1\"\nhttp = \"http://x:1/\"", "exactly one"),
            ("period = \"5ms\"", "exactly one"),
            ("exec = []", "empty"),
            ("http = \"https://127.0.0.1:1/\"", "http://"),
            ("http = \"http://127.0.0.1/\"", "HOST:PORT"),
            ("tcp = \"127.0.0.1\"", "HOST:PORT"),
            ("tcp = \"127.0.0.1:1\"\nfailure_threshold = 0", "nonzero"),
            ("tcp = \"127.0.0.1:1\"\nperiod = \"0s\"", "above 0"),
            ("tcp = \"127.0.0.1:1\"\nperiod = 50", "period"),
            ("tcp = \"127.0.0.1:1\"\nperiod = \"fast\"", "fast"),
            ("tcp = \"127.0.0.1:1\"\nperiod_ms = 50", "period_ms"),
        ];
        for (text, needle) in cases {
            let err = spec(text).expect_err(text).to_string();
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
        }
        let denied = resolve("exec = [\"true\"]")
            .expect_err("deny-all policy")
            .to_string();
        assert!(denied.contains("not granted"), "{denied}");
    }

    #[test]
    fn health_thresholds_ugly() {
        let t = Thresholds {
            failure: 3,
            success: 2,
        };
        let fail = |why: &str| ProbeOutcome::Failed(why.into());
        let mut s = ProbeState::new(true);
        assert!(!s.record(fail("a"), t));
        assert!(!s.record(fail("b"), t));
        assert!(s.passing, "two failures stay below the threshold");
        assert!(s.record(fail("c"), t), "the third turns it");
        assert!(!s.record(fail("d"), t), "turns only once");
        assert!(!s.record(ProbeOutcome::Passed, t));
        assert!(!s.passing, "one success is below the success threshold");
        assert!(!s.record(ProbeOutcome::Passed, t));
        assert!(s.passing);
        assert_eq!((s.runs, s.failures), (6, 4));
    }

    #[test]
    fn health_tcp_http_good() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let mut paths = Vec::new();
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let mut s = stream.expect("accept");
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                paths.push(
                    String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
                let status = if i == 0 {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
            }
            paths
        });
        let url = format!("http = \"http://{addr}/health\"");
        let probe = resolve(&url).expect("probe");
        let manager = ProcessManager::new(Duration::from_secs(1));
        assert!(block_on(probe.run(&manager)).is_ok());
        let second = block_on(probe.run(&manager)).expect_err("503");
        assert!(matches!(second, ProbeFailure::Status(503)), "{second}");
        let paths = server.join().expect("server");
        assert_eq!(paths[0], "GET /health HTTP/1.1");
        let closed = resolve(&format!("tcp = \"{addr}\"")).expect("probe");
        assert!(
            block_on(closed.run(&manager)).is_err(),
            "nothing listens any more"
        );
    }

    #[test]
    fn health_http_probe_silent_ugly() {
        // A server that accepts and never answers: the probe fails at its
        // timeout instead of hanging.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let probe =
            resolve(&format!("http = \"http://{addr}/\"\ntimeout = \"200ms\"")).expect("probe");
        let manager = ProcessManager::new(Duration::from_secs(1));
        let began = std::time::Instant::now();
        let err = block_on(probe.run(&manager)).expect_err("no answer");
        assert!(matches!(err, ProbeFailure::TimedOut { .. }), "{err}");
        assert!(began.elapsed() < Duration::from_secs(10));
        drop(listener);
    }
}
