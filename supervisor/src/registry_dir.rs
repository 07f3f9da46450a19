//! The on-disk registry: one JSON file per running host and per running
//! daemon in a private directory, so `wasmproc daemon list` and other tools
//! can find them without asking anyone.
//!
//! The directory must be this user's alone ([`PrivateDir`]): owned by the
//! user, no group or other bits, not a symlink; otherwise it is refused.
//! Entries are written atomically (a new `O_EXCL | O_NOFOLLOW` temp file,
//! fsync, rename) through the directory's fd, and read only when the opened
//! fd is a regular file of this user below [`MAX_ENTRY_BYTES`].
//!
//! Entries are trusted only by identity (PID, start time, boot id): an entry
//! whose process is gone, or whose PID now belongs to someone else, is dead
//! and is pruned. A daemon entry whose owning host is dead but whose process
//! still runs is a leftover of a crashed host; [`RegistryDir::clean_leftovers`]
//! stops it only if it can be proven to be that host's daemon (see
//! [`leftover_proof`]) and removes the entry either way.

use super::identity::{Liveness, ProcessIdentity, stop_verified};
use super::private_dir::PrivateDir;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest entry file the registry reads.
pub const MAX_ENTRY_BYTES: u64 = 64 << 10;

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
    dir: PrivateDir,
}

/// What [`RegistryDir::clean_leftovers`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// Entries removed because their process was gone or its PID reused.
    pub pruned: Vec<String>,
    /// Leftover daemons of crashed hosts that were stopped.
    pub stopped: Vec<String>,
    /// Leftover entries that were removed without a signal, and why.
    pub refused: Vec<String>,
}

impl RegistryDir {
    /// Opens (creating it, mode 0700) a registry directory. A directory
    /// that is a symlink, belongs to another user, or is open to group or
    /// others is refused with an error that says which.
    /// A directory owned by someone else is never touched: the error says
    /// how to choose another one instead.
    pub fn open(dir: &Path) -> io::Result<Self> {
        match PrivateDir::open(dir) {
            Ok(dir) => Ok(Self { dir }),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(io::Error::new(
                e.kind(),
                format!(
                    "{e}; use a directory of your own: `registry_dir` in the configuration, \
                     `--registry`, or $WASMPROC_REGISTRY"
                ),
            )),
            Err(e) => Err(e),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(kind: EntryKind, name: &str) -> String {
        let prefix = match kind {
            EntryKind::Host => "host",
            EntryKind::Daemon => "daemon",
        };
        format!("{prefix}.{name}.json")
    }

    /// Writes (or replaces) an entry atomically.
    pub fn register(&self, entry: &RegistryEntry) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        let name = Self::file(entry.kind, &entry.name);
        wasmproc_host::os::atomic_file::replace_at(self.dir.fd(), &name, &[&bytes], 0o600)
    }

    /// Removes an entry, but only if it still describes `process` (another
    /// host may have replaced it).
    pub fn unregister(&self, kind: EntryKind, name: &str, process: &ProcessIdentity) {
        let file = Self::file(kind, name);
        if self.read(&file).is_some_and(|e| &e.process == process) {
            let _ = self.dir.remove(&file);
        }
    }

    /// Reads one entry.
    pub fn get(&self, kind: EntryKind, name: &str) -> Option<RegistryEntry> {
        self.read(&Self::file(kind, name))
    }

    fn read(&self, file: &str) -> Option<RegistryEntry> {
        match self.dir.read(file, MAX_ENTRY_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a registry entry");
                None
            }
        }
    }

    fn names(&self) -> Vec<String> {
        self.dir.names().unwrap_or_default()
    }

