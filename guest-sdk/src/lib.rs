//! Run host programs from a WebAssembly guest, with an API shaped like
//! [`std::process`].
//!
//! A wasmproc host grants its guests a `wasmproc:process` capability: every
//! call is checked against the guest's policy, and a refusal comes back as
//! [`Error::Denied`] naming the missing grant. This crate wraps that
//! capability in the familiar [`Command`], [`Child`] and [`Output`] types.
//!
//! Build guests for the `wasm32-wasip2` target. The crate also compiles for
//! native targets so that tools and docs work, but calling into the host
//! there panics.
//!
//! # Run a program to completion
//!
//! ```no_run
//! use wasmproc_guest::Command;
//!
//! let output = Command::new("git").args(["log", "--oneline", "-n", "5"]).output()?;
//! if output.status.success() {
//!     print!("{}", String::from_utf8_lossy(&output.stdout));
//! }
//! # Ok::<(), wasmproc_guest::Error>(())
//! ```
//!
//! # Talk to a program while it runs
//!
//! ```no_run
//! use std::io::{BufRead, Write};
//! use wasmproc_guest::{Command, Stdio};
//!
//! let mut child = Command::new("/usr/bin/sort").stdin(Stdio::piped()).spawn()?;
//! let mut stdin = child.stdin.take().expect("stdin is piped");
//! stdin.write_all(b"pear\napple\nfig\n")?;
//! drop(stdin); // end-of-file
//! let stdout = child.stdout.take().expect("stdout is piped by default");
//! for line in stdout.lines() {
//!     println!("sorted: {}", line?);
//! }
//! let status = child.wait()?;
//! println!("sort finished with {status}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the SDK differs from `std::process`
//!
//! - [`Child::kill`] sends `SIGTERM` first and `SIGKILL` only after the
//!   policy's grace period, so a process that exits on `SIGTERM` reports
//!   signal 15 where std reports 9.
//! - The environment of a started program starts empty: the guest's own
//!   environment is never inherited.
//! - A program the policy does not grant fails with [`Error::Denied`]
//!   (`PermissionDenied` as an [`std::io::Error`]) before any lookup, where
//!   std reports `NotFound` for a missing program.
//! - [`Command::spawn`] pipes stdout and stderr by default; std inherits
//!   them.
//!
//! # Supervised daemons
//!
//! With the cargo feature `daemon`, the `daemon` module reaches the
//! daemons a host supervises (`wasmproc serve`). A guest that calls it
//! imports the `daemon` interface and instantiates only on hosts that
//! provide it; without the feature the guest never imports it.

#![deny(missing_docs)]

mod child;
mod child_output;
mod child_stdin;
mod command;
#[cfg(feature = "daemon")]
pub mod daemon;
mod error;
mod info;
mod manifest;
mod output;
mod processes;
mod signal;
mod status;
mod stdio;

pub use child::Child;
pub use child_output::{ChildStderr, ChildStdout};
pub use child_stdin::ChildStdin;
pub use command::Command;
pub use error::Error;
pub use info::{ProcessInfo, State, StreamStats};
#[doc(hidden)]
pub use manifest::__manifest_bytes;
pub use output::Output;
pub use processes::list;
pub use signal::Signal;
pub use status::ExitStatus;
pub use stdio::{Buffering, Stdio};

/// Bindings generated from the `wasmproc:process` WIT package: the `guest`
/// world, or with the `daemon` feature the `supervised-guest` world, which
/// adds the `daemon` interface to the same `process` interface.
mod bindings {
    #[cfg(not(feature = "daemon"))]
    wit_bindgen::generate!({
        path: "../wit",
        world: "guest",
    });
    #[cfg(feature = "daemon")]
    wit_bindgen::generate!({
        path: "../wit",
        world: "supervised-guest",
    });
}

/// The generated host interface.
use bindings::wasmproc::process::process as host;
/// The generated types of the host interface.
use bindings::wasmproc::process::types as wit;
