//! The compiled-component cache: machine code that wasmtime compiled for a
//! component, kept on disk so the next load skips compilation (seconds for
//! an interpreter-sized component) and maps the code in (milliseconds).
//!
//! # Keys
//!
//! An entry is named by a BLAKE3 hash over: the entry format's magic, the
//! wasmtime version the host was built with, the engine's
//! [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash)
//! (compiler, target, features and tunables such as epoch interruption) and
//! the length and BLAKE3 hash of the component's bytes. A different
//! component, engine configuration or wasmtime version therefore looks up a
//! different file and never sees a stale artifact; wasmtime also re-checks
//! version and configuration itself when it deserializes.
//!
//! # Tiers
//!
//! With [`Compiler::Auto`](crate::embed::Compiler::Auto) a load looks up the
//! optimized (Cranelift) entry first, then the baseline (Winch) one: the
//! two engines differ in configuration, so their keys differ and their
//! entries live side by side. On a miss the component is compiled with
//! Winch and stored, and [`tier_up`] compiles it with Cranelift in a
//! background thread into the optimized entry, which wins from then on.
//!
//! # A warm load reads neither file
//!
//! Hashing an 18 MB component and its 35 MB entry on every load cost more
//! than everything else a warm load does, so both hashes are remembered by
//! file identity — device, inode, size, mtime and ctime from `fstat` on the
//! open descriptor, as ccache's direct mode does:
//!
//! - the **index** `<id>.index` maps a component's identity to the digest of
//!   its bytes. A miss (a new or touched component) reads and hashes the
//!   component; touching a component without changing it therefore still
//!   finds its entry.
//! - the **stamp** `<key>.verified` records the identity an entry had when
//!   its artifact hash was last verified. While the open entry has that
//!   identity, it is mapped without being read; any write or replacement
//!   changes the identity (a write always moves the ctime, which no
//!   unprivileged call can set back), and the entry is verified again.
//!
//! A file changed in the last 2 s ([`record::SETTLE`]) is never indexed or
//! stamped: a later write in the same timestamp tick could keep its
//! identity. Records are checksummed; a torn or foreign one is ignored and
//! costs one hashing.
//!
//! # File format and writes
//!
//! `<dir>/<key>.cwasm` holds the artifact from [`Component::serialize`]
//! followed by an 88-byte trailer — artifact length, BLAKE3 hash of the
//! artifact, the key, magic and format version — so wasmtime maps the file
//! from offset 0 ([`Component::deserialize_file`]) instead of copying it. An
//! entry is written to a temporary file in the same directory, flushed with
//! `fsync`, and renamed over the final name (then the directory is synced),
//! so a reader sees either no entry or a complete one. A crash mid-write
//! leaves only a `.tmp` file, which is never read and is removed once it is
//! an hour old. Index records older than 30 days are removed likewise (a
//! load rebuilds one by hashing the component once).
//!
//! # Trust model
//!
//! Loading a cached artifact is `unsafe`: wasmtime maps its machine code and
//! runs it without validation, so whoever can write an entry can run native
//! code in the host. The cache therefore trusts exactly the user the host
//! runs as, and enforces it:
//!
//! - the cache directory must be owned by the effective user and must not be
//!   writable by group or others (it is created `0700`); otherwise it is
//!   refused ([`CacheError::Unsafe`]) and the runtime compiles without it;
//! - each entry and record is checked on the open file descriptor: a regular
//!   file (symbolic links are not followed), owned by the effective user,
//!   not writable by group or others;
//! - an entry's trailer must name its key and its length, and its artifact
//!   must match the trailer's BLAKE3 hash — checked when the entry is first
//!   loaded and again whenever its identity changes — so a truncated, torn
//!   or bit-flipped entry, or one copied under another entry's name, is
//!   never loaded: it is recompiled and overwritten;
//! - the descriptor that was checked is the one mapped (through
//!   `/proc/self/fd`), and its identity is checked again after mapping, so
//!   an entry swapped by a rename after verification is never the one
//!   loaded, and one written in place meanwhile is refused.
//!
//! BLAKE3 is a cryptographic hash (so keys do not collide, even for a
//! component crafted to collide). The artifact hash is an integrity check
//! against accidents, not a signature: an attacker who can write files as
//! this user can also rewrite the entry and its trailer — or the `wasmproc`
//! binary itself. For the same reason a loaded entry must not be written in
//! place while a host uses it (the cache itself only ever renames new files
//! over old ones). Ancestors of the cache directory are trusted as the
//! user's home is.

mod entry;
mod files;
mod key;
mod progress;
mod record;
mod tier_up;

pub(crate) use tier_up::TierUps;

pub use files::UntrustedFile;
pub use progress::CompileProgress;

use files::check_owner_and_mode;
use key::{entry_path, hex, key, key_of_digest};

