//! Reading a manifest: finding its custom section in a component without
//! compiling it, and parsing the TOML inside strictly.

use super::format::{MAX_SECTION_BYTES, ManifestError, SECTION_NAME, VERSION};
use crate::policy::{ArgPattern, FsSpec, NetSpec, Operation, ProgramAccess};
use serde::Deserialize;
use std::path::Path;
use wasmparser::{Parser, Payload};

/// What a plugin declares it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Programs, in declaration order.
    pub programs: Vec<ProgramRequest>,
    /// Variables the plugin sets on its children.
    pub variables: Vec<VariableRequest>,
    /// Whether (and why) the plugin needs working directories.
    pub dirs: Option<DirsRequest>,
}

/// One declared program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRequest {
    /// A bare name or an absolute path, as the plugin names it in its calls.
    pub name: String,
    /// Argument patterns as written; `None` declares any arguments.
    pub args: Option<Vec<Vec<String>>>,
    /// The same patterns, parsed.
    pub(crate) patterns: Option<Vec<ArgPattern>>,
    /// The operations the plugin uses the program with.
    pub operations: Vec<Operation>,
    /// Why the plugin needs it, shown to the user.
    pub reason: String,
    /// What the program must touch beyond the confinement's defaults
    /// (`fs`, `net`), intersected with the policy's grant.
    pub access: ProgramAccess,
}

/// One declared variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRequest {
    /// The exact variable name.
    pub name: String,
    /// Why the plugin sets it.
    pub reason: String,
}

/// The declaration that the plugin runs programs in working directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirsRequest {
    /// Why it needs them.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSpec {
    version: u32,
    #[serde(default, rename = "program")]
    programs: Vec<ProgramSpec>,
    #[serde(default, rename = "variable")]
    variables: Vec<VariableSpec>,
    dirs: Option<DirsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramSpec {
    name: String,
    args: Option<Vec<Vec<String>>>,
    operations: Option<Vec<Operation>>,
    reason: String,
    #[serde(default)]
    fs: FsSpec,
    #[serde(default)]
    net: NetSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariableSpec {
    name: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirsSpec {
    reason: String,
}

impl Manifest {
    /// Parses manifest text (TOML). `what` names its origin in errors.
    pub fn parse(what: &str, text: &str) -> Result<Self, ManifestError> {
        let malformed = |reason: String| ManifestError::Malformed {
            what: what.to_string(),
            reason,
        };
        let spec: ManifestSpec = toml::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if spec.version != VERSION {
            return Err(malformed(format!(
                "version {} is not supported; this host reads version {VERSION}",
                spec.version
            )));
        }
        let mut programs: Vec<ProgramRequest> = Vec::new();
        for p in spec.programs {
            let quoted = format!("program `{}`", p.name);
            check_program_name(&p.name).map_err(|r| malformed(format!("{quoted}: {r}")))?;
            check_reason(&p.reason).map_err(|r| malformed(format!("{quoted}: {r}")))?;
            if programs.iter().any(|other| other.name == p.name) {
                return Err(malformed(format!(
                    "{quoted} is declared twice; merge the two entries"
                )));
            }
            let patterns = match &p.args {
                None => None,
                Some(lists) => Some(
                    lists
                        .iter()
                        .map(|l| ArgPattern::parse(&p.name, l))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| malformed(e.to_string()))?,
                ),
            };
            let operations = p
                .operations
                .unwrap_or_else(|| vec![Operation::Run, Operation::Start]);
            if operations.is_empty() {
                return Err(malformed(format!(
                    "{quoted}: `operations` is empty, so the entry declares nothing"
                )));
            }
            let access = ProgramAccess::declared(&p.fs, &p.net)
                .map_err(|r| malformed(format!("{quoted}: {r}")))?;
            programs.push(ProgramRequest {
                name: p.name,
                args: p.args,
                patterns,
                operations,
                reason: p.reason,
                access,
            });
        }
        let mut variables: Vec<VariableRequest> = Vec::new();
        for v in spec.variables {
            let quoted = format!("variable `{}`", v.name);
            let valid = !v.name.is_empty()
                && v.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(malformed(format!(
                    "{quoted}: a variable name holds only letters, digits and `_` (no patterns)"
                )));
            }
            check_reason(&v.reason).map_err(|r| malformed(format!("{quoted}: {r}")))?;
            if variables.iter().any(|other| other.name == v.name) {
                return Err(malformed(format!("{quoted} is declared twice")));
            }
            variables.push(VariableRequest {
                name: v.name,
                reason: v.reason,
            });
        }
        let dirs = match spec.dirs {
            None => None,
            Some(d) => {
                check_reason(&d.reason).map_err(|r| malformed(format!("[dirs]: {r}")))?;
                Some(DirsRequest { reason: d.reason })
            }
        };
        Ok(Self {
            programs,
            variables,
            dirs,
        })
    }

    /// Reads the manifest of a component (or core module) without
    /// compiling it. `Ok(None)`: it carries none.
    ///
    /// The section is looked for at the top level first (where
    /// `wasmproc manifest add` puts it), then in the core modules the
    /// component nests (where a Rust guest's `manifest!` ends up).
    pub fn from_component(what: &str, bytes: &[u8]) -> Result<Option<Self>, ManifestError> {
        let Some(section) = find_section(what, bytes)? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(section).map_err(|e| ManifestError::Malformed {
            what: what.to_string(),
            reason: format!("the section is not UTF-8 text: {e}"),
        })?;
        Self::parse(what, text).map(Some)
    }

    /// Reads the manifest of a component file; see [`Manifest::from_component`].
    pub fn from_file(path: &Path) -> Result<Option<Self>, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_component(&path.display().to_string(), &bytes)
    }

    /// What the plugin declares `program` must touch beyond the
    /// confinement's defaults (nothing if it does not declare it).
    pub fn access_for(&self, program: &str) -> ProgramAccess {
        self.program(program)
            .map(|p| p.access.clone())
            .unwrap_or_default()
    }

    /// The declaration of `program` as the plugin names it, if any.
    pub fn program(&self, name: &str) -> Option<&ProgramRequest> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Whether the plugin declared the variable.
    pub fn declares_variable(&self, name: &str) -> bool {
        self.variables.iter().any(|v| v.name == name)
    }
}

