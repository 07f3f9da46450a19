//! The high-level runtime: load a `wasi:cli/command` component, link WASI
//! p2 and (if registered) the process capability, run it under limits, and
//! shut everything down.

use crate::audit::Audit;
use crate::deadline::Deadline;
use crate::embed::compiler::{Compiler, Tier};
use crate::embed::guest_limits::GuestLimiter;
use crate::embed::plugin::Plugin;
use crate::embed::pool::{GuestSlot, GuestSlots, InstancePool};
use crate::error::{LinkError, RuntimeError};
use crate::policy::{ComponentDigest, Policy};
use crate::process::manager::HostEffects;
use crate::process::manager::ProcessManager;
use crate::session::ctx::ProcessCtx;
use crate::wit::bindings::CAPABILITY_NAME;
use crate::wit::linker::{ProcessView, add_to_linker_async};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Strategy, Trap, UpdateDeadline};
use wasmtime_wasi::p2::bindings::{Command, CommandPre};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch advances; the unit of guest time limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Most bytes of guest stdout/stderr kept when capturing.
const CAPTURE_LIMIT: usize = 16 << 20;
/// Stack left on a guest's fiber, past its wasm stack, for the host
/// functions it calls.
const HOST_STACK: usize = 1 << 20;

/// Why a guest could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{path} is not a WebAssembly component: {reason}")]
    NotComponent {
        /// The file.
        path: String,
        /// What it is instead, or why it failed to compile.
        reason: String,
    },
    /// The guest imports the process capability but the host did not
    /// register it.
    #[error("the guest imports `{0}`, a capability this host did not register")]
    CapabilityNotRegistered(String),
    /// Instantiation failed for another reason (e.g. an unknown import).
    #[error("cannot instantiate the guest: {0}")]
    Instantiate(String),
    /// The guest ran past its time limit.
    #[error(
        "the guest ran past its time limit of {} (guest_time) and was stopped",
        humantime::format_duration(*.0)
    )]
    TimeLimit(Duration),
    /// The guest trapped after reaching its memory limit.
    #[error(
        "the guest trapped after reaching its memory limit of {limit} bytes (guest_memory_bytes): {trap}"
    )]
    MemoryLimit {
        /// The limit.
        limit: u64,
        /// The trap.
        trap: String,
    },
    /// The guest tried to hold more WASI handles than its limit.
    #[error(
        "the guest reached its limit of {0} resource handles (guest_resources) and was stopped"
    )]
    ResourceLimit(u32),
    /// The guest trapped.
    #[error("the guest trapped: {0}")]
    Trap(String),
    /// The plugin's manifest is unreadable, or its policy refuses it: a
    /// manifest is required and there is none, or the policy is pinned to
    /// another component.
    #[error(transparent)]
    Manifest(Box<crate::manifest::ManifestError>),
    /// No slot of the instance pool was free for the guest
    /// ([`InstancePool::when_full`]).
    #[error(transparent)]
    NoSlot(#[from] crate::embed::pool::NoSlot),
}

/// The store data of a guest run by a [`Runtime<T>`]: WASI, the
/// capability session, limits, and the embedder's own `data` of type `T`.
pub struct GuestState<T = ()> {
    wasi: WasiCtx,
    table: ResourceTable,
    process: Option<ProcessCtx>,
    limiter: GuestLimiter,
    /// When the guest's `guest_time` runs out, fixed at instantiation.
    deadline: Deadline,
    data: T,
}

impl<T> GuestState<T> {
    /// When this guest's `guest_time` runs out ([`Deadline::NEVER`]: no
    /// limit), fixed when it was instantiated: no host call of its waits
    /// past it.
    pub fn guest_deadline(&self) -> Deadline {
        self.deadline
    }

