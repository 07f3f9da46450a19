//! Program grants: resolving a granted name to one canonical executable
//! when the policy loads, and matching a guest's request against it.

use super::args::{ArgPattern, Mismatch};
use super::env::VarGrant;
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
}

impl ProgramGrant {
    /// Whether a guest's program string names this grant: the name as
    /// written, or the canonical path. Guest strings are compared, never
    /// resolved on the filesystem.
    pub(crate) fn is_named_by(&self, requested: &str) -> bool {
        self.name == requested || self.path.as_os_str() == OsStr::new(requested)
    }

    /// Checks the argument list against the grant's patterns; the denial
    /// names the first argument that departs from the closest pattern.
    pub(crate) fn check_args(&self, args: &[String]) -> Result<(), CallError> {
        let Some(patterns) = &self.args else {
            return Ok(());
        };
        let mut closest: Option<(usize, &ArgPattern, Mismatch)> = None;
        for pattern in patterns {
            match pattern.check(args) {
                Ok(()) => return Ok(()),
                Err(m) => {
                    let depth = match m {
                        Mismatch::Argument { index } | Mismatch::TooMany { index } => index,
                        Mismatch::TooFew { .. } => args.len() + 1,
                    };
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
/// must be absolute. The file must be a regular executable, and neither it
/// nor the directory it was found in may be writable by everyone: a binary
/// reached through such a place could be swapped by anyone on the machine.
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
        return check_executable(&quoted, path, path.parent());
    }
    let dirs = search_path.map(std::env::split_paths).into_iter().flatten();
    for dir in dirs.filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return check_executable(&quoted, &candidate, Some(&dir));
        }
    }
    Err(PolicyError::entry(
        quoted,
        "not found in any absolute directory of PATH",
    ))
}

fn check_executable(
    quoted: &str,
    path: &Path,
    found_in: Option<&Path>,
) -> Result<PathBuf, PolicyError> {
    let canonical = path.canonicalize().map_err(|e| {
        PolicyError::entry(quoted, format!("cannot resolve {}: {e}", path.display()))
    })?;
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
    if meta.mode() & 0o002 != 0 {
        return Err(PolicyError::entry(
            quoted,
            format!("{} is writable by every user", canonical.display()),
        ));
    }
    let dirs = [
        found_in.map(Path::to_path_buf),
        canonical.parent().map(Path::to_path_buf),
    ];
    for dir in dirs.into_iter().flatten() {
        let mode = dir.metadata().map(|m| m.mode()).unwrap_or(0);
        if mode & 0o002 != 0 {
            return Err(PolicyError::entry(
                quoted,
                format!(
                    "resolved through {}, a directory every user can write to",
                    dir.display()
                ),
            ));
        }
    }
    Ok(canonical)
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
    fn program_resolve_relative_path_entries_ignored_ugly() {
        // A relative PATH entry (here `.`) is never searched.
        let err = resolve("Cargo.toml", Some(OsStr::new("."))).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
    }
}
