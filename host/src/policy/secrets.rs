//! Secrets: variables whose value the host supplies to one program's
//! children, from its own environment or from a file read at load. The
//! guest never sees a value (not in `get`, `list`, errors or the audit,
//! which name the variable only) and may not set a secret's name itself.
//!
//! ```toml
//! [[program]]
//! name = "gh"
//! args = [["pr", "list"]]
//! secrets = ["GITHUB_TOKEN", { name = "NPM_TOKEN", file = "/run/secrets/npm" }]
//! ```

use crate::error::PolicyError;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// One entry of a program's `secrets`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSpec {
    /// The value is the host's variable of the same name, read at load.
    Host(String),
    /// The value is read from a file at load (one trailing newline removed).
    File {
        /// The variable's name in the child.
        name: String,
        /// The file holding the value; relative to the policy file.
        file: String,
    },
}

impl SecretSpec {
    /// The variable's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Host(name) | Self::File { name, .. } => name,
        }
    }
}

/// The secrets of one program grant, with their values. `Debug` shows
/// the names only.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    values: Vec<(String, String)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Secrets {
    /// Reads every secret now: host variables through `host_env`, files
    /// relative to `base`. A missing value is an error naming the secret
    /// (never its value).
    pub(crate) fn load(
        program: &str,
        specs: &[SecretSpec],
        base: &Path,
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, PolicyError> {
        let mut values: Vec<(String, String)> = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name();
            let quoted = format!("secret `{name}` of program `{program}`");
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(PolicyError::entry(
                    quoted,
                    "a variable name may hold only letters, digits and `_`",
                ));
            }
            if values.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            let value = match spec {
                SecretSpec::Host(_) => host_env(name).ok_or_else(|| {
                    PolicyError::entry(&quoted, "is not set in the host's environment")
                })?,
                SecretSpec::File { file, .. } => {
                    let path = base.join(file);
                    let mut text = std::fs::read_to_string(&path).map_err(|e| {
                        PolicyError::entry(&quoted, format!("cannot read {}: {e}", path.display()))
                    })?;
                    if text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    text
                }
            };
            if value.contains('\0') {
                return Err(PolicyError::entry(quoted, "the value holds a NUL byte"));
            }
            values.push((name.to_string(), value));
        }
        Ok(Self { values })
    }

    /// The secrets' names, in policy order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(n, _)| n.as_str())
    }

    /// Adds the secrets to a child's environment, replacing any variable
    /// of the same name.
    pub(crate) fn supply(&self, env: &mut Vec<(String, String)>) {
        for (name, value) in &self.values {
            env.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            env.push((name.clone(), value.clone()));
        }
    }
}
