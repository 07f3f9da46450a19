//! Which of a catalogued program's attacks (see
//! [`ProgramEntry::attacks`](super::catalogue::ProgramEntry)) an argument
//! pattern still lets through, so that loading such a grant warns.
//!
//! An attack is open when the pattern admits it in place of a wildcard or a
//! named option's value (`--output=*` admits `--output=/x`, `**` admits dd's
//! `of=/x`), when the pattern names the attack option and leaves its value
//! free (`-c *`), or when the pattern names an abbreviation of it
//! (`--out=*`: GNU getopt_long and git take `--out` for `--output`).

use super::args::{ArgPattern, END_OF_OPTIONS, Element, is_option};
use super::catalogue::ProgramEntry;

/// An attack the pattern lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The attack as catalogued.
    pub attack: String,
    /// 1-based position in the pattern where it gets through.
    pub position: usize,
}

/// The option name of an argument: up to `=` for a long option.
fn option_name(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(name, _)| name)
}

/// A stand-in argument each element matches, for building lists that
/// match the pattern except at one place.
fn stand_in(e: &Element) -> Option<String> {
    match e {
        Element::Literal(l) => Some(l.clone()),
        Element::OptionValue(p) | Element::OptionPath(p) => Some(format!("{p}x")),
        Element::Operand | Element::Path => Some("x".into()),
        Element::Operands | Element::Paths => None,
    }
}

/// The attacks of `entry` that `pattern` lets through.
pub fn open_attacks(entry: &ProgramEntry, pattern: &ArgPattern) -> Vec<Leak> {
    let elements = pattern.elements();
    let base: Vec<String> = elements.iter().filter_map(stand_in).collect();
    let mut leaks = Vec::new();
    for attack in &entry.attacks {
        let mut after_end = false;
        for (i, e) in elements.iter().enumerate() {
            // Options after `--` are operands to the program.
            let skip = after_end && is_option(attack);
            let open = match e {
                Element::Literal(l) if l == END_OF_OPTIONS => {
                    after_end = true;
                    false
                }
                Element::Literal(l) => {
                    let named = l == attack || abbreviates(l, attack);
                    let next_free = matches!(
                        elements.get(i + 1),
                        Some(Element::Operand | Element::Operands)
                    );
                    is_option(l) && named && (next_free || abbreviates(l, attack))
                }
                Element::OptionValue(p) => {
                    let name = option_name(p);
                    option_name(attack) == name || abbreviates(name, attack)
                }
                Element::OptionPath(_) => false,
                Element::Operand | Element::Path => {
                    let mut list = base.clone();
                    list[i] = attack.clone();
                    pattern.check(&list, &|_| true).is_ok()
                }
                Element::Operands | Element::Paths => {
                    let mut list = base.clone();
                    list.push(attack.clone());
                    pattern.check(&list, &|_| true).is_ok()
                }
            };
            if open && !skip {
                leaks.push(Leak {
                    attack: attack.clone(),
                    position: i + 1,
                });
                break;
            }
        }
    }
    leaks
}

/// Whether the named long option `name` (`--out`) is a strict
/// abbreviation of the attack's long option (`--output=x`), which GNU
/// getopt_long and git accept.
fn abbreviates(name: &str, attack: &str) -> bool {
    let attack = option_name(attack);
    name.starts_with("--")
        && name.len() > 2
        && attack.starts_with("--")
        && attack.len() > name.len()
        && attack.starts_with(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::catalogue::program_entry;

    fn leaks(program: &str, p: &[&str]) -> Vec<String> {
        let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        let pattern = ArgPattern::parse(program, &p).unwrap();
        open_attacks(program_entry(program).unwrap(), &pattern)
            .into_iter()
            .map(|l| l.attack)
            .collect()
    }

    #[test]
    fn leaks_found_in_open_patterns_ugly() {
        // A named option with a free value, its abbreviation, a named
        // option followed by a wildcard, operands that act as options.
        assert!(leaks("git", &["log", "--output=*"]).contains(&"--output=/tmp/x".into()));
        assert!(leaks("git", &["log", "--out=*"]).contains(&"--output=/tmp/x".into()));
        assert!(leaks("git", &["-c", "*", "log"]).contains(&"-c".into()));
        assert_eq!(leaks("dd", &["**"]), ["of=/tmp/x"]);
        assert!(leaks("nice", &["**"]).contains(&"sh".into()));
        assert!(leaks("tee", &["*"]).contains(&"/etc/passwd".into()));
    }

    #[test]
    fn leaks_none_in_narrow_patterns_good() {
        assert!(leaks("git", &["log", "--oneline", "**"]).is_empty());
        assert!(leaks("git", &["log", "--format=*", "--", "**"]).is_empty());
        assert!(leaks("find", &["*", "-name", "*", "-print"]).is_empty());
    }
}
