//! A summary of a stream's bytes that fits in one JSON line.

use serde_json::{Value, json};

/// How many leading bytes are kept as text.
const TEXT_PREFIX_BYTES: usize = 4096;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Length, FNV-1a 64 hash and first bytes of a stream, fed piece by piece.
pub struct StreamDigest {
    len: u64,
    hash: u64,
    prefix: Vec<u8>,
}

impl StreamDigest {
    pub fn new() -> Self {
        StreamDigest {
            len: 0,
            hash: FNV_OFFSET_BASIS,
            prefix: Vec::new(),
        }
    }

    /// Adds the next bytes of the stream.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        for &byte in bytes {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        let room = TEXT_PREFIX_BYTES - self.prefix.len();
        self.prefix
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// `{"len", "fnv1a64", "text", "dropped"}`.
    pub fn to_json(&self, dropped: u64) -> Value {
        json!({
            "len": self.len,
            "fnv1a64": format!("{:016x}", self.hash),
            "text": String::from_utf8_lossy(&self.prefix),
            "dropped": dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_fnv1a64() {
        let mut digest = StreamDigest::new();
        assert_eq!(digest.to_json(0)["fnv1a64"], "cbf29ce484222325");
        digest.update(b"a");
        assert_eq!(digest.to_json(0)["fnv1a64"], "af63dc4c8601ec8c");
        digest.update(b"bc");
        assert_eq!(digest.to_json(0)["fnv1a64"], "e71fa2190541574b");
        assert_eq!(digest.to_json(0)["len"], 3);
    }
}
