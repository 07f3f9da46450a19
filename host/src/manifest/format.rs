//! The manifest's format: the custom section that carries it, the version
//! this host reads, its size cap, the gate names the audit records, and
//! why a manifest is refused.

use std::path::PathBuf;

/// The name of the custom section that carries the manifest.
pub const SECTION_NAME: &str = "wasmproc-manifest";

/// The manifest format version this host reads.
pub const VERSION: u32 = 1;

/// The largest manifest section accepted, in bytes.
pub const MAX_SECTION_BYTES: usize = 64 * 1024;

/// Which gate refused a call (recorded in the audit's `gate` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The plugin's manifest did not declare the call.
    Manifest,
    /// The host's policy did not grant it.
    Policy,
}

impl Gate {
    /// `manifest` or `policy`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Policy => "policy",
        }
    }
}

/// Why a manifest could not be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed WebAssembly binary.
    #[error("{0} is not a well-formed WebAssembly binary: {1}")]
    Binary(String, String),
    /// The manifest section is larger than [`MAX_SECTION_BYTES`].
    #[error(
        "{what}: the `{SECTION_NAME}` section holds {size} bytes, above the limit of {MAX_SECTION_BYTES}"
    )]
    TooLarge {
        /// The component.
        what: String,
        /// The section's size.
        size: usize,
    },
    /// The component carries more than one manifest.
    #[error(
        "{0}: more than one `{SECTION_NAME}` section at the same level; a component carries one manifest"
    )]
    Duplicate(String),
    /// The manifest text is malformed.
    #[error("{what}: the plugin manifest is malformed: {reason}")]
    Malformed {
        /// The component or file.
        what: String,
        /// What is wrong, quoting the entry.
        reason: String,
    },
    /// The policy is pinned to another component (`component_digest`).
    #[error(
        "{}: the policy is pinned to component {pinned}, but this component is {actual}; \
         it asks for, beyond what the policy grants: {beyond}. Review it and write a new \
         policy (`wasmproc grant`) to accept it",
        component.display()
    )]
    DigestMismatch {
        /// The component file.
        component: PathBuf,
        /// The digest the policy names.
        pinned: String,
        /// The component's own digest.
        actual: String,
        /// What its manifest asks for beyond the policy.
        beyond: String,
    },
    /// The component carries no manifest, and one is required.
    #[error(
        "{} carries no plugin manifest (`{SECTION_NAME}` section), and a manifest is required (require_manifest)",
        component.display()
    )]
    Required {
        /// The component file.
        component: PathBuf,
    },
}
