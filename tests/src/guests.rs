//! Paths of the guest components in `tests/guests`, built for
//! `wasm32-wasip2` by the build script of this crate.
//!
//! Each binary `name` of the guest package has a constant `NAME` (upper
//! case, `-` as `_`) holding the absolute path of its `.wasm` component;
//! `ALL` lists them all. See `tests/guests/src/bin/probe/main.rs` for the
//! step language of `PROBE`.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
