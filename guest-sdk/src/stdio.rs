//! Where a background process's standard streams go, and how output is kept.

use crate::wit;

/// What a standard stream of a spawned process is connected to.
///
/// Used with [`Command::stdin`](crate::Command::stdin),
/// [`Command::stdout`](crate::Command::stdout) and
/// [`Command::stderr`](crate::Command::stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stdio(pub(crate) wit::StdioMode);

impl Stdio {
    /// Connect the stream to `/dev/null`.
    pub fn null() -> Self {
        Stdio(wit::StdioMode::Null)
    }

    /// Connect the stream to a pipe, read through the fields
    /// [`Child::stdout`](crate::Child::stdout) and
    /// [`Child::stderr`](crate::Child::stderr) or written through
    /// [`Child::stdin`](crate::Child::stdin).
    pub fn piped() -> Self {
        Stdio(wit::StdioMode::Piped)
    }

    /// Share the host's own stream, where the policy allows it.
    pub fn inherit() -> Self {
        Stdio(wit::StdioMode::Inherit)
    }
}

/// How the host keeps the piped output of a spawned process until the guest
/// reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Buffering {
    /// Keep every byte. When the buffer is full the host stops reading the
    /// pipe, so the process waits as it would on a real pipe.
    #[default]
    Lossless,
    /// Keep the newest bytes and count the dropped ones, so the process never
    /// waits. For fire-and-forget logs.
    Ring,
}

impl From<Buffering> for wit::Buffering {
    fn from(buffering: Buffering) -> Self {
        match buffering {
            Buffering::Lossless => wit::Buffering::Lossless,
            Buffering::Ring => wit::Buffering::Ring,
        }
    }
}
