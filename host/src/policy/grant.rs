//! A loaded, resolved policy: how it is built ([`PolicyBuilder`], from a
//! file, from code or both), what it grants, and the check of a guest's
//! request against it (`Policy::check`, which only an admission calls).

use super::file::{PolicySpec, Resolved};
use super::limits::Limits;
use super::program::{Operation, ProgramGrant};
use crate::error::{CallError, PolicyError};

use super::dirs::DirGrant;
use super::env::{self, EnvGrant};
use std::path::{Path, PathBuf};

/// A loaded, resolved policy. Build one with [`Policy::builder`],
/// [`Policy::from_file`], or use [`Policy::deny_all`].
#[derive(Debug, Clone)]
pub struct Policy {
    programs: Vec<ProgramGrant>,
    env: EnvGrant,
    dirs: DirGrant,
    allow_inherit_stdio: bool,
    limits: Limits,
    warnings: Vec<String>,
    require_manifest: bool,
    require_confinement: bool,
    component_digest: Option<crate::policy::ComponentDigest>,
}

/// A guest's request, before the policy has looked at it.
#[derive(Debug, Clone, Copy)]
pub struct CommandRequest<'a> {
    /// Program name or path as the guest gave it.
    pub program: &'a str,
    /// Arguments.
    pub args: &'a [String],
    /// Variables the guest wants set.
    pub env: &'a [(String, String)],
    /// Working directory the guest asked for.
    pub cwd: Option<&'a str>,
}

/// A request the policy allowed, with everything resolved. `Debug` shows
/// the environment's names only (it may hold secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct Approved {
    /// The canonical absolute path to execute.
    pub(crate) program: PathBuf,
    /// `argv[0]`: the name the grant was written with.
    pub(crate) arg0: String,
    /// Arguments.
    pub(crate) args: Vec<String>,
    /// The complete child environment.
    pub(crate) env: Vec<(String, String)>,
    /// The checked working directory (`None`: the host's own).
    pub(crate) cwd: Option<PathBuf>,
}

impl Approved {
    /// The canonical absolute path to execute.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `argv[0]`: the name the grant was written with.
    pub fn arg0(&self) -> &str {
        &self.arg0
    }

    /// The arguments after `argv[0]`.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The complete child environment.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The checked working directory (`None`: the host's own).
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

impl std::fmt::Debug for Approved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Approved")
            .field("program", &self.program)
            .field("arg0", &self.arg0)
            .field("args", &self.args)
            .field("env", &names)
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl Policy {
    /// Starts building a policy in code; see [`PolicyBuilder`].
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Loads a policy file (TOML); relative directories in it are taken
    /// relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        PolicyBuilder::from_file(path)?.build()
    }
    /// A policy that grants nothing: every `run` and `start` is denied.
    pub fn deny_all() -> Self {
        Self {
            programs: Vec::new(),
            env: EnvGrant::default(),
            dirs: DirGrant::default(),
            allow_inherit_stdio: false,
            limits: Limits::default(),
            warnings: Vec::new(),
            require_manifest: false,
            require_confinement: false,
            component_digest: None,
        }
    }

