//! End-to-end tests through real guest components (and, where no wasm is
//! needed, through the host API directly). One binary, so each guest is
//! compiled once.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the tests run the wasmproc CLI and the embedder's own children"
)]

mod audit;
mod capability;
mod cli_grants;
mod concurrency;
mod confine;
mod contain;
mod embed;
mod grant;
mod permission;
mod policy;
mod pool;
mod process;
mod readme;
mod reap;
mod registry;
mod runtime;
mod scale;
mod sdk_parity;
mod security;
mod stream;
mod subreaper;
mod tier;
