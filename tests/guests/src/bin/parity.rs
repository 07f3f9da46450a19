//! std's own Unix process tests (`library/std/src/process/tests.rs`),
//! re-expressed with the guest SDK: `parity CASE` runs one case and prints
//! one line saying what it observed.
//!
//! A case that behaves as in std prints `same as std`; its assertions are
//! std's. A case where the SDK differs on purpose asserts the SDK's
//! behaviour and prints what it observed, so the host test can assert the
//! difference. A failed assertion panics, and the guest exits non-zero.
//!
//! The host grants `/bin/sh`, `echo`, `env` and `mkdir`, the variables
//! `RUN_TEST_NEW_ENV*`, and the directory `/`.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};

use wasmproc_guest::{Command, Error, Output, Stdio};

/// What a case prints when it behaves as in std.
const SAME: &str = "same as std";

fn shell_cmd() -> Command {
    Command::new("/bin/sh")
}

fn known_command() -> Command {
    Command::new("echo")
}

fn env_cmd() -> Command {
    Command::new("env")
}

fn main() {
    let case = std::env::args().nth(1).expect("usage: parity CASE");
    let observed = match case.as_str() {
        "smoke" => smoke(),
        "smoke_failure" => smoke_failure(),
        "exit_reported_right" => exit_reported_right(),
        "signal_reported_right" => signal_reported_right(),
        "stdout_works" => stdout_works(),
        "set_current_dir_works" => set_current_dir_works(),
        "stdin_works" => stdin_works(),
        "child_stdout_read_buf" => child_stdout_read_buf(),
        "test_process_status" => test_process_status(),
        "test_process_output_fail_to_start" => test_process_output_fail_to_start(),
        "test_process_output_output" => test_process_output_output(),
        "test_process_output_error" => test_process_output_error(),
        "test_finish_once" => test_finish_once(),
        "test_finish_twice" => test_finish_twice(),
        "test_wait_with_output_once" => test_wait_with_output_once(),
        "test_override_env" => test_override_env(),
        "test_add_to_env" => test_add_to_env(),
        "test_capture_env_at_spawn" => test_capture_env_at_spawn(),
        "test_interior_nul_in_progname_is_error" => {
            nul_is_invalid(Command::new("has-some-\0\0s-inside").spawn())
        }
        "test_interior_nul_in_arg_is_error" => {
            nul_is_invalid(known_command().arg("has-some-\0\0s-inside").spawn())
        }
        "test_interior_nul_in_args_is_error" => {
            nul_is_invalid(known_command().args(["has-some-\0\0s-inside"]).spawn())
        }
        "test_interior_nul_in_current_dir_is_error" => {
            nul_is_invalid(known_command().current_dir("has-some-\0\0s-inside").spawn())
        }
        "test_interior_nul_in_env_key_is_error" => {
            nul_is_invalid(env_cmd().env("has-some-\0\0s-inside", "value").spawn())
        }
        "test_interior_nul_in_env_value_is_error" => {
            nul_is_invalid(env_cmd().env("key", "has-some-\0\0s-inside").spawn())
        }
        "test_command_implements_send_sync" => test_command_implements_send_sync(),
        "terminate_exited_process" => terminate_exited_process(),
        "wait_with_output_reads_both_streams" => wait_with_output_reads_both_streams(),
        "getters" => getters(),
        "wait_closes_stdin" => wait_closes_stdin(),
        other => panic!("unknown case `{other}`"),
    };
    println!("{observed}");
}

fn smoke() -> String {
    let p = shell_cmd().arg("-c").arg("true").spawn();
    assert!(p.is_ok());
    let mut p = p.unwrap();
    assert!(p.wait().unwrap().success());
    SAME.into()
}

fn smoke_failure() -> String {
    assert!(
        Command::new("if-this-is-a-binary-then-the-world-has-ended")
            .spawn()
            .is_err()
    );
    SAME.into()
}

fn exit_reported_right() -> String {
    let p = shell_cmd().arg("-c").arg("false").spawn();
    assert!(p.is_ok());
    let mut p = p.unwrap();
    assert!(p.wait().unwrap().code() == Some(1));
    drop(p.wait());
    SAME.into()
}

/// The deliberate difference: std's `kill` sends SIGKILL (signal 9); the
/// SDK's sends SIGTERM first, and `sh` ends on it.
fn signal_reported_right() -> String {
    let mut p = shell_cmd()
        .arg("-c")
        .arg("read a")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    p.kill().unwrap();
    let status = p.wait().unwrap();
    assert_eq!(status.code(), None, "{status}");
    format!("{status}")
}