    /// The embedder's data of this guest.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The embedder's data of this guest, mutably (e.g. from a host
    /// function added with [`Runtime::linker_mut`]).
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T> std::fmt::Debug for GuestState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestState")
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl<T: Send> WasiView for GuestState<T> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<T: Send> ProcessView for GuestState<T> {
    fn process_ctx(&mut self) -> &mut ProcessCtx {
        self.process
            .as_mut()
            .expect("the capability is linked only when a ProcessCtx is present")
    }
}

/// How a guest's own stdout and stderr are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestStdio {
    /// The host's stdio (stdin too).
    #[default]
    Inherit,
    /// Captured into [`GuestOutcome`] (stdin empty).
    Capture,
}

/// What to run and under which policy.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// Name for audit records and `argv[0]`.
    pub name: String,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// The policy of this guest.
    pub policy: Arc<Policy>,
    /// Guest stdio handling.
    pub stdio: GuestStdio,
}

/// How a guest run ended.
#[derive(Debug, Clone, Default)]
pub struct GuestOutcome {
    /// The guest's exit code (0 for a normal return, 1 for an error return).
    pub exit_code: i32,
    /// Captured stdout ([`GuestStdio::Capture`] only).
    pub stdout: Vec<u8>,
    /// Captured stderr ([`GuestStdio::Capture`] only).
    pub stderr: Vec<u8>,
}

/// Options of [`Runtime::new`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Whether guests get the process capability. Default `true`.
    pub register_process: bool,
    /// Where audit events go. Default: `tracing` only.
    pub audit: Audit,
    /// Wasm stack size of every guest, in bytes. Default 1 MiB.
    pub max_wasm_stack: usize,
    /// Grace between SIGTERM and SIGKILL at shutdown. Default 2 s.
    pub shutdown_grace: Duration,
    /// Where [`Runtime::load`] caches compiled components. Default `None`
    /// (compile on every load): loading cached machine code trusts the cache
    /// directory, so an embedding opts in; the `wasmproc` CLI does.
    pub cache: Option<crate::embed::CacheConfig>,
    /// Told when [`Runtime::load`] has to compile a component (seconds for
    /// an interpreter-sized one), e.g. to show progress. Default `None`.
    pub compile_progress: Option<Arc<dyn crate::embed::CompileProgress>>,
    /// The instance pool guests are allocated from, which bounds how many
    /// may be instantiated at once and reserves their address space up
    /// front ([`InstancePool`]); a guest beyond it waits for a slot (or
    /// fails fast, [`InstancePool::when_full`]). Default: a pool sized
    /// from a quarter of the host's memory. `None` maps each guest's
    /// memory on demand instead: no reservation and no bound, at about a
    /// millisecond more per instantiation of a large guest.
    pub pool: Option<InstancePool>,
    /// Which compiler compiles a component on a cache miss. Default
    /// [`Compiler::Auto`]: Winch at once, Cranelift in the background.
    pub compiler: Compiler,
    /// The effects the runtime's process manager has on the host process
    /// (subreaper, fd limit, watchdog). Default: none; the `wasmproc` CLI
    /// turns all on.
    pub host_effects: HostEffects,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            register_process: true,
            audit: Audit::new(),
            max_wasm_stack: 1 << 20,
            shutdown_grace: Duration::from_secs(2),
            cache: None,
            compile_progress: None,
            pool: Some(InstancePool::default()),
            compiler: Compiler::default(),
            host_effects: HostEffects::default(),
        }
    }
}

