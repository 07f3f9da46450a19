//! Environment grants: the child's environment starts empty; the guest may
//! set only granted names, and the host passes through only named variables.

use crate::error::{CallError, PolicyError};

/// Names that change how the dynamic loader, libc or a shell behaves. A
/// guest may set one only if a grant names it exactly (not by a wildcard),
/// and loading such a grant prints a warning.
const HOOK_PREFIXES: &[&str] = &["LD_", "DYLD_", "MALLOC_", "GLIBC_"];
const HOOK_NAMES: &[&str] = &[
    "GCONV_PATH",
    "BASH_ENV",
    "ENV",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PATH",
    "NLSPATH",
    "HOSTALIASES",
    "LOCPATH",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "TMPDIR",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "NODE_OPTIONS",
    "RUBYOPT",
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
];

/// Whether a variable is a loader or shell hook that needs an explicit grant.
pub fn is_hook(name: &str) -> bool {
    HOOK_NAMES.contains(&name) || HOOK_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A granted variable name: exact, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    Prefix(String),
}

/// Which variables a guest may set, and which host variables are passed.
#[derive(Debug, Clone, Default)]
pub struct EnvGrant {
    settable: Vec<NamePattern>,
    passed: Vec<(String, String)>,
}

impl EnvGrant {
    /// Builds the grant. `pass` values are read from `host_env` now, once.
    /// Returns warnings for grants that name loader or shell hooks.
    pub(crate) fn new(
        allow: &[String],
        pass: &[String],
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Vec<String>), PolicyError> {
        let mut warnings = Vec::new();
        let mut settable = Vec::new();
        for name in allow {
            let quoted = format!("env.allow `{name}`");
            let pattern = match name.strip_suffix('*') {
                Some(prefix) => {
                    check_name(&quoted, prefix, true)?;
                    NamePattern::Prefix(prefix.to_string())
                }
                None => {
                    check_name(&quoted, name, false)?;
                    if is_hook(name) {
                        warnings.push(format!(
                            "policy lets the guest set `{name}`, a loader/shell hook variable"
                        ));
                    }
                    NamePattern::Exact(name.clone())
                }
            };
            if settable.contains(&pattern) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            settable.push(pattern);
        }
        let mut passed = Vec::new();
        for name in pass {
            let quoted = format!("env.pass `{name}`");
            check_name(&quoted, name, false)?;
            if passed.iter().any(|(n, _)| n == name) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            if is_hook(name) && name != "PATH" {
                warnings.push(format!(
                    "policy passes the host's `{name}`, a loader/shell hook variable, to children"
                ));
            }
            if let Some(value) = host_env(name) {
                passed.push((name.clone(), value));
            }
        }
        Ok((Self { settable, passed }, warnings))
    }

    /// Builds the child's environment: pass-through variables, then the
    /// guest's, each checked. A guest value replaces a passed one.
    pub(crate) fn child_env(
        &self,
        requested: &[(String, String)],
    ) -> Result<Vec<(String, String)>, CallError> {
        let mut env = self.passed.clone();
        for (name, value) in requested {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(CallError::Invalid(format!(
                    "environment variable name {name:?} is empty or contains `=` or NUL"
                )));
            }
            if value.contains('\0') {
                return Err(CallError::Invalid(format!(
                    "environment variable `{name}` has a NUL byte in its value"
                )));
            }
            self.check_settable(name)?;
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        Ok(env)
    }

    fn check_settable(&self, name: &str) -> Result<(), CallError> {
        let exact = self
            .settable
            .contains(&NamePattern::Exact(name.to_string()));
        if exact {
            return Ok(());
        }
        let by_prefix = self
            .settable
            .iter()
            .any(|p| matches!(p, NamePattern::Prefix(prefix) if name.starts_with(prefix.as_str())));
        if by_prefix && !is_hook(name) {
            return Ok(());
        }
        if is_hook(name) {
            return Err(CallError::Denied(format!(
                "environment variable `{name}` is a loader/shell hook; only a grant naming it exactly allows it"
            )));
        }
        Err(CallError::Denied(format!(
            "environment variable `{name}` is not granted (env.allow)"
        )))
    }
}

fn check_name(quoted: &str, name: &str, prefix: bool) -> Result<(), PolicyError> {
    let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid || (!prefix && name.is_empty()) {
        return Err(PolicyError::entry(
            quoted,
            "a variable name may hold only letters, digits and `_` (and a final `*` in env.allow)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allow: &[&str]) -> EnvGrant {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        EnvGrant::new(&allow, &[], |_| None).unwrap().0
    }
    fn set(name: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), "x".to_string())]
    }

    #[test]
    fn env_hooks_need_exact_grant_bad() {
        // A wildcard that covers everything still does not cover hooks.
        let g = grant(&["*"]);
        assert!(g.child_env(&set("FOO")).is_ok());
        for hook in [
            "LD_PRELOAD",
            "LD_AUDIT",
            "DYLD_INSERT_LIBRARIES",
            "GCONV_PATH",
            "BASH_ENV",
            "ENV",
            "PATH",
        ] {
            let err = g.child_env(&set(hook)).unwrap_err();
            assert!(
                matches!(err, CallError::Denied(ref r) if r.contains(hook)),
                "{hook}: {err}"
            );
        }
        // Naming one exactly allows it, with a warning at load.
        let (g, warnings) = EnvGrant::new(&["LD_PRELOAD".into()], &[], |_| None).unwrap();
        assert!(g.child_env(&set("LD_PRELOAD")).is_ok());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn env_names_validated_bad() {
        let g = grant(&["*"]);
        assert!(matches!(
            g.child_env(&set("A=B")),
            Err(CallError::Invalid(_))
        ));
        assert!(matches!(g.child_env(&set("")), Err(CallError::Invalid(_))));
        let nul = vec![("A".to_string(), "x\0y".to_string())];
        assert!(matches!(g.child_env(&nul), Err(CallError::Invalid(_))));
        assert!(EnvGrant::new(&["BAD-NAME".into()], &[], |_| None).is_err());
    }
}