fn run_output(cmd: &mut Command) -> String {
    let p = cmd.spawn();
    assert!(p.is_ok());
    let mut p = p.unwrap();
    assert!(p.stdout.is_some());
    let mut ret = String::new();
    p.stdout.as_mut().unwrap().read_to_string(&mut ret).unwrap();
    assert!(p.wait().unwrap().success());
    ret
}

fn stdout_works() -> String {
    let mut cmd = shell_cmd();
    cmd.arg("-c").arg("echo foobar").stdout(Stdio::piped());
    assert_eq!(run_output(&mut cmd), "foobar\n");
    SAME.into()
}

fn set_current_dir_works() -> String {
    let mut cmd = shell_cmd();
    cmd.arg("-c")
        .arg("pwd")
        .current_dir("/")
        .stdout(Stdio::piped());
    assert_eq!(run_output(&mut cmd), "/\n");
    SAME.into()
}

fn stdin_works() -> String {
    let mut p = shell_cmd()
        .arg("-c")
        .arg("read line; echo $line")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin
        .as_mut()
        .unwrap()
        .write_all("foobar".as_bytes())
        .unwrap();
    drop(p.stdin.take());
    let mut out = String::new();
    p.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
    assert!(p.wait().unwrap().success());
    assert_eq!(out, "foobar\n");
    SAME.into()
}

/// std reads into an uninitialised buffer with the unstable `read_buf`;
/// here one `read` into a buffer of the same size.
fn child_stdout_read_buf() -> String {
    let mut cmd = shell_cmd();
    cmd.arg("-c").arg("echo abc");
    cmd.stdin(Stdio::null());
    cmd.stdout(Stdio::piped());
    let child = cmd.spawn().unwrap();

    let mut stdout = child.stdout.unwrap();
    let mut buf = [0_u8; 128];
    let filled = stdout.read(&mut buf).unwrap();
    assert_eq!(&buf[..filled], b"abc\n");
    SAME.into()
}

fn test_process_status() -> String {
    let mut status = shell_cmd().arg("-c").arg("false").status().unwrap();
    assert!(status.code() == Some(1));

    status = shell_cmd().arg("-c").arg("true").status().unwrap();
    assert!(status.success());
    SAME.into()
}

/// A difference: std finds no such program (`NotFound`); the policy refuses
/// a program it does not grant before anything is looked up.
fn test_process_output_fail_to_start() -> String {
    match Command::new("/no-binary-by-this-name-should-exist").output() {
        Err(e) => {
            assert!(matches!(e, Error::Denied(_)), "{e}");
            format!("{:?}", std::io::Error::from(e).kind())
        }
        Ok(..) => panic!(),
    }
}

fn test_process_output_output() -> String {
    let Output {
        status,
        stdout,
        stderr,
        ..
    } = shell_cmd().arg("-c").arg("echo hello").output().unwrap();
    let output_str = std::str::from_utf8(&stdout).unwrap();

    assert!(status.success());
    assert_eq!(output_str.trim().to_string(), "hello");
    assert_eq!(stderr, Vec::new());
    SAME.into()
}

fn test_process_output_error() -> String {
    let Output {
        status,
        stdout,
        stderr,
        ..
    } = Command::new("mkdir").arg("./").output().unwrap();

    assert!(status.code().is_some());
    assert!(status.code() != Some(0));
    assert_eq!(stdout, Vec::new());
    assert!(!stderr.is_empty());
    SAME.into()
}

fn test_finish_once() -> String {
    let mut prog = shell_cmd().arg("-c").arg("false").spawn().unwrap();
    assert!(prog.wait().unwrap().code() == Some(1));
    SAME.into()
}

fn test_finish_twice() -> String {
    let mut prog = shell_cmd().arg("-c").arg("false").spawn().unwrap();
    assert!(prog.wait().unwrap().code() == Some(1));
    assert!(prog.wait().unwrap().code() == Some(1));
    SAME.into()
}

fn test_wait_with_output_once() -> String {
    let prog = shell_cmd()
        .arg("-c")
        .arg("echo hello")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let Output {
        status,
        stdout,
        stderr,
        ..
    } = prog.wait_with_output().unwrap();
    let output_str = std::str::from_utf8(&stdout).unwrap();

    assert!(status.success());
    assert_eq!(output_str.trim().to_string(), "hello");
    assert_eq!(stderr, Vec::new());
    SAME.into()
}

