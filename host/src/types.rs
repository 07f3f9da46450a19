//! The domain types of a managed process: how it ended ([`Exit`]), where it
//! is in its life ([`ProcState`]), the signals a host may send it
//! ([`Signal`]) and where its standard streams go ([`StdioMode`]).
//!
//! A leaf module: it depends on nothing else in the crate.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::str::FromStr;

/// Where a managed process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running, or exited and not yet reaped.
    Running,
    /// Ended on its own.
    Exited,
    /// Ended after the host was asked to stop or signal it.
    Killed,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit code.
    Code(i32),
    /// Terminating signal number.
    Signal(i32),
}

impl Exit {
    /// Converts an OS exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(sig)) => Self::Signal(sig),
            (None, None) => Self::Code(-1),
        }
    }

    /// Whether the process exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// A signal the host sends to a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: asks the process to end.
    Term,
    /// SIGKILL: ends it at once.
    Kill,
    /// SIGINT: an interrupt, as from Ctrl-C.
    Int,
    /// SIGHUP: its terminal hung up; many daemons reload on it.
    Hup,
    /// SIGQUIT: quit, usually with a core dump.
    Quit,
    /// SIGUSR1: application-defined.
    Usr1,
    /// SIGUSR2: application-defined.
    Usr2,
}

impl Signal {
    /// Every signal, in the order above.
    pub const ALL: [Self; 7] = [
        Self::Term,
        Self::Kill,
        Self::Int,
        Self::Hup,
        Self::Quit,
        Self::Usr1,
        Self::Usr2,
    ];

    /// The operating system's number for it.
    pub fn number(self) -> i32 {
        match self {
            Self::Term => libc::SIGTERM,
            Self::Kill => libc::SIGKILL,
            Self::Int => libc::SIGINT,
            Self::Hup => libc::SIGHUP,
            Self::Quit => libc::SIGQUIT,
            Self::Usr1 => libc::SIGUSR1,
            Self::Usr2 => libc::SIGUSR2,
        }
    }

    /// The signal with this number, if it is one of these.
    pub fn from_number(number: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == number)
    }

    /// Its name without the `SIG` prefix (`TERM`).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Kill => "KILL",
            Self::Int => "INT",
            Self::Hup => "HUP",
            Self::Quit => "QUIT",
            Self::Usr1 => "USR1",
            Self::Usr2 => "USR2",
        }
    }

    /// Whether its default action ends the process (all but the user
    /// signals): a process ended after one of these counts as killed.
    pub fn ends_process(self) -> bool {
        !matches!(self, Self::Usr1 | Self::Usr2)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIG{}", self.short_name())
    }
}

/// A signal name that is not one of [`Signal`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signal `{0}`: expected one of TERM, KILL, INT, HUP, QUIT, USR1, USR2 (with or without the SIG prefix)"
)]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Parses `SIGTERM` or `TERM` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Self::ALL
            .into_iter()
            .find(|sig| sig.short_name() == name)
            .ok_or_else(|| UnknownSignal(s.to_string()))
    }
}

/// Where a child's standard stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioMode {
    /// `/dev/null`.
    Null,
    /// A pipe to the host.
    Piped,
    /// The host's own stream (if the policy allows it).
    Inherit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_parse_names_good() {
        for sig in Signal::ALL {
            assert_eq!(sig.to_string().parse::<Signal>(), Ok(sig));
            assert_eq!(sig.short_name().parse::<Signal>(), Ok(sig));
            assert_eq!(Signal::from_number(sig.number()), Some(sig));
        }
        assert_eq!("sigterm".parse::<Signal>(), Ok(Signal::Term));
        assert_eq!(Signal::Term.number(), libc::SIGTERM);
    }

    #[test]
    fn signal_parse_unknown_bad() {
        let err = "SIGSEGV".parse::<Signal>().unwrap_err();
        assert!(
            err.to_string().contains("unknown signal `SIGSEGV`"),
            "{err}"
        );
        assert!("".parse::<Signal>().is_err());
        assert_eq!(Signal::from_number(libc::SIGSEGV), None);
    }
}
