//! The hook through which a front end learns that a component is being
//! compiled (seconds for an interpreter-sized one), so that it can show
//! work rather than silence.

use crate::embed::compiler::Tier;
use std::path::Path;
use std::time::Duration;

/// Told when a component has to be compiled because no usable cache entry
/// exists. Set it in [`RuntimeConfig::compile_progress`](crate::RuntimeConfig::compile_progress).
pub trait CompileProgress: Send + Sync + std::fmt::Debug {
    /// Compilation of `component`, `bytes` long, starts in the foreground
    /// (a load waits for it) by the compiler of `tier`; `cached` says
    /// whether the result will be stored for the next load. With
    /// [`Compiler::Auto`](crate::embed::Compiler::Auto) a miss compiles the
    /// baseline tier here and the optimized one in the background.
    fn started(&self, component: &Path, bytes: u64, cached: bool, tier: Tier);

    /// That compilation ended after `elapsed`; `succeeded` is false when the
    /// component did not compile.
    fn finished(&self, component: &Path, elapsed: Duration, succeeded: bool);

    /// The optimized tier of `component`, compiled in the background after
    /// a baseline load, is in the cache after `elapsed`: later loads use
    /// it. Called from the background thread. By default, nothing.
    fn optimized_ready(&self, component: &Path, elapsed: Duration) {
        let _ = (component, elapsed);
    }

    /// The optimized tier's background compile of `component` was
    /// abandoned because the runtime shut down first; the next load starts
    /// it again. Called from the thread that shut the runtime down. By
    /// default, nothing.
    fn optimized_abandoned(&self, component: &Path) {
        let _ = component;
    }
}
