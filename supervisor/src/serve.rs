//! `wasmproc serve`: the host as a daemon itself. It runs the declared
//! daemons and plugins of a configuration file, holds its own PID file,
//! registers itself, answers `GET /health`, `GET /ready` and
//! `GET /daemons` on a loopback address (hyper), takes `wasmproc daemon`
//! requests on its control socket, and on SIGTERM or SIGINT stops
//! everything in order and cleans up after itself.
//!
//! [`serve`] returns a typed result; what it has to tell the operator on
//! the way (warnings, the address it serves) goes to a [`Notice`] callback,
//! so the binary decides how to print it.

use crate::config::{ConfigError, HostConfig};
use crate::control;
use crate::http_guard::{BearerToken, HttpGuard, Refusal, TokenError};
use crate::identity::{Liveness, ProcessIdentity};
use crate::pidfile::{PidFile, PidFileError};
use crate::registry_dir::{EntryKind, RegistryDir, RegistryEntry};
use crate::{DaemonCtx, DaemonError, Supervisor, SupervisorOptions, link_daemons};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::audit::now_ms;
use wasmproc_host::policy::Policy;
use wasmproc_host::process::HostEffects;
use wasmproc_host::{Plugin, ProcessManager};

/// Longest a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `serve` could not start (or stop) cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The `/daemons` token file could not be used.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The host's own PID file could not be taken or written.
    #[error("cannot take the host PID file: {0}")]
    PidFile(#[source] PidFileError),
    /// The registry directory could not be opened.
    #[error("cannot open the registry {}: {source}", .path.display())]
    Registry {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another live host of the same name uses the same registry.
    #[error("a host named `{name}` already runs (pid {pid}) with registry {}", .registry.display())]
    AlreadyRunning {
        /// The host name.
        name: String,
        /// Its PID.
        pid: u32,
        /// The registry.
        registry: PathBuf,
    },
    /// An I/O step failed (the message says which).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The supervisor could not be set up.
    #[error(transparent)]
    Supervisor(#[from] DaemonError),
    /// The plugin runtime could not be started.
    #[error("cannot start the runtime: {}", wasmproc_host::error::display_chain(.0))]
    Runtime(wasmproc_host::error::RuntimeError),
    /// The daemon interface could not be linked.
    #[error("cannot start the runtime: {}", wasmproc_host::error::display_chain(.0))]
    Link(wasmproc_host::error::LinkError),
    /// A plugin could not be loaded.
    #[error("plugin `{name}`: {problem}")]
    Plugin {
        /// The plugin.
        name: String,
        /// What is wrong.
        #[source]
        problem: PluginProblem,
    },
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginProblem {
    /// The component did not load.
    #[error("{0}")]
    Load(#[source] wasmproc_host::GuestError),
    /// Its policy file did not load.
    #[error("{0}")]
    Policy(#[source] wasmproc_host::error::PolicyError),
    /// Its manifest is missing (but required) or unreadable.
    #[error("{0}")]
    Manifest(#[source] wasmproc_host::manifest::ManifestError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Something `serve` tells the operator while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A warning (a wide daemon policy, a leftover daemon stopped).
    Warning(String),
    /// Serving on this address, as this PID, with this containment.
    Serving {
        /// The bound address of `/health` and `/ready`.
        addr: SocketAddr,
        /// The host's PID.
        pid: u32,
        /// The active containment, one line.
        containment: String,
    },
    /// Shutting down on this signal.
    Stopping(&'static str),
}

/// Where a plugin is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PluginOutcome {
    /// Still running.
    Running,
    /// Ended with this exit code.
    Exited(i32),
    /// Could not run, and why.
    Failed(String),
}

/// What the HTTP and control handlers share.
#[derive(Debug)]
struct State {
    supervisor: Arc<Supervisor>,
    /// The active containment, one line (reported by `/health`).
    containment: String,
    /// What the kernel confines, one line (reported by `/health`).
    confinement: String,
    plugins: Mutex<Vec<(String, PluginOutcome)>>,
    stopping: AtomicBool,
}

impl State {
    fn health(&self) -> Vec<String> {
        let mut failing = self.supervisor.health_failures();
        for (name, outcome) in self
            .plugins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            match outcome {
                PluginOutcome::Exited(0) | PluginOutcome::Running => {}
                PluginOutcome::Exited(code) => {
                    failing.push(format!("plugin {name}: exited with code {code}"))
                }
                PluginOutcome::Failed(e) => failing.push(format!("plugin {name}: {e}")),
            }
        }
        if self.stopping.load(Ordering::SeqCst) {
            failing.push("host: shutting down".into());
        }
        failing
    }

    fn readiness(&self) -> Vec<String> {
        let mut failing = self.health();
        failing.extend(self.supervisor.readiness_failures());
        failing
    }
}

/// Everything `serve` must undo on the way out.
struct Resources {
    pidfile: Option<PidFile>,
    registry: RegistryDir,
    me: ProcessIdentity,
    name: String,
    socket: PathBuf,
}

impl Resources {
    fn release(self) {
        self.registry
            .unregister(EntryKind::Host, &self.name, &self.me);
        let _ = std::fs::remove_file(&self.socket);
        if let Some(p) = self.pidfile {
            p.release();
        }
    }
}

/// Runs `wasmproc serve --config FILE` until SIGTERM or SIGINT; `notice`
/// hears what the operator should know. Returns after a clean shutdown,
/// or with why the host could not start.
pub fn serve(config_path: &Path, notice: &dyn Fn(Notice)) -> Result<(), ServeError> {
    let mut config = HostConfig::from_file(config_path)?;
    let require = config.serve.require_confinement;
    config.policy = Arc::new((*config.policy).clone().require_confinement(require));
    for w in config.policy.warnings() {
        notice(Notice::Warning(format!("daemon policy: {w}")));
    }
    let token = match &config.serve.token_file {
        Some(path) => Some(BearerToken::from_file(path)?),
        None => None,
    };
    let name = config.serve.name.clone();
    let me = ProcessIdentity::current();
    let pidfile = match &config.serve.pid_file {
        Some(path) => {
            let f = PidFile::acquire(path).map_err(ServeError::PidFile)?;
            f.write(&me).map_err(ServeError::PidFile)?;
            Some(f)
        }
        None => None,
    };
    let registry =
        RegistryDir::open(&config.registry_dir).map_err(|source| ServeError::Registry {
            path: config.registry_dir.clone(),
            source,
        })?;
    let grace = config.serve.shutdown_grace;
    let cleanup = registry.clean_leftovers(grace);
    for d in &cleanup.stopped {
        notice(Notice::Warning(format!(
            "stopped daemon `{d}` left running by a crashed host"
        )));
    }
    let socket = registry.path().join(format!("host.{name}.sock"));
    let resources = Resources {
        pidfile,
        registry: registry.clone(),
        me: me.clone(),
        name: name.clone(),
        socket,
    };
    if let Some(other) = registry.get(EntryKind::Host, &name)
        && other.process != me
        && other.process.liveness() == Liveness::Alive
    {
        // Not ours: leave its socket and entry alone.
        if let Some(p) = resources.pidfile {
            p.release();
        }
        return Err(ServeError::AlreadyRunning {
            name,
            pid: other.process.pid,
            registry: registry.path().to_path_buf(),
        });
    }
    let result = start(config, &resources, grace, token, notice);
    resources.release();
    result
}

/// The plugins of a configuration, loaded with their policies.
type Loaded = Vec<(crate::PluginSpec, Plugin, Arc<Policy>)>;

/// Each distinct component file is compiled once, however many plugins
/// run it.
fn load_plugins(config: &HostConfig, rt: &Runtime<DaemonCtx>) -> Result<Loaded, ServeError> {
    let mut plugins = Vec::new();
    let mut compiled = std::collections::HashMap::new();
    for p in &config.plugins {
        let problem = |problem| ServeError::Plugin {
            name: p.name.clone(),
            problem,
        };
        let component = match compiled.get(&p.component) {
            Some(component) => Plugin::clone(component),
            None => {
                let component = rt
                    .load(&p.component)
                    .map_err(|e| problem(PluginProblem::Load(e)))?;
                compiled.insert(p.component.clone(), component.clone());
                component
            }
        };
        let policy = match &p.policy {
            Some(path) => Policy::from_file(path).map_err(|e| problem(PluginProblem::Policy(e)))?,
            None => Policy::deny_all(),
        };
        let policy = Arc::new(policy.require_confinement(config.serve.require_confinement));
        // Admitted now, so that a plugin its policy refuses stops the host
        // before anything runs; each run is admitted again by the runtime.
        component
            .admit(Arc::clone(&policy), p.require_manifest)
            .map_err(|e| problem(PluginProblem::Manifest(e)))?;
        plugins.push((p.clone(), component, policy));
    }
    Ok(plugins)
}

fn start(
    config: HostConfig,
    res: &Resources,
    grace: Duration,
    token: Option<BearerToken>,
    notice: &dyn Fn(Notice),
) -> Result<(), ServeError> {
    let mut audit = Audit::new();
    if let Some(path) = &config.serve.audit {
        let sink = JsonLinesSink::open(path)
            .map_err(io(format!("cannot open audit file {}", path.display())))?;
        audit = audit.with_sink(Arc::new(sink));
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("cannot start the I/O runtime"))?;
    let listen = config.serve.listen;
    let listener = tokio
        .block_on(TcpListener::bind(listen))
        .map_err(io(format!("cannot listen on {listen}")))?;
    let local = listener.local_addr().map_err(io("listening address"))?;
    let guard = Arc::new(HttpGuard::new(local, token));
    let _ = std::fs::remove_file(&res.socket);
    let control_listener = {
        let _guard = tokio.enter();
        UnixListener::bind(&res.socket)
            .map_err(io(format!("cannot bind {}", res.socket.display())))?
    };
    let manager = ProcessManager::builder()
        .grace(grace)
        .host_effects(HostEffects::ALL)
        .build();
    let supervisor = Supervisor::new(
        &config,
        Arc::clone(&manager),
        SupervisorOptions {
            registry: Some(res.registry.clone()),
            host_name: Some(res.name.clone()),
            audit: audit.clone(),
        },
    )?;
    // Plugins: load every component and policy before anything runs.
    let runtime = if config.plugins.is_empty() {
        None
    } else {
        let mut rt = Runtime::with_data(RuntimeConfig {
            audit: audit.clone(),
            shutdown_grace: grace,
            host_effects: HostEffects::ALL,
            ..RuntimeConfig::default()
        })
        .map_err(ServeError::Runtime)?;
        link_daemons(&mut rt).map_err(ServeError::Link)?;
        Some(Arc::new(rt))
    };
    let plugins = match &runtime {
        Some(rt) => load_plugins(&config, rt)?,
        None => Vec::new(),
    };
    let state = Arc::new(State {
        supervisor: Arc::clone(&supervisor),
        containment: manager.containment().summary(),
        confinement: wasmproc_host::os::confine::support().summary(),
        plugins: Mutex::new(
            plugins
                .iter()
                .map(|(p, ..)| (p.name.clone(), PluginOutcome::Running))
                .collect(),
        ),
        stopping: AtomicBool::new(false),
    });
    res.registry
        .register(&RegistryEntry {
            kind: EntryKind::Host,
            name: res.name.clone(),
            process: res.me.clone(),
            host: res.me.clone(),
            host_name: res.name.clone(),
            health: Some(format!("http://{local}/health")),
            binary: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            started_at_ms: now_ms(),
            control: Some(res.socket.clone()),
        })
        .map_err(io(format!(
            "cannot register in {}",
            res.registry.path().display()
        )))?;
    supervisor.start_all();
    if let Some(rt) = &runtime {
        for (index, (spec, component, policy)) in plugins.into_iter().enumerate() {
            let (rt, state) = (Arc::clone(rt), Arc::clone(&state));
            let daemons = DaemonCtx::new(
                spec.name.clone(),
                Arc::clone(&policy),
                spec.daemons.clone(),
                Arc::clone(&supervisor),
                audit.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("wasmproc-plugin-{}", spec.name))
                .spawn(move || {
                    let outcome = match rt.run_with(
                        &component,
                        GuestOptions {
                            name: spec.name.clone(),
                            args: spec.args.clone(),
                            policy,
                            stdio: GuestStdio::Inherit,
                        },
                        daemons,
                    ) {
                        Ok(o) => PluginOutcome::Exited(o.exit_code),
                        Err(e) => PluginOutcome::Failed(e.to_string()),
                    };
                    state.plugins.lock().unwrap_or_else(|e| e.into_inner())[index].1 = outcome;
                });
            spawned.map_err(io("cannot start a plugin thread"))?;
        }
    }
    notice(Notice::Serving {
        addr: local,
        pid: res.me.pid,
        containment: state.containment.clone(),
    });
    let signal = tokio.block_on(run_until_signal(
        listener,
        control_listener,
        Arc::clone(&state),
        guard,
    ))?;
    notice(Notice::Stopping(signal));
    state.stopping.store(true, Ordering::SeqCst);
    supervisor.shutdown();
    tokio.block_on(async {
        if let Some(rt) = &runtime {
            rt.shutdown().await;
        }
        manager.shutdown().await;
    });
    tokio.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn run_until_signal(
    listener: TcpListener,
    control_listener: UnixListener,
    state: Arc<State>,
    guard: Arc<HttpGuard>,
) -> Result<&'static str, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(http_connection(stream, Arc::clone(&state), Arc::clone(&guard)));
                }
            }
            accepted = control_listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(control_connection(stream, Arc::clone(&state)));
                }
            }
        }
    }
}

