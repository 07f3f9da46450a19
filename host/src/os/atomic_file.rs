//! Atomic file replacement relative to a directory fd: the new content goes
//! to a temp file of a name no one else uses (this process's pid and a
//! random part), created with `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted
//! file or symlink of that name is never followed or removed: another name
//! is drawn), is fsynced, renamed over the target with `renameat`, and the
//! directory is fsynced. A reader sees the old content or the new, never
//! half of it; a crash leaves at most the temp file, which no later writer
//! trips over ([`temp_owner`] tells who left it). Two writers of the same
//! file never share a temp file: the last rename wins, whole. Every step
//! goes through the directory's fd, so a directory swapped after it was
//! opened and checked is never written to.

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

/// Removes `name` from `dir` (a link itself, never its target).
pub fn remove_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(unlinkat(
        dir,
        plain_name(name)?,
        UnlinkatFlags::NoRemoveDir,
    )?)
}

/// Replaces `name` in `dir` with `parts`, written in order, through a temp
/// file of its own (mode `mode`): create, write, fsync, rename, fsync the
/// directory. On failure the temp file is removed and `name` is untouched.
pub fn replace_at(dir: BorrowedFd<'_>, name: &str, parts: &[&[u8]], mode: u32) -> io::Result<()> {
    replace_at_with(dir, name, parts, mode, Durability::Synced)
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
    parts: &[&[u8]],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let synced = durability == Durability::Synced;
    let name = plain_name(name)?;
    let (tmp, mut file) = create_temp_at(dir, name, mode)?;
    let written = parts
        .iter()
        .try_for_each(|p| file.write_all(p))
        .and_then(|()| if synced { file.sync_all() } else { Ok(()) });
    drop(file);
    let renamed = written.and_then(|()| Ok(renameat(dir, tmp.as_str(), dir, name)?));
    if let Err(e) = renamed {
        let _ = remove_at(dir, &tmp);
        return Err(e);
    }
    // The rename is durable once the directory is.
    if synced {
        fsync(dir)?;
    }
    Ok(())
}

/// How many temp names [`create_temp_at`] draws before it gives up.
const TEMP_ATTEMPTS: usize = 8;

