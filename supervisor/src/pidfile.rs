//! PID files that never make the host signal a stranger.
//!
//! A PID file `NAME.pid` holds three lines: the PID, its start time
//! (`/proc/<pid>/stat` field 22) and the boot id, so a reader can tell the
//! recorded process from a later one that got the same PID. The first line
//! alone is the classic format, so `kill $(head -1 NAME.pid)` still works.
//!
//! Ownership is an exclusive `flock` on the sibling `NAME.pid.lock`, held for
//! as long as the process the file names runs. The lock file is never
//! replaced, so every host locks the same inode; the PID file itself is
//! written to a temp file beside it, fsynced and renamed over, so a reader
//! sees the old content or the new, never half of it, and a crash mid-write
//! leaves at most a temp file that the next owner removes.
//!
//! The PID file, its temp file and its lock are mode 0600: `flock` works on
//! a read-only fd, so a lock file others can open is a lock others can
//! hold. A lock file with any group or other bit (left by an older host,
//! or chmodded) is replaced by a private one, renamed over it, while this
//! host holds its lock, or at once if its lock is held by another user; a
//! lock is kept only if the name still points at the locked inode after
//! locking, so two hosts never lock two different inodes and both win.
//!
//! The directory must be writable by no one but this user (or root), and
//! not a symlink; the PID file, its lock and its temp file are reached
//! through the directory's fd without following links, and read only when
//! they are regular files of this user below a size bound
//! ([`PrivateDir`]).
//!
//! On acquiring, whatever the file held is classified ([`Existing`]) and
//! replaced; a file that is empty, corrupt, stale or names a reused PID
//! never causes a signal.

use super::flock_holder::{Holder, flock_holder};
use super::identity::{Liveness, ProcessIdentity, boot_id};
use super::private_dir::{PrivateDir, Trust};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The largest PID file read: far more than three lines need.
const MAX_PID_FILE_BYTES: u64 = 4096;

/// The mode of PID files, their temp files and their locks: only their
/// owner may open them (anyone who can open a file can `flock` it).
const PRIVATE_MODE: u32 = 0o600;

/// How often a lock file that keeps being replaced is opened again.
const MAX_LOCK_ATTEMPTS: usize = 8;

/// What a PID file held before it was acquired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// No file.
    Missing,
    /// An empty file.
    Empty,
    /// Content that is not a PID, start time and boot id.
    Corrupt(String),
    /// The recorded process is gone.
    Stale(ProcessIdentity),
    /// The PID now belongs to another process.
    Reused(ProcessIdentity),
    /// The recorded process still runs (its owner crashed or is another host).
    Live(ProcessIdentity),
}

/// Why a PID file could not be acquired.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another live owner holds the lock.
    #[error("{path} is held by another process{}", match .holder { Some(p) => format!(" (pid {p})"), None => String::new() })]
    Held {
        /// The PID file.
        path: PathBuf,
        /// The PID recorded in it, if it names a live process.
        holder: Option<u32>,
    },
    /// An I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// An acquired PID file: the lock is held until it is released or dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    dir: PrivateDir,
    name: String,
    lock: Flock<File>,
    previous: Existing,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PidFileError + '_ {
    move |source| PidFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory and file name of a PID file path.
fn split(path: &Path) -> io::Result<(&Path, String)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no UTF-8 file name"))?;
    Ok((dir, name.to_string()))
}

