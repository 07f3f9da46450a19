//! One cache entry on disk: `<key>.cwasm` holds the artifact from
//! [`Component::serialize`] followed by an 88-byte trailer (artifact length,
//! BLAKE3 hash of the artifact, the key, and the magic). The artifact comes
//! first so that wasmtime can map the file itself, from offset 0, without a
//! copy.

use super::check_owner_and_mode;
use super::record::FileIdentity;
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
pub(super) fn open(path: &Path, key: &[u8; 32]) -> Result<Option<OpenEntry>, String> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    check_owner_and_mode(&meta)?;
    let size = meta.len();
    let Some(artifact_len) = size.checked_sub(TRAILER_LEN as u64) else {
        return Err(format!("truncated: {size} bytes, shorter than the trailer"));
    };
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut trailer, artifact_len)
        .map_err(|e| format!("cannot read the trailer: {e}"))?;
    if trailer[72..] != MAGIC {
        return Err("not a wasmproc cache entry of this format".into());
    }
    let length = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    if length != artifact_len {
        return Err(format!(
            "truncated or padded: the trailer says {length} bytes, the file holds {artifact_len}"
        ));
    }
    if trailer[40..72] != key[..] {
        return Err("the entry belongs to another key".into());
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
    pub(super) fn verify(&self) -> Result<(), String> {
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut offset = 0u64;
        while offset < self.artifact_len {
            let want = CHUNK.min((self.artifact_len - offset) as usize);
            let chunk = &mut buffer[..want];
            self.file
                .read_exact_at(chunk, offset)
                .map_err(|e| format!("cannot read: {e}"))?;
            hasher.update(chunk);
            offset += want as u64;
        }
        if hasher.finalize().as_bytes() != &self.artifact_hash {
            return Err("corrupt: the artifact's BLAKE3 hash does not match the trailer".into());
        }
        self.check_unchanged()
    }

    /// The file still has the identity it had when it was opened (and
    /// verified): no write reached it in between.
    fn check_unchanged(&self) -> Result<(), String> {
        let now = self
            .file
            .metadata()
            .map_err(|e| format!("cannot inspect: {e}"))?;
        if FileIdentity::of(&now) != self.identity {
            return Err("the entry changed while it was being loaded".into());
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
    pub(super) unsafe fn deserialize(&self, engine: &Engine) -> Result<Component, String> {
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
                .map_err(|e| format!("cannot read: {e}"))?;
            if blake3::hash(&artifact).as_bytes() != &self.artifact_hash {
                return Err(
                    "corrupt: the artifact's BLAKE3 hash does not match the trailer".into(),
                );
            }
            // SAFETY: the caller's contract, and these bytes were just
            // verified against the trailer.
            unsafe { Component::deserialize(engine, &artifact) }
        }
        .map_err(|e| format!("rejected by wasmtime: {e:#}"))?;
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
    super::write_atomically(dir, &name, &[artifact, &trailer], true)
}