/// Loads and runs command components with the process capability.
///
/// Guests run on an async engine: [`Runtime::run_async`] runs one as a
/// future on the caller's executor (a multi-thread tokio runtime, say), and
/// a guest waiting on a process or spinning in a loop gives its thread back
/// (every 10 ms while it computes); on a tokio runtime (I/O and time
/// enabled), the children of its `run` calls are monitored by that
/// runtime's own reactor. [`Runtime::run`] is the same run for a
/// synchronous caller, blocking its thread.
///
/// `T` is the embedder's own data in each guest's store
/// ([`GuestState::data`]), reachable from host functions added through
/// [`Runtime::linker_mut`]; [`Runtime::new`] makes a runtime without any.
///
/// ```no_run
/// use std::sync::Arc;
/// use wasmproc_host::{GuestOptions, GuestStdio, Policy, Runtime, RuntimeConfig};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(RuntimeConfig::default())?;
/// let component = runtime.load("plugin.wasm".as_ref())?;
/// let policy = Arc::new(Policy::builder().allow_program("git").build()?);
/// let outcome = runtime.run_async(&component, GuestOptions {
///     name: "plugin".into(),
///     args: vec![],
///     policy,
///     stdio: GuestStdio::Inherit,
/// }).await?;
/// std::process::exit(outcome.exit_code);
/// # }
/// ```
pub struct Runtime<T: 'static = ()> {
    engine: Engine,
    linker: Linker<GuestState<T>>,
    /// The configuration of `engine` without the instance pool, for the
    /// background compile (which instantiates nothing).
    optimized: Config,
    /// `auto`'s background compiles, abandoned at shutdown.
    tier_ups: crate::embed::cache::TierUps,
    /// `auto`'s baseline tier, made on the first miss (`None`: not usable).
    baseline: OnceLock<Option<BaselineTier<T>>>,
    /// The baseline engine, once made, for the epoch ticker.
    baseline_ticks: Arc<OnceLock<Engine>>,
    /// Whether the embedder added to the linker ([`Runtime::linker_mut`]).
    linker_extended: bool,
    manager: Arc<ProcessManager>,
    config: RuntimeConfig,
    /// The pool's guest slots (`None` without a pool).
    slots: Option<GuestSlots>,
    ticking: Arc<AtomicBool>,
}

impl<T: 'static> std::fmt::Debug for Runtime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the engine, the linker (WASI p2, and the capability if
    /// `config.register_process`), the process manager and the epoch ticker,
    /// for guests that carry no embedder data.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Self::with_data(config)
    }
}

