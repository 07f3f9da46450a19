//! What `fstat` says about an open file ([`FileIdentity`]), and the small
//! checksummed records that remember it: the index (a component's identity
//! → the BLAKE3 digest of its bytes) and the stamps (an entry whose artifact
//! hash was verified while it had this identity).

use super::files::check_owner_and_mode;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Magic of every record; the last byte is the format version.
const RECORD_MAGIC: [u8; 16] = *b"wasmproc-record\x01";
/// A file whose mtime or ctime is closer to now than this is not trusted by
/// its identity: a later write could get the same timestamps (file systems
/// keep them at a granularity of up to 2 s), so the same identity would name
/// other bytes. Such a file is hashed on every load until it settles.
pub(super) const SETTLE: Duration = Duration::from_secs(2);

/// Device, inode, size, mtime and ctime of an open file, from `fstat`.
///
/// Any write to a file changes its ctime (which no unprivileged call can set
/// back) and replacing it changes its inode, so while the identity stays the
/// same the bytes do too, once the file has [settled](Self::is_settled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Bytes of an encoded [`FileIdentity`].
pub(super) const IDENTITY_LEN: usize = 56;

impl FileIdentity {
    /// The identity in `meta` (which must come from `fstat` on an open
    /// descriptor, not from a path).
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The file's size in bytes.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Whether both timestamps are at least [`SETTLE`] in the past, so that
    /// any later change of the file gets a different identity.
    pub(super) fn is_settled(&self) -> bool {
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return false;
        };
        let latest = self.mtime.max(self.ctime);
        let Ok(secs) = u64::try_from(latest.0) else {
            return true;
        };
        let latest = Duration::new(secs, u32::try_from(latest.1).unwrap_or(0));
        now.checked_sub(latest).is_some_and(|age| age >= SETTLE)
    }

    /// The identity as fixed-size little-endian bytes.
    pub(super) fn encode(&self) -> [u8; IDENTITY_LEN] {
        let fields = [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ];
        let mut out = [0; IDENTITY_LEN];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }
}

/// Reads the record at `path` and returns its payload, if it is a regular
/// file owned by this user and private, its magic and checksum are right
/// and its payload is `len` bytes. Anything else (no record, a torn or
/// foreign one) is `None`: the caller then does the work the record would
/// have saved.
pub(super) fn read(path: &Path, len: usize) -> Option<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || check_owner_and_mode(&meta).is_err() {
        return None;
    }
    let total = RECORD_MAGIC.len() + len + 32;
    let mut bytes = Vec::with_capacity(total + 1);
    Read::by_ref(&mut file)
        .take(total as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() != total || bytes[..RECORD_MAGIC.len()] != RECORD_MAGIC {
        return None;
    }
    let (body, checksum) = bytes.split_at(total - 32);
    if blake3::hash(body).as_bytes()[..] != checksum[..] {
        return None;
    }
    Some(body[RECORD_MAGIC.len()..].to_vec())
}

/// Writes a record atomically (temporary file in `dir`, then rename), mode
/// `0600`. Not synced: a record lost or torn in a crash fails its checksum
/// and only costs one hashing of the file it describes.
pub(super) fn write(dir: &Path, name: &str, payload: &[u8]) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(RECORD_MAGIC.len() + payload.len() + 32);
    body.extend_from_slice(&RECORD_MAGIC);
    body.extend_from_slice(payload);
    let checksum = blake3::hash(&body);
    body.extend_from_slice(checksum.as_bytes());
    super::files::write_atomically(dir, name, &[&body], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.index", b"payload").unwrap();
        let path = dir.path().join("a.index");
        assert_eq!(read(&path, 7).as_deref(), Some(&b"payload"[..]));
        assert_eq!(read(&path, 6), None, "a payload of another length");
        let mut bytes = fs::read(&path).unwrap();
        bytes[17] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path, 7), None, "a flipped byte fails the checksum");
        assert_eq!(read(&dir.path().join("missing"), 7), None);
    }

    #[test]
    fn fresh_file_is_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        let file = fs::File::create(dir.path().join("f")).unwrap();
        let identity = FileIdentity::of(&file.metadata().unwrap());
        assert!(!identity.is_settled());
        assert_eq!(identity.encode().len(), IDENTITY_LEN);
    }
}