impl PidFile {
    /// Takes the lock of `path` without blocking, then classifies what the
    /// file held. Fails with [`PidFileError::Held`] if another owner holds it,
    /// and with an I/O error if the directory or the lock file cannot be
    /// trusted (see the module docs).
    pub fn acquire(path: &Path) -> Result<Self, PidFileError> {
        let (dir_path, name) = split(path).map_err(io_err(path))?;
        let dir =
            PrivateDir::open_with(dir_path, Trust::NoForeignWrite).map_err(io_err(dir_path))?;
        let lock_name = format!("{name}.lock");
        let lock_path = dir_path.join(&lock_name);
        // An exposed lock file is replaced while its lock is held (or held
        // by another user only), and the loop starts again on the new one.
        let mut exposed_lock = None;
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let file = dir
                .open_or_create(&lock_name, PRIVATE_MODE)
                .map_err(io_err(&lock_path))?;
            let st = nix::sys::stat::fstat(&file).map_err(|e| io_err(&lock_path)(e.into()))?;
            let exposed = st.st_mode & 0o077 != 0;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((_, Errno::EWOULDBLOCK)) => match (exposed, flock_holder(&st)) {
                    (true, Holder::OtherUser { pid, uid }) => {
                        tracing::warn!(
                            lock = %lock_path.display(), pid, uid,
                            "another user holds a lock file left readable by an older host; replacing it"
                        );
                        dir.replace_empty(&lock_name, PRIVATE_MODE)
                            .map_err(io_err(&lock_path))?;
                        continue;
                    }
                    _ => return Err(held(&dir, &name, path)),
                },
                Err((_, errno)) => return Err(io_err(&lock_path)(errno.into())),
            };
            if exposed {
                // Ours now, but others may hold it open to lock it later:
                // move every future owner to a private inode.
                dir.replace_empty(&lock_name, PRIVATE_MODE)
                    .map_err(io_err(&lock_path))?;
                exposed_lock = Some(lock);
                continue;
            }
            // Another owner may have replaced the file between our open
            // and our lock: then this lock guards nothing.
            if !dir
                .still_names(&lock_name, &lock)
                .map_err(io_err(&lock_path))?
            {
                continue;
            }
            drop(exposed_lock);
            remove_leftover_temps(&dir, &name);
            let previous = classify(&dir, &name);
            return Ok(Self {
                path: path.to_path_buf(),
                dir,
                name,
                lock,
                previous,
            });
        }
        Err(io_err(&lock_path)(io::Error::other(format!(
            "the lock file kept being replaced ({MAX_LOCK_ATTEMPTS} attempts)"
        ))))
    }

    /// What the file held when it was acquired.
    pub fn previous(&self) -> &Existing {
        &self.previous
    }

    /// The PID file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `id` atomically: temp file, fsync, rename, fsync of the
    /// directory.
    pub fn write(&self, id: &ProcessIdentity) -> Result<(), PidFileError> {
        let text = format!("{}\n{}\n{}\n", id.pid, id.start_time, id.boot_id);
        wasmproc_host::os::atomic_file::replace_at(
            self.dir.fd(),
            &self.name,
            &[text.as_bytes()],
            PRIVATE_MODE,
        )
        .map_err(io_err(&self.path))
    }

    /// Removes the PID file (keeping the lock until the end of the call).
    pub fn clear(&self) {
        let _ = self.dir.remove(&self.name);
    }

    /// Removes the PID file, then releases the lock.
    pub fn release(self) {
        self.clear();
        drop(self.lock);
    }
}

/// Removes the temp files a crashed writer of `name` left: whoever holds
/// the lock is its only writer, so every one is a leftover (`NAME.tmp` is
/// the name older hosts used).
fn remove_leftover_temps(dir: &PrivateDir, name: &str) {
    let legacy = format!("{name}.tmp");
    for file in dir.names().unwrap_or_default() {
        if file == legacy || wasmproc_host::os::atomic_file::is_temp_of(&file, name) {
            let _ = dir.remove(&file);
        }
    }
}

/// The error for a lock another live owner holds.
fn held(dir: &PrivateDir, name: &str, path: &Path) -> PidFileError {
    let holder = match classify(dir, name) {
        Existing::Live(id) => Some(id.pid),
        _ => None,
    };
    PidFileError::Held {
        path: path.to_path_buf(),
        holder,
    }
}

