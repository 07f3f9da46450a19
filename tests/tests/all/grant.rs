//! The grant language, attacked as a hostile guest would: wildcards that
//! must not match options, `--`, path placeholders confined to the roots,
//! variable wildcards that reach only inert names, secrets the guest never
//! sees, and a policy pinned to one component.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::ProcessManager;
use wasmproc_host::audit::Audit;
use wasmproc_host::audit::JsonLinesSink;
use wasmproc_host::policy::catalogue::{catalogue, program_entry};
use wasmproc_host::policy::{ArgPattern, PolicySpec, open_attacks};
use wasmproc_host::process::block_on;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;
use wasmproc_tests::guests::DECLARED;
use wasmproc_tests::harness::{cli_path, err_detail, err_kind, ok, probe, shared_runtime};

/// Option attacks tried against every pattern: git's, find's, tar's and
/// man's code-running and file-writing options, in their written forms.
const OPTION_ATTACKS: &[&str] = &[
    "--output=/tmp/wasmproc-attack",
    "--output",
    "--out=/tmp/wasmproc-attack",
    "--ext-diff",
    "--exec-path=/tmp",
    "--upload-pack=touch /tmp/wasmproc-attack",
    "-c",
    "-ccore.pager=touch /tmp/wasmproc-attack",
    "--config-env=core.pager=X",
    "-exec",
    "-execdir",
    "-ok",
    "-delete",
    "-fprint",
    "--to-command=sh",
    "--checkpoint-action=exec=sh",
    "-I",
    "--use-compress-program=sh",
    "-P",
    "--pager=sh",
    "-",
    "-1",
    "--",
    "+!sh",
];

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// An argument list the pattern allows (operands `x`, option values `x`).
fn sample(pattern: &ArgPattern) -> Vec<String> {
    pattern
        .as_written()
        .into_iter()
        .filter(|e| e != "**" && e != "{paths}")
        .map(|e| match e.as_str() {
            "*" | "{path}" => "x".to_string(),
            _ if e.ends_with("=*") => format!("{}x", &e[..e.len() - 1]),
            _ if e.ends_with("={path}") => format!("{}x", &e[..e.len() - "{path}".len()]),
            _ => e,
        })
        .collect()
}

/// Every list made from the pattern's sample by putting `attack` at one
/// place: inserted anywhere, or in place of any element that is not a
/// literal.
fn attacked(pattern: &ArgPattern, attack: &str) -> Vec<Vec<String>> {
    let base = sample(pattern);
    let written: Vec<String> = pattern
        .as_written()
        .into_iter()
        .filter(|e| e != "**" && e != "{paths}")
        .collect();
    let mut lists = Vec::new();
    for i in 0..=base.len() {
        let mut l = base.clone();
        l.insert(i, attack.to_string());
        lists.push(l);
    }
    for (i, e) in written.iter().enumerate() {
        if e.contains('*') || e.contains("{path}") {
            let mut l = base.clone();
            l[i] = attack.to_string();
            lists.push(l);
        }
    }
    lists
}

/// Asserts that no placement of an option attack passes the pattern,
/// unless the pattern names that very option (or it comes after `--`).
fn assert_options_refused(what: &str, pattern: &ArgPattern) {
    let named = pattern.as_written();
    assert!(
        pattern.allows(&sample(pattern), &|_| true),
        "{what}: the sample {:?} does not match",
        sample(pattern)
    );
    for attack in OPTION_ATTACKS {
        if named.iter().any(|n| n == attack) {
            continue;
        }
        for list in attacked(pattern, attack) {
            let after_end = list
                .iter()
                .position(|a| a == "--")
                .zip(list.iter().position(|a| a == attack))
                .is_some_and(|(end, at)| at > end && named.iter().any(|n| n == "--"));
            if after_end {
                continue;
            }
            assert!(
                !pattern.allows(&list, &|_| true),
                "{what}: pattern `{pattern}` lets {list:?} through"
            );
        }
    }
}

