//! Argument patterns: which argument lists a program grant allows.
//!
//! A pattern is a list of elements matched by position. Wildcards match
//! **operands only**: an argument that starts with `-` or `+` is an option
//! (`-1`, a lone `-`, `-abc`, `-ofile`, `--out` are all options), and an
//! option is allowed only where the pattern names it.
//!
//! | element | matches |
//! |---|---|
//! | `log`, `--oneline`, `-n`, `-` | exactly that argument |
//! | `--format=*` | that option with any attached value |
//! | `--output={path}` | that option with a path inside the granted roots |
//! | `*` | one operand |
//! | `**` (last only) | any number of operands |
//! | `{path}` | one operand naming a path inside the granted roots |
//! | `{paths}` (last only) | any number of such operands |
//! | `--` | exactly `--`; after it wildcards match any argument |
//!
//! A path operand is resolved by the caller (see
//! [`Policy::check`](super::Policy::check)); the matcher only asks it.

use crate::error::PolicyError;
use std::fmt;

/// The placeholder for one path operand.
pub const PATH: &str = "{path}";
/// The placeholder for any number of path operands (last only).
pub const PATHS: &str = "{paths}";
/// The end of options.
pub const END_OF_OPTIONS: &str = "--";

/// One element of an argument pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Element {
    /// Exactly this argument.
    Literal(String),
    /// A named option with any attached value: the prefix up to and with `=`.
    OptionValue(String),
    /// A named option whose value is a confined path: the prefix with `=`.
    OptionPath(String),
    /// One operand (`*`).
    Operand,
    /// Any number of operands (`**`, last).
    Operands,
    /// One confined path operand (`{path}`).
    Path,
    /// Any number of confined path operands (`{paths}`, last).
    Paths,
}

/// A parsed argument pattern, e.g. `log --oneline -n *`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgPattern {
    elements: Vec<Element>,
}

/// Where an argument list first departs from a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Argument `index` (1-based) differs from the pattern.
    Argument { index: usize },
    /// Argument `index` is an option where the pattern has a wildcard,
    /// which matches operands only.
    Option { index: usize },
    /// Argument `index` is a path outside the granted roots.
    Path { index: usize },
    /// The list is shorter than the pattern.
    TooFew { expected: usize },
    /// The list has arguments past the end of the pattern.
    TooMany { index: usize },
}

impl Mismatch {
    /// How far the list matched (for picking the closest pattern).
    pub(crate) fn depth(&self, args: usize) -> usize {
        match *self {
            Self::Argument { index }
            | Self::Option { index }
            | Self::Path { index }
            | Self::TooMany { index } => index,
            Self::TooFew { .. } => args + 1,
        }
    }
}

/// Whether `arg` would be read as an option rather than an operand by a
/// program that parses options (getopt, git, find; vi, less and more read
/// `+cmd` as a command).
pub fn is_option(arg: &str) -> bool {
    arg.starts_with('-') || arg.starts_with('+')
}

impl ArgPattern {
    /// Parses a pattern. Refused: `**` or `{paths}` anywhere but last,
    /// `{path}` inside an element other than `-name={path}`, a NUL byte.
    /// Any other element is a literal, also when it holds a `*` (an awk
    /// program, `count(*)`): only `-name=*` makes a `*` a wildcard.
    pub fn parse(program: &str, elements: &[String]) -> Result<Self, PolicyError> {
        let bad = |why: &str| {
            PolicyError::entry(format!("args {elements:?} of program `{program}`"), why)
        };
        let mut parsed = Vec::with_capacity(elements.len());
        for (i, e) in elements.iter().enumerate() {
            let last = i + 1 == elements.len();
            if e.contains('\0') {
                return Err(bad("an argument contains a NUL byte"));
            }
            let element = match e.as_str() {
                "*" => Element::Operand,
                "**" if last => Element::Operands,
                PATH => Element::Path,
                PATHS if last => Element::Paths,
                "**" | PATHS => return Err(bad(&format!("`{e}` may only be the last element"))),
                _ => match named_option_value(e) {
                    Some((prefix, "*")) => Element::OptionValue(prefix.to_string()),
                    Some((prefix, PATH)) => Element::OptionPath(prefix.to_string()),
                    _ if e.contains(PATH) || e.contains(PATHS) => {
                        return Err(bad(&format!(
                            "`{e}`: `{{path}}` is a placeholder only as a whole element or as \
                             the value of a named option (`--name={{path}}`)"
                        )));
                    }
                    _ => Element::Literal(e.clone()),
                },
            };
            parsed.push(element);
        }
        Ok(Self { elements: parsed })
    }

