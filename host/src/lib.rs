//! # wasmproc-host
//!
//! A WebAssembly component host that is the only code allowed to start
//! operating-system processes, and grants guests a WIT-defined `process`
//! capability (`wasmproc:process/process`): run, start, kill, list, get,
//! wait, signal, and streaming stdin/stdout/stderr.
//!
//! Permission is by registration, in two layers:
//! 1. a guest gets the capability only if the host calls
//!    [`add_to_linker_async`] (or [`add_to_linker_sync`]);
//! 2. each call is checked against the guest's [`Policy`], deny-by-default,
//!    and audited ([`Audit`]). Denials are WIT errors, never traps.
//!
//! A guest sees and touches only the processes it started ([`ProcessCtx`]
//! is one guest session); all processes live in a shared
//! [`ProcessManager`], which stops them when a session or the host ends.
//!
//! Embed it with your own `Linker` and world through [`add_to_linker_async`]
//! and [`ProcessView`] (reusing the generated interface from [`bindings`] in
//! a `bindgen!` of your own), or use [`Runtime`] to run `wasi:cli/command`
//! components, async ([`Runtime::run_async`]) or not ([`Runtime::run`]).

mod audit;
pub mod embed;
mod error;
pub mod lifecycle;
pub mod manifest;
pub mod os;
pub mod policy;
pub mod process;
pub mod session;
pub(crate) mod sys;
mod types;
pub mod wit;

pub use audit::{
    AUDIT_BURST_BYTES, AUDIT_BYTES_PER_SECOND, Audit, AuditCounts, AuditEvent, AuditSink,
    JsonLinesSink, MAX_FIELD_BYTES, SUPPRESSED_INTERVAL,
};
pub use embed::cache::{
    CacheConfig, CacheError, CacheStatus, CompileError, CompileProgress, ComponentCache,
    UntrustedFile,
};
pub use embed::compiler::{Compiler, Tier, UnknownCompiler};
pub use embed::pool::{
    GUEST_SLOT_BYTES, InstancePool, MAX_DEFAULT_GUESTS, MIN_DEFAULT_GUESTS, NoSlot, WhenFull,
};
pub use embed::runtime::{
    GuestError, GuestInstance, GuestOptions, GuestOutcome, GuestPre, GuestState, GuestStdio,
    Runtime, RuntimeConfig,
};
pub use error::{CallError, LinkError, PolicyError, RuntimeError, display_chain};
pub use os::cgroup::{Containment, MissingController, OFF_VAR as CGROUPS_OFF_VAR, Usage};
pub use os::subreaper::claim_foreign_sessions;
pub use os::{atomic_file, confine};
pub use policy::cgroup_limits::{BadValue, CgroupLimits, InvalidCgroupLimit};
pub use policy::limits::{Limits, LimitsError};
pub use policy::{Policy, PolicyBuilder};
pub use process::buffer::{Buffering, Chunk, CursorPastEnd, StreamStats};
pub use process::core_runtime::block_on;
pub use process::managed::{ProcessFacts, ProcessSnapshot};
pub use process::manager::ProcessManager;
pub use session::ctx::{CommandSpec, ProcessCtx, RunOutput, StartSpec, StdioMode};
pub use types::{Exit, ProcState, Signal, UnknownSignal};
pub use wit::bindings;
pub use wit::bindings::CAPABILITY_NAME;
pub use wit::linker::{HasProcess, ProcessView, add_to_linker_async, add_to_linker_sync};

/// The Rust code blocks of the repository's README, compiled (and those
/// not marked `no_run`, run) as doctests, so the README cannot drift from
/// the API. Blocks for guests are marked `ignore` here and built for
/// `wasm32-wasip2` by the test `readme_snippets_compile`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
