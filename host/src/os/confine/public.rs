//! The parts of a system directory that any user may read: where a
//! directory such as `/etc` holds a file only its owner may read
//! (`/etc/shadow`), the directory is not granted whole. A host running as
//! root starts programs as uid 0, which owns that file, so file modes alone
//! would not keep it from them; the Landlock domain does.
//!
//! Of `/etc`, the public files directly in it are granted, and of the
//! directories that configure libraries and tools ([`ETC_DIRS`]), the
//! largest subtrees whose every entry is readable by others (files `o+r`,
//! directories `o+rx`), one rule each. Symbolic links get no rule: the
//! kernel follows them, and their targets need rules of their own. It runs once per host process, at the
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

/// The directories of `/etc` that hold the configuration of libraries and
/// tools a program loads (a trailing `*` matches any rest of the name).
/// Other directories there configure the system's services (init, cron,
/// systemd, the package manager, PAM, sudo, servers): a granted program
/// has no business in them, and each granted directory is one more
/// Landlock rule, which every confined start pays for (0.27 µs each on
/// the reference machine, where `/etc` holds 69 directories). The files
/// directly in `/etc` are all granted where public.
pub(crate) const ETC_DIRS: &[&str] = &[
    "X11",
    "alternatives",
    "bash_completion.d",
    "ca-certificates",
    "containers",
    "crypto-policies",
    "dconf",
    "debuginfod",
    "fonts",
    "gdb",
    "glvnd",
    "gnutls",
    "groff",
    "gss",
    "gtk-*",
    "ImageMagick-*",
    "iproute2",
    "java-*",
    "ld.so.conf.d",
    "ldap",
    "maven",
    "mysql",
    "opt",
    "perl",
    "php*",
    "pki",
    "postgresql-common",
    "profile.d",
    "python*",
    "ruby*",
    "selinux",
    "sgml",
    "ssh",
    "ssl",
    "terminfo",
    "vim",
    "xdg",
    "xml",
];

/// Whether `name`, a directory in `/etc`, is one of [`ETC_DIRS`].
fn etc_dir_granted(name: &str) -> bool {
    ETC_DIRS
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        })
}

/// The public parts of [`PUBLIC_ONLY_DIRS`] to grant, found once: the
/// public files directly in each, and the public subtrees of the
/// directories of [`ETC_DIRS`].
pub(crate) fn public_paths() -> &'static [PublicPath] {
    static FOUND: OnceLock<Vec<PublicPath>> = OnceLock::new();
    FOUND.get_or_init(|| {
        PUBLIC_ONLY_DIRS
            .iter()
            .flat_map(|dir| granted_subtrees(Path::new(dir)))
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

/// The public files directly in `dir`, and the public subtrees of its
/// directories named in [`ETC_DIRS`]; nothing if `dir` itself is not
/// public.
pub(crate) fn granted_subtrees(dir: &Path) -> Vec<(PathBuf, bool)> {
    let public_dir = fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && public_mode(&m));
    let entries = match fs::read_dir(dir) {
        Ok(entries) if public_dir => entries,
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    for entry in entries.flatten().take(MAX_ENTRIES) {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() && public_mode(&meta) {
            found.push((path, false));
        } else if meta.is_dir() && etc_dir_granted(&entry.file_name().to_string_lossy()) {
            found.extend(public_subtrees(&path));
        }
    }
    found
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
    fn public_service_directories_left_out_good() {
        // The shape of /etc: files, a private one, a tool's directory with
        // a private part, and a service's directory.
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        touch(&d.path().join("hosts"), 0o644);
        touch(&d.path().join("shadow"), 0o640);
        fs::create_dir_all(d.path().join("ssl/private")).unwrap();
        touch(&d.path().join("ssl/openssl.cnf"), 0o644);
        touch(&d.path().join("ssl/private/key.pem"), 0o600);
        fs::create_dir(d.path().join("python3.11")).unwrap();
        touch(&d.path().join("python3.11/sitecustomize.py"), 0o644);
        fs::create_dir(d.path().join("cron.d")).unwrap();
        touch(&d.path().join("cron.d/job"), 0o644);
        let mut found = granted_subtrees(d.path());
        found.sort();
        assert_eq!(
            found,
            vec![
                (d.path().join("hosts"), false),
                (d.path().join("python3.11"), true),
                (d.path().join("ssl/openssl.cnf"), false),
            ]
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