    /// The elements, in order.
    pub(crate) fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// Whether the pattern has a path placeholder, so a check needs the
    /// call's working directory.
    pub fn has_paths(&self) -> bool {
        self.elements
            .iter()
            .any(|e| matches!(e, Element::Path | Element::Paths | Element::OptionPath(_)))
    }

    /// Checks an argument list against the pattern; `path_ok` says whether
    /// a path operand lies inside the granted roots. On a mismatch, says
    /// where.
    pub(crate) fn check(
        &self,
        args: &[String],
        path_ok: &dyn Fn(&str) -> bool,
    ) -> Result<(), Mismatch> {
        let mut operands_only = true;
        for (i, element) in self.elements.iter().enumerate() {
            let operand = |arg: &str, index: usize| {
                if operands_only && is_option(arg) {
                    Err(Mismatch::Option { index })
                } else {
                    Ok(())
                }
            };
            let path = |arg: &str, index: usize| {
                operand(arg, index)?;
                if path_ok(arg) {
                    Ok(())
                } else {
                    Err(Mismatch::Path { index })
                }
            };
            match element {
                Element::Operands => {
                    for (j, arg) in args.iter().enumerate().skip(i) {
                        operand(arg, j + 1)?;
                    }
                    return Ok(());
                }
                Element::Paths => {
                    for (j, arg) in args.iter().enumerate().skip(i) {
                        path(arg, j + 1)?;
                    }
                    return Ok(());
                }
                _ if i >= args.len() => {
                    return Err(Mismatch::TooFew {
                        expected: self.elements.len(),
                    });
                }
                Element::Operand => operand(&args[i], i + 1)?,
                Element::Path => path(&args[i], i + 1)?,
                Element::Literal(l) if *l == args[i] => {
                    if l == END_OF_OPTIONS {
                        operands_only = false;
                    }
                }
                Element::OptionValue(prefix) if args[i].starts_with(prefix.as_str()) => {}
                Element::OptionPath(prefix) => match args[i].strip_prefix(prefix.as_str()) {
                    Some(value) if path_ok(value) => {}
                    Some(_) => return Err(Mismatch::Path { index: i + 1 }),
                    None => return Err(Mismatch::Argument { index: i + 1 }),
                },
                Element::Literal(_) | Element::OptionValue(_) => {
                    return Err(Mismatch::Argument { index: i + 1 });
                }
            }
        }
        if args.len() > self.elements.len() {
            return Err(Mismatch::TooMany {
                index: self.elements.len() + 1,
            });
        }
        Ok(())
    }

    /// Whether an argument list matches; `path_ok` says whether a path
    /// operand lies inside the granted roots.
    pub fn allows(&self, args: &[String], path_ok: &dyn Fn(&str) -> bool) -> bool {
        self.check(args, path_ok).is_ok()
    }

    /// The options the pattern names, as written: literals that start
    /// with `-` or `+` (but not `--` itself), `--name=*`, `--name={path}`.
    pub fn named_options(&self) -> Vec<String> {
        self.elements
            .iter()
            .filter_map(|e| match e {
                Element::Literal(l) if is_option(l) && l != END_OF_OPTIONS => Some(l.clone()),
                Element::OptionValue(p) => Some(format!("{p}*")),
                Element::OptionPath(p) => Some(format!("{p}{PATH}")),
                _ => None,
            })
            .collect()
    }

