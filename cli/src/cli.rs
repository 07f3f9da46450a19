//! The `wasmproc` command line.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use wasmproc_host::embed::Compiler;

/// wasmproc: run WebAssembly components that may start processes, under a
/// policy.
#[derive(Debug, Parser)]
#[command(name = "wasmproc", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum CliCommand {
    /// Run a `wasi:cli/command` component with the process capability.
    Run(RunArgs),
    /// Compile components into the compiled-component cache, so the next
    /// `run` of each starts without compiling.
    Compile(CompileArgs),
    /// Run as a host daemon: supervise the configured daemons and plugins,
    /// serve /health and /ready, stop cleanly on SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Inspect or control the daemons of running hosts (via the registry).
    Daemon(DaemonArgs),
    /// Print a plugin's manifest as a table; with --policy, what each
    /// request would get under that policy.
    Inspect(InspectArgs),
    /// Print a policy granting exactly what a plugin's manifest declares.
    Grant(GrantArgs),
    /// Work with plugin manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),
}

/// Arguments of `wasmproc inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin component.
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
    /// Show what each request would get under this policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Arguments of `wasmproc grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The plugin component.
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
}

/// `wasmproc manifest` subcommands.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Write a manifest (TOML) into a built component, replacing any
    /// manifest it carried at its top level.
    Add {
        /// The component to change (in place unless --output is given).
        #[arg(value_name = "COMPONENT.wasm")]
        component: PathBuf,
        /// The manifest file.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// Write the result here instead of over the component.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Arguments of `wasmproc serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Host configuration (TOML): serve settings, daemon policy, daemons, plugins.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `wasmproc daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Registry directory (default: $WASMPROC_REGISTRY, else
    /// $XDG_RUNTIME_DIR/wasmproc, else $XDG_STATE_HOME/wasmproc/registry,
    /// else ~/.local/state/wasmproc/registry).
    #[arg(long, value_name = "DIR", global = true)]
    pub registry: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: DaemonCommand,
}

/// `wasmproc daemon` subcommands.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// List running hosts and their daemons.
    List,
    /// Show one daemon's status.
    Status {
        /// The daemon's name.
        name: String,
    },
    /// Stop one daemon (it stays stopped until started again).
    Stop {
        /// The daemon's name.
        name: String,
    },
}

/// Arguments of `wasmproc run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The component to run (built for wasm32-wasip2).
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,
    /// Policy file (TOML). Flags below add grants on top of it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Grant a program with any arguments (a bare name is resolved on PATH now).
    #[arg(long = "allow", value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Grant a program with only the arguments PATTERN matches: arguments
    /// separated by spaces, where `*` matches one operand (never an
    /// argument starting with `-` or `+`), a trailing `**` the remaining
    /// operands, `--name=*` that option with any value, and after a `--`
    /// wildcards match anything (`''` allows none). Options are allowed
    /// only where named. Repeat to add patterns, e.g.
    /// `--allow-args git 'log --oneline **'`.
    #[arg(long = "allow-args", num_args = 2, value_names = ["PROGRAM", "PATTERN"])]
    pub allow_args: Vec<String>,
    /// Let the guest set this environment variable (`NAME`, or a wildcard
    /// such as `LC_*` that expands only over inert names) for
    /// every program, or for one granted program as `PROGRAM:NAME`.
    #[arg(long = "allow-env", value_name = "NAME")]
    pub allow_env: Vec<String>,
    /// Pass this host environment variable through to every child.
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Grant a working-directory root (children may run there and below).
    #[arg(long = "allow-dir", value_name = "PATH")]
    pub allow_dir: Vec<String>,
    /// Write audit events as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Stop the guest after this long, with a unit: `500ms`, `30s`,
    /// `1m 30s` (overrides the policy's `guest_time`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub guest_time: Option<std::time::Duration>,
    /// Cap the guest's linear memory, in bytes (overrides the policy).
    #[arg(long, value_name = "BYTES")]
    pub guest_memory_bytes: Option<u64>,
    /// Do not register the process capability at all.
    #[arg(long)]
    pub no_process: bool,
    /// Compile the component without the compiled-component cache
    /// (`$WASMPROC_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmproc`, else
    /// `~/.cache/wasmproc`).
    #[arg(long)]
    pub no_cache: bool,
    /// Which compiler compiles the component when the cache has no entry:
    /// `auto` (Winch, so the guest starts at once, and Cranelift in the
    /// background into the cache for later runs), `winch` or `cranelift`.
    #[arg(
        long,
        value_name = "COMPILER",
        default_value = "auto",
        env = "WASMPROC_COMPILER"
    )]
    pub compiler: Compiler,
    /// Arguments passed to the guest (after `--`).
    #[arg(last = true, value_name = "GUEST_ARGS")]
    pub guest_args: Vec<String>,
}

/// Arguments of `wasmproc compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The components to compile.
    #[arg(value_name = "COMPONENT.wasm", required = true)]
    pub components: Vec<PathBuf>,
    /// Which compiler's entry to make: `auto` and `cranelift` make the
    /// optimized one (the one `run` prefers), `winch` the baseline one.
    #[arg(
        long,
        value_name = "COMPILER",
        default_value = "auto",
        env = "WASMPROC_COMPILER"
    )]
    pub compiler: Compiler,
}
