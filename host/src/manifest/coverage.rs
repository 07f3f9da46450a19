//! Comparing argument patterns as written (see [`crate::policy::ArgPattern`]
//! for the language): does one pattern allow every list another allows,
//! and do two patterns share any list? Path placeholders are compared as
//! sets of paths inside the roots: `{path}` covers only `{path}`.

use crate::policy::is_option;

/// One element of a written pattern, or one stand-in argument for a set of
/// arguments (a witness), with whether it stands after `--`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Operand { after: bool },
    Path { after: bool },
    OptionValue(String),
    OptionPath(String),
}

/// A written pattern: its fixed elements, and the class of its trailing
/// rest (`**` or `{paths}`), if any.
struct Shape {
    fixed: Vec<Token>,
    rest: Option<Token>,
}

fn shape(pattern: &[String]) -> Shape {
    let mut after = false;
    let mut fixed = Vec::new();
    let mut rest = None;
    for e in pattern {
        let token = match e.as_str() {
            "*" => Token::Operand { after },
            "{path}" => Token::Path { after },
            "**" => {
                rest = Some(Token::Operand { after });
                continue;
            }
            "{paths}" => {
                rest = Some(Token::Path { after });
                continue;
            }
            _ if e.starts_with('-') && e.ends_with("=*") => {
                Token::OptionValue(e[..e.len() - 1].to_string())
            }
            _ if e.starts_with('-') && e.ends_with("={path}") => {
                Token::OptionPath(e[..e.len() - "{path}".len()].to_string())
            }
            _ => {
                if e == "--" {
                    after = true;
                }
                Token::Literal(e.clone())
            }
        };
        fixed.push(token);
    }
    Shape { fixed, rest }
}

/// Whether every argument the witness stands for matches the element.
fn element_covers(element: &Token, witness: &Token) -> bool {
    use Token::*;
    match (element, witness) {
        (Literal(l), Literal(w)) => l == w,
        (Operand { after: true }, _) => true,
        (Operand { after: false }, Literal(w)) => !is_option(w),
        (Operand { after: false }, Operand { after } | Path { after }) => !after,
        (Path { after: e }, Path { after: w }) => *e || !*w,
        (OptionValue(p), Literal(w)) => w.starts_with(p.as_str()),
        (OptionValue(p), OptionValue(q) | OptionPath(q)) => q.starts_with(p.as_str()),
        (OptionPath(p), OptionPath(q)) => p == q,
        _ => false,
    }
}

/// Whether some argument matches both elements.
fn element_meets(a: &Token, b: &Token) -> bool {
    use Token::*;
    match (a, b) {
        (Literal(x), Literal(y)) => x == y,
        (Literal(l), other) | (other, Literal(l)) => element_covers(other, &Literal(l.clone())),
        (Operand { after: true }, _) | (_, Operand { after: true }) => true,
        (Operand { .. } | Path { .. }, Operand { .. } | Path { .. }) => true,
        (OptionValue(p) | OptionPath(p), OptionValue(q) | OptionPath(q)) => {
            p.starts_with(q.as_str()) || q.starts_with(p.as_str())
        }
        _ => false,
    }
}

/// Whether every argument list `inner` allows is also allowed by `outer`.
///
/// `inner`'s elements become witnesses (a wildcard stands for its whole
/// set), and its rest 0 to `outer.len() + 1` copies of its class: `outer`
/// covers `inner` exactly when it covers all those witness lists.
pub(crate) fn covers(outer: &[String], inner: &[String]) -> bool {
    let (outer, inner) = (shape(outer), shape(inner));
    let extra = if inner.rest.is_some() {
        outer.fixed.len() + 1
    } else {
        0
    };
    (0..=extra).all(|n| {
        let mut witness = inner.fixed.clone();
        witness.extend(inner.rest.iter().cloned().cycle().take(n));
        if witness.len() < outer.fixed.len()
            || (outer.rest.is_none() && witness.len() != outer.fixed.len())
        {
            return false;
        }
        witness.iter().enumerate().all(|(i, w)| {
            let element = outer.fixed.get(i).or(outer.rest.as_ref());
            element.is_some_and(|e| element_covers(e, w))
        })
    })
}

/// Whether some argument list is allowed by both patterns.
pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    let (a, b) = (shape(a), shape(b));
    let lengths_meet = match (&a.rest, &b.rest) {
        (None, None) => a.fixed.len() == b.fixed.len(),
        (Some(_), None) => b.fixed.len() >= a.fixed.len(),
        (None, Some(_)) => a.fixed.len() >= b.fixed.len(),
        (Some(_), Some(_)) => true,
    };
    let longest = a.fixed.len().max(b.fixed.len());
    lengths_meet
        && (0..longest).all(|i| {
            let x = a.fixed.get(i).or(a.rest.as_ref());
            let y = b.fixed.get(i).or(b.rest.as_ref());
            match (x, y) {
                (Some(x), Some(y)) => element_meets(x, y),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn manifest_coverage_table_good() {
        // (outer, inner, outer covers inner, they overlap)
        let cases = [
            // A pattern covers itself.
            ("log **", "log **", true, true),
            // `**` covers any tail of operands.
            ("log **", "log HEAD *", true, true),
            // A fixed pattern does not cover a `**` one, but they share lists.
            ("log *", "log **", false, true),
            // `*` covers an operand literal; a literal does not cover `*`.
            ("log *", "log HEAD", true, true),
            ("log HEAD", "log *", false, true),
            // `*` does not cover an option, and shares no list with one.
            ("log *", "log -5", false, false),
            ("log **", "log --oneline *", false, false),
            ("log --oneline **", "log --oneline *", true, true),
            // After `--`, `*` covers options too.
            ("log -- *", "log -- -5", true, true),
            // A named option with any value covers one with a fixed value.
            ("log --format=*", "log --format=%h", true, true),
            ("log --format=%h", "log --format=*", false, true),
            ("log --format=*", "log --form=*", false, false),
            // `{path}` is covered by `*` and `{path}`, and covers neither
            // `*` nor a literal.
            ("add *", "add {path}", true, true),
            ("add {path}", "add *", false, true),
            ("add {paths}", "add {path} {path}", true, true),
            // Different literals share nothing.
            ("status", "log", false, false),
            // Different fixed lengths share nothing.
            ("log * *", "log *", false, false),
            // Anything covers the empty list only if it allows no arguments.
            ("**", "", true, true),
            ("log", "", false, false),
        ];
        for (outer, inner, covered, overlap) in cases {
            assert_eq!(covers(&p(outer), &p(inner)), covered, "{outer} ⊇ {inner}");
            assert_eq!(overlaps(&p(outer), &p(inner)), overlap, "{outer} ∩ {inner}");
        }
    }
}
