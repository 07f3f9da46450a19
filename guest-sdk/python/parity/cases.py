"""Cases of CPython's Lib/test/test_subprocess.py, each re-expressed for a
guest and named after the test it comes from (in its docstring).

A case returns normally when `wasmproc` behaves as `subprocess` does, and
raises `Failed` when it does not. A case marked `@difference(...)` checks
a deliberate difference: it passes when wasmproc behaves as documented,
which is not how `subprocess` behaves.
"""

import os
import pathlib
import time

import wasmproc as subprocess
from wasmproc import PIPE, STDOUT, DEVNULL

CASES = []


class Failed(Exception):
    """A case saw behaviour other than the expected."""


def case(function):
    """Registers a case expected to behave as `subprocess` does."""
    CASES.append((function.__name__, function, None))
    return function


def difference(what):
    """Registers a case that checks a deliberate difference `what`."""

    def register(function):
        CASES.append((function.__name__, function, what))
        return function

    return register


def expect(condition, why):
    if not condition:
        raise Failed(why)


def expect_eq(got, want):
    if got != want:
        raise Failed(f"got {got!r}, want {want!r}")


def expect_raises(kind, function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except kind as err:
        return err
    except Exception as err:
        raise Failed(f"raised {type(err).__name__}: {err}, want {kind.__name__}") from None
    raise Failed(f"raised nothing, want {kind.__name__}")


def sh(script, *args):
    return ["sh", "-c", script, "sh", *args]


# ---- call, check_call, check_output ----


@case
def call_seq():
    """ProcessTestCase.test_call_seq"""
    expect_eq(subprocess.call(sh("exit 47")), 47)


@case
def call_timeout():
    """ProcessTestCase.test_call_timeout"""
    expect_raises(subprocess.TimeoutExpired, subprocess.call, ["sleep", "30"], timeout=0.2)


@case
def check_call_zero():
    """ProcessTestCase.test_check_call_zero"""
    expect_eq(subprocess.check_call(sh("exit 0")), 0)


@case
def check_call_nonzero():
    """ProcessTestCase.test_check_call_nonzero"""
    err = expect_raises(subprocess.CalledProcessError, subprocess.check_call, sh("exit 47"))
    expect_eq(err.returncode, 47)


@case
def check_output():
    """ProcessTestCase.test_check_output"""
    expect(b"BDFL" in subprocess.check_output(["echo", "BDFL"]), "BDFL not in the output")


@case
def check_output_nonzero():
    """ProcessTestCase.test_check_output_nonzero"""
    err = expect_raises(subprocess.CalledProcessError, subprocess.check_output, sh("exit 5"))
    expect_eq(err.returncode, 5)


@case
def check_output_stderr():
    """ProcessTestCase.test_check_output_stderr"""
    output = subprocess.check_output(sh("echo BDFL >&2"), stderr=STDOUT)
    expect(b"BDFL" in output, f"BDFL not in {output!r}")


@case
def check_output_input_arg():
    """ProcessTestCase.test_check_output_input_arg"""
    expect_eq(subprocess.check_output(["tr", "a-z", "A-Z"], input=b"pear"), b"PEAR")


@case
def check_output_input_none():
    """ProcessTestCase.test_check_output_input_none: stdin is empty, not
    the parent's."""
    output = subprocess.check_output(sh('read x || echo "No data"'), input=None)
    expect_eq(output, b"No data\n")


@case
def check_output_input_none_text():
    """ProcessTestCase.test_check_output_input_none_text"""
    output = subprocess.check_output(sh('read x || echo "No data"'), input=None, text=True)
    expect_eq(output, "No data\n")


@case
def check_output_input_none_universal_newlines():
    """ProcessTestCase.test_check_output_input_none_universal_newlines"""
    output = subprocess.check_output(sh('read x || echo "No data"'), input=None, universal_newlines=True)
    expect_eq(output, "No data\n")


@case
def check_output_stdout_arg():
    """ProcessTestCase.test_check_output_stdout_arg"""
    err = expect_raises(ValueError, subprocess.check_output, ["echo", "will not be run"], stdout=PIPE)
    expect("stdout" in str(err), f"the message names stdout: {err}")


@case
def check_output_stdin_with_input_arg():
    """ProcessTestCase.test_check_output_stdin_with_input_arg"""
    err = expect_raises(ValueError, subprocess.check_output, ["cat"], stdin=PIPE, input=b"hare")
    expect("stdin" in str(err) and "input" in str(err), f"the message names both: {err}")


@difference("the output printed before a timeout is not kept: the host kills the process and returns only timed-out")
def check_output_timeout():
    """ProcessTestCase.test_check_output_timeout"""
    err = expect_raises(subprocess.TimeoutExpired, subprocess.check_output, sh("echo BDFL; sleep 30"), timeout=0.5)
    expect_eq(err.output, None)
    expect(err.wit_error is not None, "the WIT error is kept")


# ---- run ----


@case
def run_returncode():
    """RunFuncTestCase.test_returncode"""
    expect_eq(subprocess.run(sh("exit 47")).returncode, 47)


@case
def run_check():
    """RunFuncTestCase.test_check"""
    err = expect_raises(subprocess.CalledProcessError, subprocess.run, sh("exit 47"), check=True)
    expect_eq(err.returncode, 47)


@case
def run_check_zero():
    """RunFuncTestCase.test_check_zero"""
    expect_eq(subprocess.run(sh("exit 0"), check=True).returncode, 0)


@case
def run_timeout():
    """RunFuncTestCase.test_timeout"""
    expect_raises(subprocess.TimeoutExpired, subprocess.run, ["sleep", "30"], timeout=0.2)


@case
def run_capture_stdout():
    """RunFuncTestCase.test_capture_stdout"""
    done = subprocess.run(["echo", "BDFL"], stdout=PIPE)
    expect_eq(done.stdout, b"BDFL\n")


@case
def run_capture_stderr():
    """RunFuncTestCase.test_capture_stderr"""
    done = subprocess.run(sh("echo BDFL >&2"), stderr=PIPE)
    expect_eq(done.stderr, b"BDFL\n")


@case
def run_check_output_input_arg():
    """RunFuncTestCase.test_check_output_input_arg"""
    done = subprocess.run(["tr", "a-z", "A-Z"], input=b"pear", stdout=PIPE)
    expect_eq(done.stdout, b"PEAR")


@case
def run_check_output_stdin_with_input_arg():
    """RunFuncTestCase.test_check_output_stdin_with_input_arg"""
    expect_raises(ValueError, subprocess.run, ["cat"], stdin=PIPE, input=b"hare")


@case
def run_capture_output():
    """RunFuncTestCase.test_capture_output"""
    done = subprocess.run(sh("echo BDFL; echo FLUFL >&2"), capture_output=True)
    expect_eq((done.stdout, done.stderr), (b"BDFL\n", b"FLUFL\n"))


@case
def run_stdout_with_capture_output_arg():
    """RunFuncTestCase.test_stdout_with_capture_output_arg"""
    err = expect_raises(ValueError, subprocess.run, ["true"], capture_output=True, stdout=PIPE)
    expect("capture_output" in str(err), str(err))


@case
def run_stderr_with_capture_output_arg():
    """RunFuncTestCase.test_stderr_with_capture_output_arg"""
    err = expect_raises(ValueError, subprocess.run, ["true"], capture_output=True, stderr=PIPE)
    expect("capture_output" in str(err), str(err))


@case
def run_with_pathlike_path():
    """RunFuncTestCase.test_run_with_pathlike_path"""
    done = subprocess.run([pathlib.PurePosixPath("sh"), "-c", "exit 57"])
    expect_eq(done.returncode, 57)


@case
def run_kwargs():
    """RunFuncTestCase.test_run_kwargs: env reaches the child."""
    done = subprocess.run(sh('test "$FRUIT" = banana && exit 33'), env={"FRUIT": "banana"})
    expect_eq(done.returncode, 33)


@case
def run_text_mode():
    """RunFuncTestCase.test_encoding_warning (text=True gives str)"""
    done = subprocess.run(["echo", "BDFL"], capture_output=True, text=True)
    expect_eq((done.stdout, done.stderr), ("BDFL\n", ""))


@case
def completed_process_check_returncode():
    """RunFuncTestCase.test_check (CompletedProcess.check_returncode)"""
    done = subprocess.run(sh("exit 3"))
    err = expect_raises(subprocess.CalledProcessError, done.check_returncode)
    expect_eq(err.returncode, 3)


@case
def stdout_none():
    """ProcessTestCase.test_stdout_none: stdout goes to the guest's own
    (the test reads the marker line from the guest's output)."""
    done = subprocess.run(["echo", "stdout-none-marker"])
    expect_eq(done.stdout, None)


# ---- environment, working directory, programs ----


@case
def env():
    """ProcessTestCase.test_env"""
    with subprocess.Popen(sh('echo "$FRUIT"'), stdout=PIPE, env={"FRUIT": "orange"}) as p:
        expect_eq(p.stdout.read(), b"orange\n")


@case
def empty_env():
    """ProcessTestCase.test_empty_env: the child gets no variables but
    those the host passes through (none in this run) and TMPDIR, the
    host's private temporary directory for the session's programs."""
    done = subprocess.run(["env"], env={}, stdout=PIPE)
    rest = [line for line in done.stdout.splitlines() if not line.startswith(b"TMPDIR=")]
    expect_eq(rest, [])


@difference("the environment starts empty: env=None does not pass the guest's environment on")
def env_none_not_inherited():
    """ProcessTestCase.test_env (env=None inherits the parent's)"""
    os.environ["FRUIT"] = "kiwi"
    try:
        done = subprocess.run(sh('echo "fruit=$FRUIT"'), stdout=PIPE)
    finally:
        del os.environ["FRUIT"]
    expect_eq(done.stdout, b"fruit=\n")


@case
def cwd(directory):
    """ProcessTestCase.test_cwd"""
    done = subprocess.run(["pwd"], cwd=directory, stdout=PIPE, text=True)
    expect_eq(done.stdout.strip(), directory)


@case
def cwd_pathlike(directory):
    """ProcessTestCase.test_cwd_with_pathlike"""
    done = subprocess.run(["pwd"], cwd=pathlib.PurePosixPath(directory), stdout=PIPE, text=True)
    expect_eq(done.stdout.strip(), directory)


@case
def exception_cwd(directory):
    """POSIXProcessTestCase.test_exception_cwd: a missing working
    directory is a FileNotFoundError."""
    missing = os.path.join(directory, "no-such-directory")
    err = expect_raises(FileNotFoundError, subprocess.run, ["true"], cwd=missing)
    expect(err.wit_error is not None, "the WIT error is kept")


@case
def args_string():
    """POSIXProcessTestCase.test_args_string: a string is the program."""
    expect_eq(subprocess.call("true"), 0)


@case
def shell_string():
    """POSIXProcessTestCase.test_shell_string (sh is granted here)"""
    with subprocess.Popen('echo "$FRUIT"', shell=True, stdout=PIPE, env={"FRUIT": "apple"}) as p:
        expect_eq(p.stdout.read().strip(b" \t\r\n\f"), b"apple")


@case
def invalid_args():
    """ProcessTestCase.test_invalid_args"""
    expect_raises(TypeError, subprocess.call, ["true"], no_such_argument=1)


@case
def getoutput():
    """MiscTests.test_getoutput"""
    expect_eq(subprocess.getoutput("echo xyzzy"), "xyzzy")
    expect_eq(subprocess.getstatusoutput("echo xyzzy; exit 3"), (3, "xyzzy"))


# ---- Popen streams ----


@case
def stdin_pipe():
    """ProcessTestCase.test_stdin_pipe"""
    p = subprocess.Popen(sh('read x; test "$x" = pear && exit 1'), stdin=PIPE)
    p.stdin.write(b"pear\n")
    p.stdin.close()
    p.wait()
    expect_eq(p.returncode, 1)


@case
def stdin_devnull():
    """ProcessTestCase.test_stdin_devnull"""
    p = subprocess.Popen(sh("read x || exit 7"), stdin=DEVNULL)
    expect_eq(p.wait(), 7)
    expect_eq(p.stdin, None)


@case
def stdout_pipe():
    """ProcessTestCase.test_stdout_pipe"""
    with subprocess.Popen(sh("printf orange"), stdout=PIPE) as p:
        expect_eq(p.stdout.read(), b"orange")


@case
def stdout_devnull():
    """ProcessTestCase.test_stdout_devnull"""
    p = subprocess.Popen(["echo", "dropped"], stdout=DEVNULL)
    expect_eq(p.wait(), 0)
    expect_eq(p.stdout, None)


@case
def stderr_pipe():
    """ProcessTestCase.test_stderr_pipe"""
    with subprocess.Popen(sh("printf strawberry >&2"), stderr=PIPE) as p:
        expect_eq(p.stderr.read(), b"strawberry")


@case
def stderr_devnull():
    """ProcessTestCase.test_stderr_devnull"""
    p = subprocess.Popen(sh("echo dropped >&2"), stderr=DEVNULL)
    expect_eq(p.wait(), 0)
    expect_eq(p.stderr, None)


@difference("Popen cannot send stderr to stdout (run, call and check_output can): it raises ValueError")
def stdout_stderr_pipe():
    """ProcessTestCase.test_stdout_stderr_pipe"""
    err = expect_raises(ValueError, subprocess.Popen, sh("echo orange"), stdout=PIPE, stderr=STDOUT)
    expect("STDOUT" in str(err), str(err))


@case
def universal_newlines_and_text():
    """ProcessTestCase.test_universal_newlines_and_text"""
    script = r"printf 'line1\nline2\rline3\r\nline4\r\nline5\nline6'"
    for argument in ("universal_newlines", "text"):
        with subprocess.Popen(sh(script), stdout=PIPE, **{argument: True}) as p:
            expect_eq(p.stdout.readline(), "line1\n")
            expect_eq(p.stdout.read(), "line2\nline3\nline4\nline5\nline6")


@case
def readline_iteration():
    """ProcessTestCase.test_universal_newlines (lines by iteration)"""
    with subprocess.Popen(sh("echo a; echo b; echo c"), stdout=PIPE, text=True) as p:
        expect_eq(list(p.stdout), ["a\n", "b\n", "c\n"])


@case
def stdin_text_write():
    """ProcessTestCase.test_universal_newlines_communicate_stdin (file
    writes in text mode)"""
    with subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, text=True) as p:
        p.stdin.write("line1\n")
        p.stdin.write("line3\n")
        p.stdin.close()
        expect_eq(p.stdout.read(), "line1\nline3\n")


