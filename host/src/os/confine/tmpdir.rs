//! A session's private temporary directory: made at the first start that
//! needs it (mode 0700, a fresh name under the host's temporary
//! directory), writable only by that session's programs, removed when the
//! session ends.
//!
//! A session can also end with its host: a process that exits without
//! dropping its sessions (a `serve` whose plugin threads still hold theirs)
//! removes what is left at exit (`atexit`), and one that was killed leaves
//! its directories to the next host, which removes those of hosts no longer
//! running (their pid is in the name) when it makes its first one, on a
//! thread of its own.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

/// The start of every such directory's name; the host's pid follows.
const PREFIX: &str = "wasmproc-tmp-";

/// The directories this process made and has not removed yet.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

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
    static FIRST: Once = Once::new();
    let base = std::env::temp_dir();
    FIRST.call_once(|| {
        // SAFETY: registers a function that takes no argument and never
        // unwinds.
        unsafe { libc::atexit(remove_live_at_exit) };
        // Off the start's path: the temporary directory may hold thousands
        // of entries. Best effort: without a thread, the next host sweeps.
        let sweep_in = base.clone();
        let _ = std::thread::Builder::new()
            .name("wasmproc-tmp-sweep".into())
            .spawn(move || remove_left_by_dead_hosts(&sweep_in));
    });
    let name = format!("{PREFIX}{}-{}", std::process::id(), uuid::Uuid::new_v4());
    let dir = base.join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    // Canonical, so the Landlock rule and TMPDIR name the same place.
    let dir = dir.canonicalize()?;
    live().push(dir.clone());
    Ok(dir)
}

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the directories still live when the process exits normally.
extern "C" fn remove_live_at_exit() {
    // Never blocks: a thread that held the list when the process began to
    // exit leaves it to the next host's sweep.
    let mut live = match LIVE.try_lock() {
        Ok(live) => live,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for dir in live.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes, under `base`, the private directories of hosts that no longer
/// run: named with a pid no process has, owned by this user, real
/// directories (never followed through a link). A pid in use again by
/// another process keeps its directory until a later host finds it free.
pub(crate) fn remove_left_by_dead_hosts(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .filter(|pid| *pid > 0)
        else {
            continue;
        };
        let gone = crate::sys::process::pid_gone(pid);
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if gone && ours {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let Some(dir) = self.path() else {
            return;
        };
        live().retain(|d| *d != dir);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a session's TMPDIR");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpdir_of_dead_host_removed_good() {
        // A host that is gone (a pid past the kernel's limit), one that
        // runs (this process), and a name that only looks like one.
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join(format!("{PREFIX}{}-x", i32::MAX));
        let alive = base
            .path()
            .join(format!("{PREFIX}{}-x", std::process::id()));
        let other = base.path().join(format!("{PREFIX}not-a-pid"));
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("file"), "x").unwrap();
        }
        remove_left_by_dead_hosts(base.path());
        assert!(!dead.exists(), "a dead host's directory is removed");
        assert!(alive.exists(), "a running host's directory stays");
        assert!(other.exists(), "a name without a pid stays");
    }

    #[test]
    fn tmpdir_link_never_followed_ugly() {
        // A link named like a dead host's directory, pointing at a
        // directory with a file: the link may go, never what it points to.
        let base = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("keep"), "x").unwrap();
        let link = base.path().join(format!("{PREFIX}{}-x", i32::MAX));
        std::os::unix::fs::symlink(target.path(), &link).unwrap();
        remove_left_by_dead_hosts(base.path());
        assert!(target.path().join("keep").exists());
    }
}
