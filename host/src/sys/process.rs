//! Raw process calls the OS layer and the supervisor share: waiting for a
//! child by pid, opening a pidfd, and asking whether a pid is anyone's.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Waits for the child `pid` to end and reaps it.
pub(crate) fn wait_pid(pid: u32) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into `status`.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if rc >= 0 {
            return Ok(ExitStatus::from_raw(status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether no process has `pid` (`kill(pid, 0)` fails with `ESRCH`): what a
/// leftover named for its maker's pid is judged by. A pid beyond what the
/// kernel hands out is no process's; a process of another user, or a zombie,
/// still has its pid.
pub fn pid_gone(pid: u32) -> bool {
    match i32::try_from(pid) {
        Ok(pid) if pid > 0 => {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
        }
        _ => true,
    }
}

/// A pidfd for `pid` (`pidfd_open(2)`): a handle that names this process
/// and no other, even after its pid is reused.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns; pidfds
    // are always close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, once per host
/// process, as Go's runtime does: every live piped process holds three fds
/// (pidfd, stdout, stderr), and the default soft limit would cap the count
/// of processes long before memory does.
pub(crate) fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) if soft < hard => {
                if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                    tracing::warn!(error = %e, soft, hard, "cannot raise the soft fd limit");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the fd limit"),
        }
    });
}
