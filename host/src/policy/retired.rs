//! Keys a policy no longer reads, each refused with the line as written
//! and what to write instead:
//!
//! - the `[limits]` times once written as integer milliseconds under a
//!   `_ms` name (`kill_grace_ms = 2000`), now written with a unit under the
//!   name without it (`kill_grace = "2s"`). These names are not listed:
//!   every time of [`Limits::times`] has one, its key followed by `_ms`;
//! - the tables that moved to the configuration of what they belong to
//!   ([`MOVED`]).

use crate::policy::limits::Limits;
use serde::de::DeserializeOwned;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

/// A retired `*_ms` key of `[limits]`, where the document has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}: `{written}`: durations are written with a unit now: use `{key} = \"{value}\"`"
)]
pub struct RetiredKey {
    /// The line of the key, from 1.
    pub line: usize,
    /// That line as written (without surrounding whitespace).
    pub written: String,
    /// The key that replaced it.
    pub key: &'static str,
    /// The value to give that key: the milliseconds written, with a unit
    /// (a string that already is a duration, that duration; anything else,
    /// the key's default).
    pub value: String,
}

/// Deserializes `text`, a TOML document whose policy tables sit below the
/// keys `policy_at` (none in a policy file, `["policy"]` in the `serve`
/// configuration). Where it does not deserialize and its `[limits]` use a
/// retired key, the error is about that key.
pub fn parse_toml<T: DeserializeOwned>(
    text: &str,
    policy_at: &[&str],
) -> Result<T, toml::de::Error> {
    toml::from_str(text).map_err(|error| {
        if let Some(retired) = RetiredKey::find(text, policy_at) {
            serde::de::Error::custom(retired)
        } else if let Some(moved) = MovedTable::find(text, policy_at) {
            serde::de::Error::custom(moved)
        } else {
            error
        }
    })
}

/// The tables a policy no longer holds, each with where it went.
pub const MOVED: &[(&str, &str)] = &[(
    "daemons",
    "a guest's access to daemons is granted where the daemons are declared now: \
     in the plugin's `[[plugin]]` entry of the `wasmproc serve` configuration, \
     `daemons = { observe = [\"web\"], control = [\"worker\"] }`",
)];

/// A table of [`MOVED`] in a policy, where the document has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{written}`: {moved}")]
pub struct MovedTable {
    /// The line of the table's key, from 1.
    pub line: usize,
    /// That line as written (without surrounding whitespace).
    pub written: String,
    /// Where it went.
    pub moved: &'static str,
}

impl MovedTable {
    /// The first moved table of the policy below `policy_at` in `text`.
    pub fn find(text: &str, policy_at: &[&str]) -> Option<Self> {
        let document = DeTable::parse(text).ok()?;
        let mut table = document.get_ref();
        for name in policy_at {
            table = table.get(*name)?.get_ref().as_table()?;
        }
        let (span, moved) = table
            .iter()
            .filter_map(|(written, _)| {
                let &(_, moved) = MOVED.iter().find(|(name, _)| *name == written.get_ref())?;
                Some((written.span(), moved))
            })
            .min_by_key(|(span, _)| span.start)?;
        let (line, written) = line_at(text, span.start)?;
        Some(Self {
            line,
            written,
            moved,
        })
    }
}

/// The line (from 1) of byte `offset` of `text`, and that line as written
/// (without surrounding whitespace).
fn line_at(text: &str, offset: usize) -> Option<(usize, String)> {
    let line = text.get(..offset)?.matches('\n').count();
    let written = text.lines().nth(line).unwrap_or_default().trim();
    Some((line + 1, written.to_string()))
}

impl RetiredKey {
    /// The first retired key of the `[limits]` table of the policy below
    /// `policy_at` in `text` (`None` where there is none, or where `text`
    /// is not TOML).
    pub fn find(text: &str, policy_at: &[&str]) -> Option<Self> {
        let document = DeTable::parse(text).ok()?;
        let mut table = document.get_ref();
        for name in policy_at.iter().chain(&["limits"]) {
            table = table.get(*name)?.get_ref().as_table()?;
        }
        let defaults = Limits::default().times();
        let (span, key, default, value) = table
            .iter()
            .filter_map(|(written, value)| {
                let name = written.get_ref().strip_suffix("_ms")?;
                let &(key, default) = defaults.iter().find(|(key, _)| *key == name)?;
                Some((written.span(), key, default, value.get_ref()))
            })
            .min_by_key(|(span, ..)| span.start)?;
        let (line, written) = line_at(text, span.start)?;
        let value = replacement(value).unwrap_or(default);
        Some(Self {
            line,
            written,
            key,
            value: humantime::format_duration(value).to_string(),
        })
    }
}

