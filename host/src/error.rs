//! Errors of the library: what a guest call can fail with, and what loading
//! a policy or a component can fail with.

use std::path::PathBuf;

/// Why a process-capability call failed. Each variant maps one-to-one onto
/// the WIT `error` variant the guest receives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The policy refused the call; the text names what was missing.
    #[error("denied: {0}")]
    Denied(String),
    /// No process with this id belongs to the caller.
    #[error("no process `{0}` belongs to this guest")]
    NotFound(String),
    /// The request is malformed or past a size limit.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A quota was reached.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The operating system refused to start the program.
    #[error("spawn failed: {0}")]
    SpawnFailed(String),
    /// The process ran past its timeout and was killed.
    #[error("timed out")]
    TimedOut,
    /// Another I/O failure.
    #[error("i/o error: {0}")]
    Io(String),
}

impl CallError {
    /// The short kind name used in audit records (`denied`, `not-found`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::NotFound(_) => "not-found",
            Self::Invalid(_) => "invalid",
            Self::LimitReached(_) => "limit-reached",
            Self::SpawnFailed(_) => "spawn-failed",
            Self::TimedOut => "timed-out",
            Self::Io(_) => "io",
        }
    }

    pub(crate) fn io(op: &str, err: std::io::Error) -> Self {
        Self::Io(format!("{op}: {err}"))
    }
}

/// Why a policy could not be loaded. Every message quotes the offending
/// entry and says what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The policy file is not valid TOML for the policy schema.
    #[error("policy file {path} is malformed: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, which quotes the line.
        message: String,
    },
    /// An entry is well-formed but wrong or contradicts another.
    #[error("policy entry {entry} is invalid: {reason}")]
    Entry {
        /// The entry, quoted as written.
        entry: String,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    pub(crate) fn entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Entry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }
}

/// Why a [`Runtime`](crate::Runtime) could not be created. Each variant
/// keeps wasmtime's error as its [`source`](std::error::Error::source), so
/// `{:#}` (anyhow) or a walk of the sources prints it in full.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot create the wasm engine")]
    Engine(#[source] wasmtime::Error),
    /// WASI or the process capability could not be added to the linker.
    #[error("cannot link the host interfaces")]
    Link(#[source] LinkError),
    /// The thread that advances the engine's epoch could not be started.
    #[error("cannot start the epoch thread")]
    EpochThread(#[source] std::io::Error),
}

/// Why an interface could not be added to a linker (a name defined twice,
/// say). Converts with `?` into `wasmtime::Error`, `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` alike, whatever wasmtime's features.
#[derive(Debug, thiserror::Error)]
#[error("cannot add `{interface}` to the linker")]
pub struct LinkError {
    interface: &'static str,
    #[source]
    source: wasmtime::Error,
}

impl LinkError {
    /// A failure to add `interface` to a linker.
    pub fn new(interface: &'static str, source: wasmtime::Error) -> Self {
        Self { interface, source }
    }

    /// The interface that could not be added.
    pub fn interface(&self) -> &'static str {
        self.interface
    }
}

/// `error` and each of its sources, joined by `: ` as anyhow's `{:#}`
/// prints them: the whole story of an error whose message leaves its cause
/// to [`source`](std::error::Error::source) ([`RuntimeError`], say).
pub fn display_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
