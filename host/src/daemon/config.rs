//! The host configuration of `wasmproc serve` (TOML): the serve settings,
//! the policy every daemon command and exec probe is checked against, the
//! declared daemons and the plugins.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:8686"          # loopback only: /health and /ready
//! pid_file = "run/wasmproc.pid"      # relative to this file
//! registry_dir = "run/registry"
//!
//! [policy]                           # same format as a policy file
//! [[policy.program]]
//! name = "sleep"
//!
//! [[daemon]]
//! name = "worker"
//! program = "sleep"
//! args = ["3600"]
//! restart = "always"
//! ```

use super::backoff::{BackoffSpec, StartLimitSpec};
use super::probe::ProbeSpec;
use crate::policy::{Policy, PolicyBuilder, PolicySpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// When a daemon that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never.
    Never,
    /// When it exits non-zero, is killed by a signal it was not sent by the
    /// host, or fails its liveness probe.
    #[default]
    OnFailure,
    /// Whenever it ends, unless it was stopped.
    Always,
}

/// One `[[daemon]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSpec {
    /// Unique name: letters, digits, `-`, `_`, `.`; at most 64 bytes.
    pub name: String,
    /// Program, as the policy grants it.
    pub program: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables to set (each must be allowed by `[policy.env]`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (under a `[policy.dirs]` root).
    pub cwd: Option<String>,
    /// Restart policy. Default `on-failure`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Restart delays.
    #[serde(default)]
    pub backoff: BackoffSpec,
    /// Start limit.
    #[serde(default)]
    pub start_limit: StartLimitSpec,
    /// Liveness probe: failing it restarts the daemon.
    pub liveness: Option<ProbeSpec>,
    /// Readiness probe: failing it only marks the daemon not ready.
    pub readiness: Option<ProbeSpec>,
    /// PID file (relative to the configuration file).
    pub pid_file: Option<PathBuf>,
    /// Ring buffer per output stream, in bytes. Default 64 KiB.
    #[serde(default = "default_output_buffer")]
    pub output_buffer_bytes: u64,
    /// Signal that asks it to stop: `TERM`, `INT`, `HUP`, `QUIT`, `USR1`,
    /// `USR2` (with or without `SIG`). Default `TERM`.
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    /// Time between the stop signal and SIGKILL, in ms. Default 5 000.
    #[serde(default = "default_grace")]
    pub stop_grace_ms: u64,
    /// Whether `serve` starts it. Default true.
    #[serde(default = "yes")]
    pub autostart: bool,
}

fn default_output_buffer() -> u64 {
    64 << 10
}
fn default_stop_signal() -> String {
    "TERM".into()
}
fn default_grace() -> u64 {
    5_000
}
fn yes() -> bool {
    true
}

/// The largest output buffer a daemon may have.
const MAX_OUTPUT_BUFFER: u64 = 64 << 20;

impl DaemonSpec {
    /// The stop signal's number.
    pub fn stop_signal_number(&self) -> Result<i32, String> {
        signal_number(&self.stop_signal)
    }
}

/// The number of a stop signal given by name.
pub fn signal_number(name: &str) -> Result<i32, String> {
    let short = name.trim().to_ascii_uppercase();
    let short = short.strip_prefix("SIG").unwrap_or(&short);
    Ok(match short {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => libc::SIGKILL,
        _ => {
            return Err(format!(
                "`{name}` is not a stop signal (TERM, INT, HUP, QUIT, USR1, USR2, KILL)"
            ));
        }
    })
}

/// Refuses times above [`MAX_MILLIS`](crate::limits::MAX_MILLIS), which
/// would overflow clock arithmetic; the error names the field.
fn check_millis(at: &str, fields: &[(&str, u64)]) -> Result<(), String> {
    match fields
        .iter()
        .find(|(_, ms)| *ms > crate::limits::MAX_MILLIS)
    {
        Some((name, ms)) => Err(format!(
            "{at}: {name} = {ms} is above {} ms (ten years)",
            crate::limits::MAX_MILLIS
        )),
        None => Ok(()),
    }
}

/// One `[[plugin]]` table: a command component `serve` runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Name for audit records.
    pub name: String,
    /// The component (relative to the configuration file).
    pub component: PathBuf,
    /// Its policy file (relative to the configuration file); absent grants
    /// nothing.
    pub policy: Option<PathBuf>,
    /// Arguments after `argv[0]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Refuse to run the plugin unless it carries a manifest (also set by
    /// `require_manifest` in its policy).
    #[serde(default)]
    pub require_manifest: bool,
}

