use serde_json::json;
use std::sync::Arc;
use wasmproc_host::Policy;
use wasmproc_host::policy::PolicyBuilder;
use wasmproc_tests::harness::{err_detail, err_kind, ok, probe, shared_runtime};

fn load(text: &str) -> Result<Policy, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    PolicyBuilder::from_file(&path)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())
}

#[test]
fn policy_parse_bad() {
    let cases: &[(&str, &str)] = &[
        // Not TOML at all: the parser's message quotes the line.
        ("[[program]\nname = \"echo\"", "malformed"),
        // An unknown key is an error, not silently ignored.
        ("[[program]]\nname = \"echo\"\nargz = []", "argz"),
        // A wrong type.
        ("[[program]]\nname = 7", "invalid type"),
        // `**` may only end a pattern.
        (
            "[[program]]\nname = \"echo\"\nargs = [[\"**\", \"x\"]]",
            "`**` may only be the last element",
        ),
        // One program granted twice contradicts itself.
        (
            "[[program]]\nname = \"echo\"\n[[program]]\nname = \"echo\"",
            "granted as `echo`",
        ),
        // A program that cannot be resolved fails at load, not at call.
        (
            "[[program]]\nname = \"no-such-program-anywhere\"",
            "program `no-such-program-anywhere`",
        ),
        // A relative program path is ambiguous.
        ("[[program]]\nname = \"bin/echo\"", "relative path"),
        // An operation that does not exist.
        (
            "[[program]]\nname = \"echo\"\noperations = [\"fly\"]",
            "fly",
        ),
        // No operation at all grants nothing.
        (
            "[[program]]\nname = \"echo\"\noperations = []",
            "grants nothing",
        ),
        // Limits that contradict each other.
        (
            "[limits]\ndefault_run_timeout = \"10s\"\nmax_timeout = \"5s\"",
            "`default_run_timeout = \"10s\"` is above `max_timeout = \"5s\"`",
        ),
        // A time written as milliseconds under its old key.
        (
            "[limits]\nmax_live_processes = 4\nguest_time_ms = 1000",
            "line 3: `guest_time_ms = 1000`: durations are written with a unit now: \
             use `guest_time = \"1s\"`",
        ),
        ("[limits]\nmax_live_processes = 0", "max_live_processes"),
        ("[limits]\nmax_processes = 3", "max_processes"),
        // A default directory outside the roots.
        (
            "[dirs]\nroots = [\"/usr\"]\ndefault = \"/etc\"",
            "dirs.default `/etc`",
        ),
        // A directory that does not exist.
        (
            "[dirs]\nroots = [\"/no/such/dir\"]",
            "dirs.roots `/no/such/dir`",
        ),
        // Environment names are checked.
        ("[env]\nallow = [\"BAD-NAME\"]", "env.allow `BAD-NAME`"),
        ("[env]\npass = [\"HOME\", \"HOME\"]", "listed twice"),
    ];
    for (text, expected) in cases {
        let err = load(text).expect_err(text);
        assert!(
            err.contains(expected),
            "policy {text:?}: error {err:?} lacks {expected:?}"
        );
    }
    assert!(load("[[program]]\nname = \"echo\"").is_ok());
}

#[test]
fn policy_args_pattern_good() {
    let policy = Arc::new(
        Policy::builder()
            .allow_program_args("echo", &[&["log", "**"], &["status", "*"], &["version"]])
            .build()
            .unwrap(),
    );
    let r = probe(
        shared_runtime(),
        policy,
        json!([
            {"op": "run", "program": "echo", "args": ["log"]},
            {"op": "run", "program": "echo", "args": ["log", "HEAD", "main"]},
            {"op": "run", "program": "echo", "args": ["status", "short"]},
            {"op": "run", "program": "echo", "args": ["version"]},
            {"op": "run", "program": "echo", "args": ["status"]},
            {"op": "run", "program": "echo", "args": ["version", "--force"]},
            {"op": "run", "program": "echo", "args": ["push", "--force"]},
        ]),
    );
    assert_eq!(ok(&r[0])["stdout"], "log\n");
    assert_eq!(ok(&r[1])["stdout"], "log HEAD main\n");
    assert_eq!(ok(&r[2])["stdout"], "status short\n");
    assert_eq!(ok(&r[3])["stdout"], "version\n");
    for result in &r[4..] {
        assert_eq!(err_kind(result), "denied", "{result}");
    }
    assert!(
        err_detail(&r[4]).contains("grant `echo status *` needs 2"),
        "{}",
        r[4]
    );
    assert_eq!(
        err_detail(&r[5]),
        "argument 2 `--force` does not match grant `echo version`",
    );
    assert!(err_detail(&r[6]).contains("argument 1 `push`"), "{}", r[6]);
}

