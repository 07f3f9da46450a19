//! Out-of-process cleanup for when the host dies without shutting down.
//!
//! `PR_SET_PDEATHSIG` needs code in the child (which forces the slow fork
//! path of process creation), fires when the spawning *thread* exits, and reaches only
//! the direct child, not the grandchildren in its group. Instead, a tiny
//! watchdog process waits for the host to go away, then kills every process
//! group still listed in a table the host keeps.
//!
//! The table is an in-memory file (`memfd`) shared with the watchdog: one
//! fixed-width text line per slot, `0` in a free one. The host maps the
//! file and writes a slot after each spawn and clears it just before
//! reaping the group's leader: a store into shared memory, with no system
//! call, which wakes nobody (the watchdog sleeps on a lifeline pipe the
//! host never writes to). When the host exits for any reason, SIGKILL
//! included, the kernel closes the pipe; the watchdog reads the table and
//! kills what is listed. A leader is reaped only after its slot is cleared,
//! so the watchdog never signals a recycled process-group id. A slot holds
//! the group id twice, and the watchdog skips a line whose halves differ,
//! so a host killed in the middle of a store never gets a torn id killed.
//!
//! Where the host has cgroups, the watchdog also writes `cgroup.kill` of
//! the manager's cgroup subtree, which reaches processes that left their
//! group, and then removes the subtree's cgroups.

use crate::os::spawner;
use memmap2::{MmapMut, MmapOptions};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::Mutex;

const AWK_PATHS: &[&str] = &["/usr/bin/awk", "/bin/awk", "/usr/bin/mawk", "/usr/bin/gawk"];
/// One table line: the group id twice, each right-aligned in 10 columns.
const SLOT_BYTES: usize = 22;
/// A free slot, as the watchdog reads it.
const FREE_SLOT: &[u8; SLOT_BYTES] = b"         0          0\n";
/// Slots the table starts with; it doubles when they are all in use.
const FIRST_SLOTS: usize = 1024;

/// The slot table of live process groups.
#[derive(Debug, Default)]
struct Table {
    /// The memfd the watchdog reads, and the host's mapping of it; `None`
    /// without a watchdog, or once the table could not grow.
    shared: Option<(File, MmapMut)>,
    slots: HashMap<u32, usize>,
    free: Vec<usize>,
    used: usize,
}

impl Table {
    /// A table in `file` (empty), mapped, every slot free.
    fn new(file: File) -> std::io::Result<Self> {
        let map = Self::grow(&file, 0, FIRST_SLOTS)?;
        Ok(Self {
            shared: Some((file, map)),
            ..Self::default()
        })
    }

    /// Grows `file` from `old_len` bytes to `slots` slots, marks the new
    /// ones free, and maps all of it.
    fn grow(file: &File, old_len: usize, slots: usize) -> std::io::Result<MmapMut> {
        let len = slots * SLOT_BYTES;
        let blank: Vec<u8> = FREE_SLOT.repeat(slots - old_len / SLOT_BYTES);
        file.write_all_at(&blank, old_len as u64)?;
        // SAFETY: the memfd is this table's alone (the watchdog only reads
        // it, after the host is gone) and never shrinks, so the mapping
        // stays valid and nothing else changes it under the host.
        unsafe { MmapOptions::new().len(len).map_mut(file) }
    }

