//! Program grants: resolving a granted name to one canonical executable
//! when the policy loads, and matching a guest's request against it.

use super::args::{ArgPattern, Mismatch};
use super::env::VarGrant;
use super::secrets::Secrets;
use crate::error::{CallError, PolicyError};
use serde::Deserialize;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Operations a program grant can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Synchronous `run`.
    Run,
    /// Background `start`.
    Start,
}

impl Operation {
    /// The WIT name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Start => "start",
        }
    }
}

/// A program a guest may execute, resolved when the policy loaded.
#[derive(Debug, Clone)]
pub struct ProgramGrant {
    /// The name as written in the policy (`git`, `/usr/bin/git`).
    pub name: String,
    /// The canonical absolute path that is executed.
    pub path: PathBuf,
    /// Allowed argument lists; `None` allows any.
    pub args: Option<Vec<ArgPattern>>,
    /// Operations allowed with this program.
    pub operations: Vec<Operation>,
    /// Variables the guest may set for this program only (`env`).
    pub(crate) env: VarGrant,
    /// Variables the host supplies to this program only (`secrets`).
    pub(crate) secrets: Secrets,
    /// What it may touch beyond the confinement's defaults (`fs`, `net`).
    pub access: super::access::ProgramAccess,
}

impl ProgramGrant {
    /// Whether a guest's program string names this grant: the name as
    /// written, or the canonical path. Guest strings are compared, never
    /// resolved on the filesystem.
    pub(crate) fn is_named_by(&self, requested: &str) -> bool {
        self.name == requested || self.path.as_os_str() == OsStr::new(requested)
    }

    /// The program's own variable grants as written, each with the inert
    /// names a wildcard expands to.
    pub fn variable_grants(&self) -> Vec<(String, Vec<&'static str>)> {
        self.env.expansions()
    }

    /// The names of the secrets the host supplies to this program.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secrets.names()
    }

    /// Whether any pattern has a path placeholder.
    pub(crate) fn has_paths(&self) -> bool {
        self.args.iter().flatten().any(ArgPattern::has_paths)
    }

    /// Checks the argument list against the grant's patterns; the denial
    /// names the first argument that departs from the closest pattern.
    pub(crate) fn check_args(
        &self,
        args: &[String],
        path_ok: &dyn Fn(&str) -> bool,
    ) -> Result<(), CallError> {
        let Some(patterns) = &self.args else {
            return Ok(());
        };
        let mut closest: Option<(usize, &ArgPattern, Mismatch)> = None;
        for pattern in patterns {
            match pattern.check(args, path_ok) {
                Ok(()) => return Ok(()),
                Err(m) => {
                    let depth = m.depth(args.len());
                    if closest.as_ref().is_none_or(|(d, _, _)| depth > *d) {
                        closest = Some((depth, pattern, m));
                    }
                }
            }
        }
        let Some((_, pattern, mismatch)) = closest else {
            return Err(CallError::Denied(format!(
                "program `{}` is granted with no argument lists",
                self.name
            )));
        };
        let shown = pattern.to_string();
        let grant = if shown.is_empty() {
            format!("`{}`", self.name)
        } else {
            format!("`{} {shown}`", self.name)
        };
        Err(CallError::Denied(match mismatch {
            Mismatch::Argument { index } | Mismatch::TooMany { index } => format!(
                "argument {index} `{}` does not match grant {grant}",
                args[index - 1]
            ),
            Mismatch::Option { index } => format!(
                "argument {index} `{}` is an option, and grant {grant} names no option there \
                 (wildcards match operands only; name the option in the pattern, or put `--` \
                 before operands that start with `-`)",
                args[index - 1]
            ),
            Mismatch::Path { index } => format!(
                "argument {index} `{}` is not a path inside the granted roots (grant {grant}): \
                 it resolves outside them, goes through `..` where nothing exists, or is a \
                 dangling symlink",
                args[index - 1]
            ),
            Mismatch::TooFew { expected } => format!(
                "{} argument(s) given, grant {grant} needs {expected}",
                args.len()
            ),
        }))
    }
}