/// What a retired key's value becomes with a unit: milliseconds written as
/// an integer, or a string that already is a duration.
fn replacement(value: &DeValue<'_>) -> Option<Duration> {
    match value {
        DeValue::Integer(n) => u64::from_str_radix(n.as_str(), n.radix())
            .ok()
            .map(Duration::from_millis),
        DeValue::String(s) => humantime::parse_duration(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySpec;

    #[test]
    fn retired_millis_keys_refused_bad() {
        // Each old key is refused when the policy loads, with its line as
        // written and the key (and value) to write instead.
        let cases = [
            (
                "default_run_timeout_ms = 30000",
                "default_run_timeout = \"30s\"",
            ),
            ("max_timeout_ms = 300000", "max_timeout = \"5m\""),
            ("max_call_wait_ms = 90000", "max_call_wait = \"1m 30s\""),
            ("kill_grace_ms = 500", "kill_grace = \"500ms\""),
            ("guest_time_ms = 1000", "guest_time = \"1s\""),
        ];
        for (old, new) in cases {
            let text = format!("[env]\nallow = [\"LANG\"]\n\n[limits]\n  {old}  \nmax_args = 8\n");
            let err = PolicySpec::parse(&text).expect_err(old).to_string();
            let want =
                format!("line 5: `{old}`: durations are written with a unit now: use `{new}`");
            assert_eq!(err.trim_end(), want);
        }
        assert_eq!(
            Limits::default().times().len(),
            cases.len(),
            "one case per time"
        );
    }

    #[test]
    fn retired_millis_keys_in_serve_config_bad() {
        // Below `policy_at` (the serve configuration's `[policy]`), the same.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            #[serde(rename = "policy")]
            _policy: PolicySpec,
        }
        let text = "[policy.limits]\nkill_grace_ms = 2000\n";
        let err = parse_toml::<Config>(text, &["policy"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err.trim_end(),
            "line 2: `kill_grace_ms = 2000`: durations are written with a unit now: use `kill_grace = \"2s\"`"
        );
        let found = RetiredKey::find(text, &[]);
        assert_eq!(found, None, "a policy file has no [policy] table");
    }

    #[test]
    fn moved_daemons_table_refused_bad() {
        // However the table is written, in a policy file or below the serve
        // configuration's `[policy]`: the line, and where it went.
        let cases = [
            (
                "[env]\nallow = []\n\n[daemons]\nobserve = [\"web\"]\n",
                &[][..],
                4,
                "[daemons]",
            ),
            (
                "daemons = { control = [\"w\"] }\n",
                &[][..],
                1,
                "daemons = { control = [\"w\"] }",
            ),
            (
                "[policy.daemons]\nobserve = []\n",
                &["policy"][..],
                1,
                "[policy.daemons]",
            ),
        ];
        for (text, policy_at, line, written) in cases {
            let err = if policy_at.is_empty() {
                PolicySpec::parse(text).unwrap_err().to_string()
            } else {
                #[derive(Debug, serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Config {
                    #[serde(rename = "policy")]
                    _policy: PolicySpec,
                }
                parse_toml::<Config>(text, policy_at)
                    .unwrap_err()
                    .to_string()
            };
            let want = format!("line {line}: `{written}`: {}", MOVED[0].1);
            assert_eq!(err.trim_end(), want, "{text}");
        }
        assert_eq!(
            MovedTable::find("[stdio]\ndaemons = 1\n", &[]),
            None,
            "not at the top"
        );
    }

    #[test]
    fn retired_millis_keys_ugly() {
        // Every way TOML writes a key and a value; the first retired key by
        // position; keys outside [limits] and other errors left alone.
        let find = |text: &str| {
            RetiredKey::find(text, &[]).map(|r| format!("{}: {} = {}", r.line, r.key, r.value))
        };
        let cases = [
            (
                "limits = { kill_grace_ms = 1_500 }",
                Some("1: kill_grace = 1s 500ms"),
            ),
            ("limits.guest_time_ms = 0x10", Some("1: guest_time = 16ms")),
            (
                "[limits]\n\"max_timeout_ms\" = \"2s\"",
                Some("2: max_timeout = 2s"),
            ),
            ("[limits]\nkill_grace_ms = -5", Some("2: kill_grace = 2s")),
            ("[limits]\nkill_grace_ms = [1]", Some("2: kill_grace = 2s")),
            (
                "[limits]\nmax_timeout_ms = 1\n\nguest_time_ms = 2\r\nkill_grace_ms = 3",
                Some("2: max_timeout = 1ms"),
            ),
            ("[stdio]\nkill_grace_ms = 500", None),
            ("[limits]\nmax_args_ms = 5", None),
            ("[limits]\nkill_grace_ms = ", None),
        ];
        for (text, want) in cases {
            assert_eq!(find(text).as_deref(), want, "{text}");
        }
        let unknown = PolicySpec::parse("[stdio]\nkill_grace_ms = 500").unwrap_err();
        assert!(
            unknown.message().contains("unknown field `kill_grace_ms`"),
            "{unknown}"
        );
    }
}
