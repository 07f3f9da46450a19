//! The Python and JavaScript SDKs (`guest-sdk/python`, `guest-sdk/js`)
//! against the standard modules they are shaped like: each SDK's parity
//! guest runs cases ported from CPython's `test_subprocess.py` or Node's
//! `test-child-process-*.js` and prints `case NAME: pass`, `fail: WHY` or
//! `difference: WHAT` (a deliberate difference, itself checked by the
//! case). The guest runs once per language and test process; each case is
//! one test here. Then what a denial looks like in each language, and a
//! JSON-RPC conversation through `Popen` pipes.
//!
//! The guests are built by `scripts/build-polyglot.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use wasmproc_tests::polyglot::{self, Run};

/// What a case is expected to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Behaves as the standard module does.
    Pass,
    /// A deliberate, documented difference, which the case checks.
    Difference,
}

/// A parity guest's run: its output and the outcome it printed per case.
struct Parity {
    run: Run,
    outcomes: BTreeMap<String, String>,
}

/// Programs the parity guests' children are.
const CHILDREN: &[&str] = &["sh", "cat", "echo", "sleep", "env", "pwd", "tr", "true"];

/// The directory the parity guests get as a working-directory root.
fn work_dir() -> PathBuf {
    let dir = polyglot::dir().join("parity-cwd");
    std::fs::create_dir_all(&dir).expect("create the parity directory");
    dir.canonicalize().expect("canonical parity directory")
}

/// Runs a parity guest with every child granted, `FRUIT` settable and
/// the work directory granted.
fn parity_run(file: &str) -> Parity {
    let dir = work_dir();
    let dir = dir.to_str().expect("a UTF-8 path");
    let mut flags = polyglot::allow(CHILDREN);
    flags.extend(["--allow-env", "FRUIT", "--allow-dir", dir].map(String::from));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let run = polyglot::run(file, &flags, &["parity", dir]);
    assert_eq!(run.code, 0, "the parity guest failed: {run:#?}");
    let outcomes = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("case "))
        .filter_map(|line| line.split_once(": "))
        .map(|(name, outcome)| (name.to_string(), outcome.to_string()))
        .collect();
    Parity { run, outcomes }
}

fn python() -> &'static Parity {
    static RUN: OnceLock<Parity> = OnceLock::new();
    RUN.get_or_init(|| parity_run(polyglot::PYTHON_PARITY))
}

fn js() -> &'static Parity {
    static RUN: OnceLock<Parity> = OnceLock::new();
    RUN.get_or_init(|| parity_run(polyglot::JS_PARITY))
}

/// Asserts the outcome the guest printed for `case`.
fn check(parity: &Parity, case: &str, expect: Expect) {
    let Some(outcome) = parity.outcomes.get(case) else {
        panic!("the guest printed no outcome for {case}: {:#?}", parity.run);
    };
    eprintln!("case {case}: {outcome}");
    match expect {
        Expect::Pass => assert_eq!(outcome, "pass", "case {case}"),
        Expect::Difference => assert!(
            outcome.starts_with("difference: "),
            "case {case} should show its deliberate difference: {outcome}"
        ),
    }
}

/// One test per case, and one that the guest ran exactly these cases.
macro_rules! parity_tests {
    ($guest:ident, $all:ident, $($test:ident: $case:literal => $expect:ident,)*) => {
        $(
            #[test]
            fn $test() {
                check($guest(), $case, Expect::$expect);
            }
        )*

        /// The guest reports exactly the cases tested here, each once.
        #[test]
        fn $all() {
            let printed: Vec<&str> = $guest().outcomes.keys().map(String::as_str).collect();
            let mut tested = vec![$($case),*];
            tested.sort_unstable();
            assert_eq!(printed, tested);
        }
    };
}

