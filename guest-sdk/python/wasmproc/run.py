"""`run` and the calls built on it: a process run to completion, its
output captured by the host."""

import sys

from . import _command
from ._command import DEVNULL, PIPE, STDOUT
from ._host import call, process, returncode
from .errors import CalledProcessError


class CompletedProcess:
    """A process that ended, as `run` returns it.

    `stdout_dropped` and `stderr_dropped` (wasmproc additions) count the
    bytes past the policy's capture limit that the host discarded.
    """

    def __init__(self, args, returncode, stdout=None, stderr=None):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.stdout_dropped = 0
        self.stderr_dropped = 0

    def __repr__(self):
        fields = [f"args={self.args!r}", f"returncode={self.returncode!r}"]
        if self.stdout is not None:
            fields.append(f"stdout={self.stdout!r}")
        if self.stderr is not None:
            fields.append(f"stderr={self.stderr!r}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def check_returncode(self):
        """Raises `CalledProcessError` if the return code is not zero."""
        if self.returncode:
            raise CalledProcessError(self.returncode, self.args, self.stdout, self.stderr)


def _forward(data, stream):
    """Writes captured bytes where an inherited stream would have gone."""
    if data:
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()


def run(
    args,
    *,
    input=None,
    capture_output=False,
    stdin=None,
    stdout=None,
    stderr=None,
    timeout=None,
    check=False,
    cwd=None,
    env=None,
    text=None,
    encoding=None,
    errors=None,
    universal_newlines=None,
    shell=False,
    executable=None,
):
    """Runs `args` to completion and returns a `CompletedProcess`.

    The host captures stdout and stderr in any case: `PIPE` (or
    `capture_output`) keeps them, `DEVNULL` drops them, `None` writes them
    to the guest's own stdout and stderr, and `stderr=STDOUT` appends
    stderr to stdout. Past `timeout` seconds the host kills the process
    with its group and `TimeoutExpired` is raised (without the output).
    """
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        stdout = stderr = PIPE
    if input is not None and stdin is not None:
        raise ValueError("stdin and input arguments may not both be used.")
    if stdin not in (None, DEVNULL, PIPE):
        raise ValueError(f"stdin must be PIPE, DEVNULL or None, not {stdin!r}: a guest has no file descriptors to give")
    if stderr == STDOUT and stdout not in (PIPE, None, DEVNULL):
        raise ValueError(f"stdout must be PIPE, DEVNULL or None, not {stdout!r}")
    codec = _command.text_codec(text, encoding, errors, universal_newlines)
    argv = _command.argv(args, shell, executable)
    cmd = _command.command(argv, cwd=cwd, env=env, stdin=_command.encode(input, codec), timeout=timeout)
    output = call(process.run, cmd, program=argv[0], timeout=timeout, cmd=args)
    out, err = bytes(output.stdout), bytes(output.stderr)
    if stderr == STDOUT:
        out, err, stderr = out + err, b"", DEVNULL
    if stdout is None:
        _forward(out, sys.stdout)
    if stderr is None:
        _forward(err, sys.stderr)
    completed = CompletedProcess(
        args,
        returncode(output.status),
        _command.decode(out, codec) if stdout == PIPE else None,
        _command.decode(err, codec) if stderr == PIPE else None,
    )
    completed.stdout_dropped = output.stdout_dropped
    completed.stderr_dropped = output.stderr_dropped
    if check:
        completed.check_returncode()
    return completed


def call_(*popenargs, timeout=None, **kwargs):
    """Runs the command and returns its return code (`wasmproc.call`; the
    name `call` is the host-call helper's here)."""
    return run(*popenargs, timeout=timeout, **kwargs).returncode


def check_call(*popenargs, **kwargs):
    """Runs the command; returns 0, or raises `CalledProcessError`."""
    return run(*popenargs, check=True, **kwargs).returncode


def check_output(*popenargs, timeout=None, **kwargs):
    """Runs the command and returns its stdout; raises `CalledProcessError`
    for a non-zero return code."""
    for name in ("stdout", "check", "capture_output"):
        if name in kwargs:
            raise ValueError(f"{name} argument not allowed, it will be overridden.")
    if kwargs.get("input") is None and kwargs.get("stdin") is None:
        kwargs["input"] = "" if _command.text_codec(
            kwargs.get("text"), kwargs.get("encoding"), kwargs.get("errors"), kwargs.get("universal_newlines")
        ) else b""
    return run(*popenargs, stdout=PIPE, timeout=timeout, check=True, **kwargs).stdout


def getstatusoutput(cmd):
    """`(exitcode, output)` of `sh -c cmd`, stderr merged into stdout and
    one trailing newline removed (needs `sh` granted)."""
    done = run(cmd, shell=True, text=True, stdout=PIPE, stderr=STDOUT)
    data = done.stdout
    if data[-1:] == "\n":
        data = data[:-1]
    return done.returncode, data


def getoutput(cmd):
    """The output of `sh -c cmd` (see `getstatusoutput`)."""
    return getstatusoutput(cmd)[1]
