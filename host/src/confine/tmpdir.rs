//! A session's private temporary directory: made at the first start that
//! needs it (mode 0700, a fresh name under the host's temporary
//! directory), writable only by that session's programs, removed when the
//! session ends.

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The directory, made on first use; removed on drop.
#[derive(Debug, Default)]
pub(crate) struct PrivateTmp {
    dir: OnceLock<Result<PathBuf, String>>,
}

impl PrivateTmp {
    /// Its path, making it at the first call.
    pub(crate) fn get(&self) -> io::Result<PathBuf> {
        self.dir
            .get_or_init(|| make().map_err(|e| e.to_string()))
            .clone()
            .map_err(io::Error::other)
    }

    /// Its path, if it was made.
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.dir.get().and_then(|d| d.as_ref().ok().cloned())
    }
}

fn make() -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("wasmproc-tmp-{}", uuid::Uuid::new_v4()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    // Canonical, so the Landlock rule and TMPDIR name the same place.
    dir.canonicalize()
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        if let Some(dir) = self.path()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a session's TMPDIR");
        }
    }
}