use crate::embed::compiler::Tier;
use record::{FileIdentity, IDENTITY_LEN};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Temporary files older than this are left-overs of a crash.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Index records older than this are removed (one hashing rebuilds one).
const STALE_INDEX: Duration = Duration::from_secs(30 * 24 * 3600);
/// Payload of an index record: identity, component length, digest.
const INDEX_LEN: usize = IDENTITY_LEN + 8 + 32;
/// Payload of a stamp: identity, key.
const STAMP_LEN: usize = IDENTITY_LEN + 32;

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
        #[source]
        reason: UntrustedFile,
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

/// Why a component could not be loaded through the cache. wasmtime's error
/// is the [`source`](std::error::Error::source), printed in full by `{:#}`.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The component file could not be read.
    #[error("cannot read the component")]
    Read(#[from] std::io::Error),
    /// wasmtime could not compile the component (it is not a valid
    /// component, or uses a feature the engine lacks).
    #[error("cannot compile the component")]
    Compile(#[source] wasmtime::Error),
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
        let refuse = |reason: UntrustedFile| CacheError::Unsafe {
            dir: dir.clone(),
            reason,
        };
        if !meta.is_dir() {
            return Err(refuse(UntrustedFile::NotDirectory));
        }
        check_owner_and_mode(&meta).map_err(refuse)?;
        remove_stale_temporaries(&dir);
        Ok(Self { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the entry for `component` compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, component: &[u8]) -> PathBuf {
        self.path_of(&key(engine, component))
    }

    fn path_of(&self, key: &[u8; 32]) -> PathBuf {
        entry_path(&self.dir, key)
    }

    /// Loads the compiled `component` from the cache if a verified entry
    /// exists; otherwise compiles it and stores the result. A failure to
    /// store is logged and does not fail the load.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        component: &[u8],
    ) -> Result<(Component, CacheStatus), CompileError> {
        let key = key(engine, component);
        let status = match self.lookup(engine, &key) {
            Lookup::Hit(loaded) => return Ok((loaded, CacheStatus::Hit)),
            Lookup::Missing => CacheStatus::Miss,
            Lookup::Rejected => CacheStatus::Replaced,
        };
        let compiled = self.compile_and_store(engine, &key, component, None)?;
        Ok((compiled, status))
    }

    /// Loads the component in the open `file` (named `path` in messages
    /// and progress): on a warm load only its identity is read (see the
    /// module docs), and the entry is mapped, not copied. Otherwise the
    /// file is read, compiled — told to `progress` — and stored.
    pub fn load_file(
        &self,
        engine: &Engine,
        file: &File,
        path: &Path,
        progress: Option<&dyn CompileProgress>,
    ) -> Result<(Component, CacheStatus), CompileError> {
        let tiers = Tiers {
            primary: engine,
            primary_tier: Tier::Optimized,
            baseline: None,
        };
        self.load_file_tiered(&tiers, file, path, progress)
            .map(|(component, status, _)| (component, status))
    }

    /// [`Self::load_file`] with `auto`'s tiers: the primary engine's entry
    /// wins; without one, the baseline's entry is loaded (or the component
    /// compiled with the baseline engine) and the primary's compiled in the
    /// background ([`tier_up`]).
    fn load_file_tiered(
        &self,
        tiers: &Tiers<'_>,
        file: &File,
        path: &Path,
        progress: Option<&dyn CompileProgress>,
    ) -> Result<(Component, CacheStatus, [u8; 32]), CompileError> {
        let engine = tiers.primary;
        let identity = FileIdentity::of(&file.metadata()?);
        let index_name = format!(
            "{}.index",
            hex(blake3::Hasher::new()
                .update(b"wasmproc component identity\0")
                .update(&identity.encode())
                .finalize()
                .as_bytes())
        );
        let indexed = record::read(&self.dir.join(&index_name), INDEX_LEN)
            .filter(|payload| payload[..IDENTITY_LEN] == identity.encode());
        let (len, mut digest, mut bytes) = match indexed {
            Some(payload) => {
                let len = u64::from_le_bytes(
                    payload[IDENTITY_LEN..IDENTITY_LEN + 8]
                        .try_into()
                        .expect("8 bytes"),
                );
                let digest: [u8; 32] = payload[IDENTITY_LEN + 8..]
                    .try_into()
                    .expect("32 bytes: read checked the length");
                (len, digest, None)
            }
            None => {
                let bytes = read_whole(file)?;
                let digest = blake3::hash(&bytes);
                let unchanged = FileIdentity::of(&file.metadata()?) == identity;
                if unchanged && identity.is_settled() && identity.size() == bytes.len() as u64 {
                    let mut payload = Vec::with_capacity(INDEX_LEN);
                    payload.extend_from_slice(&identity.encode());
                    payload.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    payload.extend_from_slice(digest.as_bytes());
                    if let Err(e) = record::write(&self.dir, &index_name, &payload) {
                        tracing::debug!("cannot write the cache index record: {e}");
                    }
                }
                (bytes.len() as u64, *digest.as_bytes(), Some(bytes))
            }
        };
        let status = match self.lookup(engine, &key_of_digest(engine, len, &digest)) {
            Lookup::Hit(loaded) => return Ok((loaded, CacheStatus::Hit, digest)),
            Lookup::Missing => CacheStatus::Miss,
            Lookup::Rejected => CacheStatus::Replaced,
        };
        let bytes = match bytes.take() {
            Some(bytes) => bytes,
            None => {
                let bytes = read_whole(file)?;
                digest = *blake3::hash(&bytes).as_bytes();
                bytes
            }
        };
        // Entries are named by the bytes compiled, read just now, and so
        // is the digest returned.
        let len = bytes.len() as u64;
        let key = key_of_digest(engine, len, &digest);
        if let Some(baseline) = &tiers.baseline
            && let Some(winch) = (baseline.engine)()
        {
            let base_key = key_of_digest(&winch, len, &digest);
            let (loaded, status) = match self.lookup(&winch, &base_key) {
                Lookup::Hit(loaded) => (Ok(loaded), CacheStatus::Hit),
                Lookup::Missing | Lookup::Rejected => (
                    self.compile_and_store(
                        &winch,
                        &base_key,
                        &bytes,
                        progress.map(|p| (p, path, Tier::Baseline)),
                    ),
                    status,
                ),
            };
            match loaded {
                Ok(component) => {
                    baseline.tier_ups.spawn(tier_up::TierUp {
                        config: baseline.optimized.clone(),
                        key,
                        dir: self.dir.clone(),
                        bytes,
                        path: path.to_path_buf(),
                        progress: baseline.progress.clone(),
                        // A load that compiled the baseline told the user so;
                        // one that found it stays quiet if the compile is
                        // abandoned again.
                        announce_abandon: status != CacheStatus::Hit,
                    });
                    return Ok((component, status, digest));
                }
                Err(CompileError::Compile(e)) => note_baseline_refused(path, &e),
                Err(e) => return Err(e),
            }
        }
        let compiled = self.compile_and_store(
            engine,
            &key,
            &bytes,
            progress.map(|p| (p, path, tiers.primary_tier)),
        )?;
        Ok((compiled, status, digest))
    }

    /// The entry for `key`, verified (or stamped at its current identity)
    /// and mapped.
    fn lookup(&self, engine: &Engine, key: &[u8; 32]) -> Lookup {
        let path = self.path_of(key);
        let rejected = |reason: entry::Rejected| {
            tracing::warn!(entry = %path.display(), "cache entry not loaded, recompiling: {reason}");
            Lookup::Rejected
        };
        let entry = match entry::open(&path, key) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Lookup::Missing,
            Err(reason) => return rejected(reason),
        };
        let stamp_name = format!("{}.verified", hex(key));
        let mut stamp = Vec::with_capacity(STAMP_LEN);
        stamp.extend_from_slice(&entry.identity().encode());
        stamp.extend_from_slice(key);
        let stamped = record::read(&self.dir.join(&stamp_name), STAMP_LEN) == Some(stamp.clone());
        if !stamped {
            if let Err(reason) = entry.verify() {
                return rejected(reason);
            }
            if entry.identity().is_settled()
                && let Err(e) = record::write(&self.dir, &stamp_name, &stamp)
            {
                tracing::debug!("cannot write the cache stamp: {e}");
            }
        }
        // SAFETY: the entry was opened without following links from a
        // directory only this user can write, is owned by this user and
        // private (checked by `open` and `entry::open`), its trailer names
        // this key, and its artifact matched the trailer's hash at this
        // very identity (just now, or when the stamp was written). These
        // are the bytes `Component::serialize` produced for this key. See
        // the trust model in the module docs.
        match unsafe { entry.deserialize(engine) } {
            Ok(loaded) => Lookup::Hit(loaded),
            Err(reason) => rejected(reason),
        }
    }

    /// Compiles `component` (telling `progress`) and stores the entry.
    fn compile_and_store(
        &self,
        engine: &Engine,
        key: &[u8; 32],
        component: &[u8],
        progress: Option<(&dyn CompileProgress, &Path, Tier)>,
    ) -> Result<Component, CompileError> {
        let compiled =
            compile_reporting(engine, component, progress, true).map_err(CompileError::Compile)?;
        let path = self.path_of(key);
        match compiled.serialize() {
            Ok(artifact) => {
                if let Err(e) = entry::write(&self.dir, &path, key, &artifact) {
                    tracing::warn!(entry = %path.display(), "cannot store the compiled component: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled component: {e:#}"),
        }
        Ok(compiled)
    }
}

/// What [`ComponentCache::lookup`] found.
enum Lookup {
    Hit(Component),
    Missing,
    /// An entry that must not be loaded (the reason is logged).
    Rejected,
}

/// Compiles `component`, telling `progress` (if any) when it starts and
/// ends; `cached` says whether the result will be stored.
fn compile_reporting(
    engine: &Engine,
    component: &[u8],
    progress: Option<(&dyn CompileProgress, &Path, Tier)>,
    cached: bool,
) -> wasmtime::Result<Component> {
    let Some((progress, path, tier)) = progress else {
        return Component::new(engine, component);
    };
    progress.started(path, component.len() as u64, cached, tier);
    let started = Instant::now();
    let compiled = Component::new(engine, component);
    progress.finished(path, started.elapsed(), compiled.is_ok());
    compiled
}

/// The engines a load may compile with.
pub(crate) struct Tiers<'a> {
    /// The engine whose entries win: Cranelift, or Winch with
    /// [`Compiler::Winch`](crate::embed::Compiler::Winch).
    pub primary: &'a Engine,
    /// The tier `primary` compiles for.
    pub primary_tier: Tier,
    /// `auto`'s baseline tier, if it may be used.
    pub baseline: Option<Baseline<'a>>,
}

/// `auto`'s baseline tier.
pub(crate) struct Baseline<'a> {
    /// The Winch engine, made on first use; `None` where Winch is not
    /// available (the reason is logged once).
    pub engine: &'a dyn Fn() -> Option<Engine>,
    /// The primary engine's configuration without an instance pool, for
    /// the background compile.
    pub optimized: &'a wasmtime::Config,
    /// Told when the background compile has stored its entry.
    pub progress: Option<Arc<dyn CompileProgress>>,
    /// The runtime's background compiles.
    pub tier_ups: &'a TierUps,
}