# ---- communicate ----


@case
def communicate():
    """ProcessTestCase.test_communicate"""
    p = subprocess.Popen(sh("cat; printf pineapple >&2"), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    expect_eq(p.communicate(b"banana"), (b"banana", b"pineapple"))


@case
def communicate_returns():
    """ProcessTestCase.test_communicate_returns"""
    p = subprocess.Popen(sh("exit 47"))
    expect_eq(p.communicate(), (None, None))
    expect_eq(p.returncode, 47)


@case
def communicate_stdin():
    """ProcessTestCase.test_communicate_stdin"""
    p = subprocess.Popen(sh('read x; test "$x" = pear && exit 1'), stdin=PIPE)
    p.communicate(b"pear")
    expect_eq(p.returncode, 1)


@case
def communicate_stdout():
    """ProcessTestCase.test_communicate_stdout"""
    p = subprocess.Popen(sh("printf pineapple"), stdout=PIPE)
    expect_eq(p.communicate(), (b"pineapple", None))


@case
def communicate_stderr():
    """ProcessTestCase.test_communicate_stderr"""
    p = subprocess.Popen(sh("printf pineapple >&2"), stderr=PIPE)
    expect_eq(p.communicate(), (None, b"pineapple"))


@case
def communicate_timeout():
    """ProcessTestCase.test_communicate_timeout: after TimeoutExpired,
    communicate goes on."""
    p = subprocess.Popen(
        sh("printf pineapple >&2; sleep 1; cat"), stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True
    )
    expect_raises(subprocess.TimeoutExpired, p.communicate, "banana", timeout=0.3)
    expect_eq(p.communicate(), ("banana", "pineapple"))


@case
def communicate_pipe_buf():
    """ProcessTestCase.test_communicate_pipe_buf: more than a pipe holds,
    both ways."""
    data = bytes(range(256)) * 1024
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    out, err = p.communicate(data)
    expect(out == data, f"{len(out)} bytes back of {len(data)}")
    expect_eq(err, b"")


@case
def communicate_epipe():
    """ProcessTestCase.test_communicate_epipe: a child that stops reading
    is no error."""
    p = subprocess.Popen(sh("exit 0"), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    p.communicate(b"x" * (1 << 20))
    expect_eq(p.returncode, 0)


@case
def writes_before_communicate():
    """ProcessTestCase.test_writes_before_communicate"""
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    p.stdin.write(b"banana")
    out, err = p.communicate(b"split")
    expect_eq((out, err), (b"bananasplit", b""))


@case
def universal_newlines_communicate():
    """ProcessTestCase.test_universal_newlines_communicate"""
    script = r"printf 'line1\nline2\rline3\r\nline4\r\nline5\nline6'"
    p = subprocess.Popen(sh(script), stdout=PIPE, stderr=PIPE, universal_newlines=True)
    out, err = p.communicate()
    expect_eq((out, err), ("line1\nline2\nline3\nline4\nline5\nline6", ""))


@case
def universal_newlines_communicate_stdin():
    """ProcessTestCase.test_universal_newlines_communicate_stdin"""
    p = subprocess.Popen(sh('read a; read b; test "$a$b" = line1line3 && exit 9'), stdin=PIPE, universal_newlines=True)
    p.communicate("line1\nline3\n")
    expect_eq(p.returncode, 9)


@case
def universal_newlines_communicate_input_none():
    """ProcessTestCase.test_universal_newlines_communicate_input_none"""
    p = subprocess.Popen(["true"], stdin=PIPE, stdout=PIPE, universal_newlines=True)
    p.communicate()
    expect_eq(p.returncode, 0)


@case
def communicate_encodings():
    """ProcessTestCase.test_universal_newlines_communicate_encodings"""
    # The guest's Python has no latin-1 codec; UTF-8 given explicitly.
    p = subprocess.Popen(sh(r"printf '\303\251t\303\251'"), stdout=PIPE, encoding="utf-8")
    expect_eq(p.communicate(), ("été", None))


@case
def communicate_errors():
    """ProcessTestCase.test_communicate_errors"""
    for errors, expected in (("ignore", "[]"), ("replace", "[\ufffd\ufffd]"), ("surrogateescape", "[\udc80\udc80]")):
        p = subprocess.Popen(sh(r"printf '[\200\200]'"), stdout=PIPE, encoding="utf-8", errors=errors)
        expect_eq(p.communicate()[0], expected)


# ---- poll, wait, signals, context manager ----


@case
def poll():
    """ProcessTestCase.test_poll"""
    p = subprocess.Popen(["sleep", "0.3"])
    expect_eq(p.poll(), None)
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    expect_eq(p.poll(), 0)


@case
def wait():
    """ProcessTestCase.test_wait"""
    p = subprocess.Popen(sh("exit 2"))
    expect_eq(p.wait(), 2)
    expect_eq(p.returncode, 2)


@case
def wait_timeout():
    """ProcessTestCase.test_wait_timeout"""
    p = subprocess.Popen(["sleep", "30"])
    err = expect_raises(subprocess.TimeoutExpired, p.wait, timeout=0.1)
    expect("0.1 seconds" in str(err), str(err))
    expect_eq(p.returncode, None)
    p.kill()
    expect(p.wait(timeout=10) < 0, "killed by a signal")


@case
def context_manager():
    """ContextManagerTests.test_pipe"""
    with subprocess.Popen(sh("echo lime; echo orange >&2; exit 100"), stdout=PIPE, stderr=PIPE) as p:
        expect_eq(p.stdout.read(), b"lime\n")
        expect_eq(p.stderr.read(), b"orange\n")
    expect(p.stdout.closed and p.stderr.closed, "streams closed on exit")
    expect_eq(p.returncode, 100)


@case
def returncode_context_manager():
    """ContextManagerTests.test_returncode"""
    with subprocess.Popen(sh("exit 100")) as p:
        pass
    expect_eq(p.returncode, 100)


@case
def send_signal():
    """POSIXProcessTestCase.test_send_signal"""
    p = subprocess.Popen(["sleep", "30"])
    expect_eq(p.poll(), None)
    p.send_signal(2)
    expect_eq(p.wait(), -2)


@case
def terminate():
    """POSIXProcessTestCase.test_terminate"""
    p = subprocess.Popen(["sleep", "30"])
    p.terminate()
    expect_eq(p.wait(), -15)


@difference("kill sends SIGTERM first and SIGKILL only after the host's grace period: sleep ends by SIGTERM")
def kill():
    """POSIXProcessTestCase.test_kill"""
    p = subprocess.Popen(["sleep", "30"])
    p.kill()
    expect_eq(p.wait(), -15)


@case
def send_signal_kill():
    """POSIXProcessTestCase.test_kill (SIGKILL sent as a signal)"""
    p = subprocess.Popen(["sleep", "30"])
    p.send_signal(9)
    expect_eq(p.wait(), -9)


@case
def send_signal_dead():
    """POSIXProcessTestCase.test_send_signal_dead"""
    p = subprocess.Popen(sh("exit 0"))
    p.wait()
    p.send_signal(15)


@case
def kill_dead():
    """POSIXProcessTestCase.test_kill_dead"""
    p = subprocess.Popen(sh("exit 0"))
    p.wait()
    p.kill()
    expect_eq(p.returncode, 0)


@case
def terminate_dead():
    """POSIXProcessTestCase.test_terminate_dead"""
    p = subprocess.Popen(sh("exit 0"))
    p.wait()
    p.terminate()
    expect_eq(p.returncode, 0)


@case
def pid():
    """ProcessTestCase.test_pid (the child's own $$)"""
    with subprocess.Popen(sh("echo $$"), stdout=PIPE) as p:
        expect_eq(int(p.stdout.read()), p.pid)


@case
def repr_():
    """ProcessTestCase.test_repr"""
    with subprocess.Popen(sh("exit 0")) as p:
        expect(repr(p).startswith("<Popen: returncode: None args: ['sh'"), repr(p))
    expect(repr(p).startswith("<Popen: returncode: 0 args: "), repr(p))


@case
def called_process_error_str_non_zero():
    """ProcessTestCase.test_CalledProcessError_str_non_zero"""
    err = expect_raises(subprocess.CalledProcessError, subprocess.check_call, sh("exit 2"))
    expect("non-zero exit status 2." in str(err), str(err))


@case
def called_process_error_str_signal():
    """ProcessTestCase.test_CalledProcessError_str_signal"""
    err = expect_raises(subprocess.CalledProcessError, subprocess.check_call, sh("kill -TERM $$"))
    expect_eq(err.returncode, -15)
    expect("died with <Signals.SIGTERM: 15>." in str(err), str(err))


# ---- running them ----


def run_all(directory):
    """Runs every case and prints one line each, then a count."""
    counts = {"pass": 0, "fail": 0, "difference": 0}
    for name, function, what in CASES:
        name = name.rstrip("_")
        try:
            if function.__code__.co_argcount:
                function(directory)
            else:
                function()
        except Exception as err:
            outcome, detail = "fail", f": {type(err).__name__}: {err}"
        else:
            outcome, detail = ("pass", "") if what is None else ("difference", f": {what}")
        counts[outcome] += 1
        print(f"case {name}: {outcome}{detail}", flush=True)
    print(f"parity: {counts['pass']} passed, {counts['fail']} failed, {counts['difference']} deliberate differences")
