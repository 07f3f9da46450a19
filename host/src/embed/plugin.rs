//! A loaded plugin: the compiled component, and the manifest it carries,
//! read once when it was loaded.

use crate::manifest::{Manifest, ManifestError};
use crate::policy::{ComponentDigest, Policy};
use crate::session::admission::Admission;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmtime::component::Component;

/// What [`Runtime::load`](crate::Runtime::load) returns: a compiled
/// component and the plugin manifest it carries. A guest run from it is
/// admitted by its policy and that manifest together.
#[derive(Clone)]
pub struct Plugin {
    component: Component,
    manifest: Option<Arc<Manifest>>,
    path: Arc<PathBuf>,
    /// The digest of the bytes it was compiled from: known when the
    /// runtime loaded it, else computed from the file the first time a
    /// policy pinned to one asks.
    digest: Arc<OnceLock<ComponentDigest>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("manifest", &self.manifest.is_some())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// A component compiled from the file at `path`, with the manifest
    /// that file carries (for embedders that compile or deserialize
    /// components themselves).
    pub fn new(component: Component, path: &Path) -> Result<Self, ManifestError> {
        Ok(Self {
            component,
            manifest: Manifest::from_file(path)?.map(Arc::new),
            path: Arc::new(path.to_path_buf()),
            digest: Arc::default(),
        })
    }

    /// A component compiled from the bytes whose digest is `digest`, read
    /// from `file` (opened at `path`), with the manifest read from that
    /// same open file, which must hold those bytes still.
    pub(crate) fn from_open_file(
        component: Component,
        path: &Path,
        file: File,
        digest: ComponentDigest,
    ) -> Result<Self, ManifestError> {
        let io = |source| ManifestError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        let bytes = crate::embed::cache::read_whole(&file).map_err(io)?;
        if ComponentDigest::of_bytes(&bytes) != digest {
            return Err(io(std::io::Error::other(
                "the file changed while it was loaded (rewritten in place); load it again",
            )));
        }
        let manifest = Manifest::from_component(&path.display().to_string(), &bytes)?;
        Ok(Self {
            component,
            manifest: manifest.map(Arc::new),
            path: Arc::new(path.to_path_buf()),
            digest: Arc::new(OnceLock::from(digest)),
        })
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// The plugin manifest the component carries, if any.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_deref()
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Admits this plugin under `policy` (see [`Admission::new`]);
    /// `require` asks for a manifest whatever the policy says.
    pub fn admit(&self, policy: Arc<Policy>, require: bool) -> Result<Admission, ManifestError> {
        Admission::new(
            policy,
            self.manifest.clone(),
            &self.path,
            require,
            || match self.digest.get() {
                Some(digest) => Ok(digest.clone()),
                None => {
                    let digest = ComponentDigest::of_file(&self.path)?;
                    Ok(self.digest.get_or_init(|| digest).clone())
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// An empty component: the header alone.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    fn empty_component() -> Component {
        Component::new(&wasmtime::Engine::default(), EMPTY).expect("an empty component")
    }

    #[test]
    fn plugin_digest_is_of_the_bytes_compiled_good() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(EMPTY).unwrap();
        let digest = ComponentDigest::of_bytes(EMPTY);
        let plugin =
            Plugin::from_open_file(empty_component(), Path::new("p.wasm"), file, digest.clone())
                .expect("the file holds the bytes compiled");
        assert_eq!(plugin.digest.get(), Some(&digest));
        assert!(plugin.manifest().is_none());
    }

    /// The attack on a pinned policy: the host compiles one set of bytes,
    /// then the file is rewritten in place (same inode) with the bytes the
    /// pin names, or with another manifest, before the manifest is read.
    #[test]
    fn plugin_rewritten_in_place_after_compile_bad() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(EMPTY).unwrap();
        let compiled = ComponentDigest::of_bytes(EMPTY);
        file.rewind().unwrap();
        // The same component with a custom section: another digest.
        file.write_all(b"\0asm\x0d\0\x01\0\x00\x02\x01x").unwrap();
        let err = Plugin::from_open_file(empty_component(), Path::new("p.wasm"), file, compiled)
            .expect_err("the file no longer holds the bytes compiled");
        let text = err.to_string();
        assert!(
            text.contains("p.wasm") && text.contains("changed while it was loaded"),
            "{text}"
        );
    }
}