impl<T: Send + 'static> Runtime<T> {
    /// [`Runtime::new`] for guests whose stores carry embedder data of type
    /// `T` (given to [`Runtime::instantiate_async_with`]).
    pub fn with_data(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let strategy = match config.compiler {
            Compiler::Winch => Strategy::Winch,
            Compiler::Auto | Compiler::Cranelift => Strategy::Cranelift,
        };
        let wasm = engine_config(&config, strategy, config.pool.as_ref());
        let engine = Engine::new(&wasm).map_err(RuntimeError::Engine)?;
        let optimized = engine_config(&config, strategy, None);
        let linker = base_linker(&engine, config.register_process)?;
        let ticking = Arc::new(AtomicBool::new(true));
        let baseline_ticks = Arc::new(OnceLock::<Engine>::new());
        let (ticker_engine, flag) = (engine.clone(), Arc::clone(&ticking));
        let ticker_baseline = Arc::clone(&baseline_ticks);
        std::thread::Builder::new()
            .name("wasmproc-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                    if let Some(baseline) = ticker_baseline.get() {
                        baseline.increment_epoch();
                    }
                }
            })
            .map_err(RuntimeError::EpochThread)?;
        Ok(Self {
            engine,
            linker,
            optimized,
            tier_ups: crate::embed::cache::TierUps::default(),
            baseline: OnceLock::new(),
            baseline_ticks,
            linker_extended: false,
            manager: ProcessManager::builder()
                .grace(config.shutdown_grace)
                .host_effects(config.host_effects)
                .build(),
            slots: config.pool.as_ref().map(GuestSlots::new),
            config,
            ticking,
        })
    }

    /// The engine whose compiled components win: Cranelift's, or Winch's
    /// with [`Compiler::Winch`]. With [`Compiler::Auto`], a component
    /// [`Runtime::load`] compiled with Winch belongs to a second, baseline
    /// engine ([`Runtime::tier_of`]).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The tier `component` (from [`Runtime::load`]) was compiled by.
    pub fn tier_of(&self, plugin: &Plugin) -> Tier {
        let component = plugin.component();
        match self.config.compiler {
            Compiler::Winch => Tier::Baseline,
            _ if self.baseline_of(component).is_some() => Tier::Baseline,
            _ => Tier::Optimized,
        }
    }

    /// `auto`'s baseline tier, made on first use; `None` unless the
    /// compiler is [`Compiler::Auto`] and Winch is available and the
    /// linker has nothing of the embedder's, which the baseline linker
    /// would lack (each reason is logged once).
    fn baseline(&self) -> Option<&BaselineTier<T>> {
        if self.config.compiler != Compiler::Auto {
            return None;
        }
        if self.linker_extended {
            static NOTED: std::sync::Once = std::sync::Once::new();
            NOTED.call_once(|| {
                tracing::info!(
                    "compiler auto: the linker carries host functions of the embedder's, so Cranelift compiles (no baseline tier)"
                );
            });
            return None;
        }
        self.baseline
            .get_or_init(|| {
                let wasm = engine_config(&self.config, Strategy::Winch, None);
                let made = Engine::new(&wasm)
                    .map_err(RuntimeError::Engine)
                    .and_then(|engine| {
                        let linker = base_linker(&engine, self.config.register_process)?;
                        Ok(BaselineTier { engine, linker })
                    });
                match made {
                    Ok(tier) => {
                        let _ = self.baseline_ticks.set(tier.engine.clone());
                        Some(tier)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "compiler auto: Winch is not available here, so Cranelift compiles: {}",
                            crate::error::display_chain(&e)
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// The baseline tier `component` belongs to, if it does.
    fn baseline_of(&self, component: &Component) -> Option<&BaselineTier<T>> {
        self.baseline
            .get()
            .and_then(Option::as_ref)
            .filter(|tier| Engine::same(component.engine(), &tier.engine))
    }

    /// The shared process manager (every guest's processes).
    pub fn manager(&self) -> &Arc<ProcessManager> {
        &self.manager
    }

    /// The linker guests are instantiated with, to add host functions of
    /// the embedder's own (they reach [`GuestState::data_mut`]) before
    /// [`Runtime::prepare`]. The engine has async support, so these may be
    /// async (`func_wrap_async`, or `bindgen!` with async imports).
    ///
    /// With [`Compiler::Auto`], a runtime whose linker was extended here
    /// compiles with Cranelift only: the baseline tier's linker would lack
    /// these functions.
    pub fn linker_mut(&mut self) -> &mut Linker<GuestState<T>> {
        self.linker_extended = true;
        &mut self.linker
    }

    /// Compiles a component file (or loads it from the cache of
    /// [`RuntimeConfig::cache`]), with a clear error for a missing file, a
    /// core module or anything else that is not a component, and reads the
    /// plugin manifest it carries: a guest run from it is admitted by its
    /// policy and that manifest together.
    pub fn load(&self, path: &Path) -> Result<Plugin, GuestError> {
        self.load_with_status(path).map(|(plugin, _)| plugin)
    }

    /// [`Runtime::load`], also saying what the cache found (`None` when no
    /// cache is configured or its directory is unusable).
    pub fn load_with_status(
        &self,
        path: &Path,
    ) -> Result<(Plugin, Option<crate::embed::CacheStatus>), GuestError> {
        let shown = path.display().to_string();
        let read_error = |source| GuestError::Read {
            path: shown.clone(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let not_component = |reason: &str| GuestError::NotComponent {
            path: shown.clone(),
            reason: reason.to_string(),
        };
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(not_component("it is not a regular file"));
        }
        let mut magic = [0u8; 8];
        match file.read_exact_at(&mut magic, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(not_component("it does not start with the wasm magic bytes"));
            }
            Err(e) => return Err(read_error(e)),
        }
        match magic {
            [0, b'a', b's', b'm', 1, 0, 0, 0] => {
                return Err(not_component(
                    "it is a core wasm module; build the guest for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
                ));
            }
            [0, b'a', b's', b'm', ..] => {}
            _ => return Err(not_component("it does not start with the wasm magic bytes")),
        }
        let baseline_engine = || self.baseline().map(|tier| tier.engine.clone());
        let tiers = crate::embed::cache::Tiers {
            primary: &self.engine,
            primary_tier: match self.config.compiler {
                Compiler::Winch => Tier::Baseline,
                Compiler::Auto | Compiler::Cranelift => Tier::Optimized,
            },
            baseline: (self.config.compiler == Compiler::Auto).then(|| {
                crate::embed::cache::Baseline {
                    engine: &baseline_engine,
                    optimized: &self.optimized,
                    progress: self.config.compile_progress.clone(),
                    tier_ups: &self.tier_ups,
                }
            }),
        };
        let compiled = crate::embed::cache::compile(
            &tiers,
            self.config.cache.as_ref(),
            &file,
            path,
            self.config.compile_progress.as_deref(),
        )
        .map_err(|e| match e {
            crate::embed::CompileError::Read(io) => read_error(io),
            crate::embed::CompileError::Compile(e) => not_component(&format!("{e:#}")),
        })?;
        // The digest a pinned policy asks for is that of the bytes compiled,
        // and the manifest comes from the file they were read from, checked
        // to hold those bytes still: neither a file renamed over the path
        // nor one rewritten in place can lend the running component another
        // manifest or another digest.
        let digest = ComponentDigest::from_hash(compiled.source);
        let plugin = Plugin::from_open_file(compiled.component, path, file, digest)
            .map_err(|e| GuestError::Manifest(Box::new(e)))?;
        Ok((plugin, compiled.status))
    }

    /// Resolves and type-checks a component's imports against this
    /// runtime's linker, once: the result instantiates again and again
    /// without that work ([`Runtime::instantiate_async`]).
    pub fn prepare(&self, plugin: &Plugin) -> Result<GuestPre<T>, GuestError> {
        let component = plugin.component();
        let (engine, linker) = match self.baseline_of(component) {
            Some(tier) => (&tier.engine, &tier.linker),
            None => (&self.engine, &self.linker),
        };
        let ty = component.component_type();
        let imports_capability = ty.imports(engine).any(|(name, _)| name == CAPABILITY_NAME);
        if imports_capability && !self.config.register_process {
            return Err(GuestError::CapabilityNotRegistered(
                CAPABILITY_NAME.to_string(),
            ));
        }
        let pre = linker
            .instantiate_pre(component)
            .and_then(CommandPre::new)
            .map_err(|e| GuestError::Instantiate(format!("{e:#}")))?;
        Ok(GuestPre {
            pre,
            engine: engine.clone(),
            plugin: plugin.clone(),
        })
    }

    /// Creates a fresh instance of a prepared guest, with its own store,
    /// WASI context, capability session, limits and the embedder's `data`,
    /// ready to [run](GuestInstance::run_async).
    pub async fn instantiate_async_with(
        &self,
        pre: &GuestPre<T>,
        options: GuestOptions,
        data: T,
    ) -> Result<GuestInstance<T>, GuestError> {
        let limits = options.policy.limits().clone();
        // Fixed first: waiting for a slot counts against the guest's time.
        let deadline = limits.guest_deadline();
        let slot = match &self.slots {
            Some(slots) => Some(
                slots
                    .take(deadline, limits.guest_time, self.manager.core_handle())
                    .await?,
            ),
            None => None,
        };
        let (mut store, stdio) = self.store(pre, options, data, deadline)?;
        let command = pre
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| GuestError::Instantiate(format!("{e:#}")))?;
        Ok(GuestInstance {
            store,
            command,
            limits,
            stdio,
            slot,
        })
    }

    /// Runs a command component to its end with the embedder's `data` in
    /// its store, and stops whatever processes it left running: the
    /// extension point for host interfaces of the embedder's own, linked
    /// through [`Runtime::linker_mut`] and served from `data` (e.g. a
    /// per-guest context built from the guest's name and policy).
    pub async fn run_async_with(
        &self,
        plugin: &Plugin,
        options: GuestOptions,
        data: T,
    ) -> Result<GuestOutcome, GuestError> {
        let pre = self.prepare(plugin)?;
        self.instantiate_async_with(&pre, options, data)
            .await?
            .run_async()
            .await
    }

    /// [`Runtime::run_async_with`] for a synchronous caller: runs the guest
    /// to its end on the calling thread, outside any async executor.
    pub fn run_with(
        &self,
        plugin: &Plugin,
        options: GuestOptions,
        data: T,
    ) -> Result<GuestOutcome, GuestError> {
        crate::process::core_runtime::block_on_here(self.run_async_with(plugin, options, data))
    }

    /// A guest's store: its state, limiter and time limit (its `deadline`).
    fn store(
        &self,
        pre: &GuestPre<T>,
        options: GuestOptions,
        data: T,
        deadline: Deadline,
    ) -> Result<(Store<GuestState<T>>, CapturedStdio), GuestError> {
        let admission = pre
            .plugin
            .admit(Arc::clone(&options.policy), false)
            .map_err(|e| GuestError::Manifest(Box::new(e)))?;
        let limits = options.policy.limits().clone();
        let mut wasi = WasiCtx::builder();
        let mut argv = vec![options.name.clone()];
        argv.extend(options.args.iter().cloned());
        wasi.args(&argv);
        let stdio = match options.stdio {
            GuestStdio::Inherit => {
                wasi.inherit_stdio();
                CapturedStdio::default()
            }
            GuestStdio::Capture => {
                let (out, err) = (
                    MemoryOutputPipe::new(CAPTURE_LIMIT),
                    MemoryOutputPipe::new(CAPTURE_LIMIT),
                );
                wasi.stdout(out.clone()).stderr(err.clone());
                CapturedStdio {
                    stdout: Some(out),
                    stderr: Some(err),
                }
            }
        };
        let process = self.config.register_process.then(|| {
            ProcessCtx::builder(Arc::new(admission), Arc::clone(&self.manager))
                .guest(options.name.clone())
                .audit(self.config.audit.clone())
                .guest_deadline(deadline)
                .build()
        });
        let state = GuestState {
            wasi: wasi.build(),
            table: resource_table(&limits),
            process,
            limiter: GuestLimiter::new(&limits),
            deadline,
            data,
        };
        let mut store = Store::new(&pre.engine, state);
        store.limiter(|s| &mut s.limiter);
        yield_every_tick(&mut store, deadline);
        Ok((store, stdio))
    }

    /// Stops every managed process of every guest, and abandons the
    /// background compiles of [`Compiler::Auto`] (an entry being written
    /// is finished first; the next load starts the compile again).
    pub async fn shutdown(&self) {
        self.tier_ups.abandon();
        self.manager.shutdown().await;
    }
}

impl<T: Default + Send + 'static> Runtime<T> {
    /// Runs a command component to its end and stops whatever processes it
    /// left running. The future is `Send`: spawn it on a multi-thread
    /// executor; while the guest waits on a process it holds no thread.
    pub async fn run_async(
        &self,
        plugin: &Plugin,
        options: GuestOptions,
    ) -> Result<GuestOutcome, GuestError> {
        self.run_async_with(plugin, options, T::default()).await
    }

    /// [`Runtime::run_async`] for a synchronous caller: runs the guest to
    /// its end on the calling thread. Call it outside any async executor
    /// (inside one, await [`Runtime::run_async`] instead).
    pub fn run(&self, plugin: &Plugin, options: GuestOptions) -> Result<GuestOutcome, GuestError> {
        crate::process::core_runtime::block_on_here(self.run_async(plugin, options))
    }

    /// [`Runtime::instantiate_async_with`] with `T::default()` as the
    /// embedder's data.
    pub async fn instantiate_async(
        &self,
        pre: &GuestPre<T>,
        options: GuestOptions,
    ) -> Result<GuestInstance<T>, GuestError> {
        self.instantiate_async_with(pre, options, T::default())
            .await
    }

    /// [`Runtime::instantiate_async`] for a synchronous caller (outside any
    /// async executor).
    pub fn instantiate(
        &self,
        pre: &GuestPre<T>,
        options: GuestOptions,
    ) -> Result<GuestInstance<T>, GuestError> {
        wasmtime_wasi::runtime::in_tokio(self.instantiate_async(pre, options))
    }
}

/// Makes a guest's store give its thread back on every epoch tick while it
/// computes, and stop it with [`Trap::Interrupt`] once its `deadline` (the
/// end of its `guest_time`, if any) has passed.
fn yield_every_tick<T: 'static>(store: &mut Store<GuestState<T>>, deadline: Deadline) {
    store.epoch_deadline_callback(move |_| match deadline {
        deadline if deadline.has_passed() => Err(Trap::Interrupt.into()),
        _ => Ok(UpdateDeadline::Yield(1)),
    });
    store.set_epoch_deadline(1);
}

/// A component whose imports were resolved against a runtime's linker
/// ([`Runtime::prepare`]); cheap to clone and to instantiate again.
pub struct GuestPre<T: 'static = ()> {
    pre: CommandPre<GuestState<T>>,
    /// The engine of the component's tier.
    engine: Engine,
    /// The plugin it was prepared from (its manifest admits its guests).
    plugin: Plugin,
}

