//! The policy file format (TOML) and its strict parsing.
//!
//! ```toml
//! [[program]]
//! name = "git"                       # bare name: resolved on PATH at load
//! args = [["log", "**"], ["status", "--porcelain"]]
//! operations = ["run"]               # default: ["run", "start"]
//! env = ["GIT_AUTHOR_NAME"]          # names the guest may set for git only
//! secrets = ["GITHUB_TOKEN"]         # values the host supplies to git only
//! fs.read = ["/srv/repos"]           # beyond the confinement's defaults
//! net.connect = [443]                # TCP ports, or "any"; default none
//!
//! [env]
//! allow = ["LANG", "LC_*"]           # names the guest may set (wildcards: inert names only)
//! pass = ["HOME"]                    # host variables passed through
//!
//! [dirs]
//! roots = ["."]                      # relative to the policy file
//! default = "."
//!
//! [stdio]
//! allow_inherit = false
//!
//! [limits]
//! max_live_processes = 8
//! kill_grace = "2s"                  # times with a unit: "500ms", "1m 30s"
//! ```
//!
//! Argument patterns are described in [`super::args`]; a top-level
//! `component_digest = "blake3:…"` pins the policy to one component.

use super::access::{FsSpec, NetSpec, ProgramAccess};
use super::args::ArgPattern;
use super::catalogue::{ProgramEntry, program_entry};
use super::dirs::DirGrant;
use super::env::{EnvGrant, VarGrant};
use super::leaks::open_attacks;
use super::program::{Operation, ProgramGrant, resolve};
use super::secrets::{SecretSpec, Secrets};
use crate::error::PolicyError;
use crate::policy::limits::Limits;
use serde::Deserialize;
use std::ffi::OsStr;
use std::path::Path;

/// The policy as written, before anything is resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Program grants (`[[program]]` tables).
    #[serde(default, rename = "program")]
    pub programs: Vec<ProgramSpec>,
    /// Environment grants.
    #[serde(default)]
    pub env: EnvSpec,
    /// Working-directory grants.
    #[serde(default)]
    pub dirs: DirsSpec,
    /// Stdio grants.
    #[serde(default)]
    pub stdio: StdioSpec,
    /// Limits; missing fields keep their defaults.
    #[serde(default)]
    pub limits: Limits,
    /// Refuse guests that carry no manifest.
    #[serde(default)]
    pub require_manifest: bool,
    /// The one component this policy grants to (`blake3:<hex>`), as
    /// `wasmproc grant` records it.
    #[serde(default)]
    pub component_digest: Option<String>,
    /// Refuse to start a program the kernel cannot confine as its grant says.
    #[serde(default)]
    pub require_confinement: bool,
}

/// One `[[program]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// A bare name (looked up on PATH at load) or an absolute path.
    pub name: String,
    /// Allowed argument lists; absent allows any.
    pub args: Option<Vec<Vec<String>>>,
    /// Allowed operations; absent allows `run` and `start`.
    pub operations: Option<Vec<Operation>>,
    /// Variables the guest may set for this program only (same syntax as
    /// `[env] allow`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Variables whose value the host supplies to this program only.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Filesystem access beyond the confinement's defaults.
    #[serde(default)]
    pub fs: FsSpec,
    /// Network access (none by default).
    #[serde(default)]
    pub net: NetSpec,
}

/// The `[env]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Variables the guest may set for every program; a wildcard (`LC_*`,
    /// `*_COLOR`, `*`) expands only over the catalogue's inert names.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Host variables passed through to every child.
    #[serde(default)]
    pub pass: Vec<String>,
}

/// The `[dirs]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirsSpec {
    /// Directories (and everything under them) children may run in.
    #[serde(default)]
    pub roots: Vec<String>,
    /// Directory used when the guest gives none; defaults to the first root.
    pub default: Option<String>,
}

/// The `[stdio]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioSpec {
    /// Whether background processes may inherit the host's stdio.
    #[serde(default)]
    pub allow_inherit: bool,
}

