//! End-to-end tests through real guest components (and, where no wasm is
//! needed, through the host API directly). One binary, so each guest is
//! compiled once.

mod audit;
mod capability;
mod contain;
mod permission;
mod policy;
mod process;
mod runtime;
mod security;
mod stream;
