//! The `wasmproc` binary. Exit codes: the guest's own exit code; 125 when
//! wasmproc itself fails (bad flag, policy, or component); 126 when the
//! guest traps; 130/143 when interrupted by SIGINT/SIGTERM.

mod cli;
mod logging;
mod manifest_cmd;
mod progress;

use clap::Parser;
use cli::{Cli, CliCommand, CompileArgs, DaemonArgs, DaemonCommand, RunArgs};
use std::path::Path;
use std::sync::Arc;
use wasmproc_host::GuestError;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::Runtime;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::embed::CacheConfig;
use wasmproc_host::embed::Compiler;
use wasmproc_host::embed::ComponentCache;
use wasmproc_host::policy::PolicyBuilder;
use wasmproc_host::process::HostEffects;

/// Exit code when wasmproc itself fails.
const EXIT_HOST_ERROR: i32 = 125;
/// Exit code when the guest traps.
const EXIT_GUEST_TRAP: i32 = 126;

fn main() {
    if let Err(e) = logging::init() {
        std::process::exit(fail(e));
    }
    let cli = Cli::parse();
    // Every child of this process comes from the host's own trees.
    wasmproc_host::os::claim_foreign_sessions();
    let code = match cli.command {
        CliCommand::Run(args) => run(args),
        CliCommand::Compile(args) => compile(args),
        CliCommand::Serve(args) => serve(&args.config),
        CliCommand::Daemon(args) => daemon(args),
        CliCommand::Inspect(args) => manifest_cmd::inspect(&args),
        CliCommand::Grant(args) => manifest_cmd::grant(&args),
        CliCommand::Manifest(command) => manifest_cmd::manifest(command),
    };
    std::process::exit(code);
}

fn fail(message: impl std::fmt::Display) -> i32 {
    eprintln!("wasmproc: error: {message}");
    EXIT_HOST_ERROR
}

fn build_policy(args: &RunArgs) -> Result<Policy, wasmproc_host::error::PolicyError> {
    let mut builder = match &args.policy {
        Some(path) => PolicyBuilder::from_file(path)?,
        None => Policy::builder(),
    };
    for program in &args.allow {
        builder = builder.allow_program(program);
    }
    for (program, patterns) in arg_patterns(&args.allow_args) {
        let patterns: Vec<&[&str]> = patterns.iter().map(Vec::as_slice).collect();
        builder = builder.allow_program_args(program, &patterns);
    }
    for name in &args.allow_env {
        builder = match name.split_once(':') {
            Some((program, variable)) => builder.allow_env_for(program, variable),
            None => builder.allow_env(name),
        };
    }
    for name in &args.pass_env {
        builder = builder.pass_env(name);
    }
    for dir in &args.allow_dir {
        builder = builder.allow_dir(dir);
    }
    let mut policy = builder.build()?;
    if args.guest_time.is_some() || args.guest_memory_bytes.is_some() {
        let mut limits = policy.limits().clone();
        limits.guest_time = args.guest_time.unwrap_or(limits.guest_time);
        limits.guest_memory_bytes = args.guest_memory_bytes.unwrap_or(limits.guest_memory_bytes);
        policy = policy.with_limits(limits).map_err(|e| match e {
            wasmproc_host::error::PolicyError::Entry { reason, .. } => {
                wasmproc_host::error::PolicyError::Entry {
                    entry: "--guest-time/--guest-memory-bytes".into(),
                    reason,
                }
            }
            other => other,
        })?;
    }
    Ok(policy)
}

/// The `--allow-args PROGRAM PATTERN` grants (clap hands over their values
/// in pairs), grouped by program in the order first given (a policy grants
/// each program once), each pattern split into its space-separated
/// elements.
fn arg_patterns(values: &[String]) -> Vec<(&str, Vec<Vec<&str>>)> {
    let mut grouped: Vec<(&str, Vec<Vec<&str>>)> = Vec::new();
    for grant in values.chunks_exact(2) {
        let [program, pattern] = grant else {
            unreachable!("chunks_exact(2) yields pairs");
        };
        let elements = pattern.split_whitespace().collect();
        match grouped.iter_mut().find(|(name, _)| name == program) {
            Some((_, patterns)) => patterns.push(elements),
            None => grouped.push((program, vec![elements])),
        }
    }
    grouped
}

