//! `wasmproc serve`: the host as a daemon itself. It runs the declared
//! daemons and plugins of a configuration file, holds its own PID file,
//! registers itself, answers `GET /health` and `GET /ready` on a loopback
//! address, takes `wasmproc daemon` requests on its control socket, and on
//! SIGTERM or SIGINT stops everything in order and cleans up after itself.

use crate::audit::{Audit, JsonLinesSink, now_ms};
use crate::daemon::config::HostConfig;
use crate::daemon::control;
use crate::daemon::identity::{Liveness, ProcessIdentity};
use crate::daemon::pidfile::PidFile;
use crate::daemon::registry_dir::{EntryKind, RegistryDir, RegistryEntry};
use crate::daemon::{Supervisor, SupervisorOptions};
use crate::manager::ProcessManager;
use crate::policy::Policy;
use crate::runtime::{GuestOptions, GuestStdio, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener};

/// Longest a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
const MAX_REQUEST_HEAD: usize = 8 << 10;

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(String);

/// How a plugin ended (`None` while it runs): its exit code, or why it
/// could not run.
type PluginOutcome = Option<Result<i32, String>>;

/// What the HTTP and control handlers share.
#[derive(Debug)]
struct State {
    supervisor: Arc<Supervisor>,
    /// The active containment, one line (reported by `/health`).
    containment: String,
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
                Some(Ok(0)) | None => {}
                Some(Ok(code)) => failing.push(format!("plugin {name}: exited with code {code}")),
                Some(Err(e)) => failing.push(format!("plugin {name}: {e}")),
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

/// Runs `wasmproc serve --config FILE` until SIGTERM or SIGINT. Returns
/// the process exit code: 0 after a clean shutdown, non-zero (with a message
/// on stderr) if the host could not start cleanly.
pub fn serve(config_path: &Path) -> i32 {
    match serve_inner(config_path) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wasmproc: error: {e}");
            1
        }
    }
}

fn err(what: impl std::fmt::Display) -> ServeError {
    ServeError(what.to_string())
}

fn serve_inner(config_path: &Path) -> Result<(), ServeError> {
    let config = HostConfig::from_file(config_path).map_err(err)?;
    for w in config.policy.warnings() {
        eprintln!("wasmproc: warning: daemon policy: {w}");
    }
    let name = config.serve.name.clone();
    let me = ProcessIdentity::current();
    let pidfile = match &config.serve.pid_file {
        Some(path) => {
            let f = PidFile::acquire(path)
                .map_err(|e| err(format!("cannot take the host PID file: {e}")))?;
            f.write(&me).map_err(err)?;
            Some(f)
        }
        None => None,
    };
    let registry = RegistryDir::open(&config.registry_dir).map_err(|e| {
        err(format!(
            "cannot open the registry {}: {e}",
            config.registry_dir.display()
        ))
    })?;
    let grace = Duration::from_millis(config.serve.shutdown_grace_ms);
    let cleanup = registry.clean_leftovers(grace);
    for d in &cleanup.stopped {
        eprintln!("wasmproc: warning: stopped daemon `{d}` left running by a crashed host");
    }
    let socket = registry.path().join(format!("host.{name}.sock"));
    let resources = Resources {
        pidfile,
        registry: registry.clone(),
        me: me.clone(),
        name: name.clone(),
        socket: socket.clone(),
    };
    if let Some(other) = registry.get(EntryKind::Host, &name)
        && other.process != me
        && other.process.liveness() == Liveness::Alive
    {
        let msg = format!(
            "a host named `{name}` already runs (pid {}) with registry {}",
            other.process.pid,
            registry.path().display()
        );
        // Not ours: leave its socket and entry alone.
        if let Some(p) = resources.pidfile {
            p.release();
        }
        return Err(err(msg));
    }
    match start(config, &resources, grace) {
        Ok(()) => {
            resources.release();
            Ok(())
        }
        Err(e) => {
            resources.release();
            Err(e)
        }
    }
}

