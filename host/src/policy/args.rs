//! Argument patterns: which argument lists a program grant allows.
//!
//! A pattern is a list of elements matched by position: a literal matches
//! itself, `*` matches any one argument, and `**` (last only) matches the
//! rest, including nothing.

use crate::error::PolicyError;
use std::fmt;

/// One element of an argument pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    Literal(String),
    AnyOne,
    Rest,
}

/// A parsed argument pattern, e.g. `log --oneline **`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgPattern {
    elements: Vec<Element>,
}

/// Where an argument list first departs from a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Argument `index` (1-based) differs from the pattern.
    Argument { index: usize },
    /// The list is shorter than the pattern.
    TooFew { expected: usize },
    /// The list has arguments past the end of the pattern.
    TooMany { index: usize },
}

impl ArgPattern {
    /// Parses a pattern; `**` anywhere but last is refused.
    pub fn parse(program: &str, elements: &[String]) -> Result<Self, PolicyError> {
        let mut parsed = Vec::with_capacity(elements.len());
        for (i, e) in elements.iter().enumerate() {
            let element = match e.as_str() {
                "*" => Element::AnyOne,
                "**" if i + 1 == elements.len() => Element::Rest,
                "**" => {
                    return Err(PolicyError::entry(
                        format!("args {elements:?} of program `{program}`"),
                        "`**` may only be the last element",
                    ));
                }
                _ if e.contains('\0') => {
                    return Err(PolicyError::entry(
                        format!("args {elements:?} of program `{program}`"),
                        "an argument contains a NUL byte",
                    ));
                }
                _ => Element::Literal(e.clone()),
            };
            parsed.push(element);
        }
        Ok(Self { elements: parsed })
    }

    /// Checks an argument list against the pattern; on a mismatch, says
    /// where. Returns how many leading arguments matched in the error case
    /// through the index, so callers can pick the closest pattern.
    pub(crate) fn check(&self, args: &[String]) -> Result<(), Mismatch> {
        for (i, element) in self.elements.iter().enumerate() {
            match element {
                Element::Rest => return Ok(()),
                Element::AnyOne | Element::Literal(_) if i >= args.len() => {
                    return Err(Mismatch::TooFew {
                        expected: self.elements.len(),
                    });
                }
                Element::AnyOne => {}
                Element::Literal(l) if *l == args[i] => {}
                Element::Literal(_) => return Err(Mismatch::Argument { index: i + 1 }),
            }
        }
        if args.len() > self.elements.len() {
            return Err(Mismatch::TooMany {
                index: self.elements.len() + 1,
            });
        }
        Ok(())
    }
}

impl ArgPattern {
    /// The pattern as written: literals, `*` and a trailing `**` (a literal
    /// is never `*` or `**`, so this is lossless).
    pub fn as_written(&self) -> Vec<String> {
        self.elements
            .iter()
            .map(|e| match e {
                Element::Literal(s) => s.clone(),
                Element::AnyOne => "*".into(),
                Element::Rest => "**".into(),
            })
            .collect()
    }
}

impl fmt::Display for ArgPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in &self.elements {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match e {
                Element::Literal(s) => f.write_str(s)?,
                Element::AnyOne => f.write_str("*")?,
                Element::Rest => f.write_str("**")?,
            }
        }
        Ok(())
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

    /// One table row: pattern, arguments, expected outcome.
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Result<(), Mismatch>,
    );

    #[test]
    fn args_pattern_table_good() {
        let cases: &[Case] = &[
            // A literal pattern matches exactly that list.
            (&["status"], &["status"], Ok(())),
            // `*` matches any single argument.
            (&["log", "*"], &["log", "-5"], Ok(())),
            // `*` needs an argument to be there.
            (
                &["log", "*"],
                &["log"],
                Err(Mismatch::TooFew { expected: 2 }),
            ),
            // Trailing `**` matches nothing at all.
            (&["log", "**"], &["log"], Ok(())),
            // Trailing `**` matches any number of arguments.
            (&["log", "**"], &["log", "a", "b", "c"], Ok(())),
            // A literal mismatch names its 1-based position.
            (
                &["log", "--oneline"],
                &["log", "--force"],
                Err(Mismatch::Argument { index: 2 }),
            ),
            // Extra arguments past a pattern without `**` are refused.
            (
                &["status"],
                &["status", "-s"],
                Err(Mismatch::TooMany { index: 2 }),
            ),
            // The empty pattern allows only the empty list.
            (&[], &[], Ok(())),
            (&[], &["x"], Err(Mismatch::TooMany { index: 1 })),
        ];
        for (p, a, expected) in cases {
            assert_eq!(
                pattern(p).check(&args(a)),
                *expected,
                "pattern {p:?} args {a:?}"
            );
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
    }
}