impl PolicySpec {
    /// Parses TOML strictly: unknown keys, wrong types and the retired
    /// `*_ms` times are errors that quote the offending line.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        super::retired::parse_toml(text, &[])
    }

    pub(crate) fn add_program(&mut self, name: &str, args: Option<Vec<Vec<String>>>) {
        self.programs.push(ProgramSpec {
            name: name.to_string(),
            args,
            operations: None,
            env: Vec::new(),
            secrets: Vec::new(),
            fs: FsSpec::default(),
            net: NetSpec::default(),
        });
    }

    /// Resolves programs against `search_path`, directories against `base`,
    /// pass-through variables through `host_env`.
    pub(crate) fn resolve(
        self,
        search_path: Option<&OsStr>,
        base: &Path,
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, PolicyError> {
        self.limits
            .validate()
            .map_err(|reason| PolicyError::entry("[limits]", reason.to_string()))?;
        let digest = self
            .component_digest
            .map(|d| super::digest::ComponentDigest::parse(&d))
            .transpose()
            .map_err(|why| PolicyError::entry("component_digest", why))?;
        let mut programs: Vec<ProgramGrant> = Vec::new();
        let mut warnings = Vec::new();
        for spec in self.programs {
            let quoted = format!("program `{}`", spec.name);
            let path = resolve(&spec.name, search_path)?;
            if let Some(other) = programs
                .iter()
                .find(|g| g.name == spec.name || g.path == path)
            {
                return Err(PolicyError::entry(
                    quoted,
                    format!(
                        "grants {} again (already granted as `{}`); merge the two entries",
                        path.display(),
                        other.name
                    ),
                ));
            }
            let args = match spec.args {
                None => None,
                Some(lists) => Some(
                    lists
                        .iter()
                        .map(|l| ArgPattern::parse(&spec.name, l))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let operations = spec
                .operations
                .unwrap_or_else(|| vec![Operation::Run, Operation::Start]);
            if operations.is_empty() {
                return Err(PolicyError::entry(
                    quoted,
                    "`operations` is empty, so the entry grants nothing",
                ));
            }
            let env = VarGrant::parse(&spec.env, &format!("{quoted} env"), &mut warnings)?;
            let entry =
                program_entry(&spec.name).or_else(|| program_entry(&path.to_string_lossy()));
            if let Some(entry) = entry {
                match &args {
                    None => warnings.push(open_grant_warning(&spec.name, entry)),
                    Some(patterns) => {
                        for pattern in patterns {
                            warnings.extend(leak_warning(&spec.name, entry, pattern));
                        }
                    }
                }
            }
            if args.iter().flatten().any(ArgPattern::has_paths) && self.dirs.roots.is_empty() {
                return Err(PolicyError::entry(
                    quoted,
                    "an argument pattern has a path placeholder (`{path}`, `{paths}`), but \
                     [dirs] grants no roots for it to lie in",
                ));
            }
            let secrets = Secrets::load(&spec.name, &spec.secrets, base, &host_env)?;
            let access = ProgramAccess::resolve(&spec.name, &spec.fs, &spec.net, base)?;
            programs.push(ProgramGrant {
                name: spec.name,
                path,
                args,
                operations,
                env,
                secrets,
                access,
            });
        }
        let (mut env, env_warnings) = EnvGrant::new(&self.env.allow, &self.env.pass, &host_env)?;
        warnings.extend(env_warnings);
        for grant in &programs {
            for name in grant.secrets.names() {
                env.reserve(name, &grant.name)?;
            }
        }
        let dirs = DirGrant::new(&self.dirs.roots, self.dirs.default.as_deref(), base)?;
        Ok(Resolved {
            programs,
            env,
            dirs,
            allow_inherit_stdio: self.stdio.allow_inherit,
            limits: self.limits,
            warnings,
            require_manifest: self.require_manifest,
            require_confinement: self.require_confinement,
            component_digest: digest,
        })
    }
}

/// A specification with every grant resolved (programs to canonical
/// paths, directories to roots, variables to grants): what a
/// [`Policy`](super::Policy) is made of.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub programs: Vec<ProgramGrant>,
    pub env: EnvGrant,
    pub dirs: DirGrant,
    pub allow_inherit_stdio: bool,
    pub limits: Limits,
    pub warnings: Vec<String>,
    pub require_manifest: bool,
    pub require_confinement: bool,
    pub component_digest: Option<super::digest::ComponentDigest>,
}

/// The load-time warning for a catalogued program granted with any
/// arguments: what it can be made to do, and how to narrow the grant.
fn open_grant_warning(name: &str, entry: &ProgramEntry) -> String {
    format!(
        "program `{name}` is granted with any arguments, and {name} {} (source: {}); \
         narrow it with `args` patterns: {}",
        entry.risk,
        entry.source,
        entry.advice()
    )
}

/// The load-time warning for a pattern of a catalogued program that still
/// lets one of its attacks through, quoting the pattern and the fix.
fn leak_warning(name: &str, entry: &ProgramEntry, pattern: &ArgPattern) -> Option<String> {
    let leaks = open_attacks(entry, pattern);
    if leaks.is_empty() {
        return None;
    }
    let shown: Vec<String> = leaks
        .iter()
        .map(|l| format!("`{}` (at argument {})", l.attack, l.position))
        .collect();
    Some(format!(
        "program `{name}`: pattern `{pattern}` still lets through {}, and {name} {} (source: {}); \
         fix the values of named options, name no abbreviation, and fix operands the program \
         reads as options or commands: {}",
        shown.join(", "),
        entry.risk,
        entry.source,
        entry.advice()
    ))
}
