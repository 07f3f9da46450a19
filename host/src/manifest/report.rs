//! What `wasmproc inspect` and `wasmproc grant` print: the manifest as a
//! table (with each request's fate under a policy), and a policy granting
//! exactly what the manifest declares.

use super::coverage::{covers, overlaps};
use super::gate::{same_program, toml_value};
use super::parse::{Manifest, ProgramRequest};
use crate::policy::ComponentDigest;
use crate::policy::catalogue::{program_risk, variable_risk};
use crate::policy::{ArgPattern, inert_expansion};
use crate::policy::{Operation, Policy, ProgramGrant};
use std::fmt::Write as _;

/// What one declared request gets under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything the request declares is granted.
    Granted,
    /// Part of it is granted; the text says which part.
    Narrowed(String),
    /// Nothing of it is granted; the text says why.
    Refused(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Granted => f.write_str("granted"),
            Self::Narrowed(why) => write!(f, "narrowed: {why}"),
            Self::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// One row of the table.
struct Row {
    request: String,
    pattern: String,
    reason: String,
    verdict: Option<Verdict>,
}

/// The manifest as a table (request, pattern, reason), with a column for
/// what each request gets under `policy` when one is given, followed by
/// what the policy grants (options, operand rules, variable expansions).
pub fn inspect_table(manifest: &Manifest, policy: Option<&Policy>) -> String {
    let mut out = render(&rows(manifest, policy), policy.is_some());
    if let Some(policy) = policy {
        out.push('\n');
        out.push_str(&grants_table(policy));
    }
    out
}

/// Each request of the manifest that `policy` does not fully grant, as
/// `+ request pattern (verdict)`: what a component asks for beyond it.
pub fn beyond_policy(manifest: &Manifest, policy: &Policy) -> Vec<String> {
    rows(manifest, Some(policy))
        .into_iter()
        .filter(|r| !matches!(r.verdict, Some(Verdict::Granted)))
        .map(|r| {
            format!(
                "+ {} {} ({})",
                printable(&r.request),
                printable(&r.pattern),
                r.verdict.map(|v| v.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

/// What a policy grants, one line per program pattern and per variable
/// grant: the named options, the operand rule, the inert names a
/// wildcard expands to, and the names of secrets.
pub fn grants_table(policy: &Policy) -> String {
    let mut out = String::from("THE POLICY GRANTS\n");
    for g in policy.programs() {
        let ops: Vec<&str> = g.operations.iter().map(|o| o.name()).collect();
        let _ = writeln!(out, "program {} ({})", g.name, ops.join(", "));
        match &g.args {
            None => out.push_str("  any arguments (every option, every operand)\n"),
            Some(patterns) if patterns.is_empty() => out.push_str("  no argument list\n"),
            Some(patterns) => {
                for p in patterns {
                    let _ = writeln!(out, "  {}", pattern_summary(p));
                }
            }
        }
        for (written, names) in g.variable_grants() {
            let _ = writeln!(out, "  variable {}", expansion(&written, &names));
        }
        let secrets: Vec<&str> = g.secret_names().collect();
        if !secrets.is_empty() {
            let _ = writeln!(
                out,
                "  secrets (values supplied by the host) {}",
                secrets.join(" ")
            );
        }
    }
    for (written, names) in policy.variable_grants() {
        let _ = writeln!(
            out,
            "variable (every program) {}",
            expansion(&written, &names)
        );
    }
    out
}

/// A pattern, the options it names and its operand rule, on one line.
fn pattern_summary(p: &ArgPattern) -> String {
    let options = p.named_options();
    let options = if options.is_empty() {
        "no options".to_string()
    } else {
        format!("options {}", options.join(" "))
    };
    format!(
        "`{}`: {options}; {}",
        printable(&p.to_string()),
        p.operand_rule()
    )
}

fn expansion(written: &str, names: &[&str]) -> String {
    if written.contains('*') {
        if names.is_empty() {
            format!("{written} -> (no inert names)")
        } else {
            format!("{written} -> {}", names.join(" "))
        }
    } else {
        written.to_string()
    }
}

fn rows(manifest: &Manifest, policy: Option<&Policy>) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in &manifest.programs {
        let ops: Vec<&str> = p.operations.iter().map(|o| o.name()).collect();
        let request = format!("program {} ({})", p.name, ops.join(", "));
        match &p.args {
            None => rows.push(Row {
                request,
                pattern: "(any arguments)".into(),
                reason: p.reason.clone(),
                verdict: policy.map(|pol| program_verdict(pol, p, None)),
            }),
            Some(lists) if lists.is_empty() => rows.push(Row {
                request,
                pattern: "(no argument list)".into(),
                reason: p.reason.clone(),
                verdict: policy.map(|_| Verdict::Refused("declares no argument list".into())),
            }),
            Some(lists) => {
                for list in lists {
                    rows.push(Row {
                        request: request.clone(),
                        pattern: if list.is_empty() {
                            "(no arguments)".into()
                        } else {
                            list.join(" ")
                        },
                        reason: p.reason.clone(),
                        verdict: policy.map(|pol| program_verdict(pol, p, Some(list.as_slice()))),
                    });
                }
            }
        }
    }
    for p in manifest.programs.iter().filter(|p| !p.access.is_default()) {
        rows.push(Row {
            request: format!("access of {}", p.name),
            pattern: p.access.describe(),
            reason: p.reason.clone(),
            verdict: policy.map(|pol| access_verdict(pol, p)),
        });
    }
    for v in &manifest.variables {
        rows.push(Row {
            request: "variable".into(),
            pattern: v.name.clone(),
            reason: v.reason.clone(),
            verdict: policy.map(|pol| {
                let programs = pol.programs_allowing_variable(&v.name);
                if pol.allows_variable(&v.name) {
                    Verdict::Granted
                } else if !programs.is_empty() {
                    Verdict::Narrowed(format!("only for {}", programs.join(", ")))
                } else {
                    Verdict::Refused(format!("[env] does not allow `{}`", v.name))
                }
            }),
        });
    }
    if let Some(d) = &manifest.dirs {
        rows.push(Row {
            request: "working directories".into(),
            pattern: "(any the host grants)".into(),
            reason: d.reason.clone(),
            verdict: policy.map(|pol| {
                if pol.allows_working_dirs() {
                    Verdict::Narrowed("only under [dirs] roots".into())
                } else {
                    Verdict::Refused("[dirs] grants no roots".into())
                }
            }),
        });
    }
    rows
}

/// What a program's declared `fs` and `net` access gets under a policy:
/// the intersection with the grant's.
fn access_verdict(policy: &Policy, p: &ProgramRequest) -> Verdict {
    let Some(grant) = policy.programs().iter().find(|g| g.is_named_by(&p.name)) else {
        return Verdict::Refused(format!("program `{}` is not granted", p.name));
    };
    let both = p.access.intersect(&grant.access);
    if both == p.access {
        Verdict::Granted
    } else if both.is_default() {
        Verdict::Refused("the policy grants none of it".into())
    } else {
        Verdict::Narrowed(format!("only {}", both.describe()))
    }
}

/// What a declared program (with one declared pattern, or any arguments)
/// gets under a policy.
fn program_verdict(policy: &Policy, p: &ProgramRequest, list: Option<&[String]>) -> Verdict {
    let Some(grant) = policy
        .programs()
        .iter()
        .find(|g| same_program(policy, &p.name, &g.name))
    else {
        return Verdict::Refused(format!("program `{}` is not granted", p.name));
    };
    let ops: Vec<Operation> = p
        .operations
        .iter()
        .copied()
        .filter(|o| grant.operations.contains(o))
        .collect();
    if ops.is_empty() {
        return Verdict::Refused(format!(
            "program `{}` is not granted for {}",
            p.name,
            names(&p.operations)
        ));
    }
    let args = args_verdict(grant, list);
    let narrowed_ops = ops.len() < p.operations.len();
    match args {
        Verdict::Refused(why) => Verdict::Refused(why),
        Verdict::Granted if !narrowed_ops => Verdict::Granted,
        Verdict::Granted => Verdict::Narrowed(format!("only for {}", names(&ops))),
        Verdict::Narrowed(why) if narrowed_ops => {
            Verdict::Narrowed(format!("{why}; only for {}", names(&ops)))
        }
        narrowed => narrowed,
    }
}

fn args_verdict(grant: &ProgramGrant, list: Option<&[String]>) -> Verdict {
    let Some(granted) = &grant.args else {
        return Verdict::Granted;
    };
    let granted: Vec<Vec<String>> = granted.iter().map(|g| g.as_written()).collect();
    let shown = || {
        granted
            .iter()
            .map(|g| format!("`{}`", g.join(" ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(declared) = list else {
        return Verdict::Narrowed(format!("only arguments {}", shown()));
    };
    if granted.iter().any(|g| covers(g, declared)) {
        Verdict::Granted
    } else if granted.iter().any(|g| overlaps(g, declared)) {
        Verdict::Narrowed(format!("only arguments {}", shown()))
    } else {
        Verdict::Refused(format!("the policy grants only arguments {}", shown()))
    }
}

/// The text with control characters (terminal escapes, line breaks) shown
/// as `?`, so a manifest cannot forge table rows or policy lines.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn names(ops: &[Operation]) -> String {
    ops.iter()
        .map(|o| o.name())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn render(rows: &[Row], with_verdict: bool) -> String {
    let mut header = vec!["REQUEST", "PATTERN", "REASON"];
    if with_verdict {
        header.push("UNDER THIS POLICY");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = vec![
                printable(&r.request),
                printable(&r.pattern),
                printable(&r.reason),
            ];
            if let Some(v) = &r.verdict {
                c.push(v.to_string());
            }
            c
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&cells) {
        let last = row.len() - 1;
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                let _ = write!(out, "{c}");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(the manifest declares nothing: every call is denied)\n");
    }
    out
}

/// A policy (TOML) that grants exactly what the manifest declares, pinned
/// to the component's digest, with each request's reason, each pattern's
/// options and operand rule as comments, and a warning comment on
/// requests for catalogued code-running programs and variables.
pub fn grant_policy(component: &str, manifest: &Manifest, digest: &ComponentDigest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Policy for {component}, written by `wasmproc grant` from the plugin's manifest.\n\
         # It grants exactly what the plugin declares, to this component only (a\n\
         # component with another digest is refused, with what it asks for beyond this).\n\
         # Review it, and narrow or remove what this host should not allow.\n\
         require_manifest = true\n\
         component_digest = {}",
        toml_value(&digest.to_string())
    );
    let mut uses_paths = false;
    for p in &manifest.programs {
        out.push('\n');
        let _ = writeln!(out, "# {}", printable(&p.reason));
        if let Some(risk) = program_risk(&p.name) {
            let _ = writeln!(out, "# WARNING: {} can run code: {risk}", p.name);
        }
        for pattern in p.patterns.iter().flatten() {
            let _ = writeln!(out, "# {}", pattern_summary(pattern));
            uses_paths |= pattern.has_paths();
        }
        if p.args.is_none() {
            let _ = writeln!(out, "# any arguments: every option and every operand");
        }
        let _ = writeln!(out, "[[program]]\nname = {}", toml_value(&p.name));
        if let Some(args) = &p.args {
            let _ = writeln!(out, "args = {}", toml_value(args));
        }
        let ops: Vec<&str> = p.operations.iter().map(|o| o.name()).collect();
        let _ = writeln!(out, "operations = {}", toml_value(&ops));
        write_access(&mut out, &p.access);
    }
    if !manifest.variables.is_empty() {
        let _ = writeln!(out, "\n[env]\nallow = [");
        for v in &manifest.variables {
            let _ = writeln!(out, "    # {}", printable(&v.reason));
            if let Some(risk) = variable_risk(&v.name) {
                let _ = writeln!(out, "    # WARNING: {} can run code: {risk}", v.name);
            }
            if v.name.contains('*') {
                let names = inert_expansion(&v.name);
                let _ = writeln!(
                    out,
                    "    # expands only to the inert names: {}",
                    if names.is_empty() {
                        "(none)".to_string()
                    } else {
                        names.join(" ")
                    }
                );
            }
            let _ = writeln!(out, "    {},", toml_value(&v.name));
        }
        out.push_str("]\n");
    }
    if let Some(d) = &manifest.dirs {
        let _ = writeln!(
            out,
            "\n# The plugin runs programs in working directories: {}\n\
             # Review: which directories may it use? Relative roots are taken from this\n\
             # file's directory.\n\
             [dirs]\nroots = [\".\"]",
            printable(&d.reason)
        );
    } else if uses_paths {
        let _ = writeln!(
            out,
            "\n# Path operands ({{path}}) must lie inside these roots. Review: which\n\
             # directories may the plugin name? Relative roots are taken from this file's\n\
             # directory.\n\
             [dirs]\nroots = [\".\"]"
        );
    }
    out
}

/// The `fs` and `net` keys of a granted program, where it declares any.
fn write_access(out: &mut String, access: &crate::policy::ProgramAccess) {
    let paths = |l: &[std::path::PathBuf]| -> Vec<String> {
        l.iter().map(|p| p.display().to_string()).collect()
    };
    if !access.read.is_empty() {
        let _ = writeln!(out, "fs.read = {}", toml_value(&paths(&access.read)));
    }
    if !access.write.is_empty() {
        let _ = writeln!(out, "fs.write = {}", toml_value(&paths(&access.write)));
    }
    for (key, ports) in [("connect", &access.connect), ("bind", &access.bind)] {
        match ports {
            crate::policy::Ports::Any => {
                let _ = writeln!(out, "net.{key} = \"any\"");
            }
            crate::policy::Ports::List(l) if !l.is_empty() => {
                let _ = writeln!(out, "net.{key} = {}", toml_value(l));
            }
            crate::policy::Ports::List(_) => {}
        }
    }
}
