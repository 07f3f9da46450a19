//! How a process ended.

use std::fmt;

use crate::wit;

/// How a process ended: an exit code or a terminating signal.
///
/// Like [`std::process::ExitStatus`] on Unix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(Ending);

/// The two ways a process can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ending {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        self.0 == Ending::Exited(0)
    }

    /// The exit code, or `None` if a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            Ending::Exited(code) => Some(code),
            Ending::Signaled(_) => None,
        }
    }

    /// The number of the signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0 {
            Ending::Exited(_) => None,
            Ending::Signaled(number) => Some(number),
        }
    }
}

impl From<wit::ExitStatus> for ExitStatus {
    fn from(status: wit::ExitStatus) -> Self {
        match status {
            wit::ExitStatus::Exited(code) => ExitStatus(Ending::Exited(code)),
            wit::ExitStatus::Signaled(number) => ExitStatus(Ending::Signaled(number)),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ending::Exited(code) => write!(f, "exit status: {code}"),
            Ending::Signaled(number) => match signal_name(number) {
                Some(name) => write!(f, "signal: {number} ({name})"),
                None => write!(f, "signal: {number}"),
            },
        }
    }
}

/// The conventional name of a Linux signal number.
fn signal_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_zero_is_success() {
        let status = ExitStatus::from(wit::ExitStatus::Exited(0));
        assert!(status.success());
        assert_eq!(status.code(), Some(0));
        assert_eq!(status.signal(), None);
        assert_eq!(status.to_string(), "exit status: 0");
    }

    #[test]
    fn signal_is_not_success() {
        let status = ExitStatus::from(wit::ExitStatus::Signaled(9));
        assert!(!status.success());
        assert_eq!(status.code(), None);
        assert_eq!(status.signal(), Some(9));
        assert_eq!(status.to_string(), "signal: 9 (SIGKILL)");
    }
}