    /// The operand rules of the pattern in words, e.g. `2 operands, then
    /// after --: any arguments inside the roots`.
    pub fn operand_rule(&self) -> String {
        let mut parts = Vec::new();
        let mut after = false;
        for e in &self.elements {
            let (one, many) = if after {
                ("argument", "arguments")
            } else {
                ("operand", "operands")
            };
            match e {
                Element::Literal(l) if l == END_OF_OPTIONS => {
                    after = true;
                    parts.push("`--`".to_string());
                }
                Element::Operand => parts.push(format!("one {one}")),
                Element::Operands => parts.push(format!("any {many}")),
                Element::Path => parts.push(format!("one {one} that is a path inside the roots")),
                Element::Paths => parts.push(format!("any {many} that are paths inside the roots")),
                _ => {}
            }
        }
        if parts.is_empty() {
            "no operands".into()
        } else {
            parts.join(", then ")
        }
    }

    /// The pattern as written (lossless).
    pub fn as_written(&self) -> Vec<String> {
        self.elements.iter().map(written).collect()
    }
}

/// `--name=VALUE` split into `("--name=", "VALUE")`, for an element that
/// starts with `-` and holds `=` after a name.
fn named_option_value(e: &str) -> Option<(&str, &str)> {
    if !e.starts_with('-') || e == END_OF_OPTIONS {
        return None;
    }
    let eq = e.find('=')?;
    let name = e[..eq].trim_start_matches('-');
    if name.is_empty() || name.contains('*') {
        return None;
    }
    Some((&e[..=eq], &e[eq + 1..]))
}

fn written(e: &Element) -> String {
    match e {
        Element::Literal(s) => s.clone(),
        Element::OptionValue(p) => format!("{p}*"),
        Element::OptionPath(p) => format!("{p}{PATH}"),
        Element::Operand => "*".into(),
        Element::Operands => "**".into(),
        Element::Path => PATH.into(),
        Element::Paths => PATHS.into(),
    }
}

