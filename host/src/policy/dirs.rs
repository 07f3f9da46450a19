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
