//! What the targets draw from the fuzzer's bytes: words from small
//! vocabularies (so patterns and arguments meet often) or any string.

use arbitrary::{Arbitrary, Unstructured};
use wasmproc_host::wit::types::Command;

/// Pattern elements worth combining.
const PATTERN_WORDS: &[&str] = &[
    "log",
    "-n",
    "--oneline",
    "--format=*",
    "*",
    "**",
    "--",
    "-",
    "x",
    "-x",
    "+x",
    "a*b",
    "-n*",
    "--output=*",
    "",
];

/// Arguments worth trying against them.
const ARG_WORDS: &[&str] = &[
    "log",
    "-n",
    "--oneline",
    "--one",
    "--format=%h",
    "--format=",
    "--form=%h",
    "5",
    "-5",
    "-",
    "--",
    "+x",
    "x",
    "-x",
    "-xn",
    "a*b",
    "*",
    "**",
    "--output=/etc/passwd",
    "--output",
    "",
];

/// A word from `words`, or any short string.
fn word(u: &mut Unstructured<'_>, words: &[&str]) -> arbitrary::Result<String> {
    if u.ratio(7, 8)? {
        Ok(u.choose(words)?.to_string())
    } else {
        let s: String = u.arbitrary()?;
        Ok(s.chars().take(16).collect())
    }
}

/// Up to `max` items drawn by `f`.
fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'_>) -> arbitrary::Result<T>,
) -> arbitrary::Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| f(u)).collect()
}

/// Argument patterns and an argument list.
#[derive(Debug)]
pub struct PatternCase {
    /// One to three patterns.
    pub patterns: Vec<Vec<String>>,
    /// The arguments.
    pub args: Vec<String>,
}

impl<'a> Arbitrary<'a> for PatternCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(1..=3)?;
        let patterns = (0..n)
            .map(|_| list(u, 5, |u| word(u, PATTERN_WORDS)))
            .collect::<arbitrary::Result<_>>()?;
        let args = list(u, 6, |u| word(u, ARG_WORDS))?;
        Ok(Self { patterns, args })
    }
}

/// Program names worth asking for under the admission target's policy.
const PROGRAMS: &[&str] = &[
    "echo",
    "true",
    "/bin/echo",
    "/usr/bin/echo",
    "/bin/true",
    "sh",
    "ECHO",
    "echo ",
    "./echo",
    "../bin/echo",
    "/usr/bin/../bin/echo",
    "",
    "false",
];

/// Variable names worth asking for.
const VARIABLES: &[&str] = &[
    "LANG",
    "LC_ALL",
    "LC_",
    "lang",
    "LD_PRELOAD",
    "PATH",
    "LANG=C",
    "",
    "LC_X=1",
    "BASH_ENV",
];

/// Working directories worth asking for (`{root}` is the granted root).
const DIRS: &[&str] = &[
    "{root}",
    "{root}/sub",
    "{root}/..",
    "{root}/link-out",
    "/",
    "/tmp",
    ".",
    "..",
    "sub",
    "",
    "{root}/missing",
];

/// A WIT `command` record and the operation it is sent with.
#[derive(Debug)]
pub struct CommandCase {
    /// `start` rather than `run`.
    pub start: bool,
    /// The record; `{root}` in its `cwd` stands for the granted root.
    pub record: Command,
}

impl<'a> Arbitrary<'a> for CommandCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let start = u.arbitrary()?;
        let record = Command {
            program: word(u, PROGRAMS)?,
            args: list(u, 6, |u| word(u, ARG_WORDS))?,
            env: list(u, 3, |u| {
                Ok((word(u, VARIABLES)?, word(u, &["C", "", "x\0"])?))
            })?,
            cwd: if u.arbitrary()? {
                Some(word(u, DIRS)?)
            } else {
                None
            },
            stdin: u.arbitrary()?,
            timeout_ms: u.arbitrary()?,
        };
        Ok(Self { start, record })
    }
}
