//! The Python and JavaScript guests (`examples/python`, `examples/js`, and
//! the SDKs' parity guests under `guest-sdk/`), built by
//! `scripts/build-polyglot.sh` into `target/polyglot/` (or
//! `$WASMPROC_POLYGLOT_DIR`), and running them through the `wasmproc` CLI.

use crate::harness;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use wasmproc_host::embed::CacheConfig;

/// File name of the Python example component.
pub const PYTHON: &str = "python-guest.wasm";
/// File name of the JavaScript example component.
pub const JS: &str = "js-guest.wasm";
/// File name of the Python SDK's parity guest.
pub const PYTHON_PARITY: &str = "python-parity.wasm";
/// File name of the JavaScript SDK's parity guest.
pub const JS_PARITY: &str = "js-parity.wasm";

/// The repository root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The script that builds the components.
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

/// The compiled-component cache the polyglot tests share, with `file`
/// compiled into it by `wasmproc compile` (once per component and test
/// process), so each component is compiled once per change rather than
/// once per test.
pub fn warm_cache(file: &str) -> PathBuf {
    static WARMED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let dir = dir().join("cache");
    let mut warmed = WARMED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if warmed.contains(file) {
        return dir;
    }
    let output = Command::new(harness::cli_path())
        .arg("compile")
        .arg(component(file))
        .env(CacheConfig::DIR_ENV, &dir)
        .output()
        .expect("run wasmproc compile");
    assert!(
        output.status.success(),
        "wasmproc compile {file} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    warmed.insert(file.to_string());
    dir
}

/// The outcome of one `wasmproc run`.
#[derive(Debug)]
pub struct Run {
    /// The CLI's exit code (-1 if it was killed by a signal).
    pub code: i32,
    /// What the guest printed.
    pub stdout: String,
    /// What the CLI and the guest printed to stderr.
    pub stderr: String,
}

impl Run {
    /// Whether the guest printed exactly this line.
    pub fn has(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    /// Panics, showing the whole run, unless the guest printed this line.
    pub fn assert_has(&self, line: &str) {
        assert!(
            self.has(line),
            "no line {line:?} in the guest's output: {self:#?}"
        );
    }

    /// Panics unless the guest printed a line starting with `prefix`.
    pub fn assert_has_prefix(&self, prefix: &str) {
        assert!(
            self.stdout.lines().any(|l| l.starts_with(prefix)),
            "no line starting {prefix:?} in the guest's output: {self:#?}"
        );
    }
}

/// `wasmproc run <component> <flags>... -- <args>...`, with the shared
/// cache warmed for the component.
pub fn run(file: &str, flags: &[&str], args: &[&str]) -> Run {
    run_with_env(file, flags, args, &[])
}

/// [`run`] with variables set for the host (`wasmproc` itself), for
/// example a `PATH` that resolves a granted program's bare name.
pub fn run_with_env(file: &str, flags: &[&str], args: &[&str], env: &[(&str, &str)]) -> Run {
    let cache = warm_cache(file);
    let output = Command::new(harness::cli_path())
        .arg("run")
        .arg(component(file))
        .args(flags)
        .arg("--")
        .args(args)
        .env(CacheConfig::DIR_ENV, cache)
        .envs(env.iter().copied())
        .output()
        .expect("run wasmproc");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `--allow PROGRAM` for each program.
pub fn allow(programs: &[&str]) -> Vec<String> {
    programs
        .iter()
        .flat_map(|p| ["--allow".to_string(), p.to_string()])
        .collect()
}