// Cases of CPython's Lib/test/test_subprocess.py (guest-sdk/python/parity/cases.py).
parity_tests!(
    python,
    sdk_python_subprocess_parity_cases_complete_good,
    sdk_python_subprocess_parity_call_seq: "call_seq" => Pass,
    sdk_python_subprocess_parity_call_timeout: "call_timeout" => Pass,
    sdk_python_subprocess_parity_check_call_zero: "check_call_zero" => Pass,
    sdk_python_subprocess_parity_check_call_nonzero: "check_call_nonzero" => Pass,
    sdk_python_subprocess_parity_check_output: "check_output" => Pass,
    sdk_python_subprocess_parity_check_output_nonzero: "check_output_nonzero" => Pass,
    sdk_python_subprocess_parity_check_output_stderr: "check_output_stderr" => Pass,
    sdk_python_subprocess_parity_check_output_input_arg: "check_output_input_arg" => Pass,
    sdk_python_subprocess_parity_check_output_input_none: "check_output_input_none" => Pass,
    sdk_python_subprocess_parity_check_output_input_none_text: "check_output_input_none_text" => Pass,
    sdk_python_subprocess_parity_check_output_input_none_universal_newlines: "check_output_input_none_universal_newlines" => Pass,
    sdk_python_subprocess_parity_check_output_stdout_arg: "check_output_stdout_arg" => Pass,
    sdk_python_subprocess_parity_check_output_stdin_with_input_arg: "check_output_stdin_with_input_arg" => Pass,
    sdk_python_subprocess_parity_check_output_timeout: "check_output_timeout" => Difference,
    sdk_python_subprocess_parity_run_returncode: "run_returncode" => Pass,
    sdk_python_subprocess_parity_run_check: "run_check" => Pass,
    sdk_python_subprocess_parity_run_check_zero: "run_check_zero" => Pass,
    sdk_python_subprocess_parity_run_timeout: "run_timeout" => Pass,
    sdk_python_subprocess_parity_run_capture_stdout: "run_capture_stdout" => Pass,
    sdk_python_subprocess_parity_run_capture_stderr: "run_capture_stderr" => Pass,
    sdk_python_subprocess_parity_run_check_output_input_arg: "run_check_output_input_arg" => Pass,
    sdk_python_subprocess_parity_run_check_output_stdin_with_input_arg: "run_check_output_stdin_with_input_arg" => Pass,
    sdk_python_subprocess_parity_run_capture_output: "run_capture_output" => Pass,
    sdk_python_subprocess_parity_run_stdout_with_capture_output_arg: "run_stdout_with_capture_output_arg" => Pass,
    sdk_python_subprocess_parity_run_stderr_with_capture_output_arg: "run_stderr_with_capture_output_arg" => Pass,
    sdk_python_subprocess_parity_run_with_pathlike_path: "run_with_pathlike_path" => Pass,
    sdk_python_subprocess_parity_run_kwargs: "run_kwargs" => Pass,
    sdk_python_subprocess_parity_run_text_mode: "run_text_mode" => Pass,
    sdk_python_subprocess_parity_completed_process_check_returncode: "completed_process_check_returncode" => Pass,
    sdk_python_subprocess_parity_stdout_none: "stdout_none" => Pass,
    sdk_python_subprocess_parity_env: "env" => Pass,
    sdk_python_subprocess_parity_empty_env: "empty_env" => Pass,
    sdk_python_subprocess_parity_env_none_not_inherited: "env_none_not_inherited" => Difference,
    sdk_python_subprocess_parity_cwd: "cwd" => Pass,
    sdk_python_subprocess_parity_cwd_pathlike: "cwd_pathlike" => Pass,
    sdk_python_subprocess_parity_exception_cwd: "exception_cwd" => Pass,
    sdk_python_subprocess_parity_args_string: "args_string" => Pass,
    sdk_python_subprocess_parity_shell_string: "shell_string" => Pass,
    sdk_python_subprocess_parity_invalid_args: "invalid_args" => Pass,
    sdk_python_subprocess_parity_getoutput: "getoutput" => Pass,
    sdk_python_subprocess_parity_stdin_pipe: "stdin_pipe" => Pass,
    sdk_python_subprocess_parity_stdin_devnull: "stdin_devnull" => Pass,
    sdk_python_subprocess_parity_stdout_pipe: "stdout_pipe" => Pass,
    sdk_python_subprocess_parity_stdout_devnull: "stdout_devnull" => Pass,
    sdk_python_subprocess_parity_stderr_pipe: "stderr_pipe" => Pass,
    sdk_python_subprocess_parity_stderr_devnull: "stderr_devnull" => Pass,
    sdk_python_subprocess_parity_stdout_stderr_pipe: "stdout_stderr_pipe" => Difference,
    sdk_python_subprocess_parity_universal_newlines_and_text: "universal_newlines_and_text" => Pass,
    sdk_python_subprocess_parity_readline_iteration: "readline_iteration" => Pass,
    sdk_python_subprocess_parity_stdin_text_write: "stdin_text_write" => Pass,
    sdk_python_subprocess_parity_communicate: "communicate" => Pass,
    sdk_python_subprocess_parity_communicate_returns: "communicate_returns" => Pass,
    sdk_python_subprocess_parity_communicate_stdin: "communicate_stdin" => Pass,
    sdk_python_subprocess_parity_communicate_stdout: "communicate_stdout" => Pass,
    sdk_python_subprocess_parity_communicate_stderr: "communicate_stderr" => Pass,
    sdk_python_subprocess_parity_communicate_timeout: "communicate_timeout" => Pass,
    sdk_python_subprocess_parity_communicate_pipe_buf: "communicate_pipe_buf" => Pass,
    sdk_python_subprocess_parity_communicate_epipe: "communicate_epipe" => Pass,
    sdk_python_subprocess_parity_writes_before_communicate: "writes_before_communicate" => Pass,
    sdk_python_subprocess_parity_universal_newlines_communicate: "universal_newlines_communicate" => Pass,
    sdk_python_subprocess_parity_universal_newlines_communicate_stdin: "universal_newlines_communicate_stdin" => Pass,
    sdk_python_subprocess_parity_universal_newlines_communicate_input_none: "universal_newlines_communicate_input_none" => Pass,
    sdk_python_subprocess_parity_communicate_encodings: "communicate_encodings" => Pass,
    sdk_python_subprocess_parity_communicate_errors: "communicate_errors" => Pass,
    sdk_python_subprocess_parity_poll: "poll" => Pass,
    sdk_python_subprocess_parity_wait: "wait" => Pass,
    sdk_python_subprocess_parity_wait_timeout: "wait_timeout" => Pass,
    sdk_python_subprocess_parity_context_manager: "context_manager" => Pass,
    sdk_python_subprocess_parity_returncode_context_manager: "returncode_context_manager" => Pass,
    sdk_python_subprocess_parity_send_signal: "send_signal" => Pass,
    sdk_python_subprocess_parity_terminate: "terminate" => Pass,
    sdk_python_subprocess_parity_kill: "kill" => Difference,
    sdk_python_subprocess_parity_send_signal_kill: "send_signal_kill" => Pass,
    sdk_python_subprocess_parity_send_signal_dead: "send_signal_dead" => Pass,
    sdk_python_subprocess_parity_kill_dead: "kill_dead" => Pass,
    sdk_python_subprocess_parity_terminate_dead: "terminate_dead" => Pass,
    sdk_python_subprocess_parity_pid: "pid" => Pass,
    sdk_python_subprocess_parity_repr: "repr" => Pass,
    sdk_python_subprocess_parity_called_process_error_str_non_zero: "called_process_error_str_non_zero" => Pass,
    sdk_python_subprocess_parity_called_process_error_str_signal: "called_process_error_str_signal" => Pass,
);

