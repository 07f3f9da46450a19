//! The two gates: a call must be declared by the plugin's manifest and
//! granted by the host's policy. This is the one place that combines them.

use super::format::Gate;
use super::parse::{Manifest, ProgramRequest};
use crate::error::CallError;
use crate::policy::{Approved, CommandRequest, Operation, Policy};

/// A refused call: which gate refused it (`None` for a malformed request,
/// refused before either gate), and the error the guest gets.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub gate: Option<Gate>,
    pub error: CallError,
}

/// Checks a request against the plugin's manifest (if it carries one) and
/// the policy. Whether a manifest is required was settled when the guest
/// was admitted ([`Admission`](crate::Admission)), once.
pub(crate) fn admit(
    policy: &Policy,
    manifest: Option<&Manifest>,
    op: Operation,
    req: CommandRequest<'_>,
) -> Result<Approved, Refusal> {
    let decided = policy.check(op, req);
    if let Err(error @ CallError::Invalid(_)) = decided {
        return Err(Refusal { gate: None, error });
    }
    let Some(manifest) = manifest else {
        return decided.map_err(|error| Refusal {
            gate: Some(Gate::Policy),
            error,
        });
    };
    let declared = declaration(manifest, policy, op, req).map_err(|reason| Refusal {
        gate: Some(Gate::Manifest),
        error: CallError::Denied(reason.to_string()),
    })?;
    decided.map_err(|error| {
        let error = match error {
            CallError::Denied(reason) => CallError::Denied(format!(
                "declared by the plugin, not granted by this host: add {} to allow it ({reason})",
                missing_grant(policy, op, req, declared)
            )),
            other => other,
        };
        Refusal {
            gate: Some(Gate::Policy),
            error,
        }
    })
}

/// Whether the plugin's name for a program and the requested string name
/// the same program: equal strings, or both naming one policy grant.
pub(crate) fn same_program(policy: &Policy, declared: &str, requested: &str) -> bool {
    declared == requested
        || policy
            .programs()
            .iter()
            .any(|g| g.is_named_by(declared) && g.is_named_by(requested))
}

/// Why the plugin's manifest does not cover a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Undeclared {
    #[error("program `{0}` is not declared by the plugin")]
    Program(String),
    #[error("program `{program}` is not declared by the plugin for `{operation}`")]
    Operation {
        program: String,
        operation: &'static str,
    },
    #[error(
        "arguments {args:?} of program `{program}` are not declared by the plugin (declared: {declared})"
    )]
    Arguments {
        args: Vec<String>,
        program: String,
        declared: String,
    },
    #[error("environment variable `{0}` is not declared by the plugin")]
    Variable(String),
    #[error("a working directory is not declared by the plugin")]
    Directory,
}

/// The manifest gate: the declaration that covers the request, or why
/// none does.
fn declaration<'m>(
    manifest: &'m Manifest,
    policy: &Policy,
    op: Operation,
    req: CommandRequest<'_>,
) -> Result<&'m ProgramRequest, Undeclared> {
    let program = req.program;
    let declared = manifest
        .programs
        .iter()
        .find(|p| same_program(policy, &p.name, program))
        .ok_or_else(|| Undeclared::Program(program.to_string()))?;
    if !declared.operations.contains(&op) {
        return Err(Undeclared::Operation {
            program: program.to_string(),
            operation: op.name(),
        });
    }
    // A manifest's `{path}` stands for any operand: the policy confines it.
    if let Some(patterns) = &declared.patterns
        && !patterns
            .iter()
            .any(|p| p.check(req.args, &|_| true).is_ok())
    {
        let shown: Vec<String> = patterns.iter().map(|p| format!("`{p}`")).collect();
        return Err(Undeclared::Arguments {
            args: req.args.to_vec(),
            program: program.to_string(),
            declared: if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            },
        });
    }
    if let Some((name, _)) = req.env.iter().find(|(n, _)| !manifest.declares_variable(n)) {
        return Err(Undeclared::Variable(name.to_string()));
    }
    if req.cwd.is_some() && manifest.dirs.is_none() {
        return Err(Undeclared::Directory);
    }
    Ok(declared)
}

