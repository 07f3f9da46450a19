//! Shared pieces of the fuzz targets: the reference argument matcher (the
//! grant syntax written as a specification, independent of the host's
//! matcher), the inputs the targets draw, and the TOML they write.

pub mod input;
pub mod reference;

/// `s` as a TOML basic string (quoted and escaped).
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `patterns` as a TOML array of arrays of strings.
pub fn toml_patterns(patterns: &[Vec<String>]) -> String {
    let list: Vec<String> = patterns
        .iter()
        .map(|p| {
            let elems: Vec<String> = p.iter().map(|e| toml_string(e)).collect();
            format!("[{}]", elems.join(", "))
        })
        .collect();
    format!("[{}]", list.join(", "))
}
