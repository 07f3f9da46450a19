//! The plugin's manifest: what a component declares it needs, carried in
//! the component itself (custom section [`SECTION_NAME`]), and the gate that
//! intersects it with the host's policy.
//!
//! A call passes only if both gates let it through: the manifest (what the
//! plugin declared) and the policy (what this host grants). A component
//! without a manifest runs on the policy alone, unless the policy sets
//! `require_manifest = true`.
//!
//! A layer above the policy, whose grant language it speaks: it may import
//! the policy and the base, never the OS, process or session layers.
//!
//! ```toml
//! version = 1
//!
//! [[program]]
//! name = "git"                          # a bare name or an absolute path
//! args = [["log", "--oneline", "**"]]   # absent: any arguments
//! operations = ["run"]                  # absent: run and start
//! reason = "lists recent commits"
//!
//! [[variable]]
//! name = "LANG"
//! reason = "keeps git's messages in the user's language"
//!
//! [dirs]                                # absent: no working directories
//! reason = "runs git in the repository the user names"
//! ```

mod coverage;
mod embed;
mod format;
pub(crate) mod gate;
mod parse;
mod report;

pub use crate::policy::ComponentDigest;
pub use embed::embed;
pub use format::{Gate, MAX_SECTION_BYTES, ManifestError, SECTION_NAME, VERSION};
pub use parse::{DirsRequest, Manifest, ProgramRequest, VariableRequest};
pub use report::{Verdict, beyond_policy, grant_policy, inspect_table};
