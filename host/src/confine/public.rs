//! The parts of a system directory that any user may read: where a
//! directory such as `/etc` holds a file only its owner may read
//! (`/etc/shadow`), the directory is not granted whole. A host running as
//! root starts programs as uid 0, which owns that file, so file modes alone
//! would not keep it from them; the Landlock domain does.
//!
//! The walk finds the largest subtrees whose every entry is readable by
//! others (files `o+r`, directories `o+rx`) and grants those, one rule
//! each. Symbolic links get no rule: the kernel follows them, and their
//! targets need rules of their own. It runs once per host process, at the
//! first confined start: what appears later is not readable, which is the
//! safe side.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directories granted by their public parts only.
pub(crate) const PUBLIC_ONLY_DIRS: &[&str] = &["/etc"];

/// At most this many entries are looked at under one directory; past it,
/// only what was found public so far is granted.
const MAX_ENTRIES: usize = 50_000;

/// A public subtree, opened for a rule.
#[derive(Debug)]
pub(crate) struct PublicPath {
    pub(crate) fd: OwnedFd,
    pub(crate) is_dir: bool,
}

/// The public subtrees of [`PUBLIC_ONLY_DIRS`], found once.
pub(crate) fn public_paths() -> &'static [PublicPath] {
    static FOUND: OnceLock<Vec<PublicPath>> = OnceLock::new();
    FOUND.get_or_init(|| {
        PUBLIC_ONLY_DIRS
            .iter()
            .flat_map(|dir| public_subtrees(Path::new(dir)))
            .filter_map(|(path, is_dir)| {
                let fd = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
                    .open(&path)
                    .ok()?;
                Some(PublicPath {
                    fd: fd.into(),
                    is_dir,
                })
            })
            .collect()
    })
}

/// The largest subtrees of `root` that are public, each with whether it is
/// a directory: `root` itself if all of it is.
pub(crate) fn public_subtrees(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut found = Vec::new();
    let mut budget = MAX_ENTRIES;
    let public_dir = fs::symlink_metadata(root).is_ok_and(|m| m.is_dir() && public_mode(&m));
    if public_dir && walk(root, &mut found, &mut budget) {
        found = vec![(root.to_path_buf(), true)];
    }
    found
}

/// Whether others may read it (and search it, for a directory).
fn public_mode(meta: &fs::Metadata) -> bool {
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        mode & 0o005 == 0o005
    } else {
        mode & 0o004 != 0
    }
}

/// Walks `dir` (itself public); returns whether all of it is. Where it is
/// not, the public subtrees below it are pushed onto `found`.
fn walk(dir: &Path, found: &mut Vec<(PathBuf, bool)>, budget: &mut usize) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut all_public = true;
    let mut public = Vec::new();
    for entry in entries.flatten() {
        if *budget == 0 {
            all_public = false;
            break;
        }
        *budget -= 1;
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            all_public = false;
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let whole = public_mode(&meta) && (!meta.is_dir() || walk(&path, found, budget));
        if whole {
            public.push((path, meta.is_dir()));
        } else {
            all_public = false;
        }
    }
    if !all_public {
        found.extend(public);
    }
    all_public
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, mode: u32) {
        fs::write(path, "x").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn public_whole_tree_one_rule_good() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        touch(&d.path().join("sub/a"), 0o644);
        touch(&d.path().join("b"), 0o444);
        assert_eq!(
            public_subtrees(d.path()),
            vec![(d.path().to_path_buf(), true)]
        );
    }

    #[test]
    fn public_owner_only_file_left_out_ugly() {
        // The shape of /etc: one file only its owner may read, beside
        // public files and a directory holding another such file.
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        touch(&d.path().join("passwd"), 0o644);
        touch(&d.path().join("shadow"), 0o640);
        fs::create_dir(d.path().join("ssl")).unwrap();
        touch(&d.path().join("ssl/cert.pem"), 0o644);
        fs::create_dir(d.path().join("ssl/private")).unwrap();
        fs::set_permissions(
            d.path().join("ssl/private"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        touch(&d.path().join("ssl/private/key.pem"), 0o600);
        fs::create_dir(d.path().join("public")).unwrap();
        touch(&d.path().join("public/a"), 0o644);
        std::os::unix::fs::symlink("/root", d.path().join("link")).unwrap();
        let mut found = public_subtrees(d.path());
        found.sort();
        let want = |p: &str, is_dir| (d.path().join(p), is_dir);
        assert_eq!(
            found,
            vec![
                want("passwd", false),
                want("public", true),
                want("ssl/cert.pem", false),
            ]
        );
    }
}
