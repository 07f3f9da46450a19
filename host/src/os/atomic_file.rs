//! Atomic file replacement relative to a directory fd: the new content goes
//! to a temp file created with `O_CREAT | O_EXCL | O_NOFOLLOW` (a leftover
//! of that name, even a planted symlink, is removed, never followed), is
//! fsynced, renamed over the target with `renameat`, and the directory is
//! fsynced. A reader sees the old content or the new, never half of it; a
//! crash leaves at most the temp file. Every step goes through the
//! directory's fd, so a directory swapped after it was opened and checked
//! is never written to.

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::BorrowedFd;

/// Refuses anything but a plain file name (no `/` or NUL, not `.` or
/// `..`).
pub fn plain_name(name: &str) -> io::Result<&str> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a plain file name"),
        ));
    }
    Ok(name)
}

/// Creates `name` in `dir` anew (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode
/// `mode`), removing a leftover of that name first. Never follows a link.
pub fn create_new_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<File> {
    let name = plain_name(name)?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(mode);
    match openat(dir, name, flags, mode) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    remove_at(dir, name)?;
    Ok(File::from(openat(dir, name, flags, mode)?))
}

/// Removes `name` from `dir` (a link itself, never its target).
pub fn remove_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(unlinkat(
        dir,
        plain_name(name)?,
        UnlinkatFlags::NoRemoveDir,
    )?)
}

/// Replaces `name` in `dir` with `parts`, written in order, through the
/// temp file `tmp` (mode `mode`): create, write, fsync, rename, fsync the
/// directory. On failure the temp file is removed and `name` is untouched.
pub fn replace_at(
    dir: BorrowedFd<'_>,
    name: &str,
    tmp: &str,
    parts: &[&[u8]],
    mode: u32,
) -> io::Result<()> {
    replace_at_with(dir, name, tmp, parts, mode, Durability::Synced)
}

/// Whether a replacement survives a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Synced,
    /// Atomic for readers, but a crash may lose it (for files that can be
    /// rebuilt, such as an index).
    Unsynced,
}

/// [`replace_at`] with the choice of [`Durability`].
pub fn replace_at_with(
    dir: BorrowedFd<'_>,
    name: &str,
    tmp: &str,
    parts: &[&[u8]],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let synced = durability == Durability::Synced;
    let name = plain_name(name)?;
    let mut file = create_new_at(dir, tmp, mode)?;
    let written = parts
        .iter()
        .try_for_each(|p| file.write_all(p))
        .and_then(|()| if synced { file.sync_all() } else { Ok(()) });
    drop(file);
    let renamed = written.and_then(|()| Ok(renameat(dir, tmp, dir, name)?));
    if let Err(e) = renamed {
        let _ = remove_at(dir, tmp);
        return Err(e);
    }
    // The rename is durable once the directory is.
    if synced {
        fsync(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;

    fn open_dir(path: &std::path::Path) -> std::os::fd::OwnedFd {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open dir")
    }

    #[test]
    fn atomic_file_replace_good() {
        let d = tempfile::tempdir().expect("dir");
        let fd = open_dir(d.path());
        replace_at(fd.as_fd(), "entry", ".entry.tmp", &[b"one"], 0o600).expect("write");
        replace_at(
            fd.as_fd(),
            "entry",
            ".entry.tmp",
            &[b"two", b"-parts"],
            0o640,
        )
        .expect("replace");
        let path = d.path().join("entry");
        assert_eq!(std::fs::read(&path).expect("read"), b"two-parts");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(
            mode & 0o777 & !0o640,
            0,
            "no bits beyond the mode asked: {mode:o}"
        );
        assert!(!d.path().join(".entry.tmp").exists(), "temp file renamed");
    }

    #[test]
    fn atomic_file_planted_link_bad() {
        // A symlink planted at the temp name is removed, never written
        // through; a symlink at the target is replaced, its target untouched.
        let d = tempfile::tempdir().expect("dir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        std::os::unix::fs::symlink(&victim, d.path().join(".f.tmp")).expect("link");
        std::os::unix::fs::symlink(&victim, d.path().join("f")).expect("link");
        let fd = open_dir(d.path());
        replace_at(fd.as_fd(), "f", ".f.tmp", &[b"new"], 0o600).expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        let f = d.path().join("f");
        assert!(!std::fs::symlink_metadata(&f).expect("f").is_symlink());
        assert_eq!(std::fs::read_to_string(&f).expect("f"), "new");
    }

    #[test]
    fn atomic_file_names_ugly() {
        let d = tempfile::tempdir().expect("dir");
        let fd = open_dir(d.path());
        for bad in ["", ".", "..", "../escape", "a/b", "nul\0"] {
            let err = replace_at(fd.as_fd(), bad, ".t.tmp", &[b"x"], 0o600).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            let err = replace_at(fd.as_fd(), "ok", bad, &[b"x"], 0o600).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(std::fs::read_dir(d.path()).expect("dir").count(), 0);
    }
}
