//! Working-directory grants: canonical roots, and the check that a guest's
//! directory resolves (through `..` and symlinks) to a place under one.

use crate::error::{CallError, PolicyError};
use std::path::{Path, PathBuf};

/// The directories a guest's processes may run in.
#[derive(Debug, Clone, Default)]
pub struct DirGrant {
    roots: Vec<PathBuf>,
    default: Option<PathBuf>,
}

impl DirGrant {
    /// The canonical roots.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Whether any root is granted.
    pub(crate) fn has_roots(&self) -> bool {
        !self.roots.is_empty()
    }

    /// Canonicalizes the roots and the default directory, relative to
    /// `base`. The default must lie under a root; without one, the first
    /// root is the default.
    pub(crate) fn new(
        roots: &[String],
        default: Option<&str>,
        base: &Path,
    ) -> Result<Self, PolicyError> {
        let mut canonical = Vec::new();
        for root in roots {
            let quoted = format!("dirs.roots `{root}`");
            let dir = canonical_dir(&quoted, root, base)?;
            if canonical.contains(&dir) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            canonical.push(dir);
        }
        let default = match default {
            Some(d) => {
                let quoted = format!("dirs.default `{d}`");
                let dir = canonical_dir(&quoted, d, base)?;
                if !canonical.iter().any(|r| dir.starts_with(r)) {
                    return Err(PolicyError::entry(quoted, "is not under any of dirs.roots"));
                }
                Some(dir)
            }
            None => canonical.first().cloned(),
        };
        Ok(Self {
            roots: canonical,
            default,
        })
    }

    /// Resolves the working directory for a command. `None` gives the
    /// default (or the host's own directory when no root is granted).
    pub(crate) fn resolve(&self, requested: Option<&str>) -> Result<Option<PathBuf>, CallError> {
        let Some(requested) = requested else {
            return Ok(self.default.clone());
        };
        if requested.contains('\0') {
            return Err(CallError::Invalid(
                "working directory contains a NUL byte".into(),
            ));
        }
        let Some(default) = &self.default else {
            return Err(CallError::Denied(format!(
                "working directory `{requested}` is not granted: the policy grants no directory (dirs.roots)"
            )));
        };
        let joined = default.join(requested);
        let resolved = joined.canonicalize().map_err(|e| {
            CallError::Invalid(format!(
                "working directory `{requested}` cannot be resolved: {e}"
            ))
        })?;
        if !resolved.is_dir() {
            return Err(CallError::Invalid(format!(
                "working directory `{requested}` is not a directory"
            )));
        }
        if self.roots.iter().any(|r| resolved.starts_with(r)) {
            return Ok(Some(resolved));
        }
        Err(CallError::Denied(format!(
            "working directory `{requested}` resolves to {}, outside the granted roots",
            resolved.display()
        )))
    }
}

impl DirGrant {
    /// Whether the path operand `operand`, taken from `cwd` (or the
    /// default directory), lies inside a root once resolved: the longest
    /// part that exists is canonicalized (symlinks followed, `..` taken),
    /// and the rest must be plain names. A dangling symlink, or `..` past
    /// what exists, is refused.
    pub(crate) fn confines(&self, cwd: Option<&Path>, operand: &str) -> bool {
        let Some(base) = cwd.or(self.default.as_deref()) else {
            return false;
        };
        let Some(resolved) = resolve_lexical_tail(&base.join(operand)) else {
            return false;
        };
        self.roots.iter().any(|r| resolved.starts_with(r))
    }
}

/// Canonicalizes the longest existing prefix of `path` and appends the
/// rest, which must be plain names that do not exist (not even as a
/// dangling symlink).
fn resolve_lexical_tail(path: &Path) -> Option<PathBuf> {
    let mut tail = Vec::new();
    let mut current = path;
    loop {
        match current.canonicalize() {
            Ok(mut resolved) => {
                for name in tail.iter().rev() {
                    resolved.push(name);
                }
                return Some(resolved);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(current).is_ok() {
                    return None;
                }
                tail.push(current.file_name()?.to_owned());
                current = current.parent()?;
            }
            Err(_) => return None,
        }
    }
}

fn canonical_dir(quoted: &str, dir: &str, base: &Path) -> Result<PathBuf, PolicyError> {
    let path = base.join(dir);
    let canonical = path.canonicalize().map_err(|e| {
        PolicyError::entry(quoted, format!("cannot resolve {}: {e}", path.display()))
    })?;
    if !canonical.is_dir() {
        return Err(PolicyError::entry(quoted, "is not a directory"));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_path_operand_confined_ugly() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(root.join("sub/file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("nothing"), root.join("dangling")).unwrap();
        let grant = DirGrant::new(&["root".into()], None, base.path()).unwrap();
        for inside in [
            "sub/file",
            "sub",
            "",
            ".",
            "new",
            "sub/new",
            "sub/../sub/file",
        ] {
            assert!(grant.confines(None, inside), "{inside}");
        }
        let outside_abs = outside.join("x");
        for escape in [
            "..",
            "../outside/x",
            "/etc/passwd",
            outside_abs.to_str().unwrap(),
            "out/x",
            "out",
            "dangling",
            "new/../../x",
            "sub/file/x",
        ] {
            assert!(!grant.confines(None, escape), "{escape}");
        }
        // From a working directory inside the root.
        let sub = root.join("sub").canonicalize().unwrap();
        assert!(grant.confines(Some(&sub), "file"));
        assert!(!grant.confines(Some(&sub), "../../outside"));
    }
}
