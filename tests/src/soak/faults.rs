//! The faults the soak inflicts on the host: SIGKILL to a random child,
//! a lowered open-file limit (so starts fail with EMFILE), and a cgroup of
//! the host's subtree killed and removed under it.

use super::census::{cgroups_below, descendants, host_subtrees};
use super::random::Random;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends SIGKILL to one random live descendant of `host`; returns its PID.
pub fn kill_random_child(host: i32, random: &mut Random) -> Option<i32> {
    let live: Vec<i32> = descendants(host)
        .into_iter()
        .filter(|(_, state)| *state != 'Z')
        .map(|(pid, _)| pid)
        .collect();
    let pid = *random.pick(&live)?;
    // SAFETY: a signal to a process the soak chose from the host's tree.
    (unsafe { libc::kill(pid, libc::SIGKILL) } == 0).then_some(pid)
}

/// The soft and hard open-file limits of `pid`.
fn nofile(pid: i32, new: Option<libc::rlimit>) -> std::io::Result<libc::rlimit> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let new_ptr = new.as_ref().map_or(std::ptr::null(), |n| n as *const _);
    // SAFETY: valid pointers to rlimit structs (or null for `new`).
    if unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, new_ptr, &mut old) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(old)
}

/// A lowered open-file limit of another process, restored on drop.
#[derive(Debug)]
pub struct LoweredNofile {
    pid: i32,
    old: libc::rlimit,
}

impl LoweredNofile {
    /// Sets `pid`'s soft limit to what it has open now plus `spare`.
    pub fn lower(pid: i32, spare: u64) -> std::io::Result<Self> {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
        let old = nofile(pid, None)?;
        nofile(
            pid,
            Some(libc::rlimit {
                rlim_cur: (open + spare).min(old.rlim_cur),
                rlim_max: old.rlim_max,
            }),
        )?;
        Ok(Self { pid, old })
    }
}

impl Drop for LoweredNofile {
    fn drop(&mut self) {
        if let Err(e) = nofile(self.pid, Some(self.old)) {
            eprintln!("soak: cannot restore the host's open-file limit: {e}");
        }
    }
}

/// Kills the processes of one random cgroup below the host's subtrees
/// (a guest's, a daemon's or a process's) and removes it. Returns the
/// directory removed, `None` if there was none to remove.
pub fn remove_random_cgroup(host: i32, random: &mut Random) -> Option<String> {
    let subtrees = host_subtrees(host);
    let below: Vec<_> = subtrees
        .iter()
        .flat_map(|s| cgroups_below(s).into_iter().skip(1))
        .collect();
    let dir = random.pick(&below)?;
    remove_cgroup(dir).then(|| dir.display().to_string())
}

/// `cgroup.kill`, then `rmdir` once it is empty (children first).
fn remove_cgroup(dir: &Path) -> bool {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut all = cgroups_below(dir);
    all.reverse();
    for cgroup in all {
        loop {
            match std::fs::remove_dir(&cgroup) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return false,
            }
        }
    }
    true
}
