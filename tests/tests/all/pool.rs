//! The instance pool: a slot reused by a later guest shows it nothing of
//! the guest before, whether the slot's memory was returned to the kernel
//! or kept resident and reset in place.

use std::sync::Arc;
use wasmproc_host::GuestOptions;
use wasmproc_host::GuestStdio;
use wasmproc_host::Policy;
use wasmproc_host::RuntimeConfig;
use wasmproc_host::embed::InstancePool;
use wasmproc_tests::guests;
use wasmproc_tests::harness;

/// A pool of one guest with one memory, so every instance takes the same
/// slot, keeping `keep_resident` bytes of its memory resident.
fn one_slot_pool(keep_resident: usize) -> InstancePool {
    InstancePool {
        guests: 1,
        core_instances: 64,
        memories: 1,
        tables: 16,
        memory_keep_resident: keep_resident,
        ..InstancePool::default()
    }
}

#[test]
fn pool_reused_slot_shows_no_residue_ugly() {
    // Nothing kept resident, the default, and more than the guest's whole
    // memory (its data, `.bss` and the pages it grows are all reset in
    // place then).
    for keep_resident in [0, InstancePool::default().memory_keep_resident, 32 << 20] {
        let runtime = harness::own_runtime(RuntimeConfig {
            pool: Some(one_slot_pool(keep_resident)),
            ..RuntimeConfig::default()
        });
        let component = harness::component(&runtime, guests::RESIDUE);
        let pre = runtime.prepare(&component).expect("prepare");
        for round in 0..3 {
            let outcome = runtime
                .instantiate(
                    &pre,
                    GuestOptions {
                        name: "residue".into(),
                        args: vec![],
                        policy: Arc::new(Policy::builder().build().expect("policy")),
                        stdio: GuestStdio::Capture,
                    },
                )
                .expect("instantiate")
                .run()
                .expect("run");
            let stdout = String::from_utf8_lossy(&outcome.stdout);
            assert_eq!(
                (outcome.exit_code, stdout.starts_with("pristine")),
                (0, true),
                "round {round}, {keep_resident} bytes kept resident: the guest saw \
                 what an earlier guest of its slot left: {stdout}"
            );
        }
    }
}