async fn control_connection(stream: tokio::net::UnixStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(4096));
    if tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .is_err()
    {
        return;
    }
    let supervisor = Arc::clone(&state.supervisor);
    let answer = tokio::task::spawn_blocking(move || control::handle(&supervisor, line.trim()))
        .await
        .unwrap_or_else(|e| serde_json::json!({"ok": false, "error": e.to_string()}));
    let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
}

/// Serves one HTTP/1 connection (one request at a time; the head must
/// arrive within [`REQUEST_TIMEOUT`]).
async fn http_connection(stream: tokio::net::TcpStream, state: Arc<State>, guard: Arc<HttpGuard>) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let response = match guard.check(req.uri().path(), req.headers(), req.uri().authority()) {
            Ok(()) => route(&req, &state),
            Err(refusal) => refused(&refusal),
        };
        async move { Ok::<_, Infallible>(response) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

fn response(status: StatusCode, kind: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(&format!("{kind}; charset=utf-8")) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The answer to a request the [`HttpGuard`] refused: 400 without a
/// `Host`, 421 for another host's name, 401 without the right token.
fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status = match refusal {
        Refusal::NoHost => StatusCode::BAD_REQUEST,
        Refusal::WrongHost(_) => StatusCode::MISDIRECTED_REQUEST,
        Refusal::NoToken | Refusal::WrongToken => StatusCode::UNAUTHORIZED,
    };
    let mut r = response(status, "text/plain", format!("{refusal}\n"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"wasmproc\""),
        );
    }
    r
}

fn route(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET is served\n".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return r;
    }
    let checks = |failing: Vec<String>, good: &str| {
        if failing.is_empty() {
            (StatusCode::OK, format!("{good}\n"))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                failing.iter().map(|f| format!("{f}\n")).collect(),
            )
        }
    };
    match req.uri().path() {
        "/health" => {
            let (code, mut body) = checks(state.health(), "ok");
            body.push_str(&format!("containment: {}\n", state.containment));
            body.push_str(&format!("confinement: {}\n", state.confinement));
            response(code, "text/plain", body)
        }
        "/ready" => {
            let (code, body) = checks(state.readiness(), "ready");
            response(code, "text/plain", body)
        }
        "/daemons" => response(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&state.supervisor.statuses()).unwrap_or_default(),
        ),
        _ => response(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /health, /ready or /daemons\n".into(),
        ),
    }
}
