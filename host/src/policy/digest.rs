//! The digest that pins a policy to one component (`component_digest`):
//! BLAKE3 of the component file's bytes, written `blake3:<64 hex digits>`.

use std::fmt;
use std::path::Path;

/// The prefix naming the hash.
const PREFIX: &str = "blake3:";

/// A component's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDigest(blake3::Hash);

impl ComponentDigest {
    /// The digest of a component's bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes))
    }

    /// The digest whose BLAKE3 hash is `hash`.
    pub(crate) fn from_hash(hash: [u8; 32]) -> Self {
        Self(blake3::Hash::from_bytes(hash))
    }

    /// The digest of a component file.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        std::fs::read(path).map(|b| Self::of_bytes(&b))
    }

    /// Parses `blake3:<64 hex digits>`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex = text.strip_prefix(PREFIX).ok_or_else(|| {
            format!(
                "`{text}` does not start with `{PREFIX}` (the form is `{PREFIX}<64 hex digits>`)"
            )
        })?;
        blake3::Hash::from_hex(hex)
            .map(Self)
            .map_err(|e| format!("`{text}` is not `{PREFIX}` and 64 hex digits: {e}"))
    }
}

impl fmt::Display for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trip_good() {
        let d = ComponentDigest::of_bytes(b"component");
        assert_eq!(ComponentDigest::parse(&d.to_string()).unwrap(), d);
        assert!(ComponentDigest::parse("sha256:00").is_err());
        assert!(ComponentDigest::parse("blake3:zz").is_err());
    }
}