/// Reads and classifies a PID file without taking its lock. A file in a
/// directory others can write to, a symlink, a FIFO or an oversized file is
/// `Corrupt`, never followed or read.
pub fn inspect(path: &Path) -> Existing {
    let opened = split(path).and_then(|(dir, name)| {
        PrivateDir::open_existing(dir, Trust::NoForeignWrite).map(|d| (d, name))
    });
    match opened {
        Ok((dir, name)) => classify(&dir, &name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Existing::Missing,
        Err(e) => Existing::Corrupt(format!("unreadable: {e}")),
    }
}

fn classify(dir: &PrivateDir, name: &str) -> Existing {
    let text = match dir.read(name, MAX_PID_FILE_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Missing,
        Err(e) => return Existing::Corrupt(format!("unreadable: {e}")),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Existing::Empty;
    }
    match parse(&text) {
        Err(why) => Existing::Corrupt(why.to_string()),
        Ok(id) => match id.liveness() {
            Liveness::Alive => Existing::Live(id),
            Liveness::Dead => Existing::Stale(id),
            Liveness::Reused => Existing::Reused(id),
        },
    }
}

/// Why a PID file's content names no verifiable process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptPidFile {
    /// Far more bytes than three lines need.
    #[error("{0} bytes, far more than a PID file holds")]
    TooLong(usize),
    /// Not text.
    #[error("not UTF-8")]
    NotUtf8,
    /// The first line is not a PID.
    #[error("the first line is not a positive PID")]
    NoPid,
    /// No start time: the PID alone cannot be verified.
    #[error("PID {0} has no start time, so it cannot be verified")]
    NoStartTime(u32),
    /// No boot id: the PID alone cannot be verified.
    #[error("PID {0} has no boot id, so it cannot be verified")]
    NoBootId(u32),
}

fn parse(text: &[u8]) -> Result<ProcessIdentity, CorruptPidFile> {
    if text.len() > 4096 {
        return Err(CorruptPidFile::TooLong(text.len()));
    }
    let text = std::str::from_utf8(text).map_err(|_| CorruptPidFile::NotUtf8)?;
    let mut lines = text.lines().map(str::trim);
    let pid: u32 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .filter(|p| *p > 0)
        .ok_or(CorruptPidFile::NoPid)?;
    let start_time: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or(CorruptPidFile::NoStartTime(pid))?;
    let boot = lines.next().unwrap_or_default().to_string();
    if boot.is_empty() && !boot_id().is_empty() {
        return Err(CorruptPidFile::NoBootId(pid));
    }
    Ok(ProcessIdentity {
        pid,
        start_time,
        boot_id: boot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn pidfile_roundtrip_good() {
        let d = dir();
        let path = d.path().join("x.pid");
        let f = PidFile::acquire(&path).expect("acquire");
        assert_eq!(f.previous(), &Existing::Missing);
        let me = ProcessIdentity::current();
        f.write(&me).expect("write");
        assert_eq!(inspect(&path), Existing::Live(me.clone()));
        let first_line = std::fs::read_to_string(&path).expect("read");
        assert_eq!(first_line.lines().next(), Some(me.pid.to_string().as_str()));
        f.release();
        assert_eq!(inspect(&path), Existing::Missing);
    }

    #[test]
    fn pidfile_classify_bad() {
        let d = dir();
        let path = d.path().join("x.pid");
        std::fs::write(&path, "").expect("write");
        assert_eq!(inspect(&path), Existing::Empty);
        std::fs::write(&path, " \n\n").expect("write");
        assert_eq!(inspect(&path), Existing::Empty);
        std::fs::write(&path, "garbage\x00\x01").expect("write");
        assert!(matches!(inspect(&path), Existing::Corrupt(_)));
        std::fs::write(&path, "-5\n1\nb\n").expect("write");
        assert!(matches!(inspect(&path), Existing::Corrupt(_)));
        std::fs::write(&path, format!("{}\n", std::process::id())).expect("write");
        assert!(
            matches!(inspect(&path), Existing::Corrupt(_)),
            "a bare PID cannot be verified, so it is never trusted"
        );
        std::fs::write(&path, vec![b'1'; 10_000]).expect("write");
        assert!(matches!(inspect(&path), Existing::Corrupt(_)));
    }

    #[test]
    fn pidfile_held_ugly() {
        let d = dir();
        let path = d.path().join("x.pid");
        let first = PidFile::acquire(&path).expect("acquire");
        first.write(&ProcessIdentity::current()).expect("write");
        match PidFile::acquire(&path) {
            Err(PidFileError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("second acquire must fail: {other:?}"),
        }
        drop(first);
        let again = PidFile::acquire(&path).expect("lock released on drop");
        assert!(matches!(again.previous(), Existing::Live(_)));
    }
}
