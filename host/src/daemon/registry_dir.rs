//! The on-disk registry: one JSON file per running host and per running
//! daemon in a directory (mode 0700), so `wasmproc daemon list` and other
//! tools can find them without asking anyone.
//!
//! Entries are written atomically (temp file, fsync, rename) and trusted
//! only by identity (PID, start time, boot id): an entry whose process is
//! gone, or whose PID now belongs to someone else, is dead and is pruned.
//! A daemon entry whose owning host is dead but whose process still runs is
//! a leftover of a crashed host; [`RegistryDir::clean_leftovers`] stops it by
//! identity and removes the entry.

use super::identity::{Liveness, ProcessIdentity, stop_verified};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A `wasmproc serve` host.
    Host,
    /// A daemon a host supervises.
    Daemon,
}

/// One registry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// Host or daemon.
    pub kind: EntryKind,
    /// The host's or daemon's name.
    pub name: String,
    /// The process.
    pub process: ProcessIdentity,
    /// The host that owns it (for a host entry, itself).
    pub host: ProcessIdentity,
    /// The host's name (for a host entry, its own name).
    pub host_name: String,
    /// The health address: the host's `/health` URL, or a daemon's probe target.
    pub health: Option<String>,
    /// The executable.
    pub binary: String,
    /// Start time, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// The host's control socket (host entries).
    pub control: Option<PathBuf>,
}

/// A registry directory.
#[derive(Debug, Clone)]
pub struct RegistryDir {
    dir: PathBuf,
}

/// What [`RegistryDir::clean_leftovers`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// Entries removed because their process was gone or its PID reused.
    pub pruned: Vec<String>,
    /// Leftover daemons of crashed hosts that were stopped.
    pub stopped: Vec<String>,
}

impl RegistryDir {
    /// Opens (creating it, mode 0700) a registry directory.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, kind: EntryKind, name: &str) -> PathBuf {
        let prefix = match kind {
            EntryKind::Host => "host",
            EntryKind::Daemon => "daemon",
        };
        self.dir.join(format!("{prefix}.{name}.json"))
    }

    /// Writes (or replaces) an entry atomically.
    pub fn register(&self, entry: &RegistryEntry) -> io::Result<()> {
        let path = self.file(entry.kind, &entry.name);
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(entry).map_err(io::Error::other)?)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    }

    /// Removes an entry, but only if it still describes `process` (another
    /// host may have replaced it).
    pub fn unregister(&self, kind: EntryKind, name: &str, process: &ProcessIdentity) {
        let path = self.file(kind, name);
        if read(&path).is_some_and(|e| &e.process == process) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Reads one entry.
    pub fn get(&self, kind: EntryKind, name: &str) -> Option<RegistryEntry> {
        read(&self.file(kind, name))
    }

    /// Every readable entry, sorted by kind and name. Unreadable files and
    /// temp files are skipped.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut entries: Vec<RegistryEntry> = dir
            .flatten()
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !n.starts_with('.') && n.ends_with(".json")
            })
            .filter_map(|e| read(&e.path()))
            .collect();
        entries.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
        entries
    }

    /// Removes every entry whose process is gone or whose PID was reused,
    /// and any unreadable file or temp file left by a crash; returns the
    /// live entries.
    pub fn prune(&self) -> (Vec<RegistryEntry>, Vec<String>) {
        let mut pruned = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = e.path();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    // A crash mid-write; its writer is gone if it is not us.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if !name.ends_with(".json") {
                    continue;
                }
                let dead = match read(&path) {
                    None => true,
                    Some(entry) => entry.process.liveness() != Liveness::Alive,
                };
                if dead {
                    let _ = std::fs::remove_file(&path);
                    pruned.push(name);
                }
            }
        }
        (self.entries(), pruned)
    }

    /// Prunes dead entries, then stops every daemon whose owning host is
    /// dead (a leftover of a crashed host), by identity, and removes its
    /// entry. A leftover is never adopted: the host that started it is the
    /// only one that could collect its exit status and output.
    pub fn clean_leftovers(&self, grace: Duration) -> Cleanup {
        let (live, pruned) = self.prune();
        let mut stopped = Vec::new();
        for entry in live {
            if entry.kind != EntryKind::Daemon || entry.host.liveness() == Liveness::Alive {
                continue;
            }
            match stop_verified(&entry.process, libc::SIGTERM, grace) {
                Ok(true) => stopped.push(entry.name.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, daemon = %entry.name, "cannot stop a leftover daemon")
                }
            }
            let _ = std::fs::remove_file(self.file(entry.kind, &entry.name));
        }
        Cleanup { pruned, stopped }
    }
}

