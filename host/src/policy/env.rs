//! Environment grants: the child's environment starts empty; the guest may
//! set only granted names, and the host passes through only named variables.
//!
//! A variable is granted to every program (`[env] allow`) or to one program
//! (`env` of its `[[program]]` entry). A wildcard grant (`GIT_*`, `*`) never
//! covers a variable in the [catalogue](super::catalogue) of variables that
//! can run code: only a grant naming it exactly does, and loading such a
//! grant warns with the catalogued risk.

use super::catalogue::{self, variable_entry};
use crate::error::{CallError, PolicyError};

/// Whether a variable is catalogued as able to run code (a loader, shell,
/// runtime, git, pager or editor hook), so that only an exact grant allows it.
pub fn is_hook(name: &str) -> bool {
    catalogue::variable_risk(name).is_some()
}

/// Variables whose host value is the host's normal environment: passing
/// them through does not warn.
const QUIET_PASS: &[&str] = &["PATH", "HOME"];

/// A granted variable name: exact, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    Prefix(String),
}

/// A list of variable grants (`[env] allow`, or one program's `env`).
#[derive(Debug, Clone, Default)]
pub(crate) struct VarGrant {
    patterns: Vec<NamePattern>,
}

impl VarGrant {
    /// Parses grants written in `field` (for messages); pushes a warning for
    /// each exact grant of a catalogued variable.
    pub(crate) fn parse(
        allow: &[String],
        field: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Self, PolicyError> {
        let mut patterns = Vec::new();
        for name in allow {
            let quoted = format!("{field} `{name}`");
            let pattern = match name.strip_suffix('*') {
                Some(prefix) => {
                    check_name(&quoted, prefix, true)?;
                    NamePattern::Prefix(prefix.to_string())
                }
                None => {
                    check_name(&quoted, name, false)?;
                    if let Some(entry) = variable_entry(name) {
                        warnings.push(format!(
                            "{field} lets the guest set `{name}`: {} (source: {})",
                            entry.risk, entry.source
                        ));
                    }
                    NamePattern::Exact(name.clone())
                }
            };
            if patterns.contains(&pattern) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    /// Whether this list admits `name`: by an exact grant, or by a prefix
    /// when the name is not catalogued.
    fn admits(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Prefix(prefix) => {
                name.starts_with(prefix.as_str()) && variable_entry(name).is_none()
            }
        })
    }
}

/// Which variables a guest may set for any program, and which host
/// variables are passed to every child.
#[derive(Debug, Clone, Default)]
pub struct EnvGrant {
    settable: VarGrant,
    passed: Vec<(String, String)>,
}

impl EnvGrant {
    /// Builds the grant. `pass` values are read from `host_env` now, once.
    /// Returns warnings for grants that name catalogued variables.
    pub(crate) fn new(
        allow: &[String],
        pass: &[String],
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Vec<String>), PolicyError> {
        let mut warnings = Vec::new();
        let settable = VarGrant::parse(allow, "env.allow", &mut warnings)?;
        let mut passed = Vec::new();
        for name in pass {
            let quoted = format!("env.pass `{name}`");
            check_name(&quoted, name, false)?;
            if passed.iter().any(|(n, _)| n == name) {
                return Err(PolicyError::entry(quoted, "is listed twice"));
            }
            if let Some(entry) = variable_entry(name)
                && !QUIET_PASS.contains(&name.as_str())
            {
                warnings.push(format!(
                    "env.pass gives every child the host's `{name}`: {} (source: {})",
                    entry.risk, entry.source
                ));
            }
            if let Some(value) = host_env(name) {
                passed.push((name.clone(), value));
            }
        }
        Ok((Self { settable, passed }, warnings))
    }

