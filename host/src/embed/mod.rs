//! The embedding layer: the [`Runtime`] that loads and
//! runs `wasi:cli/command` components with the capability linked, the
//! instance pool, the compiled-component cache and the compiler choice.
//!
//! The top layer: it may import every other one.

pub(crate) mod cache;
pub(crate) mod compiler;
pub(crate) mod guest_limits;
pub(crate) mod plugin;
pub(crate) mod pool;
pub(crate) mod runtime;

pub use cache::{
    CacheConfig, CacheError, CacheStatus, CompileError, CompileProgress, ComponentCache,
    UntrustedFile,
};
pub use compiler::{Compiler, Tier, UnknownCompiler};
pub use plugin::Plugin;
pub use pool::{
    GUEST_SLOT_BYTES, InstancePool, MAX_DEFAULT_GUESTS, MIN_DEFAULT_GUESTS, NoSlot, WhenFull,
};
pub use runtime::{
    GuestError, GuestInstance, GuestOptions, GuestOutcome, GuestPre, GuestState, GuestStdio,
    Runtime, RuntimeConfig,
};
