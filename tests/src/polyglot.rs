//! The Python and JavaScript example guests (`examples/python`,
//! `examples/js`), built by `scripts/build-polyglot.sh` into
//! `target/polyglot/` (or `$WASMPROC_POLYGLOT_DIR`).

use std::path::{Path, PathBuf};

/// File name of the Python example component.
pub const PYTHON: &str = "python-guest.wasm";
/// File name of the JavaScript example component.
pub const JS: &str = "js-guest.wasm";

/// The repository root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The script that builds both components.
pub fn build_script() -> PathBuf {
    repository().join("scripts/build-polyglot.sh")
}

/// Where the script puts the components: `$WASMPROC_POLYGLOT_DIR`, else
/// `<repository>/target/polyglot`.
pub fn dir() -> PathBuf {
    std::env::var_os("WASMPROC_POLYGLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target/polyglot"))
}

/// The path of a built component; panics, saying how to build it, if it is
/// missing.
pub fn component(file: &str) -> PathBuf {
    let path = dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: build the Python and JavaScript guests first with `{}`",
        path.display(),
        build_script().display()
    );
    path
}