    /// Builds the child's environment: pass-through variables, then the
    /// guest's, each checked against the global grant and the program's
    /// own. A guest value replaces a passed one.
    pub(crate) fn child_env(
        &self,
        requested: &[(String, String)],
        program: &str,
        program_env: &VarGrant,
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
            if !self.settable.admits(name) && !program_env.admits(name) {
                return Err(denial(name, program));
            }
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        Ok(env)
    }
}

fn denial(name: &str, program: &str) -> CallError {
    match variable_entry(name) {
        Some(entry) => CallError::Denied(format!(
            "environment variable `{name}` is catalogued as able to run code: {} (source: {}); \
             only a grant naming it exactly (env.allow, or `env` of program `{program}`) \
             allows it, never a wildcard",
            entry.risk, entry.source
        )),
        None => CallError::Denied(format!(
            "environment variable `{name}` is not granted (env.allow, or `env` of program `{program}`)"
        )),
    }
}

fn check_name(quoted: &str, name: &str, prefix: bool) -> Result<(), PolicyError> {
    let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid || (!prefix && name.is_empty()) {
        return Err(PolicyError::entry(
            quoted,
            "a variable name may hold only letters, digits and `_` (and a final `*` in a grant)",
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
    fn vars(allow: &[&str]) -> VarGrant {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        VarGrant::parse(&allow, "program `p` env", &mut Vec::new()).unwrap()
    }
    fn set(name: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), "x".to_string())]
    }
    fn child(g: &EnvGrant, name: &str) -> Result<Vec<(String, String)>, CallError> {
        g.child_env(&set(name), "p", &VarGrant::default())
    }

    /// A name that belongs to a catalogue pattern.
    fn sample(pattern: &str) -> String {
        match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
            (Some(rest), _) if rest.ends_with('*') => format!("A{}B", rest.trim_end_matches('*')),
            (Some(suffix), _) => format!("A{suffix}"),
            (None, Some(prefix)) => format!("{prefix}X"),
            (None, None) => pattern.to_string(),
        }
    }

    #[test]
    fn env_catalogue_families_exact_grant_only_ugly() {
        // Every catalogued family, through a name of it: refused under a
        // prefix grant that covers it and under `*`, in the global and the
        // per-program list; allowed under an exact per-program grant (with
        // a warning at load) and only for that program's list.
        for entry in &catalogue::catalogue().variables {
            let name = sample(&entry.pattern);
            let prefixes = [name[..1].to_string() + "*", "*".to_string()];
            for wildcard in &prefixes {
                let err = child(&grant(&[wildcard]), &name).unwrap_err();
                assert!(
                    matches!(&err, CallError::Denied(r) if r.contains(&name) && r.contains("exactly")),
                    "{} ({name}) under global {wildcard}: {err}",
                    entry.pattern
                );
                let err = grant(&[])
                    .child_env(&set(&name), "p", &vars(&[wildcard]))
                    .unwrap_err();
                assert!(
                    matches!(&err, CallError::Denied(r) if r.contains(&name)),
                    "{} ({name}) under program {wildcard}: {err}",
                    entry.pattern
                );
            }
            let mut warnings = Vec::new();
            let exact = VarGrant::parse(
                std::slice::from_ref(&name),
                "program `p` env",
                &mut warnings,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
            assert!(warnings[0].contains(&name), "{warnings:?}");
            let env = grant(&[])
                .child_env(&set(&name), "p", &exact)
                .unwrap_or_else(|e| panic!("{name} under an exact grant: {e}"));
            assert_eq!(env, set(&name));
            assert!(child(&grant(&[]), &name).is_err(), "{name} leaked");
        }
    }

    #[test]
    fn env_hooks_need_exact_grant_bad() {
        // A wildcard that covers everything still does not cover hooks.
        let g = grant(&["*"]);
        assert!(child(&g, "FOO").is_ok());
        for hook in [
            "LD_PRELOAD",
            "LD_AUDIT",
            "DYLD_INSERT_LIBRARIES",
            "GCONV_PATH",
            "BASH_ENV",
            "ENV",
            "PATH",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_CONFIG_VALUE_0",
        ] {
            let err = child(&g, hook).unwrap_err();
            assert!(
                matches!(err, CallError::Denied(ref r) if r.contains(hook)),
                "{hook}: {err}"
            );
        }
        // Naming one exactly allows it, with a warning at load.
        let (g, warnings) = EnvGrant::new(&["LD_PRELOAD".into()], &[], |_| None).unwrap();
        assert!(child(&g, "LD_PRELOAD").is_ok());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn env_prefix_grant_admits_plain_names_good() {
        // A prefix still grants what the catalogue does not know.
        let g = grant(&["GIT_AUTHOR_*"]);
        assert!(child(&g, "GIT_AUTHOR_NAME").is_ok());
        assert!(child(&g, "GIT_COMMITTER_NAME").is_err());
        let per_program = vars(&["GIT_*"]);
        assert!(
            grant(&[])
                .child_env(&set("GIT_AUTHOR_NAME"), "git", &per_program)
                .is_ok()
        );
    }

    #[test]
    fn env_names_validated_bad() {
        let g = grant(&["*"]);
        assert!(matches!(child(&g, "A=B"), Err(CallError::Invalid(_))));
        assert!(matches!(child(&g, ""), Err(CallError::Invalid(_))));
        let nul = vec![("A".to_string(), "x\0y".to_string())];
        assert!(matches!(
            g.child_env(&nul, "p", &VarGrant::default()),
            Err(CallError::Invalid(_))
        ));
        assert!(EnvGrant::new(&["BAD-NAME".into()], &[], |_| None).is_err());
    }
}
