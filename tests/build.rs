//! Builds the guest components in `tests/guests` for `wasm32-wasip2` and
//! writes their paths to `$OUT_DIR/guests.rs`.
//!
//! The guests live in a cargo workspace of their own and are built by a
//! nested cargo with its own target directory (`<target>/wasm-guests`), so it
//! never waits on the lock of the build that runs this script.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the build script runs rustc, rustup and cargo to build the guests"
)]

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// Guests are built optimized: smaller components compile faster in the host.
const GUEST_PROFILE: &str = "release";

include!("leaking_variables.rs");

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repository = manifest_dir
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let guests_dir = manifest_dir.join("guests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    for watched in [
        guests_dir.join("src"),
        guests_dir.join("Cargo.toml"),
        guests_dir.join("Cargo.lock"),
        repository.join("guest-sdk/src"),
        repository.join("guest-sdk/Cargo.toml"),
        repository.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    ensure_wasm_target(&rustc);

    let guest_target_dir = workspace_target_dir(&out_dir, &repository).join("wasm-guests");
    build_guests(&guests_dir, &guest_target_dir);

    let artifacts = guest_target_dir.join(WASM_TARGET).join(GUEST_PROFILE);
    let guests = guest_names(&guests_dir.join("src/bin"));
    let source = constants(&guests, &artifacts);
    fs::write(out_dir.join("guests.rs"), source).expect("write guests.rs");
}

/// The target directory of the build running this script.
///
/// `OUT_DIR` lies inside it (`<target>/[<triple>/]<profile>/build/<pkg>/out`)
/// and cargo marks it with `CACHEDIR.TAG`; an absolute `CARGO_TARGET_DIR` or
/// `<repository>/target` are the fallbacks.
fn workspace_target_dir(out_dir: &Path, repository: &Path) -> PathBuf {
    if let Some(tagged) = out_dir
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
    {
        return tagged.to_path_buf();
    }
    match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => repository.join("target"),
    }
}

/// Installs the wasm target with rustup if the toolchain lacks it.
fn ensure_wasm_target(rustc: &OsString) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run `rustc --print sysroot`");
    assert!(sysroot.status.success(), "`rustc --print sysroot` failed");
    let sysroot = PathBuf::from(
        String::from_utf8(sysroot.stdout)
            .expect("UTF-8 sysroot")
            .trim(),
    );
    if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .expect("run `rustup target add`");
    assert!(status.success(), "`rustup target add {WASM_TARGET}` failed");
}

/// Runs the nested `cargo build` of the guest workspace.
fn build_guests(guests_dir: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(guests_dir)
        .arg("build")
        .arg("--manifest-path")
        .arg(guests_dir.join("Cargo.toml"))
        .args([
            "--target",
            WASM_TARGET,
            "--profile",
            GUEST_PROFILE,
            "--bins",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for variable in LEAKING_VARIABLES {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .expect("run the nested cargo build of tests/guests");
    assert!(
        status.success(),
        "building the test guests failed: {status} (see the output above)"
    );
}

/// The binaries of the guest package: `src/bin/<name>.rs` and
/// `src/bin/<name>/main.rs`, sorted.
fn guest_names(bin_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(bin_dir)
        .expect("read tests/guests/src/bin")
        .map(|entry| entry.expect("read tests/guests/src/bin").path())
        .filter_map(|path| {
            let is_binary = if path.is_dir() {
                path.join("main.rs").is_file()
            } else {
                path.extension().is_some_and(|ext| ext == "rs")
            };
            let name = path.file_stem()?.to_str()?.to_owned();
            is_binary.then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// `pub const <NAME>: &str = "<path>";` for every guest, and `ALL`.
fn constants(guests: &[String], artifacts: &Path) -> String {
    let mut source = String::new();
    for name in guests {
        let path = artifacts.join(format!("{name}.wasm"));
        assert!(
            path.is_file(),
            "the guest build did not produce {}",
            path.display()
        );
        let path = path.to_str().expect("UTF-8 guest path");
        writeln!(source, "/// The `{name}` guest component.").unwrap();
        writeln!(
            source,
            "pub const {}: &str = {path:?};",
            constant_name(name)
        )
        .unwrap();
    }
    writeln!(source, "/// Every guest component, as (binary name, path).").unwrap();
    write!(source, "pub const ALL: &[(&str, &str)] = &[").unwrap();
    for name in guests {
        write!(source, "({name:?}, {}), ", constant_name(name)).unwrap();
    }
    writeln!(source, "];").unwrap();
    source
}

/// `git-summary` → `GIT_SUMMARY`.
fn constant_name(binary: &str) -> String {
    binary.to_uppercase().replace('-', "_")
}