#[test]
fn args_wildcard_refuses_option_ugly() {
    // Through the guest: under `*` and `**`, every option form is denied,
    // with a message saying it is an option the grant does not name.
    let policy = Policy::builder().allow_program_args("echo", &[&["one", "*"], &["many", "**"]]);
    let mut steps = Vec::new();
    for attack in ["--output=/tmp/x", "-c", "--exec-path=/tmp", "-delete"] {
        steps.push(json!({"op": "run", "program": "echo", "args": ["one", attack]}));
        steps.push(json!({"op": "run", "program": "echo", "args": ["many", "a", attack]}));
        steps.push(json!({"op": "run", "program": "echo", "args": ["many", attack, "b"]}));
    }
    steps.push(json!({"op": "run", "program": "echo", "args": ["many", "a", "b"]}));
    let r = probe_built(policy, Value::Array(steps));
    let (last, attacks) = r.split_last().unwrap();
    for result in attacks {
        assert_eq!(err_kind(result), "denied", "{result}");
        assert!(err_detail(result).contains("is an option"), "{result}");
    }
    assert_eq!(ok(last)["stdout"], "many a b\n");
    // And in the matcher, every placement of every form.
    for p in [
        &["log", "*"][..],
        &["log", "**"],
        &["*", "-name", "*", "-print"],
    ] {
        let pattern = ArgPattern::parse("p", &strings(p)).unwrap();
        assert_options_refused("table", &pattern);
    }
}

#[test]
fn args_double_dash_operands_good() {
    // After a literal `--`, wildcards take operands that look like
    // options; without the `--`, or with it elsewhere, they are refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("-n"), "dash file\n").unwrap();
    let policy = Policy::builder()
        .allow_program_args("cat", &[&["--", "*"], &["-A", "--", "{paths}"]])
        .allow_dir(dir.path().to_str().unwrap());
    let r = probe_built(
        policy,
        json!([
            {"op": "run", "program": "cat", "args": ["--", "-n"]},
            {"op": "run", "program": "cat", "args": ["-A", "--", "-n", "-n"]},
            {"op": "run", "program": "cat", "args": ["-n"]},
            {"op": "run", "program": "cat", "args": ["-n", "--"]},
            {"op": "run", "program": "cat", "args": ["-A", "-n", "--", "-n"]},
        ]),
    );
    assert_eq!(ok(&r[0])["stdout"], "dash file\n");
    assert_eq!(ok(&r[1])["stdout"], "dash file$\ndash file$\n");
    for refused in &r[2..] {
        assert_eq!(err_kind(refused), "denied", "{refused}");
    }
}

#[test]
fn args_path_operand_outside_roots_bad() {
    // `{path}` takes a path inside the roots, resolved from the call's
    // working directory with symlinks followed: `..`, absolute paths
    // elsewhere, symlinks that point out and `--opt={path}` values
    // outside are refused; paths inside pass.
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(root.join("sub/in.txt"), "inside\n").unwrap();
    std::fs::write(outside.join("secret.txt"), "outside\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sub/link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("file-link")).unwrap();
    let root_s = root.to_str().unwrap().to_string();
    let policy = Policy::builder()
        .allow_program_args("cat", &[&["{path}"]])
        .allow_program_args("head", &[&["--lines=1", "{path}"]])
        .allow_dir(&root_s)
        .build()
        .unwrap();
    let secret = outside.join("secret.txt");
    let secret_s = secret.to_str().unwrap();
    let sub = format!("{root_s}/sub");
    let r = probe(
        shared_runtime(),
        Arc::new(policy),
        json!([
            {"op": "run", "program": "cat", "args": ["in.txt"], "cwd": sub},
            {"op": "run", "program": "cat", "args": [format!("{root_s}/sub/in.txt")]},
            {"op": "run", "program": "cat", "args": ["../../outside/secret.txt"], "cwd": sub},
            {"op": "run", "program": "cat", "args": [".."], "cwd": root_s},
            {"op": "run", "program": "cat", "args": [secret_s]},
            {"op": "run", "program": "cat", "args": ["/etc/passwd"]},
            {"op": "run", "program": "cat", "args": ["link/secret.txt"], "cwd": sub},
            {"op": "run", "program": "cat", "args": ["file-link"]},
            {"op": "run", "program": "head", "args": ["--lines=1", "../outside/secret.txt"]},
        ]),
    );
    assert_eq!(ok(&r[0])["stdout"], "inside\n");
    assert_eq!(ok(&r[1])["stdout"], "inside\n");
    for refused in &r[2..] {
        assert_eq!(err_kind(refused), "denied", "{refused}");
        assert!(
            err_detail(refused).contains("not a path inside the granted roots"),
            "{refused}"
        );
    }
    // A path placeholder with no roots to lie in is refused at load.
    let err = Policy::builder()
        .allow_program_args("cat", &[&["{path}"]])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("[dirs] grants no roots"), "{err}");
}

