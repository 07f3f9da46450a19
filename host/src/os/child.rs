//! A started child at the OS level: its pidfd, its cgroup, signals to its
//! process group, and reaping. Reaping consumes the handle, so a reaped PID
//! can never be signalled: the type system holds promise 1 of THREATS.md.
//! Killing it (SIGKILL) also writes its cgroup's `cgroup.kill`, which ends
//! the whole tree, `setsid` escapees included.

use crate::os::cgroup::{ProcessCgroup, Usage};
use crate::os::subreaper::reaper;
use crate::os::watchdog::Watchdog;
use crate::sys::process::{pidfd_open, wait_pid};
use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running (or exited but not yet reaped) child that leads its own
/// process group.
#[derive(Debug)]
pub(crate) struct OsChild {
    /// Whether the leader is still to be reaped.
    unreaped: bool,
    pid: u32,
    pidfd: Arc<OwnedFd>,
    watchdog: Arc<Watchdog>,
    cgroup: Option<ProcessCgroup>,
    /// Counts it as running for its owner; released once it is reaped.
    live: Option<LiveToken>,
}

impl OsChild {
    /// Takes ownership of a freshly spawned child (already in `cgroup`, if
    /// any) and tells the watchdog. `pidfd` is the child's if the start
    /// made one; otherwise one is opened here.
    pub(crate) fn new(
        pid: u32,
        pidfd: Option<OwnedFd>,
        watchdog: Arc<Watchdog>,
        cgroup: Option<ProcessCgroup>,
    ) -> io::Result<Self> {
        // Opened before anything can reap the child, so the pidfd refers to
        // this process and no other.
        let pidfd = match pidfd.map_or_else(|| pidfd_open(pid), Ok) {
            Ok(fd) => fd,
            Err(e) => {
                // SAFETY: killpg has no memory-safety preconditions.
                unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
                let _ = wait_pid(pid);
                reaper().release(pid);
                if let Some(cgroup) = cgroup {
                    cgroup.remove();
                }
                return Err(e);
            }
        };
        watchdog.track(pid);
        Ok(Self {
            unreaped: true,
            pid,
            pidfd: Arc::new(pidfd),
            watchdog,
            cgroup,
            live: None,
        })
    }

    /// Keeps `token` (it running, for its owner's live count) until the
    /// child is reaped.
    pub(crate) fn count_as_live(&mut self, token: LiveToken) {
        self.live = Some(token);
    }

    /// Memory peak and CPU time of its tree, where it has a cgroup.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.cgroup.as_ref().map(ProcessCgroup::usage)
    }

    /// The OS process id, which is also the process-group id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// A pidfd that becomes readable when the leader exits.
    pub(crate) fn pidfd(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.pidfd)
    }

    /// Sends a signal to the whole process group; SIGKILL also kills its
    /// cgroup, so processes that left the group die too. Safe against PID
    /// reuse: the leader is not reaped while `self` exists, so the group id
    /// stays reserved.
    pub(crate) fn signal_group(&self, signal: i32) -> io::Result<()> {
        if signal == libc::SIGKILL
            && let Some(cgroup) = &self.cgroup
            && let Err(e) = cgroup.kill()
        {
            tracing::warn!(pid = self.pid, error = %e, "cgroup.kill failed");
        }
        // SAFETY: killpg has no memory-safety preconditions.
        let rc = unsafe { libc::killpg(self.pid as libc::pid_t, signal) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // The group is empty: nothing left to signal.
            Some(libc::ESRCH) => Ok(()),
            _ => Err(err),
        }
    }

    /// Kills whatever is left of the group, then reaps the leader. Call once
    /// the leader has exited; called early, it kills the group first. Also
    /// returns the tree's final usage, read once nothing is left in its
    /// cgroup. The caller sweeps orphans afterwards
    /// ([`Reaper::reap_orphans`], which the process core batches: one sweep
    /// reads every child of the host).
    ///
    /// [`Reaper::reap_orphans`]: crate::os::subreaper::Reaper::reap_orphans
    pub(crate) fn reap(mut self) -> (io::Result<ExitStatus>, Option<Usage>) {
        let _ = self.signal_group(libc::SIGKILL);
        let usage = self.usage();
        (self.finish_killed(), usage)
    }

    fn finish(&mut self) -> io::Result<ExitStatus> {
        let _ = self.signal_group(libc::SIGKILL);
        self.finish_killed()
    }

    /// Reaps the leader once its group has been sent SIGKILL.
    fn finish_killed(&mut self) -> io::Result<ExitStatus> {
        debug_assert!(self.unreaped, "reaped once");
        self.unreaped = false;
        self.watchdog.untrack(self.pid);
        let status = wait_pid(self.pid);
        self.live = None;
        reaper().release(self.pid);
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove();
        }
        status
    }
}

impl Drop for OsChild {
    fn drop(&mut self) {
        if self.unreaped {
            let _ = self.finish();
            reaper().reap_orphans();
        }
    }
}

/// One started process counted as running for its owner until it is
/// reaped: the child holds it and drops it when reaped, so the owner's
/// live count is a counter read, not a walk over every record.
#[derive(Debug)]
pub(crate) struct LiveToken(Arc<AtomicUsize>);

impl LiveToken {
    /// Counts one more on `running` until the token drops.
    pub(crate) fn count(running: &Arc<AtomicUsize>) -> Self {
        running.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(running))
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
