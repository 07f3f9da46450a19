//! The signals this process ignores, for the spawner: `execve` keeps an
//! ignored signal ignored (SIGPIPE, which Rust ignores; SIGINT and SIGQUIT,
//! which a shell ignores in a background job), so the child of a start sets
//! each of them back to the default before it executes the program. The
//! handlers the host installs need nothing: `clone3`'s
//! `CLONE_CLEAR_SIGHAND` resets them.
//!
//! Asking the kernel about every signal costs 62 system calls, which on a
//! virtual machine is 60–130 µs: more than the rest of the host's work for
//! a start. So the set is read here, at most once a second, and the child
//! makes one call per ignored signal only. A signal the host starts to
//! ignore less than a second before a start may reach that child ignored;
//! the stop sequence still ends such a child, with SIGKILL after its grace.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reading of the ignored signals is used.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The signals this process ignores: bit `n - 1` for signal `n`.
pub(crate) fn ignored_signals() -> u64 {
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some((read, set)) if read.elapsed() < FRESH_FOR => set,
        _ => {
            let set = read_ignored();
            *last = Some((Instant::now(), set));
            set
        }
    }
}

/// One `sigaction` query per signal.
fn read_ignored() -> u64 {
    let mut set = 0u64;
    for sig in 1..=libc::SIGRTMAX().min(64) {
        // SAFETY: a query only (no new action); `old` is written by the
        // kernel. Signals glibc keeps for itself answer EINVAL.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0
            && old.sa_sigaction == libc::SIG_IGN
        {
            set |= 1 << (sig - 1);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_signals_sees_sigpipe_good() {
        // Rust's runtime ignores SIGPIPE before `main`.
        assert_ne!(read_ignored() & (1 << (libc::SIGPIPE - 1)), 0);
        assert_eq!(read_ignored() & (1 << (libc::SIGCHLD - 1)), 0);
    }
}
