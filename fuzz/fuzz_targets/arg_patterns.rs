//! Argument patterns, checked against the reference matcher: a policy
//! built from TOML with the drawn patterns loads exactly when the
//! specification says it must, and admits an argument list exactly when
//! the specification matches it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use wasmproc_fuzz::input::PatternCase;
use wasmproc_fuzz::{reference, toml_patterns};
use wasmproc_host::policy::{CommandRequest, Operation, PolicyBuilder, PolicySpec};
use wasmproc_host::{Admission, CallError};

fuzz_target!(|case: PatternCase| {
    if case.args.iter().any(|a| a.contains('\0')) {
        return;
    }
    let text = format!(
        "[[program]]\nname = \"echo\"\nargs = {}\n",
        toml_patterns(&case.patterns)
    );
    let spec = PolicySpec::parse(&text).expect("the TOML written is valid");
    let built = PolicyBuilder::from_spec(spec).build();
    // The path placeholders stand for the file system and the granted
    // roots, which the specification does not model: a pattern that names
    // one is left out, but one inside an operand-like element (not the
    // whole element, not an option's value) must be refused when it loads.
    let placeholder = |e: &String| e.contains("{path}") || e.contains("{paths}");
    if case.patterns.iter().flatten().any(placeholder) {
        let misplaced = case
            .patterns
            .iter()
            .flatten()
            .any(|e| placeholder(e) && !e.starts_with('-') && e != "{path}" && e != "{paths}");
        assert!(
            !misplaced || built.is_err(),
            "a placeholder inside an element was loaded: {:?}",
            case.patterns
        );
        return;
    }
    let specified: Option<Vec<_>> = case.patterns.iter().map(|p| reference::parse(p)).collect();
    let (policy, patterns) = match (built, specified) {
        (Ok(policy), Some(patterns)) => (policy, patterns),
        (Err(_), None) => return,
        (Err(e), Some(_)) => panic!("patterns the specification accepts were refused: {e}"),
        (Ok(_), None) => panic!("patterns the specification refuses were loaded"),
    };
    if patterns
        .iter()
        .any(|p| reference::unspecified(p, &case.args))
    {
        return;
    }
    let expected = patterns.iter().any(|p| reference::matches(p, &case.args));
    let got = Admission::policy_only(Arc::new(policy))
        .expect("admitted")
        .approve(
            Operation::Run,
            CommandRequest {
                program: "echo",
                args: &case.args,
                env: &[],
                cwd: None,
            },
        );
    match (expected, got) {
        (true, Ok(_)) | (false, Err(CallError::Denied(_))) => {}
        (expected, got) => panic!("the specification says {expected}, the policy {got:?}"),
    }
});
