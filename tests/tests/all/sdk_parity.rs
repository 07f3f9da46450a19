//! std's Unix process tests, re-expressed with the guest SDK and run by the
//! `parity` guest (see `tests/guests/src/bin/parity.rs`): one test per
//! case. A case that behaves as in std prints `same as std`; a deliberate
//! difference prints what the SDK does, and the test asserts that it
//! differs from std.

use std::sync::{Arc, OnceLock};
use wasmproc_host::Policy;
use wasmproc_tests::guests::PARITY;
use wasmproc_tests::harness::{run_guest, shared_runtime};

/// The grants std's cases need: the programs they run, the variables they
/// set, and `/` (where `set_current_dir_works` runs `pwd`).
fn parity_policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    Arc::clone(POLICY.get_or_init(|| {
        let policy = Policy::builder()
            .allow_program("/bin/sh")
            .allow_program("echo")
            .allow_program("env")
            .allow_program("mkdir")
            .allow_env("RUN_TEST_NEW_ENV")
            .allow_env("RUN_TEST_NEW_ENV1")
            .allow_env("RUN_TEST_NEW_ENV2")
            .allow_dir("/")
            .build()
            .expect("parity policy");
        Arc::new(policy)
    }))
}

/// Runs one case and returns the line it printed; fails the test, showing
/// the guest's panic, if the case's assertions failed.
fn observe(case: &str) -> String {
    let outcome = run_guest(shared_runtime(), PARITY, &[case], parity_policy());
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.exit_code,
        0,
        "case `{case}` failed; stdout: {stdout}; stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    stdout.trim_end().to_owned()
}

/// Asserts that a case passed std's own assertions.
fn assert_same_as_std(case: &str) {
    assert_eq!(observe(case), "same as std", "case `{case}`");
}

#[test]
fn sdk_std_parity_smoke() {
    assert_same_as_std("smoke");
}

#[test]
fn sdk_std_parity_smoke_failure() {
    assert_same_as_std("smoke_failure");
}

#[test]
fn sdk_std_parity_exit_reported_right() {
    assert_same_as_std("exit_reported_right");
}

#[test]
fn sdk_std_parity_signal_reported_right() {
    // The deliberate difference: std's `kill` is SIGKILL, and std asserts
    // signal 9. The SDK's `kill` sends SIGTERM first, and `sh` ends on it.
    let observed = observe("signal_reported_right");
    assert_ne!(observed, "signal: 9 (SIGKILL)", "std's result");
    assert_eq!(observed, "signal: 15 (SIGTERM)");
}

#[test]
fn sdk_std_parity_stdout_works() {
    assert_same_as_std("stdout_works");
}

#[test]
fn sdk_std_parity_set_current_dir_works() {
    assert_same_as_std("set_current_dir_works");
}

#[test]
fn sdk_std_parity_stdin_works() {
    assert_same_as_std("stdin_works");
}

#[test]
fn sdk_std_parity_child_stdout_read_buf() {
    assert_same_as_std("child_stdout_read_buf");
}

#[test]
fn sdk_std_parity_test_process_status() {
    assert_same_as_std("test_process_status");
}

#[test]
fn sdk_std_parity_test_process_output_fail_to_start() {
    // A difference: std reports NotFound for a missing program; the policy
    // refuses an ungranted one before any lookup.
    let observed = observe("test_process_output_fail_to_start");
    assert_ne!(observed, "NotFound", "std's result");
    assert_eq!(observed, "PermissionDenied");
}

#[test]
fn sdk_std_parity_test_process_output_output() {
    assert_same_as_std("test_process_output_output");
}

#[test]
fn sdk_std_parity_test_process_output_error() {
    assert_same_as_std("test_process_output_error");
}

#[test]
fn sdk_std_parity_test_finish_once() {
    assert_same_as_std("test_finish_once");
}

#[test]
fn sdk_std_parity_test_finish_twice() {
    assert_same_as_std("test_finish_twice");
}

#[test]
fn sdk_std_parity_test_wait_with_output_once() {
    assert_same_as_std("test_wait_with_output_once");
}

#[test]
fn sdk_std_parity_test_override_env() {
    assert_same_as_std("test_override_env");
}

#[test]
fn sdk_std_parity_test_add_to_env() {
    assert_same_as_std("test_add_to_env");
}

#[test]
fn sdk_std_parity_test_capture_env_at_spawn() {
    // A difference: std's child inherits the parent's environment at spawn
    // time; a started program's environment starts empty.
    let observed = observe("test_capture_env_at_spawn");
    assert_ne!(
        observed, "RUN_TEST_NEW_ENV2 inherited: true",
        "std's result"
    );
    assert_eq!(observed, "RUN_TEST_NEW_ENV2 inherited: false");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_progname_is_error() {
    assert_same_as_std("test_interior_nul_in_progname_is_error");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_arg_is_error() {
    assert_same_as_std("test_interior_nul_in_arg_is_error");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_args_is_error() {
    assert_same_as_std("test_interior_nul_in_args_is_error");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_current_dir_is_error() {
    assert_same_as_std("test_interior_nul_in_current_dir_is_error");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_env_key_is_error() {
    assert_same_as_std("test_interior_nul_in_env_key_is_error");
}

#[test]
fn sdk_std_parity_test_interior_nul_in_env_value_is_error() {
    assert_same_as_std("test_interior_nul_in_env_value_is_error");
}

#[test]
fn sdk_std_parity_test_command_implements_send_sync() {
    assert_same_as_std("test_command_implements_send_sync");
}

#[test]
fn sdk_std_parity_terminate_exited_process() {
    assert_same_as_std("terminate_exited_process");
}

#[test]
fn sdk_std_parity_wait_with_output_reads_both_streams() {
    // Beyond std's cases: 1 MiB to stderr before any stdout, more than the
    // host buffers, must not stall `wait_with_output`.
    assert_same_as_std("wait_with_output_reads_both_streams");
}

#[test]
fn sdk_std_parity_getters() {
    // Beyond std's cases: `get_program`, `get_args`, `get_envs` and
    // `get_current_dir` give back what was set, as std's do.
    assert_same_as_std("getters");
}

#[test]
fn sdk_std_parity_wait_closes_stdin() {
    // Beyond std's cases: `wait` closes a piped stdin first, as std's does.
    assert_same_as_std("wait_closes_stdin");
}