    /// The limits this policy sets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same grants with other limits; the error names an invalid field.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, PolicyError> {
        limits
            .validate()
            .map_err(|reason| PolicyError::entry("[limits]", reason.to_string()))?;
        self.limits = limits;
        Ok(self)
    }

    /// Warnings raised while loading: exact grants of catalogued variables,
    /// catalogued programs granted with any arguments, and patterns that
    /// still let one of a catalogued program's attacks through.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The program grants, in policy order.
    pub fn programs(&self) -> &[ProgramGrant] {
        &self.programs
    }

    /// Whether background processes may inherit the host's stdio.
    pub fn allows_inherit_stdio(&self) -> bool {
        self.allow_inherit_stdio
    }

    /// Whether guests under this policy must carry a manifest
    /// (`require_manifest = true`).
    pub fn require_manifest(&self) -> bool {
        self.require_manifest
    }

    /// Whether a program the kernel cannot confine as its grant says is
    /// refused (`require_confinement = true`).
    pub fn requires_confinement(&self) -> bool {
        self.require_confinement
    }

    /// The same policy, also refusing programs the kernel cannot confine
    /// when `require` is set (`serve`'s `require_confinement`).
    pub fn require_confinement(mut self, require: bool) -> Self {
        self.require_confinement |= require;
        self
    }

    /// The working-directory roots, canonical: the confinement lets
    /// programs read and write beneath them.
    pub fn dir_roots(&self) -> &[PathBuf] {
        self.dirs.roots()
    }

    /// The component this policy is pinned to (`component_digest`).
    pub fn component_digest(&self) -> Option<&crate::policy::ComponentDigest> {
        self.component_digest.as_ref()
    }

    /// The `[env] allow` grants as written, each with the inert names a
    /// wildcard expands to (empty for an exact name).
    pub fn variable_grants(&self) -> Vec<(String, Vec<&'static str>)> {
        self.env.settable().expansions()
    }

    /// Whether a guest may set the variable for every program (`[env]`).
    pub fn allows_variable(&self, name: &str) -> bool {
        self.allows_variable_for(name, "", &env::VarGrant::default())
    }

    /// The granted programs (as named in the policy) that may be given the
    /// variable through their own `env` although `[env]` does not allow it.
    pub fn programs_allowing_variable(&self, name: &str) -> Vec<&str> {
        self.programs
            .iter()
            .filter(|p| self.allows_variable_for(name, &p.name, &p.env))
            .map(|p| p.name.as_str())
            .collect()
    }

    fn allows_variable_for(&self, name: &str, program: &str, grant: &env::VarGrant) -> bool {
        self.env
            .child_env(&[(name.to_string(), String::new())], program, grant)
            .is_ok()
    }

    /// Whether the policy grants any working-directory root.
    pub fn allows_working_dirs(&self) -> bool {
        self.dirs.has_roots()
    }

    /// Checks a request: first its shape and sizes (`invalid`), then the
    /// grants (`denied`). On success everything the spawn needs is resolved.
    pub(crate) fn check(
        &self,
        op: Operation,
        req: CommandRequest<'_>,
    ) -> Result<Approved, CallError> {
        self.check_shape(req)?;
        let grant = self
            .programs
            .iter()
            .find(|g| g.is_named_by(req.program))
            .ok_or_else(|| {
                CallError::Denied(format!("program `{}` is not granted", req.program))
            })?;
        if !grant.operations.contains(&op) {
            return Err(CallError::Denied(format!(
                "program `{}` is not granted for `{}`",
                grant.name,
                op.name()
            )));
        }
        let cwd = if grant.has_paths() {
            let cwd = self.dirs.resolve(req.cwd)?;
            grant.check_args(req.args, &|p| self.dirs.confines(cwd.as_deref(), p))?;
            cwd
        } else {
            grant.check_args(req.args, &|_| false)?;
            None
        };
        let mut env = self.env.child_env(req.env, &grant.name, &grant.env)?;
        grant.secrets.supply(&mut env);
        let cwd = match cwd {
            Some(cwd) => Some(cwd),
            None => self.dirs.resolve(req.cwd)?,
        };
        Ok(Approved {
            program: grant.path.clone(),
            arg0: grant.name.clone(),
            args: req.args.to_vec(),
            env,
            cwd,
        })
    }

    fn check_shape(&self, req: CommandRequest<'_>) -> Result<(), CallError> {
        let l = &self.limits;
        if req.program.is_empty() {
            return Err(CallError::Invalid("the program name is empty".into()));
        }
        if req.args.len() as u64 > u64::from(l.max_args) {
            return Err(CallError::Invalid(format!(
                "{} arguments exceed the limit of {}",
                req.args.len(),
                l.max_args
            )));
        }
        let arg_bytes = req.program.len() + req.args.iter().map(|a| a.len() + 1).sum::<usize>();
        if arg_bytes as u64 > l.max_args_bytes {
            return Err(CallError::Invalid(format!(
                "program and arguments take {arg_bytes} bytes, above the limit of {}",
                l.max_args_bytes
            )));
        }
        if req.program.contains('\0') || req.args.iter().any(|a| a.contains('\0')) {
            return Err(CallError::Invalid(
                "the program or an argument contains a NUL byte".into(),
            ));
        }
        if req.env.len() as u64 > u64::from(l.max_env_vars) {
            return Err(CallError::Invalid(format!(
                "{} environment variables exceed the limit of {}",
                req.env.len(),
                l.max_env_vars
            )));
        }
        let env_bytes: usize = req.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if env_bytes as u64 > l.max_env_bytes {
            return Err(CallError::Invalid(format!(
                "the environment takes {env_bytes} bytes, above the limit of {}",
                l.max_env_bytes
            )));
        }
        Ok(())
    }
}

