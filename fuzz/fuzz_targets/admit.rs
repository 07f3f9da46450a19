//! Admission: arbitrary WIT `command` records, sent as `run` or `start`,
//! under one fixed policy. Never panics, and never approves what the
//! policy does not grant: the program, each argument list, each variable
//! and the working directory of every approval are checked against the
//! policy as written, independently of the host's own matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use wasmproc_fuzz::input::CommandCase;
use wasmproc_fuzz::{reference, toml_patterns};
use wasmproc_host::Admission;
use wasmproc_host::policy::{CommandRequest, Operation, PolicyBuilder, PolicySpec};

/// The argument patterns granted to `echo`.
fn echo_patterns() -> Vec<Vec<String>> {
    [
        &["hello", "*"][..],
        &["-n", "**"],
        &["--format=*", "--", "**"],
    ]
    .iter()
    .map(|p| p.iter().map(|e| e.to_string()).collect())
    .collect()
}

struct Fixed {
    admission: Admission,
    root: PathBuf,
    echo: PathBuf,
    true_: PathBuf,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("wasmproc-fuzz-admit-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).expect("root");
        let _ = std::os::unix::fs::symlink("/", root.join("link-out"));
        let root = root.canonicalize().expect("root");
        let text = format!(
            "[env]\nallow = [\"LANG\", \"LC_*\"]\n\
             [dirs]\nroots = [{}]\n\
             [[program]]\nname = \"echo\"\nargs = {}\n\
             [[program]]\nname = \"true\"\nargs = [[]]\noperations = [\"run\"]\n",
            wasmproc_fuzz::toml_string(&root.display().to_string()),
            toml_patterns(&echo_patterns()),
        );
        let spec = PolicySpec::parse(&text).expect("policy TOML");
        let policy = PolicyBuilder::from_spec(spec).build().expect("policy");
        let which = |name: &str| {
            ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.exists())
                .and_then(|p| p.canonicalize().ok())
                .expect("program")
        };
        Fixed {
            admission: Admission::policy_only(Arc::new(policy)).expect("admitted"),
            echo: which("echo"),
            true_: which("true"),
            root,
        }
    })
}

fuzz_target!(|case: CommandCase| {
    let f = fixed();
    let root = f.root.display().to_string();
    let mut record = case.record;
    record.cwd = record.cwd.map(|c| c.replace("{root}", &root));
    let op = if case.start {
        Operation::Start
    } else {
        Operation::Run
    };
    let request = CommandRequest {
        program: &record.program,
        args: &record.args,
        env: &record.env,
        cwd: record.cwd.as_deref(),
    };
    let Ok(approved) = f.admission.approve(op, request) else {
        return;
    };
    // The program: granted, named by its grant name or a path to it.
    let named = |grant: &str, path: &Path| {
        record.program == grant
            || (record.program.starts_with('/')
                && Path::new(&record.program).canonicalize().ok().as_deref() == Some(path))
    };
    if approved.program() == f.echo {
        assert!(named("echo", &f.echo), "{record:?}");
        let patterns: Vec<_> = echo_patterns()
            .iter()
            .map(|p| reference::parse(p).expect("fixed patterns parse"))
            .collect();
        assert!(
            patterns.iter().any(|p| reference::matches(p, &record.args)),
            "arguments no pattern grants: {record:?}"
        );
    } else if approved.program() == f.true_ {
        assert!(named("true", &f.true_), "{record:?}");
        assert_eq!(op, Operation::Run, "`true` is granted for run only");
        assert!(record.args.is_empty(), "{record:?}");
    } else {
        panic!("an ungranted program was approved: {approved:?}");
    }
    assert_eq!(approved.args(), &record.args[..]);
    // Variables: only those asked for, and only granted names.
    for (name, value) in approved.env() {
        assert!(name == "LANG" || name.starts_with("LC_"), "{approved:?}");
        assert!(
            record.env.iter().any(|(n, v)| n == name && v == value),
            "{approved:?}"
        );
    }
    // The working directory: none asked, the default (the first root);
    // else inside the root.
    match (&record.cwd, approved.cwd()) {
        (None, Some(dir)) => assert_eq!(dir, f.root, "no cwd asked: the default"),
        (Some(_), Some(dir)) => {
            assert!(dir.starts_with(&f.root), "{dir:?} is outside {root}");
            assert_eq!(
                dir.canonicalize().ok().as_deref(),
                Some(dir),
                "not resolved"
            );
        }
        other => panic!("working directory {other:?}"),
    }
});
