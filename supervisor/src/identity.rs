//! Who a process is: its PID together with its start time
//! (`/proc/<pid>/stat` field 22) and the boot it started in. A bare PID can
//! be given to a stranger once its process is gone; the triple cannot, so
//! PID files and registry entries are trusted, and processes signalled, only
//! when the whole identity still matches.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
#[cfg(doc)]
use wasmproc_host::process::StopPlan;
use wasmproc_host::process::{Deadline, KILL_WAIT};

/// A process identity that survives PID reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The PID.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// What is known about the process a recorded identity names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The very process is still running.
    Alive,
    /// No process has that PID (or only a zombie does).
    Dead,
    /// The PID now belongs to another process (different start time or boot).
    Reused,
}

impl ProcessIdentity {
    /// The identity of a running process, `None` if it is gone.
    pub fn of(pid: u32) -> Option<Self> {
        Some(Self {
            pid,
            start_time: start_time(pid)?,
            boot_id: boot_id(),
        })
    }

    /// The identity of this process.
    pub fn current() -> Self {
        Self::of(std::process::id()).expect("this process exists")
    }

    /// Whether the recorded process is still the one running under its PID.
    pub fn liveness(&self) -> Liveness {
        if self.pid == 0 || self.boot_id != boot_id() {
            return if self.pid != 0 && start_time(self.pid).is_some() {
                Liveness::Reused
            } else {
                Liveness::Dead
            };
        }
        match stat_fields(self.pid) {
            None => Liveness::Dead,
            Some(f) if f.state == "Z" || f.state == "X" => Liveness::Dead,
            Some(f) if f.start_time == self.start_time => Liveness::Alive,
            Some(_) => Liveness::Reused,
        }
    }
}

struct StatFields {
    state: String,
    pgrp: u32,
    start_time: u64,
}

fn stat_fields(pid: u32) -> Option<StatFields> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the
    // last `)`. Fields after it start at field 3 (state).
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split(' ').collect();
    Some(StatFields {
        state: fields.first()?.to_string(),
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The start time of `pid` (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|f| f.start_time)
}

/// The id of the current boot; empty if the kernel does not say.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Stops a process the host did not start (a leftover of a crashed host),
/// by identity, on the host's graceful stop plan ([`StopPlan::graceful`]:
/// `signal`, SIGKILL after `grace`, at most [`KILL_WAIT`] more). It cannot be a
/// host [`Process`](wasmproc_host::process::Process): it is not this
/// host's child, so it has no monitor and is never reaped here; it is
/// watched through a pidfd instead. The identity is checked *after* the
/// pidfd is opened (so the pidfd cannot refer to a stranger). Its process
/// group is signalled too when it leads one, but only while the leader is
/// verifiably alive, so the group id cannot have been recycled. Returns
/// whether the process was ours to stop (`false`: it was already gone or
/// its PID belongs to someone else, and nothing was sent).
pub fn stop_verified(id: &ProcessIdentity, signal: i32, grace: Duration) -> io::Result<bool> {
    // The deadline of the host's graceful stop plan.
    let deadline = Deadline::after(grace.saturating_add(KILL_WAIT));
    let pidfd = match wasmproc_host::os::pidfd_open(id.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
        Err(e) => return Err(e),
    };
    if id.liveness() != Liveness::Alive {
        return Ok(false);
    }
    let leads_group = stat_fields(id.pid).is_some_and(|f| f.pgrp == id.pid);
    send(&pidfd, id.pid, leads_group, signal)?;
    if wait_exit(&pidfd, grace) {
        return Ok(true);
    }
    send(&pidfd, id.pid, leads_group, libc::SIGKILL)?;
    wait_exit(&pidfd, deadline.remaining().unwrap_or(KILL_WAIT));
    Ok(true)
}

fn send(pidfd: &OwnedFd, pid: u32, group: bool, signal: i32) -> io::Result<()> {
    if group && !wait_exit(pidfd, Duration::ZERO) {
        // The leader is alive, so its PID (and group id) is not recycled.
        if let Ok(sig) = nix::sys::signal::Signal::try_from(signal) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }
    // SAFETY: pidfd_send_signal on a pidfd we own; null info is allowed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

/// Waits up to `limit` for the process behind `pidfd` to exit.
fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match nix::poll::poll(&mut fds, timeout) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            // Interrupted: wait out the rest.
            Err(_) if !left.is_zero() => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_identity_good() {
        let me = ProcessIdentity::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        assert!(!me.boot_id.is_empty());
    }

    #[test]
    fn daemon_identity_bad() {
        let mut me = ProcessIdentity::current();
        me.start_time += 1;
        assert_eq!(
            me.liveness(),
            Liveness::Reused,
            "same PID, other start time"
        );
        let mut other_boot = ProcessIdentity::current();
        other_boot.boot_id = "00000000-0000-0000-0000-000000000000".into();
        assert_eq!(
            other_boot.liveness(),
            Liveness::Reused,
            "same PID, other boot"
        );
        // A reused identity is never signalled.
        assert!(!stop_verified(&me, libc::SIGKILL, Duration::ZERO).expect("no error"));
    }

    #[test]
    fn daemon_identity_ugly() {
        let nobody = ProcessIdentity {
            pid: u32::MAX / 2,
            start_time: 1,
            boot_id: boot_id(),
        };
        assert_eq!(nobody.liveness(), Liveness::Dead);
        assert!(!stop_verified(&nobody, libc::SIGTERM, Duration::ZERO).expect("no error"));
        let zero = ProcessIdentity {
            pid: 0,
            start_time: 0,
            boot_id: boot_id(),
        };
        assert_eq!(zero.liveness(), Liveness::Dead);
    }
}