impl<T: 'static> Clone for GuestPre<T> {
    fn clone(&self) -> Self {
        Self {
            pre: self.pre.clone(),
            engine: self.engine.clone(),
            plugin: self.plugin.clone(),
        }
    }
}

impl<T: 'static> std::fmt::Debug for GuestPre<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestPre").finish_non_exhaustive()
    }
}

/// The pipes a guest's stdout and stderr are captured into, if they are.
#[derive(Default)]
struct CapturedStdio {
    stdout: Option<MemoryOutputPipe>,
    stderr: Option<MemoryOutputPipe>,
}

/// A guest instantiated by [`Runtime::instantiate_async`], not yet run.
pub struct GuestInstance<T: 'static = ()> {
    store: Store<GuestState<T>>,
    command: Command,
    limits: crate::policy::Limits,
    stdio: CapturedStdio,
    /// Its slot of the pool, freed after the store (declared after it).
    slot: Option<GuestSlot>,
}

impl<T: 'static> std::fmt::Debug for GuestInstance<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestInstance")
            .field("state", self.store.data())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> GuestInstance<T> {
    /// This guest's store data (its embedder data is
    /// [`GuestState::data`]).
    pub fn state(&self) -> &GuestState<T> {
        self.store.data()
    }

    /// Calls the guest's `wasi:cli/run` export to its end, then drops the
    /// instance, which stops whatever processes the guest left running.
    /// Awaited on a tokio runtime, the children of the guest's `run` calls
    /// are monitored by that runtime's reactor, which therefore needs I/O
    /// and time enabled (`enable_all`), as wasmtime-wasi requires of it.
    pub async fn run_async(mut self) -> Result<GuestOutcome, GuestError> {
        // Kept whole while the call runs: dropped early (a cancelled
        // future), the instance drops its store before its slot.
        let call = self.command.wasi_cli_run().call_run(&mut self.store);
        // On a tokio runtime, the guest's `run` children are monitored by
        // that runtime's reactor, not handed to the process core.
        let result = crate::process::core_runtime::on_caller_reactor(call).await;
        let exit_code = match result {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(classify_trap(e, &self.store, &self.limits)),
            },
        };
        let Self {
            store, stdio, slot, ..
        } = self;
        // The guest's processes are stopped gracefully, whatever its end;
        // dropping the store then drops the session and frees the
        // instance, and then the slot.
        if let Some(session) = &store.data().process {
            session.shutdown().await;
        }
        drop(store);
        let exit_code = exit_code?;
        drop(slot);
        let contents = |pipe: Option<MemoryOutputPipe>| {
            pipe.map(|p| p.contents().to_vec()).unwrap_or_default()
        };
        Ok(GuestOutcome {
            exit_code,
            stdout: contents(stdio.stdout),
            stderr: contents(stdio.stderr),
        })
    }

    /// [`GuestInstance::run_async`] for a synchronous caller (outside any
    /// async executor).
    pub fn run(self) -> Result<GuestOutcome, GuestError> {
        crate::process::core_runtime::block_on_here(self.run_async())
    }
}

