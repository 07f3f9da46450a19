//! The READMEs' Rust snippets compile: host snippets as doctests of
//! `wasmproc-host` (`ReadmeDoctests`), guest snippets here, for
//! `wasm32-wasip2`; and the "Async first" snippet runs as an embedder's own
//! program whose `main` returns `anyhow::Result`, without wasmtime's
//! `anyhow` feature.

use std::path::Path;
use std::process::Command;
use wasmproc_tests::polyglot::repository;
use wasmproc_tests::snippets::{
    Block, fenced_blocks, nested_cargo, run_ok, target_dir, workspace_profiles, write_if_changed,
};

/// The note that marks a README.md block as a guest this test builds.
const GUEST_NOTE: &str = "A guest: the test readme_snippets_compile builds it for wasm32-wasip2.";

fn read(relative: &str) -> String {
    std::fs::read_to_string(repository().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// A guest snippet as a program: one with a `main` as it stands, a fragment
/// inside a `main` that returns a `Result` (so it may use `?`).
fn guest_program(block: &Block) -> String {
    if block.code.contains("fn main(") {
        block.code.clone()
    } else {
        format!(
            "fn main() -> Result<(), Box<dyn std::error::Error>> {{\n{}    Ok(())\n}}\n",
            block.code
        )
    }
}

#[test]
fn readme_snippets_compile() {
    let lib = read("host/src/lib.rs");
    assert!(
        lib.contains("#[cfg(doctest)]\n#[doc = include_str!(\"../../README.md\")]"),
        "host/src/lib.rs no longer compiles README.md's host snippets as doctests"
    );
    let mut guests = Vec::new();
    for block in fenced_blocks(&read("README.md")) {
        let place = format!("README.md line {}", block.line);
        assert_ne!(
            block.info, "",
            "{place}: a bare fence is Rust to rustdoc; name its language (`text`, `sh`, …)"
        );
        if !block.is_rust() {
            continue;
        }
        if block.is_ignored() {
            let note = block.note.as_deref().unwrap_or_else(|| {
                panic!("{place}: an `ignore`d block needs an HTML comment before it saying why")
            });
            if note.contains(GUEST_NOTE) {
                guests.push((place, block));
            }
        }
        // Every other Rust block is a doctest of wasmproc-host.
    }
    assert!(
        guests.len() >= 2,
        "README.md's guest snippets were not found (marked with `<!-- {GUEST_NOTE} -->`)"
    );
    for block in fenced_blocks(&read("guest-sdk/README.md")) {
        if block.is_rust() {
            assert!(
                !block.is_ignored(),
                "guest-sdk/README.md line {}: every Rust block there is built",
                block.line
            );
            guests.push((format!("guest-sdk/README.md line {}", block.line), block));
        }
    }

    let krate = target_dir().join("readme-snippets");
    let guests_manifest = read("tests/guests/Cargo.toml");
    let release_profile = &guests_manifest[guests_manifest
        .find("[profile.release]")
        .expect("tests/guests sets its release profile")..];
    let sdk = repository().join("guest-sdk");
    let mut manifest = format!(
        "# Written by the test readme_snippets_compile.\n[workspace]\n\n[package]\nname = \"readme-snippets\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\nwasmproc-guest = {{ path = {:?}, features = [\"daemon\"] }}\n\n{release_profile}",
        sdk.to_str().expect("UTF-8 path")
    );
    let mut index = String::new();
    for (number, (place, block)) in guests.iter().enumerate() {
        let name = format!("snippet{number}");
        manifest.push_str(&format!(
            "\n[[bin]]\nname = \"{name}\"\npath = \"src/{name}.rs\"\n"
        ));
        write_if_changed(
            &krate.join(format!("src/{name}.rs")),
            &format!("// {place}\n{}", guest_program(block)),
        );
        index.push_str(&format!("{name}: {place}\n"));
    }
    write_if_changed(&krate.join("Cargo.toml"), &manifest);
    write_if_changed(&krate.join("Cargo.lock"), &read("tests/guests/Cargo.lock"));
    let mut build = nested_cargo();
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(krate.join("Cargo.toml"))
        .args([
            "--offline",
            "--target",
            "wasm32-wasip2",
            "--release",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(target_dir().join("wasm-guests"));
    run_ok(
        &mut build,
        &format!("building the READMEs' guest snippets for wasm32-wasip2\n{index}"),
    );
    for number in 0..guests.len() {
        let wasm = target_dir().join(format!(
            "wasm-guests/wasm32-wasip2/release/snippet{number}.wasm"
        ));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
    }
}

/// The "Async first" snippet of README.md, as it stands.
fn async_first_snippet() -> String {
    fenced_blocks(&read("README.md"))
        .into_iter()
        .find(|block| block.heading == "Async first" && block.is_rust())
        .expect("README.md has a Rust block under `### Async first`")
        .code
}

/// Builds `examples/git-summary` for wasm32-wasip2, as the README says.
fn git_summary_component() -> std::path::PathBuf {
    let target = target_dir();
    let mut build = nested_cargo();
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(repository().join("examples/git-summary/Cargo.toml"))
        .args(["--offline", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(target.join("wasm-guests"));
    run_ok(&mut build, "building examples/git-summary");
    target.join("wasm-guests/wasm32-wasip2/debug/git-summary.wasm")
}

/// A git repository with one commit and one changed file.
fn repository_with_a_commit(dir: &Path) {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        run_ok(&mut command, &format!("git {}", args.join(" ")));
    };
    git(&["init", "-q", "-b", "trunk"]);
    std::fs::write(dir.join("a.txt"), "a\n").expect("write a.txt");
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "the first commit"]);
    std::fs::write(dir.join("a.txt"), "b\n").expect("change a.txt");
}

#[test]
fn embed_anyhow_question_mark_good() {
    let component = git_summary_component();
    let krate = target_dir().join("embed-anyhow");
    let host = repository().join("host");
    // Only wasmproc-host, anyhow, and tokio for the snippet's executor
    // (tokio pulls in no wasmtime): nothing that could turn on wasmtime's
    // `anyhow` feature through unification.
    let manifest = format!(
        "# Written by the test embed_anyhow_question_mark_good.\n[workspace]\n\n[package]\nname = \"embed-anyhow\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\nwasmproc-host = {{ path = {:?} }}\nanyhow = \"1\"\ntokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\"] }}\n\n{}",
        host.to_str().expect("UTF-8 path"),
        workspace_profiles()
    );
    write_if_changed(&krate.join("Cargo.toml"), &manifest);
    write_if_changed(&krate.join("Cargo.lock"), &read("Cargo.lock"));
    write_if_changed(&krate.join("src/main.rs"), &async_first_snippet());

    // The embedder's wasmtime has no `anyhow` feature: the snippet's `?`
    // works through wasmproc's own error types.
    let mut tree = nested_cargo();
    tree.arg("tree")
        .arg("--manifest-path")
        .arg(krate.join("Cargo.toml"))
        .args([
            "--offline",
            "-e",
            "features",
            "-i",
            "wasmtime-internal-core",
        ]);
    let tree = String::from_utf8(run_ok(&mut tree, "cargo tree").stdout).expect("UTF-8");
    assert!(
        tree.contains("wasmtime-internal-core v"),
        "cargo tree did not list wasmtime:\n{tree}"
    );
    assert!(
        !tree.contains("wasmtime-internal-core feature \"anyhow\""),
        "wasmtime's `anyhow` feature is on in the embedder's build:\n{tree}"
    );

    let mut build = nested_cargo();
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(krate.join("Cargo.toml"))
        .arg("--offline")
        .arg("--target-dir")
        .arg(target_dir());
    run_ok(&mut build, "building the Async first snippet");

    let work = tempfile::tempdir().expect("tempdir");
    repository_with_a_commit(work.path());
    std::fs::copy(&component, work.path().join("plugin.wasm")).expect("copy the component");
    let binary = target_dir().join("debug/embed-anyhow");
    let mut run = Command::new(&binary);
    run.current_dir(work.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    let output = run_ok(&mut run, "the Async first snippet");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("trunk (1 commit)")
            && stdout.contains("the first commit")
            && stdout.contains("modified     1"),
        "the snippet did not print git-summary's report of the repository:\n{stdout}"
    );
}
