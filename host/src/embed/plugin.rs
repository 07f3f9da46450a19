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
    /// The file it was compiled from, when the runtime loaded it: the
    /// digest is computed from it, not from the path opened again.
    file: Option<Arc<File>>,
    /// The component file's digest, computed the first time a policy
    /// pinned to one asks.
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
            file: None,
            digest: Arc::default(),
        })
    }

    /// A component compiled from `file` (opened at `path`), with the
    /// manifest read from that same open file.
    pub(crate) fn from_open_file(
        component: Component,
        path: &Path,
        file: File,
    ) -> Result<Self, ManifestError> {
        let io = |source| ManifestError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        let bytes = crate::embed::cache::read_whole(&file).map_err(io)?;
        let manifest = Manifest::from_component(&path.display().to_string(), &bytes)?;
        Ok(Self {
            component,
            manifest: manifest.map(Arc::new),
            path: Arc::new(path.to_path_buf()),
            file: Some(Arc::new(file)),
            digest: Arc::default(),
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
                    let digest = match &self.file {
                        Some(file) => {
                            ComponentDigest::of_bytes(&crate::embed::cache::read_whole(file)?)
                        }
                        None => ComponentDigest::of_file(&self.path)?,
                    };
                    Ok(self.digest.get_or_init(|| digest).clone())
                }
            },
        )
    }
}
