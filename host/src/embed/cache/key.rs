//! The cache key of a component: its BLAKE3 digest with the engine's
//! compatibility hash and the wasmtime version, so an entry is never loaded
//! by an engine that did not make it.

use super::entry;
use std::path::{Path, PathBuf};
use wasmtime::Engine;

/// The wasmtime version the host is built with (checked against the
/// version the lockfile pins by a test), part of every cache key.
pub(crate) const WASMTIME_VERSION: &str = "48.0.8";

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
pub(crate) fn key(engine: &Engine, component: &[u8]) -> [u8; 32] {
    key_of_digest(
        engine,
        component.len() as u64,
        blake3::hash(component).as_bytes(),
    )
}

/// The cache key of a component `len` bytes long whose BLAKE3 hash is
/// `digest`, compiled by `engine`.
pub(crate) fn key_of_digest(engine: &Engine, len: u64, digest: &[u8; 32]) -> [u8; 32] {
    use std::hash::Hash;
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    hasher.0.update(&entry::MAGIC);
    hasher.0.update(WASMTIME_VERSION.as_bytes());
    hasher.0.update(&[0]);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(&len.to_le_bytes());
    hasher.0.update(digest);
    *hasher.0.finalize().as_bytes()
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the entry of `key` lives in the cache directory `dir`.
pub(crate) fn entry_path(dir: &Path, key: &[u8; 32]) -> PathBuf {
    dir.join(format!("{}.cwasm", hex(key)))
}
