//! What the host holds at one moment, read from `/proc` and the cgroup
//! file system: its fds, threads and resident memory, its descendants
//! (live and zombie), and the cgroups of its subtree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The host's resources at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Open file descriptors of the host process.
    pub fds: usize,
    /// Threads of the host process.
    pub threads: usize,
    /// Resident memory of the host process, in KiB.
    pub rss_kib: u64,
    /// Cgroups in the host's subtrees (`None` without cgroup containment).
    pub cgroups: Option<usize>,
    /// Zombie descendants of the host.
    pub zombies: usize,
    /// Live descendants of the host.
    pub live: usize,
}

/// One `/proc/<pid>/stat` line's state and parent.
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after = stat[stat.rfind(')')? + 2..].split(' ');
    let state = after.next()?.chars().next()?;
    let parent = after.next()?.parse().ok()?;
    Some((state, parent))
}

/// The descendants of `root`, each with its state (`Z` for a zombie).
pub fn descendants(root: i32) -> Vec<(i32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<(i32, char)>> = HashMap::new();
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if let Some((state, parent)) = state_and_parent(pid) {
            children.entry(parent).or_default().push((pid, state));
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &(child, state) in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            found.push((child, state));
            next.push(child);
        }
    }
    found
}

/// A number from a `Name:   value` line of `/proc/<pid>/status`.
fn status_number(pid: i32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Where the cgroup2 file system is mounted, if it is.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The subtrees the host `pid` made in its own cgroup
/// (`<host cgroup>/wasmproc-<pid>-<n>`).
pub fn host_subtrees(pid: i32) -> Vec<PathBuf> {
    let Some(mount) = cgroup2_mount() else {
        return Vec::new();
    };
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return Vec::new();
    };
    let base = mount.join(path.trim_start_matches('/'));
    let prefix = format!("wasmproc-{pid}-");
    std::fs::read_dir(&base)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Every cgroup directory at or below `dir`.
pub fn cgroups_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let mut at = 0;
    while at < found.len() {
        if let Ok(entries) = std::fs::read_dir(&found[at]) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    found.push(entry.path());
                }
            }
        }
        at += 1;
    }
    found
}

impl Census {
    /// Counts what the host `pid` holds now.
    pub fn of(pid: i32) -> Self {
        let tree = descendants(pid);
        let subtrees = host_subtrees(pid);
        Self {
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0),
            threads: status_number(pid, "Threads") as usize,
            rss_kib: status_number(pid, "VmRSS"),
            cgroups: (!subtrees.is_empty())
                .then(|| subtrees.iter().map(|s| cgroups_below(s).len()).sum()),
            zombies: tree.iter().filter(|(_, s)| *s == 'Z').count(),
            live: tree.iter().filter(|(_, s)| *s != 'Z').count(),
        }
    }
}
