//! The host as a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process
//! orphaned anywhere below a child the host started comes back to the host
//! instead of to init. That closes two gaps:
//! - where the kernel cannot start a child inside its cgroup, a process
//!   forked (and orphaned) in the microseconds between the spawner's start
//!   returning and the child being moved into its cgroup is still the
//!   host's to find, kill and reap;
//! - without cgroups, a `setsid` escapee whose parent exited is a child of
//!   the host, which kills it at shutdown.
//!
//! Orphans that end become zombies of the host, so the host reaps them.
//! It never reaps a process it started itself (those are reaped by their
//! owner, which reads the exit status), nor one an embedding application
//! started. An orphan is recognised by what only the host's own trees
//! have:
//! - its cgroup: the subtree of one of this host's process managers;
//! - its process group: one the host created for a child it started
//!   (a group id is not reused while any process is in the group, and
//!   groups found empty are forgotten).
//!
//! A `setsid` escapee without cgroups has neither. A process that starts
//! no children of its own, such as the `wasmproc` binary, says so with
//! [`claim_foreign_sessions`]; then a child in a session other than the
//! host's counts as an orphan too, as it can only come from the host's
//! trees. An embedder that starts its own children does not call it, and
//! its children are never touched.

use crate::os::cgroup;
use crate::sys::containment::SUBTREE_PREFIX;
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::unistd::{Pid, getsid};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

/// The number of live children up to which [`Reaper::orphan_waiting`]
/// asks the kernel (a walk of them) rather than scheduling a sweep.
pub(crate) const WAITID_WALK_MAX: usize = 64;

/// Process groups remembered after their leader is reaped, so orphans still
/// in them are recognised.
const GROUP_MEMORY: usize = 4096;

#[derive(Debug, Default)]
struct Known {
    /// Children the host started and has not reaped yet.
    leaders: HashSet<u32>,
    /// Groups the host created, most recent last.
    groups: VecDeque<u32>,
}

/// Process-wide record of the host's own children.
#[derive(Debug)]
pub(crate) struct Reaper {
    /// Spawns hold it shared until the child is registered; a scan holds it
    /// exclusively, so it never mistakes a fresh child for an orphan.
    gate: RwLock<()>,
    known: Mutex<Known>,
    session: Option<Pid>,
    active: bool,
    /// Whether every child in another session is the host's (set by
    /// [`claim_foreign_sessions`]).
    foreign_sessions: AtomicBool,
}

/// Declares that this process starts no children of its own outside
/// wasmproc, so that every child in a session other than this process's
/// is an orphan of the host's trees: without cgroups, a `setsid` escapee
/// whose parent exited is then killed when a process manager shuts down.
///
/// The `wasmproc` binary calls it. An application that embeds the host and
/// starts children of its own in new sessions must not: its children would
/// be taken for escapees. Without this call the host touches only children
/// in its cgroup subtrees or in process groups it created.
pub fn claim_foreign_sessions() {
    reaper().foreign_sessions.store(true, Ordering::Relaxed);
}

/// The reaper; the first call makes the host a subreaper.
pub(crate) fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        let became = prctl::set_child_subreaper(true);
        if let Err(e) = became {
            tracing::warn!(error = %e, "cannot become a child subreaper");
        }
        Reaper {
            gate: RwLock::new(()),
            known: Mutex::new(Known::default()),
            session: getsid(None).ok(),
            active: became.is_ok(),
            foreign_sessions: AtomicBool::new(false),
        }
    })
}

