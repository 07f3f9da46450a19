//! The host as a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process
//! orphaned anywhere below a child the host started comes back to the host
//! instead of to init. That closes two gaps:
//! - a process forked (and orphaned) in the microseconds between
//!   `posix_spawn` returning and the child being moved into its cgroup is
//!   still the host's to find, kill and reap;
//! - without cgroups, a `setsid` escapee whose parent exited is a child of
//!   the host, which kills it at shutdown.
//!
//! Orphans that end become zombies of the host, so the host reaps them.
//! It never reaps a process it started itself (those are reaped by their
//! owner, which reads the exit status), nor one an embedding application
//! started: an orphan is recognised by its cgroup (one of the host's
//! subtrees), its session (a `setsid` escapee has its own), or its process
//! group (one the host created).

use crate::cgroup::{self, SUBTREE_PREFIX};
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

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
    session: i32,
    active: bool,
}

/// The reaper; the first call makes the host a subreaper.
pub(crate) fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot become a child subreaper");
        }
        Reaper {
            gate: RwLock::new(()),
            known: Mutex::new(Known::default()),
            // SAFETY: getsid(0) has no preconditions.
            session: unsafe { libc::getsid(0) },
            active: rc == 0,
        }
    })
}

impl Reaper {
    /// Held around a spawn until [`Reaper::register`].
    pub(crate) fn spawning(&self) -> RwLockReadGuard<'_, ()> {
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

    /// Forgets a child once its owner has reaped it.
    pub(crate) fn release(&self, pid: u32) {
        self.known().leaders.remove(&pid);
    }

    /// Whether `pid`, a child of the host it did not start, is an orphan
    /// from below one of the host's children: `Some(true)` if a cgroup of
    /// a host holds it, `Some(false)` if it escaped without one.
    fn orphan(&self, pid: u32, known: &Known) -> Option<bool> {
        if known.leaders.contains(&pid) {
            return None;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let in_subtree = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .is_some_and(|p| {
                p.split('/').any(|part| {
                    part.starts_with(SUBTREE_PREFIX) && part != format!("{SUBTREE_PREFIX}host")
                })
            });
        if in_subtree {
            return Some(true);
        }
        let (group, session) = group_and_session(pid)?;
        (session != self.session || known.groups.contains(&group)).then_some(false)
    }

    /// Reaps orphans that have ended. Cheap when there is no zombie child.
    pub(crate) fn reap_orphans(&self) {
        if !self.active || !has_zombie_child() {
            return;
        }
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let known = self.known();
        for pid in cgroup::children_of(std::process::id()) {
            if is_zombie(pid) && self.orphan(pid, &known).is_some() {
                // SAFETY: waitpid on our own zombie child; WNOHANG never blocks.
                unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
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
            let known = self.known();
            for pid in cgroup::children_of(std::process::id()) {
                if !is_zombie(pid) && self.orphan(pid, &known) == Some(false) {
                    // SAFETY: `pid` is an unreaped child of this process, so
                    // the number cannot have been reused.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        // Give the kernel a moment to turn them into zombies, then reap.
        for _ in 0..50 {
            self.reap_orphans();
            if !has_zombie_child() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Whether any child of the host is a zombie (without reaping it).
fn has_zombie_child() -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOWAIT only inspects; WNOHANG never blocks.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled `info` (si_pid stays 0 when nothing is waiting).
    rc == 0 && unsafe { info.si_pid() } != 0
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
