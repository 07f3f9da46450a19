//! Out-of-process cleanup for when the host dies without shutting down.
//!
//! `PR_SET_PDEATHSIG` needs code in the child (which forces the slow fork
//! path of process creation), fires when the spawning *thread* exits, and reaches only
//! the direct child, not the grandchildren in its group. Instead, a tiny
//! watchdog process waits for the host to go away, then kills every process
//! group still listed in a table the host keeps.
//!
//! The table is an in-memory file (`memfd`) shared with the watchdog: one
//! fixed-width slot per live group. The host writes a slot after each spawn
//! and clears it just before reaping the group's leader, each with a single
//! `pwrite`, which wakes nobody: the watchdog sleeps on a lifeline pipe the
//! host never writes to. When the host exits for any reason, SIGKILL
//! included, the kernel closes the pipe; the watchdog reads the table and
//! kills what is listed. A leader is reaped only after its slot is cleared,
//! so the watchdog never signals a recycled process-group id.
//!
//! Where the host has cgroups, the watchdog also writes `cgroup.kill` of
//! the manager's cgroup subtree, which reaches processes that left their
//! group, and then removes the subtree's cgroups.

use crate::spawner;
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::Mutex;

const AWK_PATHS: &[&str] = &["/usr/bin/awk", "/bin/awk", "/usr/bin/mawk", "/usr/bin/gawk"];
/// One table line: the group id twice, each right-aligned in 10 columns.
const SLOT_BYTES: u64 = 22;

/// The slot table of live process groups.
#[derive(Debug, Default)]
struct Table {
    file: Option<File>,
    slots: HashMap<u32, u64>,
    free: Vec<u64>,
    used: u64,
}

impl Table {
    fn write(&mut self, slot: u64, pgid: u32) {
        let Some(file) = &self.file else { return };
        let line = format!("{pgid:>10} {pgid:>10}\n");
        if let Err(e) = file.write_all_at(line.as_bytes(), slot * SLOT_BYTES) {
            tracing::warn!(error = %e, "watchdog table lost: children may outlive a killed host");
            self.file = None;
        }
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
            Ok((file, mut child)) => Self {
                table: Mutex::new(Table {
                    file: Some(file),
                    ..Table::default()
                }),
                lifeline: Mutex::new(child.stdin.take()),
                process: Mutex::new(Some(child)),
            },
            Err(why) => {
                tracing::warn!(%why, "watchdog not started: children may outlive a killed host");
                Self {
                    table: Mutex::new(Table::default()),
                    lifeline: Mutex::new(None),
                    process: Mutex::new(None),
                }
            }
        }
    }

    fn launch(cgroup: Option<&Path>) -> Result<(File, Child), LaunchError> {
        let awk = AWK_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or(LaunchError::NoAwk)?;
        let table = memfd_create(c"wasmproc-watchdog", MFdFlags::MFD_CLOEXEC)
            .map_err(LaunchError::Table)?;
        let for_child = table.try_clone().map_err(LaunchError::Share)?;
        let child = spawner::spawn_watchdog(awk, for_child, cgroup).map_err(LaunchError::Spawn)?;
        Ok((File::from(table), child))
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
            crate::subreaper::reaper().release(child.id());
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

    #[test]
    fn watchdog_table_slots_reused_good() {
        let mut file = tempfile::tempfile().unwrap();
        let wd = Watchdog {
            table: Mutex::new(Table {
                file: Some(file.try_clone().unwrap()),
                ..Table::default()
            }),
            lifeline: Mutex::new(None),
            process: Mutex::new(None),
        };
        wd.track(101);
        wd.track(202);
        wd.untrack(101);
        wd.track(303);
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "       303        303\n       202        202\n");
        let mut one = [0u8; 22];
        file.read_exact_at(&mut one, 22).unwrap();
        assert_eq!(&one, b"       202        202\n");
    }
}
