//! A health probe as configured (`[daemon.liveness]`,
//! `[daemon.readiness]`): exactly one of `exec`, `tcp` or `http`, with its
//! period, timeout, thresholds and initial delay. The parsed [`ProbeSpec`]
//! cannot hold anything else, nor a zero period, timeout or threshold; what
//! the policy says of an exec probe is checked when it is resolved.

use serde::Deserialize;
use std::num::NonZeroU32;
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
        let max = wasmproc_host::lifecycle::MAX_TIME;
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
}