fn read(path: &Path) -> Option<RegistryEntry> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() > 64 << 10 {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        kind: EntryKind,
        name: &str,
        process: ProcessIdentity,
        host: ProcessIdentity,
    ) -> RegistryEntry {
        RegistryEntry {
            kind,
            name: name.into(),
            process,
            host,
            host_name: "h".into(),
            health: None,
            binary: "/bin/x".into(),
            started_at_ms: 1,
            control: None,
        }
    }

    #[test]
    fn daemon_registry_good() {
        let d = tempfile::tempdir().expect("dir");
        let reg = RegistryDir::open(&d.path().join("reg")).expect("open");
        let me = ProcessIdentity::current();
        reg.register(&entry(EntryKind::Host, "h", me.clone(), me.clone()))
            .expect("register");
        reg.register(&entry(EntryKind::Daemon, "d", me.clone(), me.clone()))
            .expect("register");
        let names: Vec<_> = reg
            .entries()
            .into_iter()
            .map(|e| (e.kind, e.name))
            .collect();
        assert_eq!(
            names,
            [
                (EntryKind::Host, "h".into()),
                (EntryKind::Daemon, "d".into())
            ]
        );
        let (live, pruned) = reg.prune();
        assert_eq!((live.len(), pruned.len()), (2, 0));
        reg.unregister(EntryKind::Daemon, "d", &me);
        assert!(reg.get(EntryKind::Daemon, "d").is_none());
    }

    #[test]
    fn daemon_registry_bad() {
        let d = tempfile::tempdir().expect("dir");
        let reg = RegistryDir::open(d.path()).expect("open");
        let me = ProcessIdentity::current();
        let mut reused = me.clone();
        reused.start_time += 7;
        reg.register(&entry(EntryKind::Daemon, "reused", reused.clone(), reused))
            .expect("register");
        std::fs::write(d.path().join("daemon.garbage.json"), "{not json").expect("write");
        std::fs::write(d.path().join(".daemon.x.json.1.tmp"), "{\"half").expect("write");
        let (live, pruned) = reg.prune();
        assert!(live.is_empty());
        assert_eq!(pruned.len(), 2, "{pruned:?}");
        assert_eq!(
            std::fs::read_dir(d.path()).expect("dir").count(),
            0,
            "temp file removed too"
        );
        // Unregistering someone else's entry leaves it alone.
        reg.register(&entry(EntryKind::Host, "h", me.clone(), me.clone()))
            .expect("register");
        let mut other = me.clone();
        other.start_time += 1;
        reg.unregister(EntryKind::Host, "h", &other);
        assert!(reg.get(EntryKind::Host, "h").is_some());
    }

    #[test]
    fn daemon_registry_ugly() {
        // A live "daemon" whose host is dead is a leftover: but if its PID
        // has been reused, nothing is signalled and the entry just goes.
        let d = tempfile::tempdir().expect("dir");
        let reg = RegistryDir::open(d.path()).expect("open");
        let mut dead_host = ProcessIdentity::current();
        dead_host.pid = u32::MAX / 2;
        let mut stranger = ProcessIdentity::current();
        stranger.start_time += 1;
        reg.register(&entry(EntryKind::Daemon, "left", stranger, dead_host))
            .expect("register");
        let cleanup = reg.clean_leftovers(Duration::from_millis(10));
        assert_eq!(cleanup.stopped, Vec::<String>::new());
        assert_eq!(cleanup.pruned.len(), 1);
        assert!(reg.entries().is_empty());
    }
}
