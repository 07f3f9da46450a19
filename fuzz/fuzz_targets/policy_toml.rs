//! The policy loader: any text as a policy file. Never panics; a policy
//! that loads has been checked (its limits and grants are usable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmproc_host::policy::{PolicyBuilder, PolicySpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = PolicySpec::parse(text) else {
        return;
    };
    if let Ok(policy) = PolicyBuilder::from_spec(spec)
        .base_dir("/nonexistent-wasmproc-fuzz")
        .build()
    {
        for grant in policy.programs() {
            assert!(
                grant.path.is_absolute(),
                "a granted program was not resolved: {grant:?}"
            );
        }
    }
});
