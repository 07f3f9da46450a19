//! The argument-pattern language as a specification: short, obviously
//! right, and slow where it does not matter. The host's matcher is checked
//! against it.
//!
//! The grant language (README, "The grant language"):
//! - a literal matches exactly itself (no abbreviation, no bundling);
//! - `-…=*` (starts with `-`, ends with `=*`) matches that option with an
//!   attached value: an argument that starts with the part before `*`;
//! - `*` matches one operand: an argument that starts with neither `-` nor
//!   `+`; `**` (last only) zero or more operands;
//! - `--` matches exactly `--`; after it, `*` and `**` match any argument;
//! - any other `*` inside an element is a literal (`a*b`, `-n*`), and `**`
//!   not last is a load error.
//!
//! The path placeholders (`{path}`, `{paths}`) depend on the file system
//! and the granted roots; they are not modelled here.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// Exactly this argument.
    Literal(String),
    /// An option with an attached value: arguments starting with this
    /// prefix (which ends in `=`).
    OptionValue(String),
    /// One argument (an operand, in the option-aware form).
    One,
    /// The rest (operands, in the option-aware form).
    Rest,
    /// Exactly `--`, after which wildcards match anything.
    EndOfOptions,
}

/// Parses a pattern; `None` when loading it must fail.
pub fn parse(elements: &[String]) -> Option<Vec<Element>> {
    let last = elements.len().saturating_sub(1);
    elements
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.contains('\0') {
                return None;
            }
            Some(match e.as_str() {
                "*" => Element::One,
                "**" if i == last => Element::Rest,
                "**" => return None,
                "--" => Element::EndOfOptions,
                _ if e.starts_with('-') && e.ends_with("=*") && e.matches('*').count() == 1 => {
                    Element::OptionValue(e[..e.len() - 1].to_string())
                }
                _ => Element::Literal(e.clone()),
            })
        })
        .collect()
}

/// Whether a wildcard may take `arg` (after `--` anything goes).
fn operand(arg: &str, after_double_dash: bool) -> bool {
    after_double_dash || !(arg.starts_with('-') || arg.starts_with('+'))
}

/// Whether `args` matches `pattern`.
pub fn matches(pattern: &[Element], args: &[String]) -> bool {
    let mut after = false;
    let mut i = 0;
    for element in pattern {
        match element {
            Element::Rest => return args[i..].iter().all(|a| operand(a, after)),
            _ if i >= args.len() => return false,
            Element::Literal(l) if *l == args[i] => {}
            Element::EndOfOptions if args[i] == "--" => after = true,
            Element::OptionValue(prefix) if args[i].starts_with(prefix.as_str()) => {}
            Element::One if operand(&args[i], after) => {}
            _ => return false,
        }
        i += 1;
    }
    i == args.len()
}

/// Whether an argument list is a case the specification leaves open, so
/// the host may decide either way: an option-value element given no value
/// at all (`--format=`).
pub fn unspecified(pattern: &[Element], args: &[String]) -> bool {
    pattern.iter().any(|e| match e {
        Element::OptionValue(prefix) => args.iter().any(|a| a == prefix),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(elements: &[&str]) -> Vec<Element> {
        parse(&elements.iter().map(|e| e.to_string()).collect::<Vec<_>>()).expect("parses")
    }

    fn a(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn reference_positional_good() {
        // Literals, one wildcard, the rest.
        assert!(matches(&p(&["log", "*"]), &a(&["log", "x"])));
        assert!(!matches(&p(&["log", "*"]), &a(&["log"])));
        assert!(!matches(&p(&["log", "*"]), &a(&["log", "x", "y"])));
        assert!(matches(&p(&["log", "**"]), &a(&["log"])));
        assert!(matches(&p(&["log", "**"]), &a(&["log", "a", "b"])));
        assert!(matches(&p(&[]), &a(&[])));
        assert!(!matches(&p(&[]), &a(&["x"])));
        assert!(parse(&a(&["**", "x"])).is_none());
    }

    #[test]
    fn reference_option_aware_ugly() {
        assert!(!matches(&p(&["log", "*"]), &a(&["log", "--output=/etc/x"])));
        assert!(!matches(&p(&["log", "*"]), &a(&["log", "-1"])));
        assert!(!matches(&p(&["log", "*"]), &a(&["log", "+x"])));
        assert!(!matches(&p(&["log", "**"]), &a(&["log", "a", "-b"])));
        assert!(matches(
            &p(&["log", "--format=*"]),
            &a(&["log", "--format=%h"])
        ));
        assert!(!matches(
            &p(&["log", "--format=*"]),
            &a(&["log", "--form=%h"])
        ));
        assert!(matches(
            &p(&["add", "--", "**"]),
            &a(&["add", "--", "-f", "x"])
        ));
        assert!(!matches(&p(&["add", "**"]), &a(&["add", "--", "x"])));
        assert!(!matches(&p(&["--oneline"]), &a(&["--one"])));
        // A `*` inside another element is a literal.
        assert!(matches(&p(&["-n*"]), &a(&["-n*"])));
        assert!(!matches(&p(&["*.txt"]), &a(&["a.txt"])));
    }
}