impl Reaper {
    /// Held around a start until [`Reaper::register`].
    pub(crate) fn registering(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a child the host started (and, if it leads one, its group).
    pub(crate) fn register(&self, pid: u32, leads_group: bool) {
        let mut known = self.known();
        known.leaders.insert(pid);
        if leads_group {
            if known.groups.len() >= GROUP_MEMORY {
                known.groups.pop_front();
            }
            known.groups.push_back(pid);
        }
    }

    /// How many children the host started and has not reaped yet.
    pub(crate) fn leader_count(&self) -> usize {
        self.known().leaders.len()
    }

    /// Forgets a child once its owner has reaped it.
    pub(crate) fn release(&self, pid: u32) {
        self.known().leaders.remove(&pid);
    }

    /// Whether `pid`, a child of the host it did not start, is an orphan
    /// from below one of the host's children: `Some(true)` if a cgroup
    /// subtree of this host holds it, `Some(false)` if it is outside them
    /// but in a group the host created (or, with
    /// [`claim_foreign_sessions`], in another session).
    fn orphan(&self, pid: u32, known: &Known) -> Option<bool> {
        if known.leaders.contains(&pid) {
            return None;
        }
        if in_own_subtree(pid) {
            return Some(true);
        }
        let (group, session) = group_and_session(pid)?;
        let claimed = self.foreign_sessions.load(Ordering::Relaxed)
            && self.session.is_some_and(|own| own.as_raw() != session);
        (known.groups.contains(&group) || claimed).then_some(false)
    }

    /// Forgets groups that no process is in any more: their ids may be
    /// reused, by anyone, from now on.
    fn forget_empty_groups(known: &mut Known) {
        known.groups.retain(|&group| {
            killpg(Pid::from_raw(group as i32), None::<Signal>) != Err(Errno::ESRCH)
        });
    }

    /// Whether an orphan may be waiting to be reaped, in one `waitid`: a
    /// zombie child that is not a leader still to be reaped by its owner
    /// (whose reap asks again). A reap and each `SIGCHLD` ask this before
    /// scheduling a sweep, so the ends of the host's own children, nearly
    /// all of them, cost no sweep.
    ///
    /// With more than [`WAITID_WALK_MAX`] children it answers yes without
    /// asking: the kernel's `waitid` walks every child of the host that is
    /// not a zombie (about 0.1 ms at 6,000 live, and every reap and
    /// `SIGCHLD` would pay it), where the sweep it schedules is spaced by
    /// the number of children and so costs a share of a core that does not
    /// grow with them.
    pub(crate) fn orphan_waiting(&self) -> bool {
        if !self.active {
            return false;
        }
        if self.leader_count() > WAITID_WALK_MAX {
            return true;
        }
        first_zombie_child().is_some_and(|pid| !self.known().leaders.contains(&pid))
    }

    /// Reaps orphans that have ended. Cheap when there is no zombie child,
    /// or when the first one is a leader the host started: its monitor
    /// reaps it and asks for another sweep, which then sees past it.
    pub(crate) fn reap_orphans(&self) {
        if !self.active {
            return;
        }
        match first_zombie_child() {
            None => return,
            Some(pid) if self.known().leaders.contains(&pid) => return,
            // A leader its monitor reaped (and forgot) since it was seen:
            // that reap asks for a sweep of its own.
            Some(pid) if !is_zombie_child(pid) => return,
            Some(_) => {}
        }
        self.sweep();
    }

    /// Reaps every zombie child that is an orphan (reads /proc only for
    /// children that are not the host's own leaders).
    fn sweep(&self) {
        // The scan of every child, and the skip of the host's own leaders
        // (a hash lookup each), happen before the gate is taken: starts
        // wait on it. A child started meanwhile and not registered yet is
        // checked again under the gate, registered by then.
        let candidates: Vec<u32> = {
            let children = cgroup::children_of(std::process::id());
            let known = self.known();
            children
                .into_iter()
                .filter(|pid| !known.leaders.contains(pid))
                .collect()
        };
        if candidates.is_empty() {
            return;
        }
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let known = self.known();
        for pid in candidates {
            if self.orphan(pid, &known).is_some() && is_zombie(pid) {
                // Our own zombie child; WNOHANG never blocks.
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        }
    }

    /// Kills and reaps every live orphan that no cgroup of the host holds
    /// (escapees of process groups, and anything forked before its parent
    /// was moved into a cgroup). Called when the host's processes stop.
    pub(crate) fn kill_orphans(&self) {
        if !self.active {
            return;
        }
        {
            let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
            let mut known = self.known();
            Self::forget_empty_groups(&mut known);
            for pid in cgroup::children_of(std::process::id()) {
                if self.orphan(pid, &known) == Some(false) && !is_zombie(pid) {
                    // `pid` is an unreaped child of this process, so the
                    // number cannot have been reused.
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
            }
        }
        // Give the kernel a moment to turn them into zombies, then reap.
        for _ in 0..50 {
            self.sweep();
            if !has_zombie_child() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Whether `pid` is in the cgroup subtree of one of this host's process
/// managers (`wasmproc-<host pid>-<n>`, see [`cgroup`]).
fn in_own_subtree(pid: u32) -> bool {
    let own = format!("{SUBTREE_PREFIX}{}-", std::process::id());
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|path| path.split('/').any(|part| part.starts_with(&own)))
}

/// A zombie child of the host, if there is one (without reaping it).
fn first_zombie_child() -> Option<u32> {
    // WNOWAIT only inspects; WNOHANG never blocks.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::All, flags) {
        Ok(status) => status.pid().map(|pid| pid.as_raw() as u32),
        Err(_) => None,
    }
}

/// Whether `pid` is still a zombie child of the host (without reaping it).
fn is_zombie_child(pid: u32) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(
        waitid(Id::Pid(Pid::from_raw(pid as i32)), flags),
        Ok(status) if status.pid().is_some()
    )
}

/// Whether any child of the host is a zombie (without reaping it).
fn has_zombie_child() -> bool {
    first_zombie_child().is_some()
}

fn stat_after_comm(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat[stat.rfind(')')? + 2..].to_string())
}

fn is_zombie(pid: u32) -> bool {
    stat_after_comm(pid).is_some_and(|s| s.starts_with('Z'))
}

/// Process group and session of `pid`.
fn group_and_session(pid: u32) -> Option<(u32, i32)> {
    let rest = stat_after_comm(pid)?;
    let mut fields = rest.split(' ').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::spawner::{StdioPlan, spawn};
    use crate::policy::Approved;
    use crate::types::StdioMode;
    use std::time::{Duration, Instant};

    #[test]
    fn subreaper_zombie_child_seen_until_reaped_good() {
        // A leader that has ended is a zombie child until its owner reaps
        // it, and then it is not: a sweep check that saw it as a zombie
        // before the reap needs no sweep after.
        let cmd = Approved {
            program: "/bin/true".into(),
            arg0: "true".into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        };
        let quiet = StdioPlan {
            stdin: StdioMode::Null,
            stdout: StdioMode::Null,
            stderr: StdioMode::Null,
        };
        let pid = spawn(&cmd, quiet, None).unwrap().pid;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_zombie_child(pid) {
            assert!(Instant::now() < deadline, "`true` never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(is_zombie_child(pid), "looking does not reap");
        crate::sys::process::wait_pid(pid).unwrap();
        reaper().release(pid);
        assert!(!is_zombie_child(pid), "reaped, it is gone");
    }
}