    /// Every readable entry, sorted by kind and name. Unreadable files,
    /// files that are not this user's regular files, and temp files are
    /// skipped.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        let mut entries: Vec<RegistryEntry> = self
            .names()
            .into_iter()
            .filter(|n| !n.starts_with('.') && n.ends_with(".json"))
            .filter_map(|n| self.read(&n))
            .collect();
        entries.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
        entries
    }

    /// Removes every entry whose process is gone or whose PID was reused,
    /// and any unreadable file or temp file left by a crash; returns the
    /// live entries.
    pub fn prune(&self) -> (Vec<RegistryEntry>, Vec<String>) {
        let mut pruned = Vec::new();
        for name in self.names() {
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A crash mid-write, unless its writer still runs (another
                // host, or a thread of this one, mid-write).
                if temp_writer_gone(&name) {
                    let _ = self.dir.remove(&name);
                }
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let dead = match self.read(&name) {
                None => true,
                Some(entry) => entry.process.liveness() != Liveness::Alive,
            };
            if dead {
                let _ = self.dir.remove(&name);
                pruned.push(name);
            }
        }
        (self.entries(), pruned)
    }

    /// Prunes dead entries, then stops every daemon whose owning host is
    /// dead (a leftover of a crashed host), by identity, and removes its
    /// entry. A signal is sent only with a [`leftover_proof`]; an entry
    /// without one is removed and reported in `refused`. A leftover is
    /// never adopted: the host that started it is the only one that could
    /// collect its exit status and output.
    pub fn clean_leftovers(&self, grace: Duration) -> Cleanup {
        let (live, pruned) = self.prune();
        let mut stopped = Vec::new();
        let mut refused = Vec::new();
        for entry in live {
            if entry.kind != EntryKind::Daemon || entry.host.liveness() == Liveness::Alive {
                continue;
            }
            match leftover_proof(&entry) {
                Err(why) => {
                    tracing::warn!(daemon = %entry.name, reason = %why, "not signalling a leftover entry");
                    refused.push(format!("{}: {why}", entry.name));
                }
                Ok(()) => match stop_verified(&entry.process, libc::SIGTERM, grace) {
                    Ok(true) => stopped.push(entry.name.clone()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, daemon = %entry.name, "cannot stop a leftover daemon")
                    }
                },
            }
            let _ = self.dir.remove(&Self::file(entry.kind, &entry.name));
        }
        Cleanup {
            pruned,
            stopped,
            refused,
        }
    }
}

/// Whether a leftover daemon entry can be proven to name a process the
/// crashed host started: the process runs as this user, on the same boot
/// as the host, and started no earlier than the host did. (The entry file
/// itself was already checked to be this user's, in this user's private
/// directory.) A process that predates its claimed host, or belongs to
/// someone else, is never signalled.
pub fn leftover_proof(entry: &RegistryEntry) -> Result<(), NoProof> {
    let (process, host) = (&entry.process, &entry.host);
    let owner = std::fs::metadata(format!("/proc/{}", process.pid))
        .map_err(|source| NoProof::Uninspectable {
            pid: process.pid,
            source,
        })?
        .uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if owner != me {
        return Err(NoProof::OtherUser {
            pid: process.pid,
            owner,
            me,
        });
    }
    if process.boot_id != host.boot_id {
        return Err(NoProof::OtherBoot);
    }
    if process.start_time < host.start_time {
        return Err(NoProof::OlderThanHost {
            pid: process.pid,
            host: host.pid,
        });
    }
    Ok(())
}

/// Why a leftover entry cannot be proven to name its crashed host's daemon.
#[derive(Debug, thiserror::Error)]
pub enum NoProof {
    /// `/proc/PID` cannot be read.
    #[error("pid {pid} cannot be inspected: {source}")]
    Uninspectable {
        /// The process.
        pid: u32,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// It runs as someone else.
    #[error("pid {pid} runs as uid {owner}, not as this user (uid {me})")]
    OtherUser {
        /// The process.
        pid: u32,
        /// Its owner.
        owner: u32,
        /// This user.
        me: u32,
    },
    /// It is from another boot than its claimed host.
    #[error("the process and its claimed host are from different boots")]
    OtherBoot,
    /// It started before its claimed host.
    #[error(
        "pid {pid} started before its claimed host (pid {host}), so that host did not start it"
    )]
    OlderThanHost {
        /// The process.
        pid: u32,
        /// The host.
        host: u32,
    },
}

/// Whether the writer of the temp file `name` is gone: its pid (in the
/// name) is no process's, or the name is not of the form a writer uses now.
fn temp_writer_gone(name: &str) -> bool {
    match wasmproc_host::os::atomic_file::temp_owner(name) {
        None => true,
        Some(pid) if pid == std::process::id() => false,
        Some(pid) => wasmproc_host::os::pid_gone(pid),
    }
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
        let reg = RegistryDir::open(&d.path().join("reg")).expect("open");
        let me = ProcessIdentity::current();
        let mut reused = me.clone();
        reused.start_time += 7;
        reg.register(&entry(EntryKind::Daemon, "reused", reused.clone(), reused))
            .expect("register");
        std::fs::write(reg.path().join("daemon.garbage.json"), "{not json").expect("write");
        std::fs::write(reg.path().join(".daemon.x.json.1.tmp"), "{\"half").expect("write");
        // A temp file of a writer still running (pid 1) is not a leftover.
        let writing = ".daemon.y.json.1.0123456789ab.tmp";
        std::fs::write(reg.path().join(writing), "{\"ha").expect("write");
        let (live, pruned) = reg.prune();
        assert!(live.is_empty());
        assert_eq!(pruned.len(), 2, "{pruned:?}");
        let left: Vec<String> = std::fs::read_dir(reg.path())
            .expect("dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            [writing],
            "a crash's temp file removed too, a live writer's kept"
        );
        std::fs::remove_file(reg.path().join(writing)).expect("remove");
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
        let reg = RegistryDir::open(&d.path().join("reg")).expect("open");
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
