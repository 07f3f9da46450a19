//! A cap on the live descendants of each guest session (the policy's
//! `max_descendants`), held by a census the process core takes, so it holds
//! where no cgroup `pids.max` can (no cgroups, or no pids controller).
//!
//! Every so often (at least [`CENSUS_INTERVAL`] apart, and never more than
//! 1/[`CENSUS_SHARE`] of the time) one pass over `/proc` finds every live
//! process below a process the host started: by parent chain, or by the
//! process group the host created (an orphan that the subreaper took back
//! keeps it). A session over its cap has its newest descendants killed
//! down to the cap, together with the processes that forked them (a
//! process the host started among them: its monitor then kills its
//! group), and its `run` and `start` calls are refused until it is under
//! the cap again. A fork loop thus ends at the first census that finds it
//! past the cap, however fast it forks. A census is skipped while every
//! live process the host started is younger than [`CENSUS_MIN_AGE`]: a
//! fork loop is found that much later at most, and the short runs that
//! make up most of a host's work never pay for a pass over `/proc`.

use crate::audit::{Audit, AuditEvent};
use crate::process::managed::Process;
use crate::types::Signal;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// The shortest time between two censuses.
pub(crate) const CENSUS_INTERVAL: Duration = Duration::from_millis(100);

/// The age below which a process the host started does not call for a
/// census on its own (most runs end sooner).
pub(crate) const CENSUS_MIN_AGE: Duration = Duration::from_millis(20);

/// A census takes at most one part in this many of the time: the wait
/// after one is this many times as long as it took.
pub(crate) const CENSUS_SHARE: u32 = 20;

/// One session's cap and what the last census found.
#[derive(Debug)]
struct Cap {
    max: usize,
    guest: String,
    audit: Audit,
    /// Live descendants the last census found (before its kills).
    live: usize,
}

/// The caps of every session of one process manager.
#[derive(Debug, Default)]
pub(crate) struct DescendantCaps {
    caps: Mutex<HashMap<String, Cap>>,
}

/// A session over its cap, as admission reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverCap {
    /// Live descendants at the last census.
    pub live: usize,
    /// The cap.
    pub max: usize,
}

impl DescendantCaps {
    fn caps(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cap>> {
        self.caps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caps the descendants of `owner` (the session) at `max`; kills are
    /// audited as `guest`'s.
    pub(crate) fn register(&self, owner: &str, guest: &str, max: u32, audit: Audit) {
        self.caps().insert(
            owner.to_string(),
            Cap {
                max: max as usize,
                guest: guest.to_string(),
                audit,
                live: 0,
            },
        );
    }

    /// Forgets a session that ended.
    pub(crate) fn forget(&self, owner: &str) {
        self.caps().remove(owner);
    }

    /// Whether any session is capped (no census is taken otherwise).
    pub(crate) fn any(&self) -> bool {
        !self.caps().is_empty()
    }

    /// `Some` if `owner` had as many live descendants as its cap, or more,
    /// at the last census: a new process would take it past the cap.
    pub(crate) fn over(&self, owner: &str) -> Option<OverCap> {
        let caps = self.caps();
        let cap = caps.get(owner)?;
        (cap.live >= cap.max).then_some(OverCap {
            live: cap.live,
            max: cap.max,
        })
    }

    /// Takes one census of the descendants of `leaders` (the live
    /// processes the host started, with their owners), kills the newest of
    /// each session past its cap, and records the counts.
    pub(crate) fn census(&self, processes: &[(String, Arc<Process>)]) {
        let leaders: Vec<(String, u32)> = processes
            .iter()
            .map(|(owner, p)| (owner.clone(), p.facts().pid))
            .collect();
        let owners: HashSet<&str> = {
            let caps = self.caps();
            leaders
                .iter()
                .map(|(owner, _)| owner.as_str())
                .filter(|owner| caps.contains_key(*owner))
                .collect()
        };
        let mut found: HashMap<String, Vec<Proc>> = HashMap::new();
        if !owners.is_empty() {
            let by_leader: HashMap<u32, &str> = leaders
                .iter()
                .filter(|(owner, _)| owners.contains(owner.as_str()))
                .map(|(owner, pid)| (*pid, owner.as_str()))
                .collect();
            for (owner, proc) in attribute(scan(), &by_leader) {
                found.entry(owner.to_string()).or_default().push(proc);
            }
        }
        let mut caps = self.caps();
        for (owner, cap) in caps.iter_mut() {
            let mut procs = found.remove(owner).unwrap_or_default();
            let found_live = procs.len();
            if found_live <= cap.max {
                cap.live = found_live;
                continue;
            }
            // The newest past the cap go, and whatever forked them: a
            // fork loop would otherwise refill the count before the next
            // census.
            procs.sort_by_key(|p| std::cmp::Reverse(p.start));
            let (excess, kept) = procs.split_at(found_live - cap.max);
            let forkers: HashSet<u32> = excess.iter().map(|p| p.ppid).collect();
            let killed = excess.iter().filter(|p| kill_if_same(p)).count()
                + kept
                    .iter()
                    .filter(|p| forkers.contains(&p.pid) && kill_if_same(p))
                    .count();
            // Through its record: the signal goes to its group only while
            // it is unreaped, so the pid cannot name another process.
            let leaders_killed = processes
                .iter()
                .filter(|(o, p)| o == owner && forkers.contains(&p.facts().pid))
                .filter(|(_, p)| p.signal(Signal::Kill).is_ok())
                .count();
            // Counted as found until the next census sees the kills done:
            // starts stay refused meanwhile.
            cap.live = found_live;
            cap.audit.record(
                AuditEvent::new(&cap.guest, "descendants-killed").reason(format!(
                    "{found_live} live descendants, past max_descendants = {}: killed {killed} of them (the newest and what forked them) and {leaders_killed} of the guest's processes that forked them",
                    cap.max
                )),
            );
        }
    }
}

/// What a census keeps of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    group: u32,
    /// Start time, in clock ticks after boot (field 22 of `stat`).
    start: u64,
}

/// Every live (not zombie) process on the machine, from `/proc`.
fn scan() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// One process's parent, group and start time, if it is live.
fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// Parses `/proc/<pid>/stat`; `None` for a zombie or a malformed line.
fn parse_stat(pid: u32, stat: &str) -> Option<Proc> {
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split(' ').collect();
    // After the command: state (3rd field of the line), ppid, pgrp, …,
    // starttime (22nd field of the line).
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The processes below a leader (leaders themselves excluded), with the
/// leader's owner: by parent chain, or by a leader's process group.
fn attribute<'a>(procs: Vec<Proc>, by_leader: &HashMap<u32, &'a str>) -> Vec<(&'a str, Proc)> {
    let parent: HashMap<u32, u32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut memo: HashMap<u32, Option<&'a str>> = HashMap::new();
    let mut out = Vec::new();
    for proc in procs {
        if by_leader.contains_key(&proc.pid) {
            continue;
        }
        let owner = by_leader
            .get(&proc.group)
            .copied()
            .or_else(|| owner_by_parents(proc.ppid, &parent, by_leader, &mut memo));
        if let Some(owner) = owner {
            out.push((owner, proc));
        }
    }
    out
}

/// The owner of the first leader up the parent chain from `pid` (itself
/// included), remembering the answer for every process on the way.
fn owner_by_parents<'a>(
    pid: u32,
    parent: &HashMap<u32, u32>,
    by_leader: &HashMap<u32, &'a str>,
    memo: &mut HashMap<u32, Option<&'a str>>,
) -> Option<&'a str> {
    let mut chain = Vec::new();
    let mut at = pid;
    let owner = loop {
        if let Some(owner) = by_leader.get(&at) {
            break Some(*owner);
        }
        if let Some(known) = memo.get(&at) {
            break *known;
        }
        match parent.get(&at) {
            // Bounded: a parent chain has no cycle, but a racing scan could
            // read one; stop at the machine's pid count.
            Some(&up) if up > 1 && chain.len() <= parent.len() => {
                chain.push(at);
                at = up;
            }
            _ => break None,
        }
    };
    for pid in chain {
        memo.insert(pid, owner);
    }
    owner
}