fn classify_trap<T: 'static>(
    e: wasmtime::Error,
    store: &Store<GuestState<T>>,
    limits: &crate::policy::Limits,
) -> GuestError {
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return GuestError::TimeLimit(limits.guest_time);
    }
    if matches!(
        e.downcast_ref::<wasmtime::component::ResourceTableError>(),
        Some(wasmtime::component::ResourceTableError::Full)
    ) {
        return GuestError::ResourceLimit(limits.guest_resources);
    }
    if store.data().limiter.hit_memory_limit() {
        return GuestError::MemoryLimit {
            limit: limits.guest_memory_bytes,
            trap: format!("{e:#}"),
        };
    }
    GuestError::Trap(format!("{e:#}"))
}

impl<T: 'static> Drop for Runtime<T> {
    /// Without [`Runtime::shutdown`] first, the manager's drop kills what
    /// still runs at once (when this runtime held its last reference).
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
        self.tier_ups.abandon();
    }
}

/// `auto`'s baseline tier: the Winch engine and a linker like the
/// runtime's (WASI and, if registered, the capability).
struct BaselineTier<T: 'static> {
    engine: Engine,
    linker: Linker<GuestState<T>>,
}

/// The engine configuration of a runtime, compiling with `strategy`, its
/// guests allocated from `pool` (or on demand).
fn engine_config(
    config: &RuntimeConfig,
    strategy: Strategy,
    pool: Option<&InstancePool>,
) -> Config {
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_size(config.max_wasm_stack + HOST_STACK)
        .strategy(strategy);
    if let Some(pool) = pool {
        wasm.allocation_strategy(pool.strategy());
    }
    wasm
}

