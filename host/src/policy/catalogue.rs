//! The catalogue of environment variables and programs that can be made to
//! run code, and of inert variables, kept in one data file
//! (`catalogue.toml`) with the source of every entry (the program's own
//! documentation, ld.so(8), GTFOBins).
//!
//! A variable entry is a name (`PAGER`), a family by prefix (`GIT_CONFIG*`),
//! by suffix (`*_OPTIONS`) or by infix (`*_ASKPASS*`); an exact grant of one
//! warns at load. A wildcard variable grant expands only over the inert
//! names. A program entry gives the advised narrowing (`args`) and the
//! arguments that run code or write files (`attacks`); a grant that leaves
//! one of them open warns at load.

use serde::Deserialize;
use std::path::Path;
use std::sync::LazyLock;

/// The embedded data file.
const CATALOGUE_TOML: &str = include_str!("catalogue.toml");

/// The parsed catalogue, built once on first use.
static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(Catalogue::embedded);

/// One catalogued variable or family.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableEntry {
    /// `NAME`, `PREFIX*`, `*SUFFIX` or `*INFIX*`.
    pub pattern: String,
    /// What setting it lets a caller do.
    pub risk: String,
    /// Where the behaviour is documented.
    pub source: String,
    /// Whether programs read these names in any case (npm's
    /// `npm_config_*`), so that a case variant belongs to the entry too.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// One inert variable: a name a wildcard grant may expand to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InertEntry {
    /// The exact name.
    pub name: String,
    /// What it means to the programs that read it.
    pub meaning: String,
    /// Where the meaning is documented.
    pub source: String,
}

/// One catalogued program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramEntry {
    /// The program's file name.
    pub name: String,
    /// What the program can be made to do.
    pub risk: String,
    /// How to narrow a grant of it.
    pub narrow: String,
    /// The advised argument patterns, if a narrowing by `args` is advised.
    #[serde(default)]
    pub args: Option<Vec<Vec<String>>>,
    /// Arguments that make it run code or write files (options, and
    /// operands that act as options to it, such as dd's `of=`).
    pub attacks: Vec<String>,
    /// Where the behaviour is documented.
    pub source: String,
}

/// The whole catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Variables and families, in file order.
    #[serde(rename = "variable")]
    pub variables: Vec<VariableEntry>,
    /// Programs, in file order.
    #[serde(rename = "program")]
    pub programs: Vec<ProgramEntry>,
    /// Inert variables, in file order.
    #[serde(rename = "inert")]
    pub inert: Vec<InertEntry>,
}

impl Catalogue {
    fn embedded() -> Self {
        match toml::from_str(CATALOGUE_TOML) {
            Ok(catalogue) => catalogue,
            // The file is part of the build; its unit test keeps it valid.
            Err(e) => panic!("the embedded catalogue.toml is malformed: {e}"),
        }
    }
}

/// The catalogue embedded in the host.
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

impl VariableEntry {
    /// Whether `name` belongs to this entry (case-sensitively, unless the
    /// entry is read in any case).
    pub fn matches(&self, name: &str) -> bool {
        if self.case_insensitive {
            let lower = |s: &str| s.to_ascii_lowercase();
            return Self::matches_exactly(&lower(&self.pattern), &lower(name));
        }
        Self::matches_exactly(&self.pattern, name)
    }

    fn matches_exactly(p: &str, name: &str) -> bool {
        match (p.strip_prefix('*'), p.strip_suffix('*')) {
            (Some(rest), _) if rest.ends_with('*') => name.contains(rest.trim_end_matches('*')),
            (Some(suffix), _) => name.ends_with(suffix),
            (None, Some(prefix)) => name.starts_with(prefix),
            (None, None) => name == p,
        }
    }
}

/// The catalogue entry a variable belongs to, if any.
pub fn variable_entry(name: &str) -> Option<&'static VariableEntry> {
    catalogue().variables.iter().find(|v| v.matches(name))
}

/// The inert entry of exactly `name`, if it is one.
pub fn inert_entry(name: &str) -> Option<&'static InertEntry> {
    catalogue().inert.iter().find(|v| v.name == name)
}