/// The `[serve]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSpec {
    /// Host name in the registry. Default `wasmproc`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Loopback address of `/health` and `/ready`. Default `127.0.0.1:8686`;
    /// port 0 picks a free port (the registry entry shows which).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The host's own PID file.
    pub pid_file: Option<PathBuf>,
    /// The registry directory. Default `$WASMPROC_REGISTRY`,
    /// `$XDG_RUNTIME_DIR/wasmproc`, or `/tmp/wasmproc-<uid>`.
    pub registry_dir: Option<PathBuf>,
    /// Time to stop daemons and processes at shutdown, in ms. Default 10 000.
    #[serde(default = "default_shutdown")]
    pub shutdown_grace_ms: u64,
    /// Write audit events as JSON lines to this file.
    pub audit: Option<PathBuf>,
}

fn default_name() -> String {
    "wasmproc".into()
}
fn default_listen() -> String {
    "127.0.0.1:8686".into()
}
fn default_shutdown() -> u64 {
    10_000
}

impl Default for ServeSpec {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// The whole file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfigSpec {
    /// `[serve]`.
    #[serde(default)]
    pub serve: ServeSpec,
    /// `[policy]`: grants for daemon commands and exec probes.
    #[serde(default)]
    pub policy: Option<PolicySpec>,
    /// A policy file instead of `[policy]`.
    pub policy_file: Option<PathBuf>,
    /// `[[daemon]]` tables.
    #[serde(default, rename = "daemon")]
    pub daemons: Vec<DaemonSpec>,
    /// `[[plugin]]` tables.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginSpec>,
}

