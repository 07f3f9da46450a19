//! Helpers shared by the test guests.

use wasmproc_guest::Error;

/// The WIT name of an error's case, e.g. `not-found`.
pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Denied(_) => "denied",
        Error::NotFound(_) => "not-found",
        Error::Invalid(_) => "invalid",
        Error::LimitReached(_) => "limit-reached",
        Error::SpawnFailed(_) => "spawn-failed",
        Error::TimedOut => "timed-out",
        Error::Io(_) => "io",
    }
}

/// The text an error carries, if any (the id, for `not-found`).
pub fn error_detail(error: &Error) -> Option<&str> {
    match error {
        Error::Denied(text)
        | Error::NotFound(text)
        | Error::Invalid(text)
        | Error::LimitReached(text)
        | Error::SpawnFailed(text)
        | Error::Io(text) => Some(text),
        Error::TimedOut => None,
    }
}
