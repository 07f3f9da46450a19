//! The READMEs' code blocks, and scratch crates that build them with a
//! nested cargo: guest snippets for `wasm32-wasip2`, and the embedding
//! snippet as an embedder's own program.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

include!("../leaking_variables.rs");

/// One fenced code block of a Markdown file.
#[derive(Debug, Clone)]
pub struct Block {
    /// The info string after the opening fence (`rust,ignore`, `sh`, …).
    pub info: String,
    /// The code between the fences.
    pub code: String,
    /// The line of the opening fence (1-based).
    pub line: usize,
    /// The HTML comment on the line before the fence, if any: the reason a
    /// block is not compiled as it stands.
    pub note: Option<String>,
    /// The Markdown heading the block stands under.
    pub heading: String,
}

impl Block {
    /// Whether rustdoc would treat the block as Rust.
    pub fn is_rust(&self) -> bool {
        self.info == "rust" || self.info.starts_with("rust,")
    }

    /// Whether the block carries rustdoc's `ignore` attribute.
    pub fn is_ignored(&self) -> bool {
        self.info.split(',').any(|attribute| attribute == "ignore")
    }
}

/// The fenced code blocks of `markdown`, in order.
pub fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    let mut previous = "";
    let mut heading = String::new();
    for (index, line) in markdown.lines().enumerate() {
        if let Some(block) = open.as_mut() {
            if line.starts_with("```") {
                blocks.extend(open.take());
            } else {
                block.code.push_str(line);
                block.code.push('\n');
            }
        } else if line.starts_with("```") {
            let note = previous.trim();
            open = Some(Block {
                info: line.trim_start_matches('`').trim().to_owned(),
                code: String::new(),
                line: index + 1,
                note: (note.starts_with("<!--") && note.ends_with("-->")).then(|| note.to_owned()),
                heading: heading.clone(),
            });
        } else if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_owned();
        }
        previous = line;
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}

/// The target directory of the build that made this test binary: the
/// nearest ancestor of the executable that cargo marked with `CACHEDIR.TAG`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::polyglot::repository().join("target"))
}

/// A `cargo` command for another workspace, without the variables of the
/// cargo running the tests.
pub fn nested_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for variable in LEAKING_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// Runs `command`, returning its output; panics with `what` and both
/// streams if it fails.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `contents` to `path` unless it holds them already (so a nested
/// cargo sees no change and rebuilds nothing), creating its directory.
pub fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    std::fs::create_dir_all(path.parent().expect("a parent directory"))
        .unwrap_or_else(|e| panic!("cannot create the directory of {}: {e}", path.display()));
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The `[profile.*]` tables of the workspace's Cargo.toml, so that a
/// scratch crate building the same dependencies builds them the same way.
pub fn workspace_profiles() -> String {
    let manifest = std::fs::read_to_string(crate::polyglot::repository().join("Cargo.toml"))
        .expect("read the workspace Cargo.toml");
    let mut profiles = String::new();
    let mut in_profile = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_profile = line.starts_with("[profile.");
        }
        if in_profile {
            profiles.push_str(line);
            profiles.push('\n');
        }
    }
    profiles
}