/// Runs the probe guest with `steps` under the policy `builder` builds.
fn probe_built(builder: wasmproc_host::policy::PolicyBuilder, steps: Value) -> Vec<Value> {
    probe(shared_runtime(), Arc::new(builder.build().unwrap()), steps)
}

#[test]
fn env_wildcard_inert_only_ugly() {
    // `GIT_*` reaches GIT_AUTHOR_NAME (inert) but not GIT_TEST_FSMONITOR,
    // and `*` reaches LANG but not a name the catalogue has never heard of.
    let policy = Policy::builder()
        .allow_program_args("printenv", &[&["GIT_AUTHOR_NAME"], &["LANG"]])
        .allow_env_for("printenv", "GIT_*")
        .allow_env("*");
    let r = probe_built(
        policy,
        json!([
            {"op": "run", "program": "printenv", "args": ["GIT_AUTHOR_NAME"],
             "env": [["GIT_AUTHOR_NAME", "Ada"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"], "env": [["LANG", "C.UTF-8"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"],
             "env": [["GIT_TEST_FSMONITOR", "touch /tmp/wasmproc-attack; false"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"],
             "env": [["WASMPROC_NEVER_CATALOGUED", "x"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"],
             "env": [["GIT_CONFIG_COUNT", "1"]]},
        ]),
    );
    assert_eq!(ok(&r[0])["stdout"], "Ada\n");
    assert_eq!(ok(&r[1])["stdout"], "C.UTF-8\n");
    for (result, name) in r[2..].iter().zip([
        "GIT_TEST_FSMONITOR",
        "WASMPROC_NEVER_CATALOGUED",
        "GIT_CONFIG_COUNT",
    ]) {
        assert_eq!(err_kind(result), "denied", "{result}");
        let detail = err_detail(result);
        assert!(
            detail.contains(name) && detail.contains("inert") && detail.contains("exact name"),
            "{result}"
        );
    }
}

#[test]
fn env_case_variant_ugly() {
    // npm reads npm_config_* in any case: no case variant of it, nor of
    // an inert name, is reached by `*`; an exact grant of one warns.
    let policy = Policy::builder()
        .allow_program_args("printenv", &[&["LANG"]])
        .allow_env("*");
    let r = probe_built(
        policy,
        json!([
            {"op": "run", "program": "printenv", "args": ["LANG"],
             "env": [["Npm_Config_Node_Options", "--import=data:text/javascript,1"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"],
             "env": [["NPM_CONFIG_SCRIPT_SHELL", "/tmp/x"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"], "env": [["lang", "C"]]},
            {"op": "run", "program": "printenv", "args": ["LANG"], "env": [["LANG", "C"]]},
        ]),
    );
    for refused in &r[..3] {
        assert_eq!(err_kind(refused), "denied", "{refused}");
    }
    assert_eq!(ok(&r[3])["stdout"], "C\n");
    let warned = Policy::builder()
        .allow_env("Npm_Config_Node_Options")
        .build()
        .unwrap();
    assert!(
        warned
            .warnings()
            .iter()
            .any(|w| w.contains("Npm_Config_Node_Options") && w.contains("npm")),
        "{:?}",
        warned.warnings()
    );
}

#[test]
fn catalogue_narrowing_holds_ugly() {
    // For every program whose advice is a narrowing by `args`: each
    // catalogued attack, placed anywhere in a list the advice allows, is
    // refused, and the advice itself leaves no attack open.
    let mut checked = 0;
    for entry in &catalogue().programs {
        let Some(advice) = &entry.args else {
            continue;
        };
        for list in advice {
            let pattern = ArgPattern::parse(&entry.name, list).unwrap();
            assert!(
                pattern.allows(&sample(&pattern), &|_| true),
                "{}: advice `{pattern}` allows not even its own sample",
                entry.name
            );
            for attack in &entry.attacks {
                for attempt in attacked(&pattern, attack) {
                    assert!(
                        !pattern.allows(&attempt, &|_| true),
                        "{}: advice `{pattern}` lets {attempt:?} through",
                        entry.name
                    );
                }
            }
            assert_eq!(
                open_attacks(entry, &pattern),
                [],
                "{}: advice `{pattern}`",
                entry.name
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} advised patterns");
    let git = program_entry("git").unwrap();
    for attack in [
        "--output=/tmp/x",
        "--ext-diff",
        "--exec-path=/tmp",
        "--upload-pack=x",
        "-c",
        "--config-env=x",
    ] {
        assert!(
            git.attacks.iter().any(|a| a.starts_with(attack)),
            "{attack}"
        );
    }
}

/// The repository's root directory.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `[[program]]` (or `[[policy.program]]`) table with `args` in the
/// README's TOML blocks and in `examples/*/policy.toml` and
/// `examples/serve/wasmproc.toml`, as (where, program, patterns).
fn documented_grants() -> Vec<(String, String, Vec<Vec<String>>)> {
    let root = repository();
    let mut texts = Vec::new();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (i, block) in readme.split("```toml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        texts.push((format!("README.md TOML block {}", i + 1), block.to_string()));
    }
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        for file in ["policy.toml", "wasmproc.toml"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
                texts.push((dir.join(file).display().to_string(), text));
            }
        }
    }
    let mut grants = Vec::new();
    for (where_, text) in texts {
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{where_}: {e}"));
        let tables = value
            .get("program")
            .or_else(|| value.get("policy").and_then(|p| p.get("program")));
        for program in tables.and_then(|t| t.as_array()).into_iter().flatten() {
            let name = program["name"].as_str().unwrap().to_string();
            if let Some(args) = program.get("args") {
                let patterns: Vec<Vec<String>> = args.clone().try_into().unwrap();
                grants.push((where_.clone(), name, patterns));
            }
        }
        if text.contains("[[program]]") && !text.contains("version = 1") {
            // A policy file: it must also parse as one.
            PolicySpec::parse(&text).unwrap_or_else(|e| panic!("{where_}: {e}"));
        }
    }
    grants
}

#[test]
fn security_readme_grants_hold_ugly() {
    // Every documented grant refuses the option attacks at every place,
    // and leaves none of its program's catalogued attacks open.
    let grants = documented_grants();
    assert!(
        grants.iter().any(|(_, name, _)| name == "git"),
        "{grants:?}"
    );
    for (where_, name, patterns) in &grants {
        for list in patterns {
            let pattern = ArgPattern::parse(name, list).unwrap();
            assert_options_refused(&format!("{where_}: {name}"), &pattern);
            if let Some(entry) = program_entry(name) {
                assert_eq!(
                    open_attacks(entry, &pattern),
                    [],
                    "{where_}: {name} `{pattern}`"
                );
            }
        }
    }
    // The attack for real: git writes guest-chosen text to any path with
    // `--output` when run directly, and the README's git grant refuses it.
    let readme_git: Vec<Vec<String>> = grants
        .iter()
        .find(|(w, n, _)| w.starts_with("README") && n == "git")
        .map(|(_, _, p)| p.clone())
        .unwrap();
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
    };
    let init = git(&["init", "-q"]).and_then(|_| {
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ])
    });
    let Ok(init) = init else {
        // git is not installed here (.ci/run installs it): the pattern
        // checks above still ran.
        eprintln!("git is not installed; the live attack was not run");
        return;
    };
    assert!(init.status.success(), "{init:?}");
    let target = repo.path().join("written-by-git");
    let attack = [
        "log".to_string(),
        "--oneline".to_string(),
        "-n1".to_string(),
        "--format=format:PLANTED".to_string(),
        format!("--output={}", target.display()),
    ];
    let direct = git(&attack.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    assert!(direct.status.success(), "{direct:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "PLANTED");
    std::fs::remove_file(&target).unwrap();
    let patterns: Vec<Vec<&str>> = readme_git
        .iter()
        .map(|l| l.iter().map(String::as_str).collect())
        .collect();
    let patterns: Vec<&[&str]> = patterns.iter().map(Vec::as_slice).collect();
    let policy = Policy::builder()
        .allow_program_args("git", &patterns)
        .allow_dir(repo.path().to_str().unwrap());
    let r = probe_built(
        policy,
        json!([
            {"op": "run", "program": "git", "args": attack},
            {"op": "run", "program": "git", "args": ["log", "--oneline"]},
        ]),
    );
    assert_eq!(err_kind(&r[0]), "denied", "{}", r[0]);
    assert!(!target.exists(), "git wrote {}", target.display());
    assert!(
        ok(&r[1])["stdout"].as_str().unwrap().contains("one"),
        "{}",
        r[1]
    );
}

/// The value of the test secret: long and unique, so finding it anywhere
/// is proof of a leak.
const SECRET_VALUE: &str = "s3cret-5f1d2c7a-wasmproc-grant-value";
const SECRET_NAME: &str = "WASMPROC_TEST_TOKEN";

/// The command `sh` is granted: it says whether it got the secret, by
/// comparing with the file the host read it from (so the value itself is
/// in no argument).
fn secret_check(dir: &Path) -> String {
    format!(
        "test \"${SECRET_NAME}\" = \"$(cat {})\" && echo child-has-it",
        dir.join("token").display()
    )
}

/// A policy file granting `sh` one fixed command with the secret (read
/// from a file), `env` with no arguments, `sleep` for a background
/// process, and the guest `*` and the secret's name exactly.
fn secret_policy(dir: &Path) -> Arc<Policy> {
    std::fs::write(dir.join("token"), format!("{SECRET_VALUE}\n")).unwrap();
    let text = format!(
        r#"
[[program]]
name = "sh"
args = [["-c", {check:?}]]
secrets = [{{ name = "{SECRET_NAME}", file = "token" }}]
fs.read = [{dir:?}]

[[program]]
name = "env"
args = [[]]

[[program]]
name = "sleep"
args = [["*"]]

[env]
allow = ["*", "{SECRET_NAME}"]
"#,
        check = secret_check(dir),
        dir = dir.display().to_string(),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    Arc::new(Policy::from_file(&path).unwrap())
}

#[test]
fn secret_env_never_reaches_guest_ugly() {
    let dir = tempfile::tempdir().unwrap();
    let policy = secret_policy(dir.path());
    // Through a guest: the program named gets it; `env`, run by the guest
    // through another granted program, shows nothing of it; setting the
    // name (in any case) is refused; get and list show no value.
    let r = probe(
        shared_runtime(),
        Arc::clone(&policy),
        json!([
            {"op": "run", "program": "sh", "args": ["-c", secret_check(dir.path())]},
            {"op": "run", "program": "env", "args": []},
            {"op": "run", "program": "sh", "args": ["-c", secret_check(dir.path())],
             "env": [[SECRET_NAME, "guest-value"]]},
            {"op": "run", "program": "env", "args": [], "env": [[SECRET_NAME.to_lowercase(), "x"]]},
            {"op": "start", "program": "sleep", "args": ["30"]},
            {"op": "get", "id": "$4"},
            {"op": "list"},
            {"op": "kill", "id": "$4"},
        ]),
    );
    assert_eq!(ok(&r[0])["stdout"], "child-has-it\n", "{}", r[0]);
    let env_out = ok(&r[1])["stdout"].as_str().unwrap();
    assert!(!env_out.contains(SECRET_NAME), "{env_out}");
    for refused in &r[2..4] {
        assert_eq!(err_kind(refused), "denied", "{refused}");
        assert!(err_detail(refused).contains("secret"), "{refused}");
    }
    for (i, result) in r.iter().enumerate() {
        assert!(
            !result.to_string().contains(SECRET_VALUE),
            "step {i} shows the secret: {result}"
        );
    }
    // The audit names no value, for allowed and refused calls alike.
    let audit_path = dir.path().join("audit.jsonl");
    let audit = Audit::new().with_sink(Arc::new(JsonLinesSink::open(&audit_path).unwrap()));
    let manager = ProcessManager::builder()
        .grace(std::time::Duration::from_secs(2))
        .host_effects(wasmproc_host::process::HostEffects::ALL)
        .build();
    {
        let mut ctx = ProcessCtx::builder(wasmproc_tests::harness::admit(policy), manager)
            .guest("secretive")
            .audit(audit)
            .build();
        let sh = CommandSpec::new("sh").args(["-c".to_string(), secret_check(dir.path())]);
        let out = block_on(ctx.run(sh.clone())).unwrap();
        assert_eq!(out.stdout, b"child-has-it\n");
        let err = block_on(ctx.run(sh.env(SECRET_NAME, "guest"))).unwrap_err();
        assert!(!err.to_string().contains(SECRET_VALUE), "{err}");
        let id = ctx
            .start(CommandSpec::new("sleep").args(["30"]), StartSpec::default())
            .unwrap();
        let snapshot = format!("{:?}", ctx.get(&id).unwrap());
        assert!(!snapshot.contains(SECRET_VALUE), "{snapshot}");
        block_on(ctx.kill(&id)).unwrap();
    }
    let audit_text = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit_text.contains("\"sh\""), "{audit_text}");
    assert!(!audit_text.contains(SECRET_VALUE), "{audit_text}");
}

#[test]
fn grant_digest_mismatch_bad() {
    // `wasmproc grant` pins its policy to the component; the same policy
    // refuses another build that asks for more, naming both digests and
    // the difference, and still accepts the component it was written for.
    let dir = tempfile::tempdir().unwrap();
    let granted = std::process::Command::new(cli_path())
        .args(["grant", DECLARED])
        .output()
        .unwrap();
    assert!(granted.status.success(), "{granted:?}");
    let policy_text = String::from_utf8(granted.stdout).unwrap();
    let pinned = policy_text
        .lines()
        .find_map(|l| l.strip_prefix("component_digest = \""))
        .map(|d| d.trim_end_matches('"').to_string())
        .unwrap_or_else(|| panic!("no digest in {policy_text}"));
    assert!(pinned.starts_with("blake3:"), "{pinned}");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, &policy_text).unwrap();
    // Another build of the plugin, whose manifest asks for more.
    let manifest = dir.path().join("more.toml");
    std::fs::write(
        &manifest,
        r#"version = 1

[[program]]
name = "echo"
args = [["from", "*"]]
operations = ["run"]
reason = "prints where it runs from"

[[program]]
name = "sh"
operations = ["run"]
reason = "anything at all"
"#,
    )
    .unwrap();
    let other = dir.path().join("other.wasm");
    let added = std::process::Command::new(cli_path())
        .args(["manifest", "add", DECLARED, "--manifest"])
        .arg(&manifest)
        .arg("--output")
        .arg(&other)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let run = |component: &Path| {
        std::process::Command::new(cli_path())
            .arg("run")
            .arg(component)
            .arg("--policy")
            .arg(&policy_path)
            .args(["--", "echo", "from", "test"])
            .output()
            .unwrap()
    };
    let refused = run(&other);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    let actual = wasmproc_host::manifest::ComponentDigest::of_file(&other)
        .unwrap()
        .to_string();
    assert!(
        stderr.contains(&pinned) && stderr.contains(&actual),
        "{stderr}"
    );
    assert!(stderr.contains("+ program sh"), "{stderr}");
    assert!(!stderr.contains("+ program echo"), "{stderr}");
    let accepted = run(Path::new(DECLARED));
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&accepted.stdout), "from test\n");
    // A malformed digest is a load error naming the key.
    std::fs::write(&policy_path, policy_text.replace(&pinned, "sha256:0123")).unwrap();
    let err = Policy::from_file(&policy_path).unwrap_err();
    assert!(err.to_string().contains("component_digest"), "{err}");
}

#[test]
fn inspect_shows_options_operands_and_expansions_good() {
    // `wasmproc inspect --policy` shows, per pattern, the options it names
    // and its operand rule; per variable wildcard, the inert names it
    // expands to; secret names without values; and the pinning.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), SECRET_VALUE).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[[program]]
name = "echo"
args = [["from", "--format=*", "-n", "*", "--", "{{paths}}"]]
env = ["GIT_AUTHOR_*"]
secrets = [{{ name = "{SECRET_NAME}", file = "token" }}]

[env]
allow = ["LC_*", "TERM"]

[dirs]
roots = ["."]
"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(cli_path())
        .args(["inspect", DECLARED, "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "options --format=* -n; one operand, then `--`, then any arguments that are paths inside the roots",
        "GIT_AUTHOR_* -> GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_AUTHOR_DATE",
        "LC_* -> LC_ALL LC_CTYPE",
        "(every program) TERM",
        SECRET_NAME,
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
    assert!(!text.contains(SECRET_VALUE), "{text}");
}

#[test]
fn args_open_attack_warns_at_load_bad() {
    // A pattern written the old way, which leaves one of the program's
    // catalogued attacks open, warns at load, quoting the pattern, what
    // gets through and the advised narrowing; the narrowing itself does not.
    let wide = Policy::builder()
        .allow_program_args("dd", &[&["**"]])
        .allow_program_args("find", &[&["*", "-exec", "*", ";"]])
        .build()
        .unwrap();
    let warnings = wide.warnings().join("\n");
    assert!(
        warnings.contains("pattern `**` still lets through `of=/tmp/x`")
            && warnings.contains(r#"args = [["if=/path/to/in", "status=none"]]"#),
        "{warnings}"
    );
    assert!(
        warnings.contains("pattern `* -exec * ;` still lets through `-exec`"),
        "{warnings}"
    );
    let narrow = Policy::builder()
        .allow_program_args("dd", &[&["if=/path/to/in", "status=none"]])
        .allow_program_args("find", &[&["*", "-name", "*", "-print"]])
        .build()
        .unwrap();
    assert!(narrow.warnings().is_empty(), "{:?}", narrow.warnings());
}