/// Builds a [`Policy`] from a file, from code, or both: grants added in code
/// (as the CLI's `--allow` flags do) extend the file's.
///
/// ```
/// use wasmproc_host::Policy;
/// let policy = Policy::builder()
///     .allow_program_args("sh", &[&["/opt/tool/check.sh", "**"]])
///     .allow_program_args("git", &[&["log", "**"], &["status"]])
///     .allow_env_for("git", "GIT_AUTHOR_NAME")
///     .allow_env("LANG")
///     .build()
///     .expect("sh is on PATH");
/// assert!(!policy.programs().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct PolicyBuilder {
    spec: PolicySpec,
    base: Option<PathBuf>,
    search_path: Option<std::ffi::OsString>,
    program_env: Vec<(String, String)>,
}

impl PolicyBuilder {
    /// Starts from a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let spec = PolicySpec::parse(&text).map_err(|e| PolicyError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf);
        Ok(Self {
            spec,
            base,
            search_path: None,
            program_env: Vec::new(),
        })
    }

    /// Starts from a parsed specification.
    pub fn from_spec(spec: PolicySpec) -> Self {
        Self {
            spec,
            ..Self::default()
        }
    }

    /// Resolves bare program names on this search path instead of the
    /// host's `PATH`.
    pub fn search_path(mut self, path: impl Into<std::ffi::OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// Grants a program with any arguments, for `run` and `start`.
    pub fn allow_program(mut self, name: &str) -> Self {
        self.spec.add_program(name, None);
        self
    }

    /// Grants a program with the given argument patterns.
    pub fn allow_program_args(mut self, name: &str, patterns: &[&[&str]]) -> Self {
        let patterns = patterns
            .iter()
            .map(|p| p.iter().map(|s| s.to_string()).collect())
            .collect();
        self.spec.add_program(name, Some(patterns));
        self
    }

    /// Lets the guest set a variable (`NAME`, or a wildcard such as `LC_*`,
    /// which expands only over the catalogue's inert names).
    pub fn allow_env(mut self, name: &str) -> Self {
        self.spec.env.allow.push(name.to_string());
        self
    }

    /// Lets the guest set a variable (`NAME` or `PREFIX*`) for one granted
    /// program only (the program's `env` in a policy file). The program
    /// must be granted, in the file or in code, by the time of `build`.
    pub fn allow_env_for(mut self, program: &str, name: &str) -> Self {
        self.program_env
            .push((program.to_string(), name.to_string()));
        self
    }

    /// Passes a host variable through to every child.
    pub fn pass_env(mut self, name: &str) -> Self {
        self.spec.env.pass.push(name.to_string());
        self
    }

    /// Grants a working-directory root.
    pub fn allow_dir(mut self, dir: &str) -> Self {
        self.spec.dirs.roots.push(dir.to_string());
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.spec.limits = limits;
        self
    }

    /// Resolves relative directories against `dir` instead of the current
    /// directory (as a policy file's own directory is).
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base = Some(dir.into());
        self
    }

    /// Refuses programs the kernel cannot confine (`require_confinement`).
    pub fn require_confinement(mut self, require: bool) -> Self {
        self.spec.require_confinement = require;
        self
    }

    /// Requires guests to carry a manifest (`require_manifest`).
    pub fn require_manifest(mut self, require: bool) -> Self {
        self.spec.require_manifest = require;
        self
    }

    /// Lets background processes inherit the host's stdio.
    pub fn allow_inherit_stdio(mut self, allow: bool) -> Self {
        self.spec.stdio.allow_inherit = allow;
        self
    }

    /// Resolves every grant: programs on the host's `PATH`, directories
    /// relative to the policy file (or the current directory).
    pub fn build(mut self) -> Result<Policy, PolicyError> {
        for (program, name) in std::mem::take(&mut self.program_env) {
            let spec = self
                .spec
                .programs
                .iter_mut()
                .rev()
                .find(|p| p.name == program)
                .ok_or_else(|| {
                    PolicyError::entry(
                        format!("env of program `{program}` (`{name}`)"),
                        "the program is not granted",
                    )
                })?;
            spec.env.push(name);
        }
        let search_path = self.search_path.or_else(|| std::env::var_os("PATH"));
        let base = match self.base {
            Some(b) if !b.as_os_str().is_empty() => b,
            _ => std::env::current_dir()
                .map_err(|e| PolicyError::entry("current directory", e.to_string()))?,
        };
        self.spec
            .resolve(search_path.as_deref(), &base, |name| {
                std::env::var(name).ok()
            })
            .map(Policy::from)
    }
}

impl From<Resolved> for Policy {
    fn from(r: Resolved) -> Self {
        Self {
            programs: r.programs,
            env: r.env,
            dirs: r.dirs,
            allow_inherit_stdio: r.allow_inherit_stdio,
            limits: r.limits,
            warnings: r.warnings,
            require_manifest: r.require_manifest,
            require_confinement: r.require_confinement,
            component_digest: r.component_digest,
        }
    }
}