/// Kills `proc` if the pid still names the process the census saw: the
/// pidfd pins it, and its start time must match.
fn kill_if_same(proc: &Proc) -> bool {
    let Ok(pidfd) = crate::sys::process::pidfd_open(proc.pid) else {
        return false;
    };
    if read_proc(proc.pid).is_none_or(|now| now.start != proc.start) {
        return false;
    }
    // SAFETY: pidfd_send_signal on a pidfd this function owns, no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, group: u32) -> Proc {
        Proc {
            pid,
            ppid,
            group,
            start: u64::from(pid),
        }
    }

    #[test]
    fn descendants_stat_parse_good() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1";
        let proc = parse_stat(42, line).unwrap();
        assert_eq!((proc.ppid, proc.group, proc.start), (7, 42, 12345));
        let zombie = "43 (x) Z 7 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1";
        assert_eq!(parse_stat(43, zombie), None, "a zombie is not live");
        assert_eq!(parse_stat(44, "44 (x"), None);
    }

    #[test]
    fn descendants_attributed_by_parent_and_group_good() {
        // 10 and 20 are leaders of two sessions. 11 and 12 are below 10 by
        // parent; 13 is an orphan the host took back (parent 1 here) still
        // in group 10; 21 is below 20; 30 belongs to no one, nor does its
        // child 31.
        let procs = vec![
            p(10, 5, 10),
            p(11, 10, 10),
            p(12, 11, 12),
            p(13, 1, 10),
            p(20, 5, 20),
            p(21, 20, 20),
            p(30, 1, 30),
            p(31, 30, 30),
        ];
        let leaders = HashMap::from([(10, "a"), (20, "b")]);
        let mut got: Vec<(&str, u32)> = attribute(procs, &leaders)
            .into_iter()
            .map(|(owner, p)| (owner, p.pid))
            .collect();
        got.sort_unstable();
        assert_eq!(got, [("a", 11), ("a", 12), ("a", 13), ("b", 21)]);
    }

    #[test]
    fn descendants_parent_cycle_ends_bad() {
        // A scan that raced with exits may read a loop; it ends.
        let procs = vec![p(50, 51, 50), p(51, 50, 51)];
        let leaders = HashMap::from([(10, "a")]);
        assert!(attribute(procs, &leaders).is_empty());
    }
}
