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

pub mod audit;
mod deadline;
pub mod embed;
pub mod error;
pub mod manifest;
pub mod os;
pub mod policy;
pub mod process;
pub mod session;
mod sys;
mod types;
pub mod wit;

pub use embed::{GuestError, GuestOptions, GuestStdio, Plugin, Runtime, RuntimeConfig};
pub use error::CallError;
pub use policy::Policy;
pub use process::ProcessManager;
pub use session::{Admission, ProcessCtx};
pub use wit::{ProcessView, add_to_linker_async, add_to_linker_sync};

/// The Rust code blocks of the repository's README, compiled (and those
/// not marked `no_run`, run) as doctests, so the README cannot drift from
/// the API. Blocks for guests are marked `ignore` here and built for
/// `wasm32-wasip2` by the test `readme_snippets_compile`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