/// std also passes `PATH` on, for `env` to be found; the host resolves the
/// program itself, and `PATH` is a variable a policy grants only by name.
fn test_override_env() -> String {
    let mut cmd = env_cmd();
    cmd.env_clear().env("RUN_TEST_NEW_ENV", "123");
    let result = cmd.output().unwrap();
    let output = String::from_utf8_lossy(&result.stdout).to_string();

    assert!(
        output.contains("RUN_TEST_NEW_ENV=123"),
        "didn't find RUN_TEST_NEW_ENV inside of:\n\n{output}",
    );
    SAME.into()
}

fn test_add_to_env() -> String {
    let result = env_cmd().env("RUN_TEST_NEW_ENV", "123").output().unwrap();
    let output = String::from_utf8_lossy(&result.stdout).to_string();

    assert!(
        output.contains("RUN_TEST_NEW_ENV=123"),
        "didn't find RUN_TEST_NEW_ENV inside of:\n\n{output}"
    );
    SAME.into()
}

/// A difference: std's child inherits the parent's environment as it is at
/// spawn time; a started program's environment starts empty, so the
/// guest's own variable never reaches it.
fn test_capture_env_at_spawn() -> String {
    let mut cmd = env_cmd();
    cmd.env("RUN_TEST_NEW_ENV1", "123");

    // SAFETY: the guest is single-threaded.
    unsafe { std::env::set_var("RUN_TEST_NEW_ENV2", "456") };
    let result = cmd.output().unwrap();
    // SAFETY: as above.
    unsafe { std::env::remove_var("RUN_TEST_NEW_ENV2") };

    let output = String::from_utf8_lossy(&result.stdout).to_string();
    assert!(
        output.contains("RUN_TEST_NEW_ENV1=123"),
        "didn't find RUN_TEST_NEW_ENV1 inside of:\n\n{output}"
    );
    let inherited = output.contains("RUN_TEST_NEW_ENV2=456");
    format!("RUN_TEST_NEW_ENV2 inherited: {inherited}")
}

fn nul_is_invalid(spawned: Result<wasmproc_guest::Child, Error>) -> String {
    match spawned {
        Err(e) => assert_eq!(std::io::Error::from(e).kind(), ErrorKind::InvalidInput),
        Ok(_) => panic!(),
    }
    SAME.into()
}

fn test_command_implements_send_sync() -> String {
    fn take_send_sync_type<T: Send + Sync>(_: T) {}
    take_send_sync_type(Command::new(""));
    SAME.into()
}

fn terminate_exited_process() -> String {
    let mut cmd = known_command();
    let mut p = cmd.stdout(Stdio::null()).spawn().unwrap();
    p.wait().unwrap();
    assert!(p.kill().is_ok());
    assert!(p.kill().is_ok());
    SAME.into()
}

/// Not one of std's cases: `wait_with_output` on a process that writes
/// 1 MiB to stderr before anything to stdout must not stall, and returns
/// every byte of both streams.
fn wait_with_output_reads_both_streams() -> String {
    let child = shell_cmd()
        .arg("-c")
        .arg("head -c 1048576 /dev/zero >&2; echo done")
        .spawn()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", output.status);
    assert_eq!(output.stdout, b"done\n");
    assert_eq!(output.stderr.len(), 1 << 20);
    assert!(!output.truncated());
    SAME.into()
}

/// Not one of std's cases: the builder's getters, as std's.
fn getters() -> String {
    let mut cmd = known_command();
    cmd.args(["a", "b"])
        .env("RUN_TEST_NEW_ENV", "1")
        .env_remove("RUN_TEST_GONE")
        .current_dir("/");
    assert_eq!(cmd.get_program(), "echo");
    assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        cmd.get_envs().collect::<Vec<_>>(),
        [
            (OsStr::new("RUN_TEST_GONE"), None),
            (OsStr::new("RUN_TEST_NEW_ENV"), Some(OsStr::new("1")))
        ]
    );
    assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/")));
    let out = cmd.output().unwrap();
    assert_eq!(out.stdout, b"a b\n");
    SAME.into()
}

/// Not one of std's cases: `wait` closes a piped stdin first, as std's
/// does, so a process reading to end-of-file ends. Were stdin left open,
/// the timeout would kill it and the status would be a signal.
fn wait_closes_stdin() -> String {
    let mut p = shell_cmd()
        .arg("-c")
        .arg("cat >/dev/null")
        .stdin(Stdio::piped())
        .timeout(std::time::Duration::from_secs(10))
        .spawn()
        .unwrap();
    p.stdin
        .as_mut()
        .unwrap()
        .write_all(b"some input\n")
        .unwrap();
    let status = p.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(p.stdin.is_none());
    SAME.into()
}
