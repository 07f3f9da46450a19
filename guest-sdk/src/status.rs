//! How a process ended.

use std::fmt;

use crate::wit;

/// How a process ended: an exit code or a terminating signal.
///
/// Like [`std::process::ExitStatus`] on Unix, down to its `Display`
/// (`exit status: 1`, `signal: 9 (SIGKILL)`) and `Debug`
/// (`ExitStatus(unix_wait_status(256))`, the raw wait status).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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

impl ExitStatus {
    /// The status as `waitpid` reports it: the exit code in bits 8 to 15,
    /// or the signal number in the low 7 bits.
    fn wait_status(self) -> i32 {
        match self.0 {
            Ending::Exited(code) => (code & 0xff) << 8,
            Ending::Signaled(number) => number & 0x7f,
        }
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std's `ExitStatus` wraps the platform's, whose `Debug` is
        // `unix_wait_status(N)`.
        write!(f, "ExitStatus(unix_wait_status({}))", self.wait_status())
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

/// The name of a Linux signal number, for every signal std names.
fn signal_name(number: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let index = usize::try_from(number).ok()?.checked_sub(1)?;
    NAMES.get(index).copied()
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

    #[test]
    fn status_display_and_debug_match_std_good() {
        let exited = ExitStatus::from(wit::ExitStatus::Exited(1));
        assert_eq!(exited.to_string(), "exit status: 1");
        assert_eq!(format!("{exited:?}"), "ExitStatus(unix_wait_status(256))");
        let terminated = ExitStatus::from(wit::ExitStatus::Signaled(15));
        assert_eq!(terminated.to_string(), "signal: 15 (SIGTERM)");
        assert_eq!(
            format!("{terminated:?}"),
            "ExitStatus(unix_wait_status(15))"
        );
        let hangup = ExitStatus::from(wit::ExitStatus::Signaled(1));
        assert_eq!(hangup.to_string(), "signal: 1 (SIGHUP)");
        let system = ExitStatus::from(wit::ExitStatus::Signaled(31));
        assert_eq!(system.to_string(), "signal: 31 (SIGSYS)");
        let realtime = ExitStatus::from(wit::ExitStatus::Signaled(40));
        assert_eq!(realtime.to_string(), "signal: 40");
    }
}