/// Creates a temp file for `name` in `dir`, `.<name>.<pid>.<random>.tmp`,
/// never an existing one (`O_EXCL`, `O_NOFOLLOW`): a name taken (a
/// leftover, a planted link) is passed over for another.
fn create_temp_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<(String, File)> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(mode);
    let mut attempt = 1;
    loop {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), &random[..12]);
        match openat(dir, tmp.as_str(), flags, mode) {
            Ok(fd) => return Ok((tmp, File::from(fd))),
            Err(Errno::EEXIST) if attempt < TEMP_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `file` is a temp file [`replace_at`] made on its way to `name`.
pub fn is_temp_of(file: &str, name: &str) -> bool {
    split_temp(file).is_some_and(|(target, _)| target == name)
}

/// The pid of the process that made `file` as a temp file of
/// [`replace_at`], if it is one: a temp file whose process is gone is a
/// leftover of a crash, safe to remove.
pub fn temp_owner(file: &str) -> Option<u32> {
    split_temp(file).map(|(_, pid)| pid)
}

/// A temp file's target name and writer's pid, from
/// `.<name>.<pid>.<random>.tmp`.
fn split_temp(file: &str) -> Option<(&str, u32)> {
    let inner = file.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, random) = inner.rsplit_once('.')?;
    if random.len() != 12 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (name, pid) = rest.rsplit_once('.')?;
    Some((name, pid.parse().ok()?))
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

    /// The names in `dir`, sorted.
    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_file_replace_good() {
        let d = tempfile::tempdir().expect("dir");
        let fd = open_dir(d.path());
        replace_at(fd.as_fd(), "entry", &[b"one"], 0o600).expect("write");
        replace_at(fd.as_fd(), "entry", &[b"two", b"-parts"], 0o640).expect("replace");
        let path = d.path().join("entry");
        assert_eq!(std::fs::read(&path).expect("read"), b"two-parts");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(
            mode & 0o777 & !0o640,
            0,
            "no bits beyond the mode asked: {mode:o}"
        );
        assert_eq!(names(d.path()), ["entry"], "the temp file was renamed");
    }

    #[test]
    fn atomic_file_planted_link_bad() {
        // A symlink planted at the target is replaced, its target untouched.
        let d = tempfile::tempdir().expect("dir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        std::os::unix::fs::symlink(&victim, d.path().join("f")).expect("link");
        let fd = open_dir(d.path());
        replace_at(fd.as_fd(), "f", &[b"new"], 0o600).expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        let f = d.path().join("f");
        assert!(!std::fs::symlink_metadata(&f).expect("f").is_symlink());
        assert_eq!(std::fs::read_to_string(&f).expect("f"), "new");
    }

    /// The leftovers of a writer that crashed with this very pid (and a
    /// file planted under the names it used) neither stop a write nor are
    /// written through or removed.
    #[test]
    fn atomic_file_leftover_temp_files_ugly() {
        let d = tempfile::tempdir().expect("dir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        let pid = std::process::id();
        let leftover = format!(".f.{pid}.0123456789ab.tmp");
        let planted = format!(".f.{pid}.ba9876543210.tmp");
        std::fs::write(d.path().join(&leftover), "half").expect("leftover");
        std::os::unix::fs::symlink(&victim, d.path().join(&planted)).expect("link");
        let fd = open_dir(d.path());
        replace_at(fd.as_fd(), "f", &[b"new"], 0o600).expect("write");
        assert_eq!(std::fs::read_to_string(d.path().join("f")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        let mut want = vec![
            planted.clone(),
            leftover.clone(),
            "f".into(),
            "victim".into(),
        ];
        want.sort();
        assert_eq!(names(d.path()), want);
        assert_eq!(temp_owner(&leftover), Some(pid));
    }

    /// Writers racing on one file never share a temp file: every read sees
    /// one writer's content whole, and the last rename wins.
    #[test]
    fn atomic_file_racing_writers_good() {
        let d = tempfile::tempdir().expect("dir");
        let contents: Vec<Vec<u8>> = (0..4u8).map(|w| vec![b'a' + w; 64 * 1024]).collect();
        let contents = &contents;
        std::thread::scope(|s| {
            for content in contents {
                let path = d.path();
                s.spawn(move || {
                    let fd = open_dir(path);
                    for _ in 0..50 {
                        replace_at_with(fd.as_fd(), "f", &[content], 0o600, Durability::Unsynced)
                            .expect("write");
                    }
                });
            }
            let path = d.path().join("f");
            s.spawn(move || {
                for _ in 0..200 {
                    if let Ok(read) = std::fs::read(&path) {
                        assert!(
                            contents.contains(&read),
                            "a torn read: {} bytes",
                            read.len()
                        );
                    }
                }
            });
        });
        assert_eq!(names(d.path()), ["f"], "no temp file left");
    }

    #[test]
    fn atomic_file_temp_owner_good() {
        assert_eq!(temp_owner(".entry.json.4242.0123456789ab.tmp"), Some(4242));
        assert_eq!(temp_owner(".a.b.7.abcdefabcdef.tmp"), Some(7));
        assert_eq!(temp_owner("entry.4242.0123456789ab.tmp"), None, "no dot");
        assert_eq!(temp_owner(".entry.4242.tmp"), None, "no random part");
        assert_eq!(temp_owner(".entry.x.0123456789ab.tmp"), None, "no pid");
        assert_eq!(temp_owner(".entry.4242.0123456789zz.tmp"), None);
        assert_eq!(temp_owner(".entry.4242.0123456789ab"), None);
        assert!(is_temp_of(".d.pid.4242.0123456789ab.tmp", "d.pid"));
        assert!(
            !is_temp_of(".d.pid.4242.0123456789ab.tmp", "d"),
            "another name's"
        );
        assert!(!is_temp_of(".d.pid.4242.0123456789ab.tmp", "e.pid"));
        assert!(!is_temp_of("d.pid.tmp", "d.pid"), "not of this format");
    }

    #[test]
    fn atomic_file_names_ugly() {
        let d = tempfile::tempdir().expect("dir");
        let fd = open_dir(d.path());
        for bad in ["", ".", "..", "../escape", "a/b", "nul\0"] {
            let err = replace_at(fd.as_fd(), bad, &[b"x"], 0o600).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(std::fs::read_dir(d.path()).expect("dir").count(), 0);
    }
}
