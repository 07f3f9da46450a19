#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the harness runs the wasmproc CLI as a child process"
)]

/// Paths of the test guest components, built by build.rs.
pub mod guests;
/// Shared helpers: runtimes, policies, running guests, inspecting processes.
pub mod harness;
/// A minimal HTTP client for `wasmproc serve`'s endpoints.
pub mod http;
/// Observing the OS: processes by marker, zombies, fds, memory.
pub mod os;
/// The Python and JavaScript example guests.
pub mod polyglot;
/// Measures of many live processes (scale test and benchmark).
pub mod scale;
/// The READMEs' code blocks and the scratch crates that build them.
pub mod snippets;
/// The soak: `wasmproc serve` under faults for minutes (`src/bin/soak.rs`).
pub mod soak;
