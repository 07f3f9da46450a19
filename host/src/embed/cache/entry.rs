//! One cache entry on disk: `<key>.cwasm` holds the artifact from
//! [`Component::serialize`] followed by an 88-byte trailer (artifact length,
//! BLAKE3 hash of the artifact, the key, and the magic). The artifact comes
//! first so that wasmtime can map the file itself, from offset 0, without a
//! copy.

use super::files::{UntrustedFile, check_owner_and_mode};
use super::record::FileIdentity;
use nix::fcntl::OFlag;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The magic bytes that end every entry; the last byte is the format
/// version (2: trailer after the artifact; 1 had a header before it).
pub(super) const MAGIC: [u8; 16] = *b"wasmproc-cwasm\0\x02";
/// Trailer: artifact length (u64 LE), artifact BLAKE3 hash, key, magic.
pub(super) const TRAILER_LEN: usize = 8 + 32 + 32 + 16;
/// Bytes read and hashed at a time when an entry is verified.
const CHUNK: usize = 1 << 20;

/// Why an entry on disk must not be loaded (it is recompiled instead).
#[derive(Debug, thiserror::Error)]
pub(super) enum Rejected {
    /// The file could not be opened, inspected or read.
    #[error("cannot {action}: {source}")]
    Io {
        /// `open`, `inspect` or `read`.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory, device or other non-regular file.
    #[error("not a regular file")]
    NotRegular,
    /// Owned by someone else or writable by others.
    #[error(transparent)]
    Untrusted(#[from] UntrustedFile),
    /// Shorter than the trailer.
    #[error("truncated: {size} bytes, shorter than the trailer")]
    Truncated {
        /// The file's size.
        size: u64,
    },
    /// No trailer of this format at the end.
    #[error("not a wasmproc cache entry of this format")]
    Foreign,
    /// The trailer's length disagrees with the file's.
    #[error("truncated or padded: the trailer says {recorded} bytes, the file holds {actual}")]
    LengthMismatch {
        /// The length the trailer records.
        recorded: u64,
        /// The artifact's length on disk.
        actual: u64,
    },
    /// The trailer names another key.
    #[error("the entry belongs to another key")]
    OtherKey,
    /// The artifact does not hash to the trailer's hash.
    #[error("corrupt: the artifact's BLAKE3 hash does not match the trailer")]
    Corrupt,
    /// The file's identity changed after it was opened.
    #[error("the entry changed while it was being loaded")]
    Changed,
    /// wasmtime refused the artifact.
    #[error("rejected by wasmtime: {0:#}")]
    Wasmtime(#[source] wasmtime::Error),
}

impl Rejected {
    fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { action, source }
    }
}

/// An entry opened without following symbolic links and checked on its
/// descriptor: a regular file, owned by this user, not writable by group
/// or others, with a trailer that names the expected key and the file's
/// length. Everything after this works on the same descriptor, so renaming
/// another file over the entry's name cannot change what is loaded.
#[derive(Debug)]
pub(super) struct OpenEntry {
    file: File,
    identity: FileIdentity,
    artifact_len: u64,
    artifact_hash: [u8; 32],
}

/// Opens the entry at `path` for `key`; `Ok(None)` if there is none, `Err`
/// (with the reason) if there is one that must not be loaded.
pub(super) fn open(path: &Path, key: &[u8; 32]) -> Result<Option<OpenEntry>, Rejected> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Rejected::io("open")(e)),
    };
    let meta = file.metadata().map_err(Rejected::io("inspect"))?;
    if !meta.is_file() {
        return Err(Rejected::NotRegular);
    }
    check_owner_and_mode(&meta)?;
    let size = meta.len();
    let Some(artifact_len) = size.checked_sub(TRAILER_LEN as u64) else {
        return Err(Rejected::Truncated { size });
    };
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut trailer, artifact_len)
        .map_err(Rejected::io("read the trailer"))?;
    if trailer[72..] != MAGIC {
        return Err(Rejected::Foreign);
    }
    let length = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    if length != artifact_len {
        return Err(Rejected::LengthMismatch {
            recorded: length,
            actual: artifact_len,
        });
    }
    if trailer[40..72] != key[..] {
        return Err(Rejected::OtherKey);
    }
    Ok(Some(OpenEntry {
        identity: FileIdentity::of(&meta),
        file,
        artifact_len,
        artifact_hash: trailer[8..40].try_into().expect("32 bytes"),
    }))
}

impl OpenEntry {
    /// The entry's identity when it was opened.
    pub(super) fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// Reads the artifact through this descriptor and checks its BLAKE3
    /// hash against the trailer, and that the file did not change meanwhile.
    pub(super) fn verify(&self) -> Result<(), Rejected> {
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut offset = 0u64;
        while offset < self.artifact_len {
            let want = CHUNK.min((self.artifact_len - offset) as usize);
            let chunk = &mut buffer[..want];
            self.file
                .read_exact_at(chunk, offset)
                .map_err(Rejected::io("read"))?;
            hasher.update(chunk);
            offset += want as u64;
        }
        if hasher.finalize().as_bytes() != &self.artifact_hash {
            return Err(Rejected::Corrupt);
        }
        self.check_unchanged()
    }

    /// The file still has the identity it had when it was opened (and
    /// verified): no write reached it in between.
    fn check_unchanged(&self) -> Result<(), Rejected> {
        let now = self.file.metadata().map_err(Rejected::io("inspect"))?;
        if FileIdentity::of(&now) != self.identity {
            return Err(Rejected::Changed);
        }
        Ok(())
    }

    /// Maps this very file into wasmtime, through `/proc/self/fd`, so the
    /// inode that was checked is the one mapped whatever its path names by
    /// now; then checks that it was not written meanwhile. Without `/proc`,
    /// the artifact is read through the descriptor, verified again and
    /// copied in.
    ///
    /// # Safety
    ///
    /// The artifact must have been verified ([`Self::verify`]) at this
    /// identity, now or by an earlier load, and the cache directory checked
    /// (see the trust model in the module docs).
    pub(super) unsafe fn deserialize(&self, engine: &Engine) -> Result<Component, Rejected> {
        let proc_fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let component = if Path::new("/proc/self/fd").is_dir() {
            // SAFETY: the caller's contract; the path reaches the verified
            // inode itself, and the trailer after the artifact is ignored by
            // the ELF reader.
            unsafe { Component::deserialize_file(engine, &proc_fd) }
        } else {
            let mut artifact = vec![0u8; self.artifact_len as usize];
            self.file
                .read_exact_at(&mut artifact, 0)
                .map_err(Rejected::io("read"))?;
            if blake3::hash(&artifact).as_bytes() != &self.artifact_hash {
                return Err(Rejected::Corrupt);
            }
            // SAFETY: the caller's contract, and these bytes were just
            // verified against the trailer.
            unsafe { Component::deserialize(engine, &artifact) }
        }
        .map_err(Rejected::Wasmtime)?;
        self.check_unchanged()?;
        Ok(component)
    }
}

/// Writes an entry atomically and durably (see
/// [`write_atomically`](super::write_atomically)).
pub(super) fn write(
    dir: &Path,
    path: &Path,
    key: &[u8; 32],
    artifact: &[u8],
) -> std::io::Result<()> {
    let mut trailer = Vec::with_capacity(TRAILER_LEN);
    trailer.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    trailer.extend_from_slice(blake3::hash(artifact).as_bytes());
    trailer.extend_from_slice(key);
    trailer.extend_from_slice(&MAGIC);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    super::files::write_atomically(dir, &name, &[artifact, &trailer], true)
}
