//! Reading the OS state tests assert on, from `/proc`.

use std::time::{Duration, Instant};

/// PIDs whose `/proc/<pid>/<file>` (NUL-separated) holds `needle` as one
/// entry.
fn pids_with_entry(file: &str, needle: &[u8]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/{file}"))
                .map(|bytes| bytes.split(|b| *b == 0).any(|entry| entry == needle))
                .unwrap_or(false)
        })
        .collect()
}

/// PIDs of live (non-zombie) processes whose environment holds `VAR=value`.
pub fn pids_with_env(var: &str, value: &str) -> Vec<i32> {
    let mut pids = pids_with_entry("environ", format!("{var}={value}").as_bytes());
    pids.retain(|pid| !is_zombie(*pid));
    pids
}

/// PIDs of processes, zombies included (a zombie has not been reaped yet),
/// with `arg` as one of their command-line arguments.
pub fn pids_with_arg(arg: &str) -> Vec<i32> {
    pids_with_entry("cmdline", arg.as_bytes())
}

/// Whether `pid` is a zombie.
pub fn is_zombie(pid: i32) -> bool {
    stat_field(pid, 0).as_deref() == Some("Z")
}

/// Process group and session of `pid`.
pub fn group_and_session(pid: i32) -> Option<(i32, i32)> {
    Some((
        stat_field(pid, 2)?.parse().ok()?,
        stat_field(pid, 3)?.parse().ok()?,
    ))
}

/// Field `n` (0 = state) after the command name in `/proc/<pid>/stat`.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(n).map(str::to_string)
}

/// Zombie children of this process.
pub fn zombie_children() -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_field(*pid, 1).as_deref() == Some(me.as_str()) && is_zombie(*pid))
        .count()
}

/// Processes in one process group: how many are live and how many are
/// zombies not reaped yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCensus {
    /// Live members.
    pub live: usize,
    /// Zombie members.
    pub zombies: usize,
}

/// The members of process group `group`, zombies included.
pub fn group_census(group: i32) -> GroupCensus {
    let wanted = group.to_string();
    let mut census = GroupCensus::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return census;
    };
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok() else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|at| &stat[at + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split(' ').take(3).collect();
        if fields.get(2) != Some(&wanted.as_str()) {
            continue;
        }
        if fields[0] == "Z" {
            census.zombies += 1;
        } else {
            census.live += 1;
        }
    }
    census
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

/// Polls `check` until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
