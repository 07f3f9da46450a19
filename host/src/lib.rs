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
//! 2. each call is admitted by the guest's [`Policy`] and the plugin's own
//!    manifest together ([`Admission`]), deny-by-default, and audited
//!    ([`audit`]). Denials are WIT errors, never traps.
//!
//! A guest sees and touches only the processes it started ([`ProcessCtx`]
//! is one guest session); all processes live in a shared
//! [`ProcessManager`], whose `shutdown().await` stops them gracefully.
//!
//! Run `wasi:cli/command` components with [`Runtime`] ([`Runtime::load`]
//! gives a [`Plugin`], its manifest read), async ([`Runtime::run_async`])
//! or not ([`Runtime::run`]); or embed the capability in a `Linker` and
//! world of your own through [`add_to_linker_async`] and [`ProcessView`]
//! (reusing the generated interface from [`wit::bindings`]).
//!
//! The modules are the crate's layers, each importing only those below it
//! (ARCHITECTURE.md draws them): [`embed`], [`wit`], [`session`],
//! [`process`], [`os`], [`manifest`], [`policy`], and at the base
//! [`audit`] and [`error`].

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
