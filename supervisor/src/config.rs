//! The host configuration of `wasmproc serve` (TOML): the serve settings,
//! the policy every daemon command and exec probe is checked against, the
//! declared daemons and the plugins.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:8686"          # loopback only: /health and /ready
//! pid_file = "run/wasmproc.pid"      # relative to this file
//! registry_dir = "run/registry"
//! shutdown_grace = "10s"
//! token_file = "daemons.token"       # optional: GET /daemons needs it
//! require_confinement = false        # true: refuse programs the kernel cannot confine
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
//! stop_grace = "5s"
//! ```

use super::backoff::BackoffError;
use super::resolve::{ResolveError, resolve};
use super::spec::DaemonSpec;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmproc_host::Admission;
use wasmproc_host::error::PolicyError;
use wasmproc_host::policy::retired::parse_toml;
use wasmproc_host::policy::{Policy, PolicyBuilder, PolicySpec};

/// The largest output buffer a daemon may have.
const MAX_OUTPUT_BUFFER: u64 = 64 << 20;

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
    /// The declared daemons it may observe or control (none by default).
    #[serde(default)]
    pub daemons: crate::access::DaemonAccess,
}

/// The `[serve]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSpec {
    /// Host name in the registry. Default `wasmproc`.
    pub name: String,
    /// Loopback address of `/health`, `/ready` and `/daemons`. Default
    /// `127.0.0.1:8686`; port 0 picks a free port (the registry entry shows
    /// which).
    pub listen: SocketAddr,
    /// The host's own PID file.
    pub pid_file: Option<PathBuf>,
    /// The registry directory. Default: see [`default_registry_dir`].
    pub registry_dir: Option<PathBuf>,
    /// Time to stop daemons and processes at shutdown. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Write audit events as JSON lines to this file.
    pub audit: Option<PathBuf>,
    /// A file holding the bearer token `GET /daemons` requires (mode 0600
    /// or tighter). Absent: `/daemons` needs no token.
    pub token_file: Option<PathBuf>,
    /// Refuse to start any program (a daemon's, a probe's, a plugin's) the
    /// kernel cannot confine as its grant says, whatever the policies say.
    pub require_confinement: bool,
}

impl Default for ServeSpec {
    fn default() -> Self {
        Self {
            name: "wasmproc".into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8686)),
            pid_file: None,
            registry_dir: None,
            shutdown_grace: Duration::from_secs(10),
            audit: None,
            token_file: None,
            require_confinement: false,
        }
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
    /// Serve settings (paths absolute, `registry_dir` filled in).
    pub serve: ServeSpec,
    /// The registry directory.
    pub registry_dir: PathBuf,
    /// The policy daemons and probes are checked against.
    pub policy: Arc<Policy>,
    /// Declared daemons (PID file paths absolute).
    pub daemons: Vec<DaemonSpec>,
    /// Plugins (paths absolute).
    pub plugins: Vec<PluginSpec>,
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", .path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    #[source]
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration; each message quotes the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// Not valid TOML for the schema, or a retired `*_ms` time in
    /// `[policy.limits]` (the message quotes the line).
    #[error("{0}")]
    Syntax(#[source] toml::de::Error),
    /// Both `[policy]` and `policy_file`.
    #[error("give `[policy]` or `policy_file`, not both")]
    TwoPolicies,
    /// The daemon policy sets cgroup limits, which are each daemon's own.
    #[error(
        "the daemon policy's [limits.cgroup] is not read: each daemon's cgroup limits are its own, \
         in its [[daemon]] table: `cgroup = {{ pids_max = 64, memory_max = 268435456, cpu_max = \"50000 100000\" }}`"
    )]
    CgroupInPolicy,
    /// The daemon policy is invalid.
    #[error("daemon policy: {0}")]
    Policy(#[source] PolicyError),
    /// `listen` is not loopback.
    #[error(
        "[serve] listen = `{0}` is not a loopback address; /health and /ready are served on loopback only"
    )]
    NotLoopback(SocketAddr),
    /// No `registry_dir` and no default location.
    #[error(transparent)]
    NoRegistryDir(#[from] NoRegistryDir),
    /// `[serve] name` is not a valid name.
    #[error("[serve] name = `{0}` must be letters, digits, `-`, `_`, `.`")]
    HostName(String),
    /// A time that would overflow clock arithmetic.
    #[error("{at}: {field} = {} is above ten years", humantime::format_duration(*.value))]
    TooLong {
        /// The table.
        at: String,
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A `[[plugin]]` table grants access to a daemon no `[[daemon]]`
    /// declares.
    #[error(
        "[[plugin]] `{plugin}`: daemons: `{daemon}` is not a declared daemon (declared: {declared})"
    )]
    UnknownDaemon {
        /// The plugin's name.
        plugin: String,
        /// The name it grants.
        daemon: String,
        /// The declared names, or `none`.
        declared: String,
    },
    /// A `[[daemon]]` table is wrong.
    #[error("[[daemon]] `{name}`: {problem}")]
    Daemon {
        /// The daemon's name as written.
        name: String,
        /// What is wrong.
        #[source]
        problem: DaemonProblem,
    },
}

