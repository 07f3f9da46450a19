//! The plugin manifest: what the guest declares it needs, carried in the
//! component as the custom section `wasmproc-manifest`.
//!
//! A host intersects the manifest with its own policy: a call the manifest
//! does not declare is denied ("not declared by the plugin"), whatever the
//! policy grants. `wasmproc inspect plugin.wasm` shows the manifest to the
//! user; `wasmproc grant plugin.wasm` writes a policy granting exactly it.

/// Declares the plugin's manifest (TOML, format version 1) and places it
/// in the component's `wasmproc-manifest` custom section. Use it once per
/// guest, at module level; the argument is any `&'static str` constant
/// expression, such as a string literal or `include_str!("wasmproc.toml")`.
///
/// ```
/// wasmproc_guest::manifest!(
///     r#"
/// version = 1
///
/// [[program]]
/// name = "git"
/// args = [["log", "--oneline", "**"]]  # `*` one argument, a trailing `**` the rest
/// operations = ["run"]                 # absent: run and start
/// reason = "lists recent commits"
///
/// [[variable]]
/// name = "LANG"
/// reason = "keeps git's messages in the user's language"
///
/// [dirs]                               # absent: no working directories
/// reason = "runs git in the repository the user names"
/// "#
/// );
/// ```
#[macro_export]
macro_rules! manifest {
    ($text:expr $(,)?) => {
        const _: () = {
            const TEXT: &str = $text;
            #[used]
            #[cfg_attr(target_family = "wasm", unsafe(link_section = "wasmproc-manifest"))]
            static MANIFEST: [u8; TEXT.len()] = $crate::__manifest_bytes(TEXT);
        };
    };
}

/// Copies the manifest text into an array of its exact length (used by
/// [`manifest!`]; not part of the API).
#[doc(hidden)]
pub const fn __manifest_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}
