//! Signals a guest may send to its processes.

use crate::wit;

/// A signal a guest may send to one of its processes with
/// [`Child::signal`](crate::Child::signal). It reaches the whole process
/// group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `SIGTERM`: ask the process to stop.
    Terminate,
    /// `SIGKILL`: stop the process at once.
    Kill,
    /// `SIGINT`: as if Ctrl-C was pressed.
    Interrupt,
    /// `SIGHUP`: the terminal hung up; many daemons reload on it.
    Hangup,
    /// `SIGQUIT`: stop and dump core.
    Quit,
    /// `SIGUSR1`: meaning defined by the program.
    User1,
    /// `SIGUSR2`: meaning defined by the program.
    User2,
}

impl From<Signal> for wit::Signal {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Terminate => wit::Signal::Terminate,
            Signal::Kill => wit::Signal::Kill,
            Signal::Interrupt => wit::Signal::Interrupt,
            Signal::Hangup => wit::Signal::Hangup,
            Signal::Quit => wit::Signal::Quit,
            Signal::User1 => wit::Signal::User1,
            Signal::User2 => wit::Signal::User2,
        }
    }
}
