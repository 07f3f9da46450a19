//! Environment grants: the child's environment starts empty; the guest may
//! set only granted names, and the host passes through only named variables.
//!
//! A variable is granted to every program (`[env] allow`) or to one program
//! (`env` of its `[[program]]` entry). An exact name grants that variable
//! (an exact grant of a variable the [catalogue](super::catalogue) lists as
//! able to run code warns at load). A wildcard (`LC_*`, `*_COLOR`, `*`)
//! expands only over the catalogue's inert names, compared exactly and
//! case-sensitively: an allow-list, so a variable the catalogue has never
//! heard of, or a case variant of an inert one, is never reached by a
//! wildcard. Secret names (see [`super::secrets`]) are the host's: the
//! guest may not set them, in any case, for any program.

use super::catalogue::{self, inert_entry, variable_entry};
use crate::error::{CallError, PolicyError};

/// Whether a variable is catalogued as able to run code (a loader, shell,
/// runtime, git, pager or editor hook), so that a wildcard never covers it.
pub fn is_hook(name: &str) -> bool {
    catalogue::variable_risk(name).is_some()
}

/// Variables whose host value is the host's normal environment: passing
/// them through does not warn.
const QUIET_PASS: &[&str] = &["PATH", "HOME"];

/// A granted variable name: exact, or a wildcard with a fixed prefix and
/// suffix (`LC_*`: prefix `LC_`; `*_COLOR`: suffix `_COLOR`; `*`: both
/// empty).
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    Wildcard { prefix: String, suffix: String },
}

impl NamePattern {
    fn as_written(&self) -> String {
        match self {
            Self::Exact(n) => n.clone(),
            Self::Wildcard { prefix, suffix } => format!("{prefix}*{suffix}"),
        }
    }

    /// Whether the name has the wildcard's shape (inert or not).
    fn shape_matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(n) => n == name,
            Self::Wildcard { prefix, suffix } => {
                name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix.as_str())
                    && name.ends_with(suffix.as_str())
            }
        }
    }

    fn admits(&self, name: &str) -> bool {
        match self {
            Self::Exact(n) => n == name,
            Self::Wildcard { .. } => self.shape_matches(name) && inert_entry(name).is_some(),
        }
    }
}

/// The inert names a variable wildcard (`LC_*`, `*_COLOR`, `*`) expands
/// to, in catalogue order; an exact name expands to nothing.
pub fn inert_expansion(wildcard: &str) -> Vec<&'static str> {
    let Some((prefix, suffix)) = wildcard.split_once('*') else {
        return Vec::new();
    };
    let pattern = NamePattern::Wildcard {
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
    };
    catalogue::catalogue()
        .inert
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| pattern.shape_matches(n))
        .collect()
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
            let pattern = match name.split_once('*') {
                Some((prefix, suffix)) => {
                    if suffix.contains('*') || (!prefix.is_empty() && !suffix.is_empty()) {
                        return Err(PolicyError::entry(
                            quoted,
                            "a wildcard is one `*` at the start or the end of the name (`LC_*`, `*_COLOR`, `*`)",
                        ));
                    }
                    check_name(&quoted, prefix, true)?;
                    check_name(&quoted, suffix, true)?;
                    NamePattern::Wildcard {
                        prefix: prefix.to_string(),
                        suffix: suffix.to_string(),
                    }
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

    /// Whether this list admits `name`: by an exact grant, or by a
    /// wildcard when the name is inert.
    fn admits(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.admits(name))
    }

    /// The wildcard of this list that has the name's shape, if any (for
    /// the denial of a name that is not inert).
    fn wildcard_shaped(&self, name: &str) -> Option<String> {
        self.patterns
            .iter()
            .find(|p| matches!(p, NamePattern::Wildcard { .. }) && p.shape_matches(name))
            .map(NamePattern::as_written)
    }

    /// Each grant as written, with the inert names a wildcard expands to
    /// (empty for an exact name).
    pub(crate) fn expansions(&self) -> Vec<(String, Vec<&'static str>)> {
        self.patterns
            .iter()
            .map(|p| {
                let written = p.as_written();
                let names = inert_expansion(&written);
                (written, names)
            })
            .collect()
    }
}

