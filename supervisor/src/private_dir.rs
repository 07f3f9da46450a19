//! A private directory: owned by this user, with no group or other access,
//! and not a symlink, checked with `fstat` on the opened directory. Files in
//! it are reached only through the directory's fd (`openat`, `renameat`,
//! `unlinkat`), created with `O_EXCL | O_NOFOLLOW`, and read only when the
//! opened fd is a regular file of this user below a size bound (checked with
//! `fstat` before reading, opened non-blocking so a FIFO cannot hang us).
//!
//! The registry directory goes through here as [`Trust::Private`]; the
//! directories of PID files and their locks as [`Trust::NoForeignWrite`]
//! (PID files are meant to be read by other tools, and often live in a
//! root-owned `/run`, so only writing is restricted).

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened, verified directory.
#[derive(Debug, Clone)]
pub struct PrivateDir {
    path: PathBuf,
    fd: Arc<OwnedFd>,
}

/// How much a directory must belong to this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Owned by this user, no group or other bits at all (mode 0700).
    Private,
    /// Owned by this user or root, writable by no one else (no group or
    /// other write bits); others may read.
    NoForeignWrite,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn fstat(fd: impl AsFd) -> io::Result<FileStat> {
    Ok(nix::sys::stat::fstat(fd)?)
}

fn refused(path: &Path, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("refusing {}: {why}", path.display()),
    )
}

impl PrivateDir {
    /// Creates the directory (mode 0700) if it is missing, then opens and
    /// verifies it. An existing directory that is a symlink, is not owned by
    /// this user, or gives any access to group or others is refused with an
    /// error saying which; it is never repaired silently.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, Trust::Private)
    }

    /// Like [`open`](Self::open), with the given [`Trust`] level.
    pub fn open_with(path: &Path, trust: Trust) -> io::Result<Self> {
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Parents are missing: make them (as `mkdir -p` would), then
                // the directory itself, private.
                if let Some(parent) = path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)?;
                }
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .or_else(|e| match e.kind() {
                        io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })?;
            }
            Err(e) => return Err(e),
        }
        Self::open_existing(path, trust)
    }

    /// Opens and verifies an existing directory (never creates it).
    pub fn open_existing(path: &Path, trust: Trust) -> io::Result<Self> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(errno) => {
                let is_link =
                    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                return Err(match errno {
                    // O_DIRECTORY | O_NOFOLLOW on a link fails with either.
                    Errno::ELOOP | Errno::ENOTDIR if is_link => {
                        refused(path, "it is a symlink".into())
                    }
                    Errno::ENOTDIR => refused(path, "it is not a directory".into()),
                    other => other.into(),
                });
            }
        };
        let st = fstat(&fd)?;
        let owner_ok = st.st_uid == euid() || (trust == Trust::NoForeignWrite && st.st_uid == 0);
        if !owner_ok {
            return Err(refused(
                path,
                format!(
                    "it is owned by uid {}, not by this user (uid {})",
                    st.st_uid,
                    euid()
                ),
            ));
        }
        let (forbidden, fix) = match trust {
            Trust::Private => (0o077, "give no access to group or others (chmod 700)"),
            Trust::NoForeignWrite => (0o022, "not be writable by group or others (chmod go-w)"),
        };
        if st.st_mode & forbidden != 0 {
            return Err(refused(
                path,
                format!(
                    "its mode is {:04o}; it must {fix}, or be removed so the host creates it",
                    st.st_mode & 0o7777
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            fd: Arc::new(fd),
        })
    }

    /// The directory's path (for messages and for sockets bound in it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's fd, for [`atomic_file`](crate::atomic_file) writes
    /// relative to it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `name` for reading and writing, creating it (mode `mode`) if
    /// missing, without following a link or blocking; the opened fd must be
    /// a regular file of this user. For lock files, which are never
    /// replaced.
    pub fn open_or_create(&self, name: &str, mode: u32) -> io::Result<File> {
        let flags = OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let file = self.open_at(name, flags, Mode::from_bits_truncate(mode))?;
        self.check_file(name, &file, u64::MAX)?;
        Ok(file)
    }

    /// Whether `name` in the directory (not following a link) is still the
    /// file `file` was opened from (same device and inode).
    pub fn still_names(&self, name: &str, file: &File) -> io::Result<bool> {
        let name = wasmproc_host::os::atomic_file::plain_name(name)?;
        let at = nix::sys::stat::fstatat(
            self.fd.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        let at = match at {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let st = fstat(file)?;
        Ok((at.st_dev, at.st_ino) == (st.st_dev, st.st_ino))
    }

    /// Replaces `name` with a new empty file of mode `mode`, atomically
    /// (a temp file renamed over it): whoever holds the old file open keeps
    /// only the old inode.
    pub fn replace_empty(&self, name: &str, mode: u32) -> io::Result<()> {
        wasmproc_host::os::atomic_file::replace_at(self.fd(), name, &[], mode)
    }

    /// Opens `name` relative to the directory's fd; a link is refused.
    fn open_at(&self, name: &str, flags: OFlag, mode: Mode) -> io::Result<File> {
        let name = wasmproc_host::os::atomic_file::plain_name(name)?;
        match nix::fcntl::openat(self.fd.as_fd(), name, flags, mode) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::ELOOP) => Err(refused(&self.path.join(name), "it is a symlink".into())),
            Err(e) => Err(e.into()),
        }
    }

    fn check_file(&self, name: &str, file: &File, max: u64) -> io::Result<()> {
        let st = fstat(file)?;
        let path = || self.path.join(name);
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(refused(&path(), "it is not a regular file".into()));
        }
        if st.st_uid != euid() {
            return Err(refused(
                &path(),
                format!("it is owned by uid {}, not by this user", st.st_uid),
            ));
        }
        if st.st_size as u64 > max {
            return Err(refused(
                &path(),
                format!("it holds {} bytes, above the bound of {max}", st.st_size),
            ));
        }
        Ok(())
    }

    /// Opens `name` for reading without following a link and without
    /// blocking, and checks the opened fd: a regular file, owned by this
    /// user, of at most `max` bytes.
    pub fn open_file(&self, name: &str, max: u64) -> io::Result<File> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let file = self.open_at(name, flags, Mode::empty())?;
        self.check_file(name, &file, max)?;
        Ok(file)
    }

    /// Reads `name` whole, under the checks of [`open_file`](Self::open_file).
    pub fn read(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let file = self.open_file(name, max)?;
        let mut bytes = Vec::new();
        // Bounded even if the file grows after the check.
        file.take(max + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(refused(
                &self.path.join(name),
                format!("it grew past the bound of {max} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// Removes `name` (not following a link: the link itself goes).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        wasmproc_host::os::atomic_file::remove_at(self.fd(), name)
    }

    /// The names in the directory (read through its fd).
    pub fn names(&self) -> io::Result<Vec<String>> {
        let via_fd = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let mut names = Vec::new();
        for entry in std::fs::read_dir(via_fd)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}
