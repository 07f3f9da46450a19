//! Comparing argument patterns as written (`*` one argument, a trailing
//! `**` the rest, anything else a literal): does one pattern allow every
//! list another allows, and do two patterns share any list?

/// A stand-in argument no literal can equal (literals never hold NUL).
const WILD: &str = "\0";

fn has_rest(p: &[String]) -> bool {
    p.last().is_some_and(|e| e == "**")
}

fn fixed(p: &[String]) -> &[String] {
    if has_rest(p) { &p[..p.len() - 1] } else { p }
}

/// Whether `args` matches the written pattern.
fn matches(pattern: &[String], args: &[String]) -> bool {
    let head = fixed(pattern);
    if args.len() < head.len() || (!has_rest(pattern) && args.len() != head.len()) {
        return false;
    }
    head.iter().zip(args).all(|(p, a)| p == "*" || p == a)
}

/// Whether every argument list `inner` allows is also allowed by `outer`.
///
/// `inner`'s wildcards are replaced by an argument no literal equals, and
/// its `**` by 0 to `outer.len() + 1` of them: `outer` matches all those
/// witnesses exactly when it matches every list of `inner`.
pub(crate) fn covers(outer: &[String], inner: &[String]) -> bool {
    let head: Vec<String> = fixed(inner)
        .iter()
        .map(|e| if e == "*" { WILD.into() } else { e.clone() })
        .collect();
    let extra = if has_rest(inner) { outer.len() + 1 } else { 0 };
    (0..=extra).all(|n| {
        let mut witness = head.clone();
        witness.extend(std::iter::repeat_n(WILD.to_string(), n));
        matches(outer, &witness)
    })
}

/// Whether some argument list is allowed by both patterns.
pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    let (fa, fb) = (fixed(a), fixed(b));
    let lengths_meet = match (has_rest(a), has_rest(b)) {
        (false, false) => fa.len() == fb.len(),
        (true, false) => fb.len() >= fa.len(),
        (false, true) => fa.len() >= fb.len(),
        (true, true) => true,
    };
    lengths_meet
        && fa
            .iter()
            .zip(fb)
            .all(|(x, y)| x == "*" || y == "*" || x == y)
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
            // `**` covers any fixed tail.
            ("log **", "log --oneline *", true, true),
            // A fixed pattern does not cover a `**` one, but they share lists.
            ("log *", "log **", false, true),
            // `*` covers a literal; a literal does not cover `*`.
            ("log *", "log -5", true, true),
            ("log -5", "log *", false, true),
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