    fn write(&mut self, slot: usize, pgid: u32) {
        if let Some((file, map)) = &self.shared
            && slot >= map.len() / SLOT_BYTES
        {
            let grown = Self::grow(file, map.len(), (slot + 1).max(map.len() / SLOT_BYTES * 2));
            match grown {
                Ok(bigger) => {
                    if let Some((_, map)) = &mut self.shared {
                        *map = bigger;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watchdog table lost: children may outlive a killed host");
                    self.shared = None;
                }
            }
        }
        let Some((_, map)) = &mut self.shared else {
            return;
        };
        let line = &mut map[slot * SLOT_BYTES..(slot + 1) * SLOT_BYTES];
        // Cannot fail: 10 digits hold any u32, and the line is 22 bytes.
        let _ = writeln!(&mut line[..], "{pgid:>10} {pgid:>10}");
    }
}

/// Why the watchdog could not be started.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    #[error("no awk found (looked in {})", AWK_PATHS.join(", "))]
    NoAwk,
    #[error("memfd_create: {0}")]
    Table(#[source] nix::Error),
    #[error("cannot share the table: {0}")]
    Share(#[source] std::io::Error),
    #[error("cannot map the table: {0}")]
    Map(#[source] std::io::Error),
    #[error("cannot start awk: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The watchdog process, its lifeline and the table it reads.
#[derive(Debug)]
pub(crate) struct Watchdog {
    table: Mutex<Table>,
    lifeline: Mutex<Option<ChildStdin>>,
    process: Mutex<Option<Child>>,
}

impl Watchdog {
    /// Starts the watchdog. Without `awk` on the machine the host still
    /// works, but children may outlive a host that is SIGKILLed; this is
    /// logged as a warning.
    pub(crate) fn start(cgroup: Option<&Path>) -> Self {
        match Self::launch(cgroup) {
            Ok((table, mut child)) => Self {
                table: Mutex::new(table),
                lifeline: Mutex::new(child.stdin.take()),
                process: Mutex::new(Some(child)),
            },
            Err(why) => {
                tracing::warn!(%why, "watchdog not started: children may outlive a killed host");
                Self::none()
            }
        }
    }

    /// No watchdog: tracking is a no-op, and children may outlive a killed
    /// host (unless their cgroup is removed by whoever owns it).
    pub(crate) fn none() -> Self {
        Self {
            table: Mutex::new(Table::default()),
            lifeline: Mutex::new(None),
            process: Mutex::new(None),
        }
    }

    fn launch(cgroup: Option<&Path>) -> Result<(Table, Child), LaunchError> {
        let awk = AWK_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or(LaunchError::NoAwk)?;
        let table = memfd_create(c"wasmproc-watchdog", MFdFlags::MFD_CLOEXEC)
            .map_err(LaunchError::Table)?;
        let for_child = table.try_clone().map_err(LaunchError::Share)?;
        let table = Table::new(File::from(table)).map_err(LaunchError::Map)?;
        let child = spawner::spawn_watchdog(awk, for_child, cgroup).map_err(LaunchError::Spawn)?;
        Ok((table, child))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new process group.
    pub(crate) fn track(&self, pgid: u32) {
        let mut table = self.table();
        let slot = table.free.pop().unwrap_or_else(|| {
            table.used += 1;
            table.used - 1
        });
        table.slots.insert(pgid, slot);
        table.write(slot, pgid);
    }

    /// Forgets a process group; call before reaping its leader.
    pub(crate) fn untrack(&self, pgid: u32) {
        let mut table = self.table();
        if let Some(slot) = table.slots.remove(&pgid) {
            table.write(slot, 0);
            table.free.push(slot);
        }
    }

    /// Closes the lifeline and reaps the watchdog. Call after every child
    /// has been reaped, so it has nothing left to kill.
    pub(crate) fn stop(&self) {
        self.lifeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut child) = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = child.wait();
            crate::os::subreaper::reaper().release(child.id());
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn watchdog_on(file: &File) -> Watchdog {
        Watchdog {
            table: Mutex::new(Table::new(file.try_clone().unwrap()).unwrap()),
            lifeline: Mutex::new(None),
            process: Mutex::new(None),
        }
    }

    /// The table as the watchdog reads it: the file's lines.
    fn lines(mut file: &File) -> Vec<String> {
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn watchdog_table_slots_reused_good() {
        let file = tempfile::tempfile().unwrap();
        let wd = watchdog_on(&file);
        wd.track(101);
        wd.track(202);
        wd.untrack(101);
        wd.track(303);
        let lines = lines(&file);
        assert_eq!(lines.len(), FIRST_SLOTS);
        assert_eq!(lines[0], "       303        303");
        assert_eq!(lines[1], "       202        202");
        let free = std::str::from_utf8(FREE_SLOT).unwrap().trim_end();
        assert!(lines[2..].iter().all(|l| l == free), "the rest are free");
        let mut one = [0u8; SLOT_BYTES];
        file.read_exact_at(&mut one, SLOT_BYTES as u64).unwrap();
        assert_eq!(&one, b"       202        202\n");
    }

    #[test]
    fn watchdog_table_grows_past_its_first_slots_good() {
        let file = tempfile::tempfile().unwrap();
        let wd = watchdog_on(&file);
        let groups: Vec<u32> = (1..=FIRST_SLOTS as u32 + 5).map(|n| n * 7).collect();
        for &g in &groups {
            wd.track(g);
        }
        wd.untrack(groups[3]);
        let lines = lines(&file);
        assert_eq!(lines.len(), FIRST_SLOTS * 2, "doubled once");
        let listed: Vec<u32> = lines
            .iter()
            .map(|l| {
                l.split_whitespace()
                    .map(|w| w.parse::<u32>().unwrap())
                    .collect::<Vec<_>>()
            })
            .inspect(|halves| assert_eq!(halves[0], halves[1], "both halves agree"))
            .map(|halves| halves[0])
            .filter(|&g| g != 0)
            .collect();
        let mut want = groups.clone();
        want.remove(3);
        assert_eq!(listed, want, "every live group once, in slot order");
    }
}