/// What is wrong with one `[[daemon]]` table.
#[derive(Debug, thiserror::Error)]
pub enum DaemonProblem {
    /// The name is not 1-64 letters, digits, `-`, `_`, `.`.
    #[error("the name must be 1-64 letters, digits, `-`, `_`, `.`")]
    Name,
    /// Two tables with one name.
    #[error("declared twice")]
    Twice,
    /// The backoff table is inconsistent.
    #[error("{0}")]
    Backoff(#[source] BackoffError),
    /// A `cgroup` limit is malformed or its controller is missing.
    #[error("{0}")]
    Cgroup(#[source] Box<wasmproc_host::policy::InvalidCgroupLimit>),
    /// `output_buffer_bytes` out of range.
    #[error("output_buffer_bytes = {0} is outside 1..={MAX_OUTPUT_BUFFER}")]
    OutputBuffer(u64),
    /// The policy refuses its command or a probe.
    #[error("{0}")]
    Policy(#[source] ResolveError),
}

/// No registry directory can be chosen: none is configured and neither a
/// runtime nor a home directory is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no registry directory: set WASMPROC_REGISTRY (or XDG_RUNTIME_DIR, or HOME) to a directory of your own, or give `registry_dir` in the configuration or `--registry`"
)]
pub struct NoRegistryDir;

/// The registry directory used when the configuration names none:
/// `$WASMPROC_REGISTRY`, else `$XDG_RUNTIME_DIR/wasmproc`, else
/// `$XDG_STATE_HOME/wasmproc/registry`, else
/// `~/.local/state/wasmproc/registry` (the home from `$HOME`, else from the
/// user database). Each lies in a directory only this user can create in,
/// so no other user can create it first; a shared directory such as
/// `/tmp` is never used.
pub fn default_registry_dir() -> Result<PathBuf, NoRegistryDir> {
    registry_dir_from(
        |name| std::env::var_os(name),
        || {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        },
    )
}

/// [`default_registry_dir`] with the environment and the user database
/// given. Relative `XDG_*` and `HOME` values are ignored, as the XDG base
/// directory specification asks.
fn registry_dir_from(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    home_of_user: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, NoRegistryDir> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let absolute = |name: &str| var(name).filter(|p| p.is_absolute());
    if let Some(d) = var("WASMPROC_REGISTRY") {
        return Ok(d);
    }
    if let Some(d) = absolute("XDG_RUNTIME_DIR") {
        return Ok(d.join("wasmproc"));
    }
    if let Some(d) = absolute("XDG_STATE_HOME") {
        return Ok(d.join("wasmproc").join("registry"));
    }
    absolute("HOME")
        .or_else(|| home_of_user().filter(|p| p.is_absolute() && p != Path::new("/")))
        .map(|home| home.join(".local/state/wasmproc/registry"))
        .ok_or(NoRegistryDir)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Refuses times above [`Deadline::MAX_AHEAD`](wasmproc_host::process::Deadline::MAX_AHEAD), which
/// would overflow clock arithmetic; the error names the field.
fn check_times(at: &str, fields: &[(&'static str, Duration)]) -> Result<(), ConfigProblem> {
    let max = wasmproc_host::process::Deadline::MAX_AHEAD;
    match fields.iter().find(|(_, d)| *d > max) {
        Some(&(field, value)) => Err(ConfigProblem::TooLong {
            at: at.to_string(),
            field,
            value,
        }),
        None => Ok(()),
    }
}

/// Checks one daemon table (the parts that do not need the policy).
fn check_daemon(d: &DaemonSpec) -> Result<(), ConfigProblem> {
    let problem = |problem| ConfigProblem::Daemon {
        name: d.name.clone(),
        problem,
    };
    if !valid_name(&d.name) {
        return Err(problem(DaemonProblem::Name));
    }
    d.backoff
        .validate()
        .map_err(|e| problem(DaemonProblem::Backoff(e)))?;
    check_times(
        &format!("[[daemon]] `{}`", d.name),
        &[
            ("stop_grace", d.stop_grace),
            ("backoff.initial", d.backoff.initial),
            ("backoff.max", d.backoff.max),
            ("backoff.reset_after", d.backoff.reset_after),
            ("start_limit.interval", d.start_limit.interval),
        ],
    )?;
    if d.output_buffer_bytes == 0 || d.output_buffer_bytes > MAX_OUTPUT_BUFFER {
        return Err(problem(DaemonProblem::OutputBuffer(d.output_buffer_bytes)));
    }
    d.cgroup
        .validate()
        .map_err(|e| problem(DaemonProblem::Cgroup(Box::new(e))))?;
    Ok(())
}

impl HostConfig {
    /// Loads a configuration file; relative paths are taken relative to it.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let error = |problem| ConfigError {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(ConfigProblem::Read(e)))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        Self::parse(&text, &base).map_err(error)
    }

    /// Parses configuration text; relative paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigProblem> {
        let spec: HostConfigSpec = parse_toml(text, &["policy"]).map_err(ConfigProblem::Syntax)?;
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        // Checked before the policy is built, which would first refuse a
        // limit whose controller this host lacks.
        if spec
            .policy
            .as_ref()
            .is_some_and(|p| !p.limits.cgroup.is_empty())
        {
            return Err(ConfigProblem::CgroupInPolicy);
        }
        let policy = match (spec.policy, &spec.policy_file) {
            (Some(_), Some(_)) => return Err(ConfigProblem::TwoPolicies),
            (Some(inline), None) => PolicyBuilder::from_spec(inline).base_dir(base).build(),
            (None, Some(file)) => Policy::from_file(&abs(file)),
            (None, None) => Ok(Policy::deny_all()),
        }
        .map_err(ConfigProblem::Policy)?;
        if !policy.limits().cgroup.is_empty() {
            return Err(ConfigProblem::CgroupInPolicy);
        }
        let mut serve = spec.serve;
        if !serve.listen.ip().is_loopback() {
            return Err(ConfigProblem::NotLoopback(serve.listen));
        }
        if !valid_name(&serve.name) {
            return Err(ConfigProblem::HostName(serve.name));
        }
        check_times("[serve]", &[("shutdown_grace", serve.shutdown_grace)])?;
        serve.pid_file = serve.pid_file.as_deref().map(abs);
        serve.audit = serve.audit.as_deref().map(abs);
        serve.token_file = serve.token_file.as_deref().map(abs);
        let registry_dir = match serve.registry_dir.as_deref() {
            Some(dir) => abs(dir),
            None => default_registry_dir()?,
        };
        serve.registry_dir = Some(registry_dir.clone());
        let mut daemons = spec.daemons;
        let mut seen = std::collections::HashSet::new();
        let admission = Admission::for_host(Arc::new(policy.clone()));
        for d in &mut daemons {
            check_daemon(d)?;
            if !seen.insert(d.name.clone()) {
                return Err(ConfigProblem::Daemon {
                    name: d.name.clone(),
                    problem: DaemonProblem::Twice,
                });
            }
            d.pid_file = d.pid_file.as_deref().map(abs);
            // Every daemon command and probe must pass the policy now, so a
            // host never starts half-configured.
            resolve(d, &admission).map_err(|e| ConfigProblem::Daemon {
                name: d.name.clone(),
                problem: DaemonProblem::Policy(e),
            })?;
        }
        let mut plugins = spec.plugins;
        for p in &mut plugins {
            p.component = abs(&p.component);
            p.policy = p.policy.as_deref().map(abs);
            let granted = p.daemons.observe.iter().chain(&p.daemons.control);
            if let Some(unknown) = granted.into_iter().find(|name| !seen.contains(*name)) {
                let mut declared: Vec<&str> = daemons.iter().map(|d| d.name.as_str()).collect();
                declared.sort_unstable();
                return Err(ConfigProblem::UnknownDaemon {
                    plugin: p.name.clone(),
                    daemon: unknown.clone(),
                    declared: if declared.is_empty() {
                        "none".into()
                    } else {
                        declared.join(", ")
                    },
                });
            }
        }
        Ok(Self {
            serve,
            registry_dir,
            policy: Arc::new(policy),
            daemons,
            plugins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RestartPolicy;

    #[test]
    fn config_daemon_cgroup_bad() {
        // A daemon's cgroup limits are its own: checked when the
        // configuration loads, the error naming the daemon and the field as
        // written; the daemon policy's [limits.cgroup] is refused, saying
        // where they go.
        let daemon = |cgroup: &str| {
            format!(
                "[policy]\n[[policy.program]]\nname = \"sleep\"\n\n\
                 [[daemon]]\nname = \"w\"\nprogram = \"sleep\"\nargs = [\"9\"]\n{cgroup}\n"
            )
        };
        let base = Path::new("/etc/wasmproc");
        let err = |cgroup: &str| {
            HostConfig::parse(&daemon(cgroup), base)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("cgroup = { memory_max = 0 }"),
            "[[daemon]] `w`: `cgroup.memory_max = \"0\"`: must be greater than 0"
        );
        assert_eq!(
            err("cgroup = { cpu_max = \"50 100000\" }"),
            "[[daemon]] `w`: `cgroup.cpu_max = \"50 100000\"`: the quota must be at least 1000 µs"
        );
        assert!(err("cgroup = { pids = 1 }").contains("unknown field `pids`"));
        let pids = HostConfig::parse(&daemon("cgroup = { pids_max = 64 }"), base);
        let has_pids = matches!(
            wasmproc_host::os::Containment::detect(),
            wasmproc_host::os::Containment::Cgroup { controllers, .. }
                if controllers.iter().any(|c| c == "pids")
        );
        if has_pids {
            let c = pids.expect("the pids controller is there");
            assert_eq!(c.daemons[0].cgroup.limits().guest_pids_max, Some(64));
        } else {
            let err = pids.unwrap_err().to_string();
            assert!(
                err.starts_with("[[daemon]] `w`: `cgroup.pids_max` cannot be applied: "),
                "refused where the controller is missing: {err}"
            );
        }
        let in_policy = "[policy.limits.cgroup]\nguest_pids_max = 64\n";
        let err = HostConfig::parse(in_policy, base).unwrap_err().to_string();
        assert!(
            err.starts_with("the daemon policy's [limits.cgroup] is not read")
                && err.contains("[[daemon]] table: `cgroup = {"),
            "{err}"
        );
    }

    #[test]
    fn config_plugin_daemon_access_bad() {
        // A plugin's grants name declared daemons, or the configuration is
        // refused when it loads, naming the plugin, the name and the
        // daemons there are.
        let daemons = "[policy]\n[[policy.program]]\nname = \"sleep\"\n\n\
                       [[daemon]]\nname = \"web\"\nprogram = \"sleep\"\nargs = [\"9\"]\n\n\
                       [[daemon]]\nname = \"db\"\nprogram = \"sleep\"\nargs = [\"9\"]\n";
        let plugin = |grants: &str| {
            format!("{daemons}\n[[plugin]]\nname = \"p\"\ncomponent = \"p.wasm\"\n{grants}\n")
        };
        let base = Path::new("/etc/wasmproc");
        let c = HostConfig::parse(
            &plugin("daemons = { observe = [\"web\"], control = [\"db\"] }"),
            base,
        )
        .expect("declared names");
        assert!(c.plugins[0].daemons.can_observe("web"));
        assert!(c.plugins[0].daemons.can_control("db"));
        assert!(
            !c.plugins[0].daemons.can_control("web"),
            "observe is not control"
        );
        let c = HostConfig::parse(&plugin(""), base).expect("no grants");
        assert_eq!(c.plugins[0].daemons, crate::DaemonAccess::default());
        let err =
            HostConfig::parse(&plugin("daemons = { control = [\"wbe\"] }"), base).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[[plugin]] `p`: daemons: `wbe` is not a declared daemon (declared: db, web)"
        );
        let err = HostConfig::parse(
            "[[plugin]]\nname = \"p\"\ncomponent = \"p.wasm\"\ndaemons = { observe = [\"x\"] }\n",
            base,
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("(declared: none)"), "{err}");
    }

    #[test]
    fn config_deploy_sample_good() {
        // The configuration shipped for the systemd unit loads, and writes
        // only below the unit's own directories.
        let text = include_str!("../../deploy/wasmproc.toml");
        let c = HostConfig::parse(text, Path::new("/etc/wasmproc")).expect("deploy/wasmproc.toml");
        assert_eq!(c.registry_dir, Path::new("/run/wasmproc/registry"));
        for path in [c.serve.pid_file.as_deref(), c.serve.audit.as_deref()] {
            let path = path.expect("set");
            assert!(
                path.starts_with("/run/wasmproc") || path.starts_with("/var/log/wasmproc"),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn registry_default_dir_good() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let no_user = || None;
        let all = env(&[
            ("WASMPROC_REGISTRY", "/r"),
            ("XDG_RUNTIME_DIR", "/run/user/7"),
            ("XDG_STATE_HOME", "/s"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(registry_dir_from(all, no_user), Ok("/r".into()));
        let runtime = env(&[("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/home/u")]);
        assert_eq!(
            registry_dir_from(runtime, no_user),
            Ok("/run/user/7/wasmproc".into())
        );
        // Without a runtime directory: the user's state directory, never a
        // shared one that another user could create first.
        let state = env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/home/u")]);
        assert_eq!(
            registry_dir_from(state, no_user),
            Ok("/s/wasmproc/registry".into())
        );
        let home = env(&[("HOME", "/home/u"), ("XDG_RUNTIME_DIR", "")]);
        assert_eq!(
            registry_dir_from(home, no_user),
            Ok("/home/u/.local/state/wasmproc/registry".into())
        );
        let from_passwd = registry_dir_from(env(&[]), || Some("/home/p".into()));
        assert_eq!(
            from_passwd,
            Ok("/home/p/.local/state/wasmproc/registry".into())
        );
    }

    #[test]
    fn registry_default_dir_bad() {
        // Relative values are ignored; with no usable home the error names
        // the variables to set and suggests removing nothing.
        let relative = |name: &str| match name {
            "XDG_RUNTIME_DIR" | "XDG_STATE_HOME" | "HOME" => Some("rel/dir".into()),
            _ => None,
        };
        let err = registry_dir_from(relative, || Some("/".into())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("WASMPROC_REGISTRY"), "{text}");
        assert!(text.contains("registry_dir"), "{text}");
        assert!(
            !text.contains("remove") && !text.contains("delete"),
            "{text}"
        );
        for dir in [
            registry_dir_from(|_| None, || Some("/home/x".into())),
            default_registry_dir(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!dir.starts_with("/tmp"), "{}", dir.display());
        }
    }

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
        period = "100ms"
        [daemon.backoff]
        initial = "10ms"
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
        assert_eq!(d.stop_signal, wasmproc_host::process::Signal::Int);
        assert_eq!(d.stop_grace, Duration::from_secs(5));
        assert_eq!(d.backoff.initial, Duration::from_millis(10));
        assert_eq!(
            d.backoff.max,
            Duration::from_secs(30),
            "unset fields keep defaults"
        );
        let probe = d.liveness.as_ref().expect("liveness");
        assert_eq!(probe.period, Duration::from_millis(100));
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
            (
                GOOD.replace("SIGINT", "SIGSEGV"),
                "unknown signal `SIGSEGV`",
            ),
            (
                GOOD.replace("restart = \"always\"", "restart = \"sometimes\""),
                "restart",
            ),
            (
                GOOD.replace("initial = \"10ms\"", "initial = \"10ms\"\nfactor = 0.5"),
                "factor",
            ),
            (
                format!("{GOOD}\n[[daemon]]\nname = \"worker\"\nprogram = \"sleep\""),
                "twice",
            ),
            (GOOD.replace("[serve]", "[serve]\nbogus = 1"), "bogus"),
            (
                GOOD.replace("[serve]", "[serve]\nshutdown_grace = \"20years\""),
                "shutdown_grace",
            ),
            (
                GOOD.replace(
                    "initial = \"10ms\"",
                    "initial = \"10ms\"\nmax = \"20years\"",
                ),
                "backoff.max",
            ),
            (
                GOOD.replace("[serve]", "[serve]\nshutdown_grace_ms = 3000"),
                "shutdown_grace_ms",
            ),
            (
                format!("{GOOD}\n[policy.limits]\nkill_grace_ms = 500"),
                "line 27: `kill_grace_ms = 500`: durations are written with a unit now: \
                 use `kill_grace = \"500ms\"`",
            ),
            (
                GOOD.replace("period = \"100ms\"", "period = \"soon\""),
                "soon",
            ),
            (GOOD.replace("127.0.0.1:0", "localhost"), "listen"),
        ];
        for (text, needle) in cases {
            let err = HostConfig::parse(&text, Path::new("/"))
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
        }
    }

    #[test]
    fn daemon_config_example_good() {
        // The configuration the README shows loads as written.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve");
        let c = HostConfig::from_file(&dir.join("wasmproc.toml")).expect("example config");
        let names: Vec<_> = c.daemons.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["web", "worker"]);
        assert_eq!(c.serve.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.daemons[0].start_limit.interval, Duration::from_secs(60));
    }

    #[test]
    fn daemon_config_ugly() {
        // Nothing declared: a valid, empty host with a deny-all policy.
        let c = HostConfig::parse("", Path::new("/")).expect("empty config");
        assert!(c.daemons.is_empty() && c.plugins.is_empty());
        assert!(c.serve.listen.ip().is_loopback());
        let d = ServeSpec::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:8686");
        assert_eq!(d.shutdown_grace, Duration::from_secs(10));
        assert!(c.policy.programs().is_empty());
    }
}
