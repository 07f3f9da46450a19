//! The error type of every host call.

use std::fmt;
use std::io;

use crate::wit;

/// Why a call to the host failed.
///
/// The host never traps for a policy or operating-system failure: every such
/// failure arrives here, and the guest decides what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Error {
    /// The policy refused the call; the text names what was missing.
    Denied(String),
    /// No process with this id belongs to this guest; holds the id. From
    /// the `daemon` module (feature `daemon`): the host declares no daemon
    /// with this name; holds the name.
    NotFound(String),
    /// The request was malformed or out of range.
    Invalid(String),
    /// A quota was reached (live processes, start rate, registry entries).
    LimitReached(String),
    /// The operating system refused to start the program.
    SpawnFailed(String),
    /// The process ran past its timeout and was killed.
    TimedOut,
    /// Any other I/O failure while talking to the process.
    Io(String),
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Denied(text) => Error::Denied(text),
            wit::Error::NotFound(id) => Error::NotFound(id),
            wit::Error::Invalid(text) => Error::Invalid(text),
            wit::Error::LimitReached(text) => Error::LimitReached(text),
            wit::Error::SpawnFailed(text) => Error::SpawnFailed(text),
            wit::Error::TimedOut => Error::TimedOut,
            wit::Error::Io(text) => Error::Io(text),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Denied(why) => write!(f, "denied by policy: {why}"),
            Error::NotFound(id) => write!(f, "not found: no process or daemon `{id}`"),
            Error::Invalid(why) => write!(f, "invalid request: {why}"),
            Error::LimitReached(why) => write!(f, "limit reached: {why}"),
            Error::SpawnFailed(why) => write!(f, "failed to start: {why}"),
            Error::TimedOut => f.write_str("timed out: the process was killed"),
            Error::Io(why) => write!(f, "i/o error: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::Denied(_) => io::ErrorKind::PermissionDenied,
            Error::NotFound(_) => io::ErrorKind::NotFound,
            Error::Invalid(_) => io::ErrorKind::InvalidInput,
            Error::LimitReached(_) => io::ErrorKind::QuotaExceeded,
            Error::TimedOut => io::ErrorKind::TimedOut,
            Error::SpawnFailed(_) | Error::Io(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_io_error_with_matching_kind() {
        let io_error = io::Error::from(Error::Denied("no grant for `rm`".into()));
        assert_eq!(io_error.kind(), io::ErrorKind::PermissionDenied);
        assert!(io_error.to_string().contains("no grant for `rm`"));
        assert_eq!(
            io::Error::from(Error::TimedOut).kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn display_names_the_missing_grant() {
        let text = Error::Denied("program `git` is not granted".into()).to_string();
        assert_eq!(text, "denied by policy: program `git` is not granted");
    }
}