// Cases of Node's test/parallel/test-child-process-*.js (guest-sdk/js/parity/cases.js).
parity_tests!(
    js,
    sdk_js_child_process_parity_cases_complete_good,
    sdk_js_child_process_parity_exec_file_stdout: "exec_file_stdout" => Pass,
    sdk_js_child_process_parity_exec_file_exit_code: "exec_file_exit_code" => Pass,
    sdk_js_child_process_parity_exec_stdout_stderr: "exec_stdout_stderr" => Pass,
    sdk_js_child_process_parity_exec_file_encoding_buffer: "exec_file_encoding_buffer" => Pass,
    sdk_js_child_process_parity_exec_file_timeout: "exec_file_timeout" => Pass,
    sdk_js_child_process_parity_exec_file_timeout_kill_signal: "exec_file_timeout_kill_signal" => Pass,
    sdk_js_child_process_parity_exec_maxbuffer_stdout: "exec_maxbuffer_stdout" => Pass,
    sdk_js_child_process_parity_exec_maxbuffer_stderr: "exec_maxbuffer_stderr" => Pass,
    sdk_js_child_process_parity_exec_maxbuffer_at_limit: "exec_maxbuffer_at_limit" => Pass,
    sdk_js_child_process_parity_exec_file_promisified: "exec_file_promisified" => Pass,
    sdk_js_child_process_parity_exec_file_promisified_rejects: "exec_file_promisified_rejects" => Pass,
    sdk_js_child_process_parity_exec_file_promisified_child: "exec_file_promisified_child" => Pass,
    sdk_js_child_process_parity_spawn_sync_status: "spawn_sync_status" => Pass,
    sdk_js_child_process_parity_spawn_sync_stdout: "spawn_sync_stdout" => Pass,
    sdk_js_child_process_parity_spawn_sync_input_string: "spawn_sync_input_string" => Pass,
    sdk_js_child_process_parity_spawn_sync_input_bytes: "spawn_sync_input_bytes" => Pass,
    sdk_js_child_process_parity_spawn_sync_encoding: "spawn_sync_encoding" => Pass,
    sdk_js_child_process_parity_spawn_sync_timeout: "spawn_sync_timeout" => Pass,
    sdk_js_child_process_parity_spawn_sync_kill_signal: "spawn_sync_kill_signal" => Pass,
    sdk_js_child_process_parity_spawn_sync_maxbuffer: "spawn_sync_maxbuffer" => Pass,
    sdk_js_child_process_parity_spawn_sync_env: "spawn_sync_env" => Pass,
    sdk_js_child_process_parity_spawn_sync_enoent: "spawn_sync_enoent" => Pass,
    sdk_js_child_process_parity_exec_file_sync_stdout: "exec_file_sync_stdout" => Pass,
    sdk_js_child_process_parity_exec_file_sync_throws: "exec_file_sync_throws" => Pass,
    sdk_js_child_process_parity_exec_sync: "exec_sync" => Pass,
    sdk_js_child_process_parity_spawn_exit_code: "spawn_exit_code" => Pass,
    sdk_js_child_process_parity_spawn_event: "spawn_event" => Pass,
    sdk_js_child_process_parity_spawn_stdout_data_end: "spawn_stdout_data_end" => Pass,
    sdk_js_child_process_parity_spawn_stdin: "spawn_stdin" => Pass,
    sdk_js_child_process_parity_spawn_stdout_async_iterator: "spawn_stdout_async_iterator" => Pass,
    sdk_js_child_process_parity_spawn_kill: "spawn_kill" => Pass,
    sdk_js_child_process_parity_spawn_kill_sigkill: "spawn_kill_sigkill" => Pass,
    sdk_js_child_process_parity_spawn_kill_after_exit: "spawn_kill_after_exit" => Pass,
    sdk_js_child_process_parity_spawn_timeout_kill_signal: "spawn_timeout_kill_signal" => Pass,
    sdk_js_child_process_parity_spawn_cwd: "spawn_cwd" => Pass,
    sdk_js_child_process_parity_spawn_cwd_enoent: "spawn_cwd_enoent" => Pass,
    sdk_js_child_process_parity_spawn_env: "spawn_env" => Pass,
    sdk_js_child_process_parity_spawn_stdio_ignore: "spawn_stdio_ignore" => Pass,
    sdk_js_child_process_parity_spawn_stdio_array: "spawn_stdio_array" => Pass,
    sdk_js_child_process_parity_spawn_shell: "spawn_shell" => Pass,
    sdk_js_child_process_parity_spawn_typeerror: "spawn_typeerror" => Pass,
    sdk_js_child_process_parity_spawn_pid: "spawn_pid" => Pass,
    sdk_js_child_process_parity_env_starts_empty: "env_starts_empty" => Difference,
    sdk_js_child_process_parity_output_is_uint8array: "output_is_uint8array" => Difference,
);