/// What is wrong with one field of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum FieldProblem {
    #[error("the name is empty or contains a control character")]
    NameUnreadable,
    #[error("give a bare name or an absolute path")]
    NameRelativePath,
    #[error("`reason` is empty; say why the plugin needs it")]
    ReasonEmpty,
    #[error("`reason` is one line of text, without control characters")]
    ReasonMultiline,
}

fn check_program_name(name: &str) -> Result<(), FieldProblem> {
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(FieldProblem::NameUnreadable);
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(FieldProblem::NameRelativePath);
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), FieldProblem> {
    if reason.trim().is_empty() {
        return Err(FieldProblem::ReasonEmpty);
    }
    if reason.chars().any(char::is_control) {
        return Err(FieldProblem::ReasonMultiline);
    }
    Ok(())
}

/// The payload of the manifest section: the top-level one, else the one
/// in a nested module. Two at the same level are an error.
fn find_section<'a>(what: &str, bytes: &'a [u8]) -> Result<Option<&'a [u8]>, ManifestError> {
    let mut depth = 0usize;
    let mut top: Option<&'a [u8]> = None;
    let mut nested: Option<&'a [u8]> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| ManifestError::Binary(what.to_string(), e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(reader) if reader.name() == SECTION_NAME => {
                let data = reader.data();
                if data.len() > MAX_SECTION_BYTES {
                    return Err(ManifestError::TooLarge {
                        what: what.to_string(),
                        size: data.len(),
                    });
                }
                let slot = if depth == 0 { &mut top } else { &mut nested };
                if slot.replace(data).is_some() {
                    return Err(ManifestError::Duplicate(what.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(top.or(nested))
}
