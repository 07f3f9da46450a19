//! What a guest is admitted under: the host's policy and the plugin's
//! manifest, side by side. Every call passes both gates here
//! ([`Admission::admit`]); whether the plugin must carry a manifest, and
//! whether the policy is pinned to another component, is settled once,
//! when the admission is made.

use crate::error::CallError;
use crate::manifest::gate::{self, Refusal};
use crate::manifest::{Manifest, ManifestError, beyond_policy};
use crate::policy::{Approved, CommandRequest, ComponentDigest, Operation, Policy};
use std::path::Path;
use std::sync::Arc;

/// The policy a guest runs under and the manifest its component carries.
/// Only an admission approves a command ([`Approved`] has no other maker
/// outside this crate), so every process a guest starts passed both gates.
///
/// ```
/// use std::sync::Arc;
/// use wasmproc_host::{Admission, Policy};
///
/// let policy = Policy::builder().allow_program("true").build()?;
/// let admission = Admission::policy_only(Arc::new(policy))?;
/// assert!(admission.manifest().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Admission {
    policy: Arc<Policy>,
    manifest: Option<Arc<Manifest>>,
}

impl Admission {
    /// Admits a component: `manifest` is what it carries (read by
    /// [`Runtime::load`](crate::Runtime::load) or
    /// [`Manifest::from_file`]), `digest` computes its digest when the
    /// policy is pinned to one (`component_digest`). Refused when the
    /// policy (or `require`) asks for a manifest and there is none, or when
    /// the policy is pinned to another component (the error lists what this
    /// one asks for beyond the policy).
    pub fn new(
        policy: Arc<Policy>,
        manifest: Option<Arc<Manifest>>,
        component: &Path,
        require: bool,
        digest: impl FnOnce() -> std::io::Result<ComponentDigest>,
    ) -> Result<Self, ManifestError> {
        if let Some(pinned) = policy.component_digest() {
            let actual = digest().map_err(|source| ManifestError::Io {
                action: "read",
                path: component.to_path_buf(),
                source,
            })?;
            if actual != *pinned {
                let beyond = match &manifest {
                    Some(m) => {
                        let rows = beyond_policy(m, &policy);
                        if rows.is_empty() {
                            "nothing".to_string()
                        } else {
                            rows.join("; ")
                        }
                    }
                    None => "(it carries no manifest, so it would run on the policy alone)".into(),
                };
                return Err(ManifestError::DigestMismatch {
                    component: component.to_path_buf(),
                    pinned: pinned.to_string(),
                    actual: actual.to_string(),
                    beyond,
                });
            }
        }
        if manifest.is_none() && (require || policy.require_manifest()) {
            return Err(ManifestError::Required {
                component: component.to_path_buf(),
            });
        }
        Ok(Self { policy, manifest })
    }

    /// Admits the component file at `path` under `policy`: reads its
    /// manifest and, where the policy is pinned, its digest. For embedders
    /// that load components themselves; [`Runtime`](crate::Runtime) does
    /// this on its own.
    pub fn for_component(
        policy: Arc<Policy>,
        path: &Path,
        require: bool,
    ) -> Result<Self, ManifestError> {
        let manifest = Manifest::from_file(path)?.map(Arc::new);
        Self::new(policy, manifest, path, require, || {
            ComponentDigest::of_file(path)
        })
    }

    /// Admission of the host's own commands (daemons and their probes):
    /// host configuration, not a plugin's request, so no manifest applies
    /// and nothing is pinned. Approve them with [`approve`](Self::approve).
    pub fn for_host(policy: Arc<Policy>) -> Self {
        Self {
            policy,
            manifest: None,
        }
    }

    /// Admission on the policy alone, for a guest without a component
    /// file (a host's own test or tool). Refused if the policy requires a
    /// manifest or is pinned to a component.
    pub fn policy_only(policy: Arc<Policy>) -> Result<Self, ManifestError> {
        let component = Path::new("a guest without a component file");
        Self::new(policy, None, component, false, || {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "there is no component file to pin",
            ))
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy, shared.
    pub(crate) fn policy_arc(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The plugin's manifest, where its component carries one.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_deref()
    }

    /// Checks a request against both gates: the plugin's manifest (if it
    /// carries one) and the policy. The refusal says which gate refused.
    pub(crate) fn admit(
        &self,
        op: Operation,
        request: CommandRequest<'_>,
    ) -> Result<Approved, Refusal> {
        gate::admit(&self.policy, self.manifest(), op, request)
    }

    /// Approves a command of the host's own (a daemon, its probes) against
    /// the policy alone: host configuration, not a plugin's request, so no
    /// manifest gate applies.
    pub fn approve(
        &self,
        op: Operation,
        request: CommandRequest<'_>,
    ) -> Result<Approved, CallError> {
        self.policy.check(op, request)
    }
}