/// The advice for a catalogued program: the text, then the advised
/// patterns when there are some.
impl ProgramEntry {
    /// `narrow`, followed by the advised `args` as TOML.
    pub fn advice(&self) -> String {
        match &self.args {
            Some(args) => {
                let lists: Vec<String> = args
                    .iter()
                    .map(|l| {
                        let quoted: Vec<String> = l.iter().map(|a| format!("{a:?}")).collect();
                        format!("[{}]", quoted.join(", "))
                    })
                    .collect();
                format!("{}: args = [{}]", self.narrow, lists.join(", "))
            }
            None => self.narrow.clone(),
        }
    }
}

/// What setting the variable `name` can make a program do, if it is
/// catalogued; `None` for a variable the catalogue does not know.
pub fn variable_risk(name: &str) -> Option<&'static str> {
    variable_entry(name).map(|v| v.risk.as_str())
}

/// The catalogue entry of a program given by file name or path, if any.
///
/// The file name is compared as is, then without a version suffix
/// (`python3.12` → `python3`, `python`).
pub fn program_entry(program: &str) -> Option<&'static ProgramEntry> {
    let file_name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let find = |n: &str| catalogue().programs.iter().find(|p| p.name == n);
    if let Some(entry) = find(file_name) {
        return Some(entry);
    }
    let without_dots = file_name.split('.').next().unwrap_or(file_name);
    let without_version = without_dots.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    find(without_dots).or_else(|| find(without_version))
}

/// What the program (a file name or a path) can be made to do, if it is
/// catalogued; `None` for a program the catalogue does not know.
pub fn program_risk(program: &str) -> Option<&'static str> {
    program_entry(program).map(|p| p.risk.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_with_sources_good() {
        let c = catalogue();
        assert!(c.variables.len() > 50, "{}", c.variables.len());
        assert!(c.programs.len() > 50, "{}", c.programs.len());
        for v in &c.variables {
            assert!(!v.risk.is_empty() && !v.source.is_empty(), "{v:?}");
            let inner = v.pattern.trim_matches('*');
            assert!(
                !inner.is_empty() && !inner.contains('*'),
                "pattern {:?}: `*` only at the ends",
                v.pattern
            );
        }
        for p in &c.programs {
            assert!(
                !p.risk.is_empty() && !p.narrow.is_empty() && !p.source.is_empty(),
                "{p:?}"
            );
            assert!(!p.attacks.is_empty(), "{} names no attacks", p.name);
            for list in p.args.iter().flatten() {
                crate::policy::ArgPattern::parse(&p.name, list).unwrap();
            }
        }
        for v in &c.inert {
            assert!(!v.meaning.is_empty() && !v.source.is_empty(), "{v:?}");
            assert!(
                variable_entry(&v.name).is_none(),
                "{} is both inert and catalogued as dangerous",
                v.name
            );
        }
    }

    #[test]
    fn catalogue_families_match_good() {
        // One case per pattern shape, and names that stay outside.
        for name in [
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_SSH_COMMAND",
            "LD_PRELOAD",
            "BASH_FUNC_ls%%",
            "JAVA_TOOL_OPTIONS",
            "SUDO_ASKPASS",
            "SSH_ASKPASS_REQUIRE",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "npm_config_node_options",
            "Npm_Config_Node_Options",
            "NPM_CONFIG_SCRIPT_SHELL",
        ] {
            assert!(variable_risk(name).is_some(), "{name} is not catalogued");
        }
        for name in ["GIT_AUTHOR_NAME", "LANG", "TERM", "COLUMNS"] {
            assert!(variable_risk(name).is_none(), "{name} is catalogued");
        }
    }

    #[test]
    fn catalogue_program_by_path_and_version_good() {
        assert!(program_risk("git").is_some());
        assert!(program_risk("/usr/bin/find").is_some());
        assert!(program_risk("/usr/bin/python3.12").is_some());
        assert!(program_risk("/usr/bin/perl5.36.0").is_some());
        assert!(program_risk("true").is_none());
        assert!(program_risk("/usr/bin/wc").is_none());
    }
}