/// Which variables a guest may set for any program, and which host
/// variables are passed to every child.
#[derive(Debug, Clone, Default)]
pub struct EnvGrant {
    settable: VarGrant,
    passed: Vec<(String, String)>,
    /// Names of every program's secrets: never settable by the guest.
    reserved: Vec<String>,
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
        Ok((
            Self {
                settable,
                passed,
                reserved: Vec::new(),
            },
            warnings,
        ))
    }

    /// Reserves secret names (of any program): the guest may never set
    /// them, and `[env] pass` may not pass them to every child.
    pub(crate) fn reserve(&mut self, secret: &str, program: &str) -> Result<(), PolicyError> {
        if self
            .passed
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(secret))
        {
            return Err(PolicyError::entry(
                format!("env.pass `{secret}`"),
                format!(
                    "is a secret of program `{program}`; passing it to every child would hand it to other programs"
                ),
            ));
        }
        self.reserved.push(secret.to_string());
        Ok(())
    }

    /// The settable grants, with wildcard expansions (see
    /// [`VarGrant::expansions`]).
    pub(crate) fn settable(&self) -> &VarGrant {
        &self.settable
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
            if self.reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(CallError::Denied(format!(
                    "environment variable `{name}` is a secret the host supplies; a guest may not set it"
                )));
            }
            if !self.settable.admits(name) && !program_env.admits(name) {
                return Err(self.denial(name, program, program_env));
            }
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        Ok(env)
    }

    fn denial(&self, name: &str, program: &str, program_env: &VarGrant) -> CallError {
        let how = format!(
            "grant it by its exact name (env.allow, or `env` of program `{program}`) if the program needs it"
        );
        let wildcard = self
            .settable
            .wildcard_shaped(name)
            .or_else(|| program_env.wildcard_shaped(name));
        let risk = variable_entry(name)
            .map(|e| {
                format!(
                    "; it is catalogued as able to run code: {} (source: {})",
                    e.risk, e.source
                )
            })
            .unwrap_or_default();
        CallError::Denied(match wildcard {
            Some(w) => format!(
                "environment variable `{name}` is not granted: the wildcard `{w}` expands only to \
                 inert variables (names compared exactly), and `{name}` is not one{risk}; {how}"
            ),
            None => format!("environment variable `{name}` is not granted{risk}; {how}"),
        })
    }
}

fn check_name(quoted: &str, name: &str, part: bool) -> Result<(), PolicyError> {
    let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid || (!part && name.is_empty()) {
        return Err(PolicyError::entry(
            quoted,
            "a variable name may hold only letters, digits and `_` (and one `*` at the start or end in a grant)",
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
                    matches!(&err, CallError::Denied(r) if r.contains(&name) && r.contains("exact")),
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
    fn env_wildcards_expand_to_inert_only_ugly() {
        // `*` admits every inert name and nothing else: hooks, names the
        // catalogue has never heard of, and case variants of inert names.
        let g = grant(&["*"]);
        for inert in &catalogue::catalogue().inert {
            assert!(child(&g, &inert.name).is_ok(), "{}", inert.name);
            let lower = inert.name.to_ascii_lowercase();
            if lower != inert.name {
                assert!(child(&g, &lower).is_err(), "{lower}");
            }
        }
        for name in [
            "FOO",
            "LD_PRELOAD",
            "BASH_ENV",
            "GIT_CONFIG_COUNT",
            "GIT_TEST_FSMONITOR",
            "GIT_TRACE",
            "TZ",
            "Npm_Config_Node_Options",
            "lang",
        ] {
            let err = child(&g, name).unwrap_err();
            assert!(
                matches!(&err, CallError::Denied(r) if r.contains(name) && r.contains("`*`")),
                "{name}: {err}"
            );
        }
        // A prefix expands to the inert names it covers, in order.
        let expanded = vars(&["GIT_AUTHOR_*", "*_COLOR", "LANG"]).expansions();
        assert_eq!(
            expanded[0],
            (
                "GIT_AUTHOR_*".to_string(),
                vec!["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE"]
            )
        );
        assert_eq!(expanded[1].1, ["NO_COLOR", "FORCE_COLOR"]);
        assert!(expanded[2].1.is_empty());
    }

    #[test]
    fn env_hooks_need_exact_grant_bad() {
        // Naming a hook exactly allows it, with a warning at load.
        let (g, warnings) = EnvGrant::new(&["LD_PRELOAD".into()], &[], |_| None).unwrap();
        assert!(child(&g, "LD_PRELOAD").is_ok());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // The case-insensitive npm family warns for any case.
        let mut warnings = Vec::new();
        VarGrant::parse(&["Npm_Config_Node_Options".into()], "env", &mut warnings).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn env_secret_names_reserved_bad() {
        let (mut g, _) = EnvGrant::new(&["*".into(), "TOKEN".into()], &[], |_| None).unwrap();
        g.reserve("TOKEN", "gh").unwrap();
        for name in ["TOKEN", "token", "Token"] {
            let err = child(&g, name).unwrap_err();
            assert!(
                matches!(&err, CallError::Denied(r) if r.contains("secret")),
                "{name}: {err}"
            );
        }
        let (mut g, _) = EnvGrant::new(&[], &["TOKEN".into()], |_| Some("v".into())).unwrap();
        assert!(g.reserve("TOKEN", "gh").is_err());
    }

    #[test]
    fn env_names_validated_bad() {
        let g = grant(&["*"]);
        assert!(matches!(child(&g, "A=B"), Err(CallError::Invalid(_))));
        assert!(matches!(child(&g, ""), Err(CallError::Invalid(_))));
        let nul = vec![("LANG".to_string(), "x\0y".to_string())];
        assert!(matches!(
            g.child_env(&nul, "p", &VarGrant::default()),
            Err(CallError::Invalid(_))
        ));
        for bad in ["BAD-NAME", "A*B", "*A*", "**"] {
            assert!(
                EnvGrant::new(&[bad.into()], &[], |_| None).is_err(),
                "{bad}"
            );
        }
    }
}
