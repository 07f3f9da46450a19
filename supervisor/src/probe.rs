//! Health probes: exec (exit 0 is healthy), TCP connect, HTTP GET (2xx is
//! healthy), each bounded by its timeout. An exec probe is a process like
//! any other: checked against the daemon policy, started by the spawner in
//! its own group, and at its timeout killed with its group and reaped. The
//! HTTP probe is a hyper client on one connection.
//!
//! The configured form is [`ProbeSpec`] (`probe_spec`); results are
//! counted against thresholds by [`ProbeState`] (`probe_state`).

pub use super::probe_spec::{ProbeCheck, ProbeSpec, ProbeSpecError, Thresholds};
pub use super::probe_state::{ProbeOutcome, ProbeState};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::Admission;
use wasmproc_host::ProcessManager;
use wasmproc_host::os::Scope;
use wasmproc_host::policy::{Approved, CommandRequest, Operation};
use wasmproc_host::process::{Deadline, Spec};

impl ProbeSpec {
    /// Resolves the probe; an exec probe's command must pass the daemon
    /// policy for `run`.
    pub(crate) fn resolve(&self, admission: &Admission) -> Result<Probe, ProbeDenied> {
        let kind = match &self.check {
            ProbeCheck::Exec { program, args } => {
                let approved = admission
                    .approve(
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
    pub source: wasmproc_host::CallError,
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
    Spawn(#[source] wasmproc_host::CallError),
    /// The exec probe ended unhealthy; what it said, if anything.
    #[error("{exit}{}", if .said.is_empty() { String::new() } else { format!(": {}", .said) })]
    Unhealthy {
        /// How it ended.
        exit: wasmproc_host::process::Exit,
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
    /// Exec probes start in `scope` (the daemon's: its confinement).
    pub(crate) async fn run(
        &self,
        manager: &Arc<ProcessManager>,
        scope: &Scope,
    ) -> Result<(), ProbeFailure> {
        match &self.kind {
            ProbeKind::Exec(cmd) => run_exec(cmd, manager, scope, self.timeout).await,
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
    scope: &Scope,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    let spec = Spec::new(cmd, scope)
        .capture(EXEC_OUTPUT_CAP, None)
        .deadline(Deadline::after(timeout));
    let got = manager.output(spec).await.map_err(ProbeFailure::Spawn)?;
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

impl From<Result<(), ProbeFailure>> for ProbeOutcome {
    fn from(result: Result<(), ProbeFailure>) -> Self {
        match result {
            Ok(()) => Self::Passed,
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use wasmproc_host::policy::Policy;

    fn spec(text: &str) -> Result<ProbeSpec, toml::de::Error> {
        toml::from_str(text)
    }

    fn resolve(text: &str) -> Result<Probe, ProbeDenied> {
        spec(text)
            .expect("probe table")
            .resolve(&Admission::for_host(Arc::new(Policy::deny_all())))
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
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        assert!(block_on(probe.run(&manager, manager.host_scope())).is_ok());
        let second = block_on(probe.run(&manager, manager.host_scope())).expect_err("503");
        assert!(matches!(second, ProbeFailure::Status(503)), "{second}");
        let paths = server.join().expect("server");
        assert_eq!(paths[0], "GET /health HTTP/1.1");
        let closed = resolve(&format!("tcp = \"{addr}\"")).expect("probe");
        assert!(
            block_on(closed.run(&manager, manager.host_scope())).is_err(),
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
        let manager = ProcessManager::builder()
            .grace(Duration::from_secs(1))
            .build();
        let began = std::time::Instant::now();
        let err = block_on(probe.run(&manager, manager.host_scope())).expect_err("no answer");
        assert!(matches!(err, ProbeFailure::TimedOut { .. }), "{err}");
        assert!(began.elapsed() < Duration::from_secs(10));
        drop(listener);
    }
}
