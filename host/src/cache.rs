//! The compiled-component cache: machine code that wasmtime compiled for a
//! component, kept on disk so the next load skips compilation (seconds for
//! an interpreter-sized component) and only maps the code in (milliseconds).
//!
//! # Keys
//!
//! An entry is named by a BLAKE3 hash over: a format tag, the wasmtime version
//! the host was built with, the engine's
//! [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash)
//! (compiler, target, features and tunables such as epoch interruption) and
//! the BLAKE3 hash of the component's bytes. A different component, engine
//! configuration or wasmtime version therefore looks up a different file and
//! never sees a stale artifact; wasmtime also re-checks version and
//! configuration itself when it deserializes.
//!
//! # File format and writes
//!
//! `<dir>/<key>.cwasm` holds an 88-byte header — magic, format version,
//! artifact length, BLAKE3 hash of the artifact, the key itself — followed by the
//! artifact from [`Component::serialize`]. An entry is written to a temporary
//! file in the same directory, flushed with `fsync`, and renamed over the
//! final name (then the directory is synced), so a reader sees either no
//! entry or a complete one. A crash mid-write leaves only a `.tmp` file,
//! which is never read and is removed once it is an hour old.
//!
//! # Trust model
//!
//! [`Component::deserialize`] is `unsafe`: it maps the artifact's machine code
//! and runs it without validation, so whoever can write an entry can run
//! native code in the host. The cache therefore trusts exactly the user the
//! host runs as, and enforces it:
//!
//! - the cache directory must be owned by the effective user and must not be
//!   writable by group or others (it is created `0700`); otherwise it is
//!   refused ([`CacheError::Unsafe`]) and the runtime compiles without it;
//! - each entry is checked on the open file descriptor: a regular file,
//!   owned by the effective user, not writable by group or others;
//! - the header's length and BLAKE3 hash are verified over the bytes in memory
//!   before those same bytes are deserialized, so a truncated, torn or
//!   bit-flipped entry (or one copied under another entry's name) is never
//!   loaded: it is recompiled and overwritten.
//!
//! BLAKE3 is a cryptographic hash (so keys do not collide, even for a
//! component crafted to collide) and hashes at several GB/s, which keeps a
//! warm load of a 35 MB entry in tens of milliseconds. The artifact hash is
//! an integrity check against accidents, not a signature: an
//! attacker who can write files as this user can also rewrite the entry and
//! its header — or the `wasmproc` binary itself. Ancestors of the cache
//! directory are trusted as the user's home is.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime version the host is built with (checked against the
/// workspace pin by a test), part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The magic bytes at the start of every entry; the last byte is the format
/// version.
const MAGIC: [u8; 16] = *b"wasmproc-cwasm\0\x01";
/// Header: magic, artifact length (u64 LE), artifact BLAKE3 hash, key.
const HEADER_LEN: usize = 16 + 8 + 32 + 32;
/// Temporary files older than this are left-overs of a crash.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Where the compiled-component cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The cache directory; created (mode `0700`) if missing.
    pub dir: PathBuf,
}

impl CacheConfig {
    /// The environment variable that overrides the cache directory.
    pub const DIR_ENV: &'static str = "WASMPROC_CACHE_DIR";

    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The user's cache: `$WASMPROC_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/wasmproc`, else `$HOME/.cache/wasmproc`; `None` if
    /// none of these variables is set (or they are not absolute paths).
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        var(Self::DIR_ENV)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wasmproc")))
            .or_else(|| var("HOME").map(|d| d.join(".cache/wasmproc")))
            .map(Self::new)
    }
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory is not safe to load machine code from.
    #[error("refusing cache directory {dir}: {reason}")]
    Unsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory could not be created or inspected.
    #[error("cache directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What a cached load found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A verified entry was loaded; nothing was compiled.
    Hit,
    /// There was no entry: the component was compiled and stored.
    Miss,
    /// An entry existed but failed verification (truncated, corrupt, not
    /// ours) or deserialization: it was not loaded, the component was
    /// compiled and the entry overwritten.
    Replaced,
}