/// Logs, once per host, that Winch could not compile a component and
/// Cranelift compiles it instead.
fn note_baseline_refused(path: &Path, error: &wasmtime::Error) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    if !NOTED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            component = %path.display(),
            "Winch cannot compile this component, so Cranelift compiles it (the first run takes longer): {error:#}"
        );
    } else {
        tracing::debug!(component = %path.display(), "Winch cannot compile this component: {error:#}");
    }
}

/// A component compiled from a file, and what it was compiled from.
pub(crate) struct Compiled {
    /// The compiled component.
    pub component: Component,
    /// What the cache found, if a cache was used.
    pub status: Option<CacheStatus>,
    /// The BLAKE3 hash of the bytes this component was compiled from (on a
    /// cache hit, of the bytes its entry was compiled from): the file's
    /// digest a pinned policy is checked against.
    pub source: [u8; 32],
}

/// Compiles the component in `file`, through the cache when one is
/// configured (the status says what the cache found). An unusable cache
/// directory is logged and the component compiled without it.
pub(crate) fn compile(
    tiers: &Tiers<'_>,
    cache: Option<&CacheConfig>,
    file: &File,
    path: &Path,
    progress: Option<&dyn CompileProgress>,
) -> Result<Compiled, CompileError> {
    let uncached = || -> Result<_, CompileError> {
        let bytes = read_whole(file)?;
        let progress = progress.map(|p| (p, path, tiers.primary_tier));
        let component = compile_reporting(tiers.primary, &bytes, progress, false)
            .map_err(CompileError::Compile)?;
        Ok(Compiled {
            component,
            status: None,
            source: *blake3::hash(&bytes).as_bytes(),
        })
    };
    let Some(config) = cache else {
        return uncached();
    };
    match ComponentCache::open(config) {
        Ok(cache) => {
            let (component, status, source) =
                cache.load_file_tiered(tiers, file, path, progress)?;
            tracing::debug!(?status, dir = %cache.dir().display(), "compiled-component cache");
            Ok(Compiled {
                component,
                status: Some(status),
                source,
            })
        }
        Err(e) => {
            tracing::warn!("compiling without the cache: {e}");
            uncached()
        }
    }
}

/// The whole file, read from its start through the descriptor.
pub(crate) fn read_whole(file: &File) -> std::io::Result<Vec<u8>> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(file.metadata()?.len() as usize);
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Removes temporary files a crash left behind and index records unused
/// for long (best effort).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let limit = if name.starts_with('.') && name.ends_with(".tmp") {
            STALE_TEMP
        } else if name.ends_with(".index") {
            STALE_INDEX
        } else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > limit);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use key::WASMTIME_VERSION;

    #[test]
    fn wasmtime_version_matches_the_lockfile_pin() {
        let lockfile = include_str!("../../../../Cargo.lock");
        let pin = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"\n");
        assert!(
            lockfile.contains(&pin),
            "update WASMTIME_VERSION to the wasmtime version Cargo.lock pins"
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