/// A linker for `engine` with WASI p2 and, if `register_process`, the
/// process capability.
fn base_linker<T: Send + 'static>(
    engine: &Engine,
    register_process: bool,
) -> Result<Linker<GuestState<T>>, RuntimeError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| RuntimeError::Link(LinkError::new("wasi:cli/command", e)))?;
    if register_process {
        add_to_linker_async(&mut linker).map_err(RuntimeError::Link)?;
    }
    Ok(linker)
}

/// A resource table capped at the policy's `guest_resources`.
fn resource_table(limits: &crate::policy::Limits) -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(limits.guest_resources as usize);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    /// The host's children, by pid, from `/proc/self/task/*/children`.
    fn children() -> Vec<u32> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// An embedder that asks for nothing gets a runtime that leaves its
    /// process alone: not a subreaper, its fd limit as it was, and no
    /// watchdog child (each is [`HostEffects`], off by default).
    #[test]
    fn runtime_default_has_no_host_effects_good() {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // A soft limit below the hard one, as the raise would change it.
        let lowered = soft.min(hard.saturating_sub(1));
        setrlimit(Resource::RLIMIT_NOFILE, lowered, hard).unwrap();
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let manager = ProcessManager::builder().build();
        let after = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let subreaper = nix::sys::prctl::get_child_subreaper().unwrap();
        let watchdogs: Vec<u32> = children()
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.contains("wasmproc-watchdog") || c.contains("awk"))
            })
            .collect();
        drop((runtime, manager));
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        assert_eq!(after, (lowered, hard), "the fd limit was raised");
        assert!(!subreaper, "the host was made a child subreaper");
        assert!(
            watchdogs.is_empty(),
            "a watchdog was started: {watchdogs:?}"
        );
    }
}