fn start(config: HostConfig, res: &Resources, grace: Duration) -> Result<(), ServeError> {
    let mut audit = Audit::new();
    if let Some(path) = &config.serve.audit {
        let sink = JsonLinesSink::open(path)
            .map_err(|e| err(format!("cannot open audit file {}: {e}", path.display())))?;
        audit = audit.with_sink(Arc::new(sink));
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| err(format!("cannot start the I/O runtime: {e}")))?;
    let listener = tokio
        .block_on(TcpListener::bind(config.listen))
        .map_err(|e| err(format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener.local_addr().map_err(err)?;
    let _ = std::fs::remove_file(&res.socket);
    let control_listener = {
        let _guard = tokio.enter();
        UnixListener::bind(&res.socket)
            .map_err(|e| err(format!("cannot bind {}: {e}", res.socket.display())))?
    };
    let manager = ProcessManager::new(grace);
    let supervisor = Supervisor::new(
        &config,
        Arc::clone(&manager),
        SupervisorOptions {
            registry: Some(res.registry.clone()),
            host_name: Some(res.name.clone()),
            audit: audit.clone(),
        },
    )
    .map_err(err)?;
    // Plugins: load every component and policy before anything runs.
    let runtime = if config.plugins.is_empty() {
        None
    } else {
        let rt = Runtime::new(RuntimeConfig {
            audit: audit.clone(),
            shutdown_grace: grace,
            daemons: Some(Arc::clone(&supervisor)),
            ..RuntimeConfig::default()
        })
        .map_err(|e| err(format!("cannot start the runtime: {e:#}")))?;
        Some(Arc::new(rt))
    };
    let mut plugins = Vec::new();
    if let Some(rt) = &runtime {
        for p in &config.plugins {
            let component = rt
                .load(&p.component)
                .map_err(|e| err(format!("plugin `{}`: {e}", p.name)))?;
            let policy = match &p.policy {
                Some(path) => {
                    Policy::from_file(path).map_err(|e| err(format!("plugin `{}`: {e}", p.name)))?
                }
                None => Policy::deny_all(),
            };
            let policy = crate::manifest::attach(policy, &p.component, p.require_manifest)
                .map_err(|e| err(format!("plugin `{}`: {e}", p.name)))?;
            plugins.push((p.clone(), component, Arc::new(policy)));
        }
    }
    let state = Arc::new(State {
        supervisor: Arc::clone(&supervisor),
        containment: manager.containment().summary(),
        plugins: Mutex::new(
            plugins
                .iter()
                .map(|(p, ..)| (p.name.clone(), None))
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
        .map_err(|e| {
            err(format!(
                "cannot register in {}: {e}",
                res.registry.path().display()
            ))
        })?;
    supervisor.start_all();
    if let Some(rt) = &runtime {
        for (index, (spec, component, policy)) in plugins.into_iter().enumerate() {
            let (rt, state) = (Arc::clone(rt), Arc::clone(&state));
            let spawned = std::thread::Builder::new()
                .name(format!("wasmproc-plugin-{}", spec.name))
                .spawn(move || {
                    let outcome = rt
                        .run(
                            &component,
                            GuestOptions {
                                name: spec.name.clone(),
                                args: spec.args.clone(),
                                policy,
                                stdio: GuestStdio::Inherit,
                            },
                        )
                        .map(|o| o.exit_code)
                        .map_err(|e| e.to_string());
                    state.plugins.lock().unwrap_or_else(|e| e.into_inner())[index].1 =
                        Some(outcome);
                });
            spawned.map_err(|e| err(format!("cannot start plugin thread: {e}")))?;
        }
    }
    eprintln!(
        "wasmproc: serving http://{local}/health and /ready (pid {})",
        res.me.pid
    );
    eprintln!("wasmproc: containment: {}", state.containment);
    let signal = tokio.block_on(run_until_signal(
        listener,
        control_listener,
        Arc::clone(&state),
    ))?;
    tracing::info!(signal, "shutting down");
    state.stopping.store(true, Ordering::SeqCst);
    supervisor.shutdown();
    if let Some(rt) = &runtime {
        rt.shutdown();
    }
    manager.shutdown();
    tokio.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn run_until_signal(
    listener: TcpListener,
    control_listener: UnixListener,
    state: Arc<State>,
) -> Result<&'static str, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(err)?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(http_connection(stream, Arc::clone(&state)));
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

async fn http_connection(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_REQUEST_HEAD {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    let (status, body, kind) = match read {
        Ok(Ok(())) => route(&head, &state),
        _ => (408, "request timeout\n".to_string(), "text/plain"),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        400 => "Bad Request",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn route(head: &[u8], state: &State) -> (u16, String, &'static str) {
    let text = String::from_utf8_lossy(head);
    let mut parts = text.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.split('?').next().unwrap_or_default();
    if method.is_empty() || target.is_empty() {
        return (400, "bad request\n".into(), "text/plain");
    }
    if method != "GET" {
        return (405, "only GET is served\n".into(), "text/plain");
    }
    let checks = |failing: Vec<String>, good: &str| {
        if failing.is_empty() {
            (200, format!("{good}\n"), "text/plain")
        } else {
            (
                503,
                failing.iter().map(|f| format!("{f}\n")).collect(),
                "text/plain",
            )
        }
    };
    match path {
        "/health" => {
            let (code, mut body, kind) = checks(state.health(), "ok");
            body.push_str(&format!("containment: {}\n", state.containment));
            (code, body, kind)
        }
        "/ready" => checks(state.readiness(), "ready"),
        "/daemons" => (
            200,
            serde_json::to_string_pretty(&state.supervisor.statuses()).unwrap_or_default(),
            "application/json",
        ),
        _ => (
            404,
            "not found: try /health or /ready\n".into(),
            "text/plain",
        ),
    }
}
