//! The cache's file safety: who may own its directory and entries, and
//! how an entry is written (atomically, links never followed).

use nix::fcntl::OFlag;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Writes `parts` to `dir/name` atomically through the shared helper
/// ([`crate::os::atomic_file`]): a hidden temporary file in the same directory
/// (mode `0600`, created new, links not followed), renamed over the final
/// name, so a reader sees the old file or the whole new one. `durable` adds
/// an fsync of the file before the rename and of the directory after it.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    parts: &[&[u8]],
    durable: bool,
) -> std::io::Result<()> {
    use crate::os::atomic_file::{Durability, replace_at_with};
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let durability = if durable {
        Durability::Synced
    } else {
        Durability::Unsynced
    };
    replace_at_with(dir_fd.as_fd(), name, parts, 0o600, durability)
}

/// Why a cache directory or entry is not trusted to hold machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedFile {
    /// The directory path names something else (or a symbolic link).
    #[error("it is not a directory (symbolic links are not followed)")]
    NotDirectory,
    /// Another user owns it.
    #[error("owned by uid {owner}, not by the current user (uid {user})")]
    Owner {
        /// The owner's uid.
        owner: u32,
        /// The effective uid of this process.
        user: u32,
    },
    /// Group or others may write it.
    #[error("writable by group or others (mode {mode:o})")]
    Writable {
        /// The permission bits.
        mode: u32,
    },
}

/// Owned by the effective user and not writable by group or others.
pub(crate) fn check_owner_and_mode(meta: &fs::Metadata) -> Result<(), UntrustedFile> {
    let user = nix::unistd::geteuid().as_raw();
    if meta.uid() != user {
        return Err(UntrustedFile::Owner {
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(UntrustedFile::Writable {
            mode: mode & 0o7777,
        });
    }
    Ok(())
}