/// A loaded configuration: paths made absolute, the daemon policy built,
/// every daemon checked.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Serve settings (paths absolute).
    pub serve: ServeSpec,
    /// The parsed listen address (loopback).
    pub listen: SocketAddr,
    /// The registry directory.
    pub registry_dir: PathBuf,
    /// The policy daemons and probes are checked against.
    pub policy: Arc<Policy>,
    /// Declared daemons (PID file paths absolute).
    pub daemons: Vec<DaemonSpec>,
    /// Plugins (paths absolute).
    pub plugins: Vec<PluginSpec>,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file (or `<inline>`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The registry directory used when the configuration names none.
pub fn default_registry_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WASMPROC_REGISTRY").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("wasmproc");
    }
    // SAFETY: getuid cannot fail.
    PathBuf::from(format!("/tmp/wasmproc-{}", unsafe { libc::getuid() }))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl HostConfig {
    /// Loads a configuration file; relative paths are taken relative to it.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        Self::parse(&text, &base).map_err(|message| ConfigError {
            path: shown,
            message,
        })
    }

    /// Parses configuration text; relative paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let spec: HostConfigSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let policy = match (spec.policy, &spec.policy_file) {
            (Some(_), Some(_)) => return Err("give `[policy]` or `policy_file`, not both".into()),
            (Some(inline), None) => PolicyBuilder::from_spec(inline).base_dir(base).build(),
            (None, Some(file)) => Policy::from_file(&abs(file)),
            (None, None) => Ok(Policy::deny_all()),
        }
        .map_err(|e| format!("daemon policy: {e}"))?;
        let listen: SocketAddr = spec
            .serve
            .listen
            .parse()
            .map_err(|_| format!("[serve] listen = `{}` is not IP:PORT", spec.serve.listen))?;
        if !listen.ip().is_loopback() {
            return Err(format!(
                "[serve] listen = `{listen}` is not a loopback address; /health and /ready are served on loopback only"
            ));
        }
        if !valid_name(&spec.serve.name) {
            return Err(format!(
                "[serve] name = `{}` must be letters, digits, `-`, `_`, `.`",
                spec.serve.name
            ));
        }
        check_millis(
            "[serve]",
            &[("shutdown_grace_ms", spec.serve.shutdown_grace_ms)],
        )?;
        let mut serve = spec.serve;
        serve.pid_file = serve.pid_file.as_deref().map(abs);
        serve.audit = serve.audit.as_deref().map(abs);
        let registry_dir = serve
            .registry_dir
            .as_deref()
            .map(abs)
            .unwrap_or_else(default_registry_dir);
        serve.registry_dir = Some(registry_dir.clone());
        let mut daemons = spec.daemons;
        let mut seen = std::collections::HashSet::new();
        for d in &mut daemons {
            let at = format!("[[daemon]] `{}`", d.name);
            if !valid_name(&d.name) {
                return Err(format!(
                    "{at}: the name must be 1-64 letters, digits, `-`, `_`, `.`"
                ));
            }
            if !seen.insert(d.name.clone()) {
                return Err(format!("{at}: declared twice"));
            }
            d.pid_file = d.pid_file.as_deref().map(abs);
            d.backoff.validate().map_err(|e| format!("{at}: {e}"))?;
            check_millis(
                &at,
                &[
                    ("stop_grace_ms", d.stop_grace_ms),
                    ("backoff.initial_ms", d.backoff.initial_ms),
                    ("backoff.max_ms", d.backoff.max_ms),
                    ("backoff.reset_after_ms", d.backoff.reset_after_ms),
                    ("start_limit.interval_ms", d.start_limit.interval_ms),
                ],
            )?;
            d.stop_signal_number().map_err(|e| format!("{at}: {e}"))?;
            if d.output_buffer_bytes == 0 || d.output_buffer_bytes > MAX_OUTPUT_BUFFER {
                return Err(format!(
                    "{at}: output_buffer_bytes = {} is outside 1..={MAX_OUTPUT_BUFFER}",
                    d.output_buffer_bytes
                ));
            }
        }
        let mut plugins = spec.plugins;
        for p in &mut plugins {
            p.component = abs(&p.component);
            p.policy = p.policy.as_deref().map(abs);
        }
        let config = Self {
            serve,
            listen,
            registry_dir,
            policy: Arc::new(policy),
            daemons,
            plugins,
        };
        // Every daemon command and probe must pass the policy now, so a
        // host never starts half-configured.
        for d in &config.daemons {
            super::supervisor::resolve(d, &config.policy)
                .map_err(|e| format!("[[daemon]] `{}`: {e}", d.name))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [serve]
        listen = "127.0.0.1:0"
        pid_file = "run/host.pid"
        registry_dir = "run/reg"

        [[policy.program]]
        name = "sleep"
        [[policy.program]]
        name = "true"
        operations = ["run"]

        [[daemon]]
        name = "worker"
        program = "sleep"
        args = ["60"]
        restart = "always"
        pid_file = "run/worker.pid"
        stop_signal = "SIGINT"
        [daemon.liveness]
        exec = ["true"]
        period_ms = 100
        [daemon.backoff]
        initial_ms = 10
    "#;

    #[test]
    fn daemon_config_good() {
        let c = HostConfig::parse(GOOD, Path::new("/etc/wp")).expect("config");
        assert_eq!(c.registry_dir, Path::new("/etc/wp/run/reg"));
        assert_eq!(
            c.serve.pid_file.as_deref(),
            Some(Path::new("/etc/wp/run/host.pid"))
        );
        let d = &c.daemons[0];
        assert_eq!(d.restart, RestartPolicy::Always);
        assert_eq!(
            d.pid_file.as_deref(),
            Some(Path::new("/etc/wp/run/worker.pid"))
        );
        assert_eq!(d.stop_signal_number(), Ok(libc::SIGINT));
        assert_eq!(d.backoff.initial_ms, 10);
        assert_eq!(d.backoff.max_ms, 30_000, "unset fields keep defaults");
    }

    #[test]
    fn daemon_config_bad() {
        let cases = [
            (GOOD.replace("127.0.0.1:0", "0.0.0.0:80"), "loopback"),
            (GOOD.replace("name = \"worker\"", "name = \"../x\""), "name"),
            (
                GOOD.replace("program = \"sleep\"", "program = \"rm\""),
                "not granted",
            ),
            (
                GOOD.replace("program = \"sleep\"", "program = \"true\""),
                "start",
            ),
            (GOOD.replace("SIGINT", "SIGSEGV"), "stop signal"),
            (
                GOOD.replace("restart = \"always\"", "restart = \"sometimes\""),
                "restart",
            ),
            (
                GOOD.replace("initial_ms = 10", "initial_ms = 10\nfactor = 0.5"),
                "factor",
            ),
            (
                format!("{GOOD}\n[[daemon]]\nname = \"worker\"\nprogram = \"sleep\""),
                "twice",
            ),
            (GOOD.replace("[serve]", "[serve]\nbogus = 1"), "bogus"),
            (
                GOOD.replace(
                    "[serve]",
                    "[serve]\nshutdown_grace_ms = 18446744073709551615",
                ),
                "shutdown_grace_ms",
            ),
            (
                GOOD.replace(
                    "initial_ms = 10",
                    "initial_ms = 10\nmax_ms = 18446744073709551615",
                ),
                "backoff.max_ms",
            ),
        ];
        for (text, needle) in cases {
            let err = HostConfig::parse(&text, Path::new("/")).expect_err(needle);
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
        }
    }

    #[test]
    fn daemon_config_ugly() {
        // Nothing declared: a valid, empty host with a deny-all policy.
        let c = HostConfig::parse("", Path::new("/")).expect("empty config");
        assert!(c.daemons.is_empty() && c.plugins.is_empty());
        assert!(c.listen.ip().is_loopback());
        assert!(c.policy.programs().is_empty());
    }
}