/// Resolves a program named in a policy to a canonical executable path.
///
/// A bare name is looked up in `search_path` (absolute entries only); a path
/// must be absolute. The file must be a regular executable reached through a
/// trusted chain (see [`check_chain`]): a binary reached through a place
/// someone else can write could be swapped by them.
pub(crate) fn resolve(name: &str, search_path: Option<&OsStr>) -> Result<PathBuf, PolicyError> {
    let quoted = format!("program `{name}`");
    if name.is_empty() {
        return Err(PolicyError::entry(quoted, "the name is empty"));
    }
    if name.contains('\0') {
        return Err(PolicyError::entry(quoted, "the name contains a NUL byte"));
    }
    if name.contains('/') {
        let path = Path::new(name);
        if !path.is_absolute() {
            return Err(PolicyError::entry(
                quoted,
                "a relative path is ambiguous; give a bare name or an absolute path",
            ));
        }
        return check_executable(&quoted, path);
    }
    let dirs = search_path.map(std::env::split_paths).into_iter().flatten();
    for dir in dirs.filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return check_executable(&quoted, &candidate);
        }
    }
    Err(PolicyError::entry(
        quoted,
        "not found in any absolute directory of PATH",
    ))
}

fn check_executable(quoted: &str, path: &Path) -> Result<PathBuf, PolicyError> {
    let canonical = check_chain(path).map_err(|why| PolicyError::entry(quoted, why.to_string()))?;
    let meta = canonical.metadata().map_err(|e| {
        PolicyError::entry(
            quoted,
            format!("cannot inspect {}: {e}", canonical.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(PolicyError::entry(
            quoted,
            format!("{} is not a regular file", canonical.display()),
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(PolicyError::entry(
            quoted,
            format!("{} is not executable", canonical.display()),
        ));
    }
    Ok(canonical)
}

/// Most symlinks followed while checking one path (as the kernel's own
/// limit, `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a program's path is not trusted: something on the way to it could
/// be swapped by another user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UntrustedPath {
    /// A step of the path could not be inspected or read.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `inspect` or `read the link`.
        action: &'static str,
        /// The step.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A Windows path prefix.
    #[error("path prefixes are not supported")]
    Prefix,
    /// A symlink loop, or a chain longer than the kernel follows.
    #[error("more than {MAX_SYMLINK_HOPS} symlinks at {}", .0.display())]
    TooManyLinks(PathBuf),
    /// A directory on the way is owned by another user.
    #[error(
        "resolved through {}, a directory owned by uid {uid} (only root or this user may own the path)",
        dir.display()
    )]
    DirectoryOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// A directory on the way is writable by others (and not sticky).
    #[error(
        "resolved through {}, a directory others can write to (mode {mode:04o}), so {} could be swapped",
        dir.display(),
        next.display()
    )]
    DirectoryWritable {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The step inside it.
        next: PathBuf,
    },
    /// A step is owned by another user.
    #[error("{} is owned by uid {uid} (only root or this user may own the path)", path.display())]
    Owner {
        /// The step.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// A file on the way is writable by others.
    #[error("{} is writable by others (mode {mode:04o})", path.display())]
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Walks `path` from `/`, following every symlink hop, and checks each
/// component as sudo's secure path and OpenSSH's `StrictModes` do: each
/// directory, symlink and the final file must be owned by root or this
/// user and writable by no one else, except a sticky directory (such as
/// `/tmp`) whose next component is owned by root or this user. Returns the
/// canonical path.
pub(crate) fn check_chain(path: &Path) -> Result<PathBuf, UntrustedPath> {
    let mut hops = 0;
    walk(Path::new("/"), path, &mut hops)
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

fn walk(start: &Path, path: &Path, hops: &mut usize) -> Result<PathBuf, UntrustedPath> {
    use std::path::Component;
    let mut current = start.to_path_buf();
    let lstat = |p: &Path| {
        std::fs::symlink_metadata(p).map_err(|source| UntrustedPath::Io {
            action: "inspect",
            path: p.to_path_buf(),
            source,
        })
    };
    let mut parent = lstat(&current)?;
    for component in path.components() {
        let next = match component {
            Component::RootDir => {
                current = PathBuf::from("/");
                parent = lstat(&current)?;
                continue;
            }
            Component::CurDir => continue,
            Component::ParentDir => {
                current.pop();
                parent = lstat(&current)?;
                continue;
            }
            Component::Prefix(_) => return Err(UntrustedPath::Prefix),
            Component::Normal(name) => current.join(name),
        };
        let meta = lstat(&next)?;
        check_component(&current, &parent, &next, &meta)?;
        if meta.file_type().is_symlink() {
            *hops += 1;
            if *hops > MAX_SYMLINK_HOPS {
                return Err(UntrustedPath::TooManyLinks(next));
            }
            let target = std::fs::read_link(&next).map_err(|source| UntrustedPath::Io {
                action: "read the link",
                path: next.clone(),
                source,
            })?;
            // A relative target is taken from the link's directory.
            current = walk(&current, &target, hops)?;
        } else {
            current = next;
        }
        parent = lstat(&current)?;
    }
    Ok(current)
}

/// Checks one step of the chain: `next` (with metadata `meta`) inside the
/// directory `dir` (with metadata `dir_meta`).
fn check_component(
    dir: &Path,
    dir_meta: &std::fs::Metadata,
    next: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), UntrustedPath> {
    let others_write = dir_meta.mode() & 0o022 != 0;
    let sticky = dir_meta.mode() & 0o1000 != 0;
    if !trusted_owner(dir_meta.uid()) {
        return Err(UntrustedPath::DirectoryOwner {
            dir: dir.to_path_buf(),
            uid: dir_meta.uid(),
        });
    }
    if others_write && !(sticky && trusted_owner(meta.uid())) {
        return Err(UntrustedPath::DirectoryWritable {
            dir: dir.to_path_buf(),
            mode: dir_meta.mode() & 0o7777,
            next: next.to_path_buf(),
        });
    }
    if !trusted_owner(meta.uid()) {
        return Err(UntrustedPath::Owner {
            path: next.to_path_buf(),
            uid: meta.uid(),
        });
    }
    // A symlink's own mode bits mean nothing; anything else must not be
    // writable by others (a directory is checked again as the next parent).
    if !meta.file_type().is_symlink() && !meta.is_dir() && meta.mode() & 0o022 != 0 {
        return Err(UntrustedPath::Writable {
            path: next.to_path_buf(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_resolve_bare_name_good() {
        let path = resolve("sh", Some(OsStr::new("/usr/bin:/bin"))).unwrap();
        assert!(path.is_absolute(), "{}", path.display());
        assert_eq!(path, path.canonicalize().unwrap());
    }

    #[test]
    fn program_resolve_relative_bad() {
        let err = resolve("./sh", Some(OsStr::new("/usr/bin"))).unwrap_err();
        assert!(err.to_string().contains("relative path"), "{err}");
        let err = resolve("no-such-program-xyz", Some(OsStr::new("/usr/bin"))).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
    }

    #[test]
    fn program_trust_chain_bad() {
        // A 0755 directory inside a 0777 (not sticky) one is refused, and
        // so is a symlink in a trusted place whose target goes through it.
        let base = tempfile::tempdir().unwrap();
        let open = base.path().join("open");
        let bin = open.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let tool = bin.join("tool");
        std::fs::copy("/bin/true", &tool).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = resolve(tool.to_str().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&open.display().to_string()) && err.contains("0777"),
            "{err}"
        );
        let safe = base.path().join("safe");
        std::fs::create_dir(&safe).unwrap();
        let link = safe.join("tool");
        std::os::unix::fs::symlink(&tool, &link).unwrap();
        let err = resolve(link.to_str().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&open.display().to_string()), "{err}");
        // Once the directory is closed, the same binary (and link) pass.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            resolve(link.to_str().unwrap(), None).unwrap(),
            tool.canonicalize().unwrap()
        );
    }

    #[test]
    fn program_trust_chain_sticky_good() {
        // A sticky world-writable directory (like /tmp) is fine when the
        // next component belongs to root or this user.
        let base = tempfile::tempdir().unwrap();
        let sticky = base.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let tool = sticky.join("tool");
        std::fs::copy("/bin/true", &tool).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(resolve(tool.to_str().unwrap(), None).is_ok());
        // The binary itself writable by others is refused.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o757)).unwrap();
        let err = resolve(tool.to_str().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("writable by others"), "{err}");
    }

    #[test]
    fn program_resolve_relative_path_entries_ignored_ugly() {
        // A relative PATH entry (here `.`) is never searched.
        let err = resolve("Cargo.toml", Some(OsStr::new("."))).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
    }
}
