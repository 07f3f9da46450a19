//! The two gates: a call must be declared by the plugin's manifest and
//! granted by the host's policy. This is the one place that combines them.

use super::{Gate, Manifest, ProgramRequest};
use crate::error::CallError;
use crate::policy::{Approved, CommandRequest, Operation, Policy};

/// A refused call: which gate refused it (`None` for a malformed request,
/// refused before either gate), and the error the guest gets.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub gate: Option<Gate>,
    pub error: CallError,
}

/// Checks a request against the manifest the policy carries (if any) and
/// the policy itself.
pub(crate) fn admit(
    policy: &Policy,
    op: Operation,
    req: CommandRequest<'_>,
) -> Result<Approved, Refusal> {
    let decided = policy.check(op, req);
    if let Err(error @ CallError::Invalid(_)) = decided {
        return Err(Refusal { gate: None, error });
    }
    let manifest = match policy.manifest() {
        Some(m) => m,
        None if policy.require_manifest() => {
            return Err(Refusal {
                gate: Some(Gate::Manifest),
                error: CallError::Denied(format!(
                    "program `{}` is not declared by the plugin: it carries no manifest, \
                     and this host requires one (require_manifest)",
                    req.program
                )),
            });
        }
        None => {
            return decided.map_err(|error| Refusal {
                gate: Some(Gate::Policy),
                error,
            });
        }
    };
    let declared = declaration(manifest, policy, op, req).map_err(|reason| Refusal {
        gate: Some(Gate::Manifest),
        error: CallError::Denied(reason),
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

/// The manifest gate: the declaration that covers the request, or why
/// none does.
fn declaration<'m>(
    manifest: &'m Manifest,
    policy: &Policy,
    op: Operation,
    req: CommandRequest<'_>,
) -> Result<&'m ProgramRequest, String> {
    let program = req.program;
    let declared = manifest
        .programs
        .iter()
        .find(|p| same_program(policy, &p.name, program))
        .ok_or_else(|| format!("program `{program}` is not declared by the plugin"))?;
    if !declared.operations.contains(&op) {
        return Err(format!(
            "program `{program}` is not declared by the plugin for `{}`",
            op.name()
        ));
    }
    if let Some(patterns) = &declared.patterns
        && !patterns.iter().any(|p| p.check(req.args).is_ok())
    {
        let shown: Vec<String> = patterns.iter().map(|p| format!("`{p}`")).collect();
        return Err(format!(
            "arguments {:?} of program `{program}` are not declared by the plugin (declared: {})",
            req.args,
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            }
        ));
    }
    if let Some((name, _)) = req.env.iter().find(|(n, _)| !manifest.declares_variable(n)) {
        return Err(format!(
            "environment variable `{name}` is not declared by the plugin"
        ));
    }
    if req.cwd.is_some() && manifest.dirs.is_none() {
        return Err("a working directory is not declared by the plugin".into());
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
        let grant = policy.programs().iter().find(|g| g.is_named_by(req.program));
        return match grant {
            None => program_entry(declared),
            Some(g) if !g.operations.contains(&op) => format!(
                "\"{}\" to `operations` of program `{}`",
                op.name(),
                g.name
            ),
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
                            .find(|(p, _)| p.check(req.args).is_ok())
                            .map(|(_, written)| written.clone())
                    })
                    .unwrap_or_else(|| vec!["**".to_string()]);
                format!(
                    "{} to `args` of program `{}`",
                    toml_value(&pattern),
                    g.name
                )
            }
        };
    }
    for (name, value) in req.env {
        let one = [(name.clone(), value.clone())];
        if policy.check(op, CommandRequest { env: &one, ..bare }).is_err() {
            return format!("`allow = [\"{name}\"]` under [env]");
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
