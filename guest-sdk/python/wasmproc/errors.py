"""The exceptions of `wasmproc`: those of `subprocess`, and the host's
errors mapped onto Python's own.

Every exception raised for a failed host call keeps the WIT `error` value
it came from as its `wit_error` attribute.
"""

import errno


class SubprocessError(Exception):
    """Base class of the errors `subprocess` raises itself."""


def _signal_name(number):
    names = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 10: "SIGUSR1", 12: "SIGUSR2", 15: "SIGTERM"}
    name = names.get(number)
    return f"<Signals.{name}: {number}>" if name else f"unknown signal {number}"


class CalledProcessError(SubprocessError):
    """A process run by `check_call`, `check_output` or `run(check=True)`
    ended with a non-zero return code."""

    def __init__(self, returncode, cmd, output=None, stderr=None):
        self.returncode = returncode
        self.cmd = cmd
        self.output = output
        self.stderr = stderr

    def __str__(self):
        if self.returncode is not None and self.returncode < 0:
            return f"Command '{self.cmd}' died with {_signal_name(-self.returncode)}."
        return f"Command '{self.cmd}' returned non-zero exit status {self.returncode}."

    @property
    def stdout(self):
        """Alias of `output`."""
        return self.output

    @stdout.setter
    def stdout(self, value):
        self.output = value


class TimeoutExpired(SubprocessError):
    """A timeout passed while waiting for a process; `run` and `call` have
    killed it (the host kills it with its process group)."""

    def __init__(self, cmd, timeout, output=None, stderr=None, wit_error=None):
        self.cmd = cmd
        self.timeout = timeout
        self.output = output
        self.stderr = stderr
        self.wit_error = wit_error

    def __str__(self):
        return f"Command '{self.cmd}' timed out after {self.timeout} seconds"

    @property
    def stdout(self):
        """Alias of `output`."""
        return self.output

    @stdout.setter
    def stdout(self, value):
        self.output = value


class Denied(PermissionError):
    """The host's policy refused the call; `reason` says what was missing."""

    def __init__(self, reason, wit_error=None):
        super().__init__(errno.EACCES, f"denied by policy: {reason}")
        self.reason = reason
        self.wit_error = wit_error


class LimitReached(OSError):
    """A quota of the host was reached (live processes, start rate,
    registry entries); `reason` names it."""

    def __init__(self, reason, wit_error=None):
        super().__init__(errno.EAGAIN, f"limit reached: {reason}")
        self.reason = reason
        self.wit_error = wit_error
