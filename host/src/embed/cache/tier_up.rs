//! `auto`'s second tier: after a component was compiled (or found) with
//! Winch, Cranelift compiles it in a background thread of lower priority
//! and stores the entry that every later load prefers.
//!
//! Nothing waits for it. The entry is written like every other (a temporary
//! file renamed over the final name), so a host killed mid-compile leaves at
//! most a temporary file that is never read (and is swept later). A runtime
//! that shuts down first abandons its compiles ([`TierUps::abandon`]): an
//! entry being written is finished, none is started afterwards, and the
//! next load with only the baseline entry starts the compile again.

use super::entry;
use super::key::{entry_path, key};
use super::progress::CompileProgress;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How much nicer than the host the background thread runs (Linux applies
/// a thread's nice value to that thread alone).
const NICENESS: libc::c_int = 10;

/// One background compile to the optimized tier.
pub(crate) struct TierUp {
    /// The configuration of the engine whose entries win, without an
    /// instance pool (nothing is instantiated here); compiled without
    /// parallelism, so the whole compile stays on the nice thread.
    pub config: Config,
    /// The cache key of the optimized entry, from the runtime's engine.
    pub key: [u8; 32],
    /// Where to store it.
    pub dir: PathBuf,
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// The component's path, for messages.
    pub path: PathBuf,
    /// Told when the optimized entry is stored, or abandoned.
    pub progress: Option<Arc<dyn CompileProgress>>,
    /// Whether `progress` is told of an abandoned compile.
    pub announce_abandon: bool,
}

/// The background compiles of one runtime, abandoned together when it
/// shuts down. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub(crate) struct TierUps {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for TierUps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("TierUps")
            .field("abandoned", &state.abandoned)
            .field("running", &state.running.len())
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Set by [`TierUps::abandon`]: nothing more is started or stored.
    abandoned: bool,
    /// The compiles running now, by key.
    running: HashMap<[u8; 32], Running>,
}

/// A compile in flight, for the message when it is abandoned.
struct Running {
    path: PathBuf,
    /// Told if it is abandoned.
    progress: Option<Arc<dyn CompileProgress>>,
}

impl TierUps {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `job` in a background thread, unless this runtime compiles
    /// the same key already or has shut down.
    pub(crate) fn spawn(&self, job: TierUp) {
        let key = job.key;
        {
            let mut state = self.lock();
            if state.abandoned || state.running.contains_key(&key) {
                return;
            }
            state.running.insert(
                key,
                Running {
                    path: job.path.clone(),
                    progress: job.progress.clone().filter(|_| job.announce_abandon),
                },
            );
        }
        let tier_ups = self.clone();
        let spawned = std::thread::Builder::new()
            .name("wasmproc-tier-up".into())
            .spawn(move || {
                lower_priority();
                tier_ups.run(&job);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the optimizing compile in the background: {e}");
            self.lock().running.remove(&key);
        }
    }

    /// Abandons every compile still running: waits for an entry being
    /// written to be complete, then lets none be stored; each abandoned
    /// component's progress hook is told. Later spawns do nothing.
    pub(crate) fn abandon(&self) {
        let abandoned: Vec<Running> = {
            let mut state = self.lock();
            state.abandoned = true;
            state.running.drain().map(|(_, running)| running).collect()
        };
        for running in abandoned {
            tracing::info!(
                component = %running.path.display(),
                "the optimizing (Cranelift) compile was abandoned at shutdown; the next load starts it again"
            );
            if let Some(progress) = &running.progress {
                progress.optimized_abandoned(&running.path);
            }
        }
    }

    /// Compiles `job` and stores its entry, unless abandoned meanwhile.
    fn run(&self, job: &TierUp) {
        let started = Instant::now();
        let compiled = compile(job);
        let mut state = self.lock();
        if state.abandoned {
            return;
        }
        state.running.remove(&job.key);
        let Some(artifact) = compiled else {
            return;
        };
        let path = entry_path(&job.dir, &job.key);
        // Written under the lock: `abandon` waits for a whole entry.
        if let Err(e) = entry::write(&job.dir, &path, &job.key, &artifact) {
            tracing::warn!(entry = %path.display(), "cannot store the optimized component: {e}");
            return;
        }
        drop(state);
        let elapsed = started.elapsed();
        tracing::info!(
            component = %job.path.display(),
            seconds = elapsed.as_secs_f64(),
            "optimized (Cranelift) code cached; later loads use it"
        );
        if let Some(progress) = &job.progress {
            progress.optimized_ready(&job.path, elapsed);
        }
    }
}

/// The optimized artifact of `job`, or `None` (logged) if it cannot be
/// made or would not be found under `job.key`.
fn compile(job: &TierUp) -> Option<Vec<u8>> {
    let mut config = job.config.clone();
    config.parallel_compilation(false);
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::warn!("cannot create the optimizing engine: {e:#}");
            return None;
        }
    };
    if key(&engine, &job.bytes) != job.key {
        tracing::warn!("the optimizing engine's cache key differs from the runtime's; not stored");
        return None;
    }
    match Component::new(&engine, &job.bytes).and_then(|c| c.serialize()) {
        Ok(artifact) => Some(artifact),
        Err(e) => {
            tracing::warn!(component = %job.path.display(), "the optimizing compile failed: {e:#}");
            None
        }
    }
}

/// Makes the calling thread nicer than the rest of the host.
fn lower_priority() {
    // SAFETY: plain system calls on this thread's own id.
    let result = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, NICENESS)
    };
    if result != 0 {
        tracing::debug!(
            "cannot lower the background compile's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