/// What the host would add to its policy to grant a declared request,
/// found by checking the request's parts one at a time.
fn missing_grant(
    policy: &Policy,
    op: Operation,
    req: CommandRequest<'_>,
    declared: &ProgramRequest,
) -> String {
    let bare = CommandRequest {
        env: &[],
        cwd: None,
        ..req
    };
    if policy.check(op, bare).is_err() {
        let grant = policy
            .programs()
            .iter()
            .find(|g| g.is_named_by(req.program));
        return match grant {
            None => program_entry(declared),
            Some(g) if !g.operations.contains(&op) => {
                format!("\"{}\" to `operations` of program `{}`", op.name(), g.name)
            }
            Some(g) => {
                let pattern = declared
                    .args
                    .as_ref()
                    .and_then(|lists| {
                        declared
                            .patterns
                            .iter()
                            .flatten()
                            .zip(lists)
                            .find(|(p, _)| p.check(req.args, &|_| true).is_ok())
                            .map(|(_, written)| written.clone())
                    })
                    .unwrap_or_else(|| vec!["**".to_string()]);
                format!("{} to `args` of program `{}`", toml_value(&pattern), g.name)
            }
        };
    }
    for (name, value) in req.env {
        let one = [(name.clone(), value.clone())];
        if policy
            .check(op, CommandRequest { env: &one, ..bare })
            .is_err()
        {
            let program = policy
                .programs()
                .iter()
                .find(|g| g.is_named_by(req.program))
                .map_or(req.program, |g| g.name.as_str());
            return format!("\"{name}\" to `env` of program `{program}`");
        }
    }
    match req.cwd {
        Some(cwd) => format!("a root holding `{cwd}` to `roots` under [dirs]"),
        None => "the grant named in the reason".to_string(),
    }
}

/// A `[[program]]` entry granting exactly a declaration, on one line.
fn program_entry(declared: &ProgramRequest) -> String {
    let mut entry = format!("`[[program]] name = {}", toml_value(&declared.name));
    if let Some(args) = &declared.args {
        entry += &format!(" args = {}", toml_value(args));
    }
    if declared.operations.len() == 1 {
        entry += &format!(" operations = [\"{}\"]", declared.operations[0].name());
    }
    entry + "`"
}

/// A value in TOML syntax (strings quoted and escaped).
pub(crate) fn toml_value<T: serde::Serialize + ?Sized>(value: &T) -> String {
    toml::Value::try_from(value)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// git-summary's manifest (the README's examples use it).
    const GIT_SUMMARY: &str = r#"
version = 1
[[program]]
name = "git"
args = [
    ["rev-parse", "--abbrev-ref", "HEAD"],
    ["rev-list", "--count", "HEAD"],
    ["log", "--oneline", "-n", "5"],
    ["status", "--porcelain"],
]
operations = ["run"]
reason = "reads the repository"
[dirs]
reason = "runs git in the repository named on the command line"
"#;

    fn denial(policy: Policy, program: &str, args: &[&str]) -> (Option<Gate>, String) {
        let manifest = Manifest::parse("git-summary", GIT_SUMMARY).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let req = CommandRequest {
            program,
            args: &args,
            env: &[],
            cwd: None,
        };
        let refusal = admit(&policy, Some(&manifest), Operation::Run, req).unwrap_err();
        (refusal.gate, refusal.error.to_string())
    }

    #[test]
    fn manifest_gate_readme_examples_good() {
        // Outside the manifest: refused whatever the policy grants.
        let wide = || {
            Policy::builder()
                .allow_program("git")
                .allow_program("sh")
                .build()
                .unwrap()
        };
        assert_eq!(
            denial(wide(), "git", &["push"]),
            (
                Some(Gate::Manifest),
                "denied: arguments [\"push\"] of program `git` are not declared by the plugin \
                 (declared: `rev-parse --abbrev-ref HEAD`, `rev-list --count HEAD`, \
                 `log --oneline -n 5`, `status --porcelain`)"
                    .to_string()
            )
        );
        assert_eq!(
            denial(wide(), "sh", &["-c", "curl … | sh"]),
            (
                Some(Gate::Manifest),
                "denied: program `sh` is not declared by the plugin".to_string()
            )
        );
        // Declared, narrower policy: refused by the policy, naming the fix.
        let narrow = Policy::builder()
            .allow_program_args("git", &[&["log", "**"]])
            .build()
            .unwrap();
        assert_eq!(
            denial(narrow, "git", &["status", "--porcelain"]),
            (
                Some(Gate::Policy),
                "denied: declared by the plugin, not granted by this host: add \
                 [\"status\", \"--porcelain\"] to `args` of program `git` to allow it \
                 (argument 1 `status` does not match grant `git log **`)"
                    .to_string()
            )
        );
    }
}