/// `run(stdout=None)` writes the child's output to the guest's own stdout.
#[test]
fn sdk_python_stdout_none_forwarded_good() {
    check(python(), "stdout_none", Expect::Pass);
    python().run.assert_has("stdout-none-marker");
}

/// A denial is `wasmproc.Denied`, a `PermissionError` (errno EACCES) with
/// the host's reason and the WIT error, from `run`, `check_output` and
/// `Popen` alike, for a program the plugin declared but the host did not
/// grant, one it never declared, and a shell that is not granted.
#[test]
fn sdk_python_denied_is_permission_error_good() {
    let run = polyglot::run(polyglot::PYTHON_PARITY, &["--allow", "echo"], &["denied"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let denied = "PermissionError denied=True eacces=True wit=Error_Denied reason=";
    let not_granted = "declared by the plugin, not granted by this host";
    for what in ["run", "check_output", "popen", "shell"] {
        run.assert_has_prefix(&format!("{what}: {denied}{not_granted}"));
    }
    run.assert_has(&format!(
        "undeclared: {denied}program `curl` is not declared by the plugin"
    ));
}

/// A denial is an `EACCES` error with the host's reason in its message
/// and the WIT error as `witError`: returned by `spawnSync`, thrown by
/// `execFileSync`, emitted as 'error' by `spawn` (which gets no pid).
#[test]
fn sdk_js_denied_eacces_good() {
    let run = polyglot::run(polyglot::JS_PARITY, &["--allow", "echo"], &["denied"]);
    assert_eq!(run.code, 0, "{run:#?}");
    for what in ["spawnSync", "execFileSync", "spawn", "shell"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{what}: ")))
            .unwrap_or_else(|| panic!("no line for {what}: {run:#?}"));
        assert!(
            line.starts_with(&format!("{what}: code=EACCES wit=denied message=")),
            "{line}"
        );
        assert!(
            line.contains(
                "EACCES: denied by policy: declared by the plugin, not granted by this host"
            ),
            "{line}"
        );
    }
    run.assert_has("spawn pid: undefined");
}

/// A Python guest holds a JSON-RPC conversation (framed as the Language
/// Server Protocol frames it) with a child through `Popen` pipes:
/// requests written to its stdin, answers read from its stdout in turn.
#[test]
fn sdk_python_popen_streams_lsp_good() {
    // The system's python3: a version manager's shim on PATH (pyenv's is
    // a shell script that runs pyenv from the user's home) would need its
    // home directory granted to the confined child (`fs.read`).
    let run = polyglot::run_with_env(
        polyglot::PYTHON_PARITY,
        &["--allow", "python3"],
        &["lsp"],
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    for line in [
        "initialize: tiny-lsp hover=True",
        "hover: hover at line 3",
        "hover: hover at line 14",
        "unknown: error -32601",
        "shutdown: result=None",
        "exit: 0",
    ] {
        run.assert_has(line);
    }
}