impl fmt::Display for ArgPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_written().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &[&str]) -> ArgPattern {
        let v: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        ArgPattern::parse("git", &v).unwrap()
    }
    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }
    /// Paths under `in/` count as inside the roots.
    fn inside(p: &str) -> bool {
        p.starts_with("in/")
    }

    /// One table row: pattern, arguments, expected outcome.
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Result<(), Mismatch>,
    );

    #[test]
    fn args_pattern_table_good() {
        use Mismatch::*;
        let cases: &[Case] = &[
            // A literal pattern matches exactly that list.
            (&["status"], &["status"], Ok(())),
            // `*` matches any single operand.
            (&["log", "*"], &["log", "HEAD"], Ok(())),
            (&["log", "*"], &["log", ""], Ok(())),
            // `*` needs an argument to be there.
            (&["log", "*"], &["log"], Err(TooFew { expected: 2 })),
            // Trailing `**` matches nothing, or any number of operands.
            (&["log", "**"], &["log"], Ok(())),
            (&["log", "**"], &["log", "a", "b", "c"], Ok(())),
            // A literal mismatch names its 1-based position.
            (
                &["log", "--oneline"],
                &["log", "--force"],
                Err(Argument { index: 2 }),
            ),
            // Extra arguments past a pattern without `**` are refused.
            (&["status"], &["status", "-s"], Err(TooMany { index: 2 })),
            // The empty pattern allows only the empty list.
            (&[], &[], Ok(())),
            (&[], &["x"], Err(TooMany { index: 1 })),
            // A named option with any value; not its abbreviation.
            (&["log", "--format=*"], &["log", "--format=%h"], Ok(())),
            (
                &["log", "--format=*"],
                &["log", "--form=%h"],
                Err(Argument { index: 2 }),
            ),
            (
                &["log", "--oneline"],
                &["log", "--one"],
                Err(Argument { index: 2 }),
            ),
            // A named option's separate value is an operand.
            (&["log", "-n", "*"], &["log", "-n", "5"], Ok(())),
            // After `--`, wildcards match arguments that look like options.
            (&["add", "--", "**"], &["add", "--", "-x", "--y"], Ok(())),
            (&["add", "--", "*"], &["add", "--", "-"], Ok(())),
            // Path placeholders ask the caller.
            (&["add", "{path}"], &["add", "in/a"], Ok(())),
            (
                &["add", "{path}"],
                &["add", "out/a"],
                Err(Path { index: 2 }),
            ),
            (
                &["add", "{path}"],
                &["add", "-in/a"],
                Err(Option { index: 2 }),
            ),
            (
                &["add", "--", "{path}"],
                &["add", "--", "-x"],
                Err(Path { index: 3 }),
            ),
            (&["add", "{paths}"], &["add", "in/a", "in/b"], Ok(())),
            (
                &["add", "{paths}"],
                &["add", "in/a", "x"],
                Err(Path { index: 3 }),
            ),
            (&["x", "--out={path}"], &["x", "--out=in/f"], Ok(())),
            (
                &["x", "--out={path}"],
                &["x", "--out=/etc/f"],
                Err(Path { index: 2 }),
            ),
        ];
        for (p, a, expected) in cases {
            assert_eq!(
                pattern(p).check(&args(a), &inside),
                *expected,
                "pattern {p:?} args {a:?}"
            );
        }
    }

    #[test]
    fn args_wildcard_option_forms_ugly() {
        // Every form a program reads as an option is refused by `*` and
        // `**`: long, long with value, abbreviated, short, bundled, with
        // an attached value, a number, a lone `-`, `--` itself, `+cmd`.
        let forms = [
            "--output=/tmp/x",
            "--output",
            "--out=/tmp/x",
            "-c",
            "-cfoo=bar",
            "-abc",
            "-o/tmp/x",
            "-1",
            "-",
            "--",
            "-delete",
            "-exec",
            "+!id",
            "+x",
        ];
        for form in forms {
            for p in [&["log", "*"][..], &["log", "**"], &["log", "{path}"]] {
                let got = pattern(p).check(&args(&["log", form]), &|_| true);
                assert_eq!(got, Err(Mismatch::Option { index: 2 }), "{p:?} {form}");
            }
            // Options after operands (as git and GNU getopt permute) too.
            let got = pattern(&["log", "**"]).check(&args(&["log", "a", form]), &|_| true);
            assert_eq!(got, Err(Mismatch::Option { index: 3 }), "{form}");
        }
    }

    #[test]
    fn args_pattern_parse_bad() {
        // `**` in the middle is refused at load, quoting the entry.
        let err = ArgPattern::parse("git", &args(&["**", "x"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`**` may only be the last element"),
            "{err}"
        );
        assert!(err.to_string().contains("\"**\", \"x\""), "{err}");
        for bad in [&["{paths}", "x"][..], &["pre{path}"], &["x", "{path}/a"]] {
            assert!(ArgPattern::parse("git", &args(bad)).is_err(), "{bad:?}");
        }
        // A `*` inside any other element is literal: `-n*` is not a
        // wildcard, and matches only itself.
        let p = pattern(&["-n*", "*.txt"]);
        assert!(p.allows(&args(&["-n*", "*.txt"]), &|_| true));
        assert!(!p.allows(&args(&["-n5", "a.txt"]), &|_| true));
    }

    #[test]
    fn args_pattern_reports_options_and_operands_good() {
        let p = pattern(&["log", "--oneline", "--format=*", "-n", "*", "--", "{paths}"]);
        assert_eq!(p.named_options(), ["--oneline", "--format=*", "-n"]);
        assert_eq!(
            p.operand_rule(),
            "one operand, then `--`, then any arguments that are paths inside the roots"
        );
        assert_eq!(p.to_string(), "log --oneline --format=* -n * -- {paths}");
    }
}
