//! The hook through which a front end learns that a component is being
//! compiled (seconds for an interpreter-sized one), so that it can show
//! work rather than silence.

use std::path::Path;
use std::time::Duration;

/// Told when a component has to be compiled because no usable cache entry
/// exists. Set it in [`RuntimeConfig::compile_progress`](crate::RuntimeConfig::compile_progress).
pub trait CompileProgress: Send + Sync + std::fmt::Debug {
    /// Compilation of `component`, `bytes` long, starts; `cached` says
    /// whether the result will be stored for the next load.
    fn started(&self, component: &Path, bytes: u64, cached: bool);

    /// That compilation ended after `elapsed`; `succeeded` is false when the
    /// component did not compile.
    fn finished(&self, component: &Path, elapsed: Duration, succeeded: bool);
}