fn run(args: RunArgs) -> i32 {
    let policy = match build_policy(&args) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    for warning in policy.warnings() {
        eprintln!("wasmproc: warning: {warning}");
    }
    let mut audit = Audit::new();
    if let Some(path) = &args.audit {
        match JsonLinesSink::open(path) {
            Ok(sink) => audit = audit.with_sink(Arc::new(sink)),
            Err(e) => return fail(format!("cannot open audit file {}: {e}", path.display())),
        }
    }
    let config = RuntimeConfig {
        register_process: !args.no_process,
        audit,
        cache: if args.no_cache {
            None
        } else {
            CacheConfig::from_env()
        },
        compile_progress: Some(progress::for_stderr()),
        compiler: args.compiler,
        host_effects: HostEffects::ALL,
        ..RuntimeConfig::default()
    };
    let runtime = match Runtime::new(config) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            return fail(format!(
                "cannot start the runtime: {}",
                wasmproc_host::error::display_chain(&e)
            ));
        }
    };
    if !args.no_process
        && let Some(advice) = runtime.manager().containment().advice()
    {
        eprintln!("wasmproc: warning: {advice}");
    }
    let confinement = wasmproc_host::os::confine::support();
    if !args.no_process && !confinement.is_complete() {
        eprintln!(
            "wasmproc: warning: programs run less confined than granted: {}",
            confinement.summary()
        );
    }
    if let Err(e) = shutdown_on_signals(Arc::clone(&runtime)) {
        return fail(format!("cannot install signal handlers: {e}"));
    }
    let component = match runtime.load(&args.component) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let name = guest_name(&args.component);
    let options = GuestOptions {
        name,
        args: args.guest_args.clone(),
        policy: Arc::new(policy),
        stdio: GuestStdio::Inherit,
    };
    let code = match runtime.run(&component, options) {
        Ok(outcome) => outcome.exit_code,
        Err(
            e @ (GuestError::TimeLimit(_)
            | GuestError::MemoryLimit { .. }
            | GuestError::ResourceLimit(_)
            | GuestError::Trap(_)),
        ) => {
            eprintln!("wasmproc: error: {e}");
            EXIT_GUEST_TRAP
        }
        Err(e) => fail(e),
    };
    wasmproc_host::process::block_on(runtime.shutdown());
    code
}

/// `wasmproc compile`: loads each component through the cache, compiling
/// and storing those that are not there yet, with the engine `run` uses.
fn compile(args: CompileArgs) -> i32 {
    let Some(config) = CacheConfig::from_env() else {
        return fail(format!(
            "no cache directory: set {} (or XDG_CACHE_HOME or HOME)",
            CacheConfig::DIR_ENV
        ));
    };
    let cache = match ComponentCache::open(&config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // Ahead of time there is no first run to hurry: `auto` makes the
    // optimized entry, in the foreground, so it is whole when this exits.
    let compiler = match args.compiler {
        Compiler::Auto | Compiler::Cranelift => Compiler::Cranelift,
        Compiler::Winch => Compiler::Winch,
    };
    let runtime = match Runtime::new(RuntimeConfig {
        cache: Some(config),
        compile_progress: Some(progress::for_stderr()),
        compiler,
        ..RuntimeConfig::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "cannot start the runtime: {}",
                wasmproc_host::error::display_chain(&e)
            ));
        }
    };
    let mut code = 0;
    for path in &args.components {
        let started = std::time::Instant::now();
        match runtime.load_with_status(path) {
            Ok((_, Some(status))) => {
                let what = match status {
                    wasmproc_host::embed::CacheStatus::Hit => "already cached",
                    wasmproc_host::embed::CacheStatus::Miss => "compiled",
                    wasmproc_host::embed::CacheStatus::Replaced => {
                        "recompiled (the cached entry was invalid)"
                    }
                };
                println!(
                    "{}: {what} in {} ms",
                    path.display(),
                    started.elapsed().as_millis()
                );
            }
            Ok((_, None)) => code = fail(format!("{}: the cache was not used", path.display())),
            Err(e) => code = fail(e),
        }
    }
    if code == 0 {
        println!("cache: {}", cache.dir().display());
    }
    code
}

/// `wasmproc daemon list|status|stop` against the registry.
fn daemon(args: DaemonArgs) -> i32 {
    use wasmproc_supervisor::{config::default_registry_dir, control};
    let registry = match args.registry.map_or_else(default_registry_dir, Ok) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("wasmproc: error: {e}");
            return 1;
        }
    };
    let out = &mut std::io::stdout();
    let done = match args.command {
        DaemonCommand::List => control::cmd_list(&registry, out),
        DaemonCommand::Status { name } => control::cmd_status(&registry, &name, out),
        DaemonCommand::Stop { name } => control::cmd_stop(&registry, &name, out),
    };
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wasmproc: error: {e}");
            1
        }
    }
}

/// `wasmproc serve`: 0 after a clean shutdown, 1 if the host could not
/// start cleanly.
fn serve(config: &Path) -> i32 {
    use wasmproc_supervisor::serve::Notice;
    let notice = |n: Notice| match n {
        Notice::Warning(w) => eprintln!("wasmproc: warning: {w}"),
        Notice::Serving {
            addr,
            pid,
            containment,
        } => {
            eprintln!("wasmproc: serving http://{addr}/health and /ready (pid {pid})");
            eprintln!("wasmproc: containment: {containment}");
            eprintln!(
                "wasmproc: confinement: {}",
                wasmproc_host::os::confine::support().summary()
            );
        }
        Notice::Stopping(signal) => tracing::info!(signal, "shutting down"),
    };
    match wasmproc_supervisor::serve::serve(config, &notice) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wasmproc: error: {e}");
            1
        }
    }
}

fn guest_name(component: &Path) -> String {
    component
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into())
}

/// On SIGINT, SIGTERM or SIGHUP: stop every managed process, then exit with
/// 128 + the signal number.
fn shutdown_on_signals(runtime: Arc<Runtime>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("wasmproc-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use nix::sys::signal::Signal;
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                let number = tokio::select! {
                    _ = int.recv() => Signal::SIGINT,
                    _ = term.recv() => Signal::SIGTERM,
                    _ = hup.recv() => Signal::SIGHUP,
                };
                runtime.shutdown().await;
                std::process::exit(128 + number as i32);
            });
        })?;
    Ok(())
}