/// An opened, checked cache directory.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// Opens (creating it `0700` if missing) and checks the directory: it
    /// must be a directory owned by the effective user and not writable by
    /// group or others.
    pub fn open(config: &CacheConfig) -> Result<Self, CacheError> {
        let dir = config.dir.clone();
        let io = |source| CacheError::Io {
            dir: dir.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        let meta = fs::symlink_metadata(&dir).map_err(io)?;
        let unsafe_dir = |reason: String| CacheError::Unsafe {
            dir: dir.clone(),
            reason,
        };
        if !meta.is_dir() {
            return Err(unsafe_dir(
                "it is not a directory (symbolic links are not followed)".into(),
            ));
        }
        check_owner_and_mode(&meta).map_err(unsafe_dir)?;
        remove_stale_temporaries(&dir);
        Ok(Self { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the entry for `component` compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, component: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.cwasm", hex(&key(engine, component))))
    }

    /// Loads the compiled `component` from the cache if a verified entry
    /// exists; otherwise compiles it and stores the result. A failure to
    /// store is logged and does not fail the load.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        component: &[u8],
    ) -> wasmtime::Result<(Component, CacheStatus)> {
        let key = key(engine, component);
        let path = self.dir.join(format!("{}.cwasm", hex(&key)));
        let status = match read_entry(&path, &key) {
            Ok(Some(entry)) => {
                // SAFETY: the artifact was read from a file owned by this
                // user in a directory only this user can write (checked by
                // `open` and `read_entry`), and its length and BLAKE3 hash
                // match the header, so
                // these are the bytes `Component::serialize` produced for
                // this key. See the trust model in the module docs.
                match unsafe { Component::deserialize(engine, &entry[HEADER_LEN..]) } {
                    Ok(loaded) => return Ok((loaded, CacheStatus::Hit)),
                    Err(e) => {
                        tracing::warn!(entry = %path.display(), "cache entry rejected by wasmtime, recompiling: {e:#}");
                        CacheStatus::Replaced
                    }
                }
            }
            Ok(None) => CacheStatus::Miss,
            Err(reason) => {
                tracing::warn!(entry = %path.display(), "cache entry not loaded, recompiling: {reason}");
                CacheStatus::Replaced
            }
        };
        let compiled = Component::new(engine, component)?;
        match compiled.serialize() {
            Ok(artifact) => {
                if let Err(e) = write_entry(&self.dir, &path, &key, &artifact) {
                    tracing::warn!(entry = %path.display(), "cannot store the compiled component: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled component: {e:#}"),
        }
        Ok((compiled, status))
    }
}

/// Compiles `component`, through the cache when one is configured. An
/// unusable cache directory is logged and the component compiled without it.
pub(crate) fn compile(
    engine: &Engine,
    cache: Option<&CacheConfig>,
    component: &[u8],
) -> wasmtime::Result<Component> {
    let Some(config) = cache else {
        return Component::new(engine, component);
    };
    match ComponentCache::open(config) {
        Ok(cache) => cache.load_or_compile(engine, component).map(|(c, status)| {
            tracing::debug!(?status, dir = %cache.dir().display(), "compiled-component cache");
            c
        }),
        Err(e) => {
            tracing::warn!("compiling without the cache: {e}");
            Component::new(engine, component)
        }
    }
}

/// Feeds `Hash` output into BLAKE3.
struct Blake3Hasher(blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
}

/// The cache key of `component` compiled by `engine`.
fn key(engine: &Engine, component: &[u8]) -> [u8; 32] {
    use std::hash::Hash;
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    hasher.0.update(&MAGIC);
    hasher.0.update(WASMTIME_VERSION.as_bytes());
    hasher.0.update(&[0]);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(&(component.len() as u64).to_le_bytes());
    hasher.0.update(blake3::hash(component).as_bytes());
    *hasher.0.finalize().as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Owned by the effective user and not writable by group or others.
fn check_owner_and_mode(meta: &fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!(
            "owned by uid {}, not by the current user (uid {uid})",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The verified entry (header and artifact, the artifact from
/// [`HEADER_LEN`] on); `Ok(None)` if there is no entry, `Err` (with the
/// reason) if there is one that must not be loaded.
fn read_entry(path: &Path, key: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
    let mut file = match OpenOptions::new()
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
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let Some((header, artifact)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(format!(
            "truncated: {} bytes, shorter than the header",
            bytes.len()
        ));
    };
    if header[..16] != MAGIC {
        return Err("not a wasmproc cache entry of this format".into());
    }
    let length = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if length != artifact.len() as u64 {
        return Err(format!(
            "truncated or padded: header says {length} bytes, file holds {}",
            artifact.len()
        ));
    }
    if header[56..88] != key[..] {
        return Err("the entry belongs to another key".into());
    }
    if header[24..56] != blake3::hash(artifact).as_bytes()[..] {
        return Err("corrupt: the artifact's BLAKE3 hash does not match the header".into());
    }
    Ok(Some(bytes))
}

/// Writes an entry atomically: temporary file in the same directory, fsync,
/// rename over `path`, fsync of the directory.
fn write_entry(dir: &Path, path: &Path, key: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let temp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        hex(&key[..8]),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        header.extend_from_slice(blake3::hash(artifact).as_bytes());
        header.extend_from_slice(key);
        file.write_all(&header)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes temporary files a crash left behind (best effort).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_workspace_pin() {
        let manifest = include_str!("../../Cargo.toml");
        let pin = format!("wasmtime = {{ version = \"={WASMTIME_VERSION}\"");
        assert!(
            manifest.contains(&pin),
            "update WASMTIME_VERSION to the wasmtime pinned in Cargo.toml"
        );
    }

    #[test]
    fn key_depends_on_component_and_engine() {
        let a = Engine::default();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let b = Engine::new(&config).unwrap();
        assert_eq!(key(&a, b"x"), key(&a, b"x"));
        assert_ne!(key(&a, b"x"), key(&a, b"y"));
        assert_ne!(key(&a, b"x"), key(&b, b"x"));
    }
}