#[test]
fn policy_operations_restricted_bad() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[program]]\nname = \"sleep\"\noperations = [\"run\"]\n",
    )
    .unwrap();
    let policy = Arc::new(Policy::from_file(&path).unwrap());
    let r = probe(
        shared_runtime(),
        policy,
        json!([{"op": "start", "program": "sleep", "args": ["1"]}]),
    );
    assert_eq!(err_kind(&r[0]), "denied");
    assert!(
        err_detail(&r[0]).contains("not granted for `start`"),
        "{}",
        r[0]
    );
}

#[test]
fn policy_readme_example_good() {
    // The full policy shown in the README loads as written.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let policy = load(&readme[start..end]).unwrap_or_else(|e| panic!("README policy: {e}"));
    assert_eq!(policy.programs().len(), 2);
    assert_eq!(
        policy.limits(),
        &wasmproc_host::policy::Limits::default(),
        "README documents the defaults"
    );
}

#[test]
fn policy_open_grant_warns_good() {
    // Catalogued programs granted with any arguments warn at load (saying
    // what they can do and how to narrow them), on stderr from the CLI and
    // in the audit; narrowed grants and harmless programs do not.
    let policy = Policy::builder()
        .allow_program("git")
        .allow_program("find")
        .allow_program_args("sh", &[&["/opt/tool/check.sh", "**"]])
        .allow_program("true")
        .build()
        .unwrap();
    let warnings = policy.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    let git = warnings.iter().find(|w| w.contains("`git`")).unwrap();
    assert!(
        git.contains("core.pager") && git.contains("`args`"),
        "{git}"
    );
    let find = warnings.iter().find(|w| w.contains("`find`")).unwrap();
    assert!(
        find.contains("-exec") && find.contains("GTFOBins"),
        "{find}"
    );
    // In the audit: one record per warning when a session starts.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = wasmproc_host::audit::Audit::new().with_sink(Arc::new(
        wasmproc_host::audit::JsonLinesSink::open(&path).unwrap(),
    ));
    let manager = wasmproc_host::ProcessManager::builder()
        .grace(std::time::Duration::from_secs(1))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    drop(
        wasmproc_host::ProcessCtx::builder(
            wasmproc_tests::harness::admit(Arc::new(policy)),
            manager,
        )
        .guest("warned")
        .audit(audit)
        .build(),
    );
    let audited = std::fs::read_to_string(&path).unwrap();
    let records: Vec<serde_json::Value> = audited
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["operation"] == "policy-warning")
        .collect();
    assert_eq!(records.len(), 2, "{audited}");
    // On stderr, from the CLI.
    let out = std::process::Command::new(wasmproc_tests::harness::cli_path())
        .args([
            "run",
            wasmproc_tests::guests::PROBE,
            "--allow",
            "python3",
            "--",
            "[]",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: program `python3` is granted with any arguments"),
        "{stderr}"
    );
}

#[test]
fn policy_program_env_grant_good() {
    // A `[[program]]` entry's own `env` grants a variable for that program
    // only; the CLI spells it `--allow-env PROGRAM:NAME`.
    let policy = load(
        "[[program]]\nname = \"env\"\nargs = [[]]\nenv = [\"FOR_ENV_ONLY\"]\n\
         [[program]]\nname = \"printenv\"\n",
    )
    .unwrap();
    let r = probe(
        shared_runtime(),
        Arc::new(policy),
        json!([
            {"op": "run", "program": "env", "args": [], "env": [["FOR_ENV_ONLY", "1"]]},
            {"op": "run", "program": "printenv", "args": [], "env": [["FOR_ENV_ONLY", "1"]]},
        ]),
    );
    assert_eq!(
        crate::confine::env_without_tmpdir(&ok(&r[0])["stdout"]),
        "FOR_ENV_ONLY=1\n"
    );
    assert_eq!(err_kind(&r[1]), "denied");
    assert!(err_detail(&r[1]).contains("FOR_ENV_ONLY"), "{}", r[1]);
    // Naming a program that is not granted is an error at load.
    let err = Policy::builder()
        .allow_env_for("nope", "X")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not granted"), "{err}");
    let out = std::process::Command::new(wasmproc_tests::harness::cli_path())
        .args([
            "run",
            wasmproc_tests::guests::PROBE,
            "--allow",
            "printenv",
            "--allow-env",
            "printenv:ONLY_HERE",
            "--",
        ])
        .arg(
            json!([{"op": "run", "program": "printenv", "args": [], "env": [["ONLY_HERE", "2"]]}])
                .to_string(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ONLY_HERE=2"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
