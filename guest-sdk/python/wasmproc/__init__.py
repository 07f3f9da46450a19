"""The wasmproc process capability for Python guests, shaped like the
standard `subprocess` module.

    import wasmproc as subprocess

    out = subprocess.run(["git", "log", "-n", "1"], capture_output=True, text=True, check=True)

Differences from `subprocess` (see README.md): the child's environment
starts empty; there is no shell unless the host grants `sh`; `kill` sends
SIGTERM first and SIGKILL after the host's grace period; streams are
`PIPE`, `DEVNULL` or `None`, never file descriptors; the host's errors
become `Denied` (a `PermissionError`), `FileNotFoundError` and
`LimitReached`, each with the WIT error as `wit_error`.
"""

from ._command import DEVNULL, PIPE, STDOUT
from .errors import CalledProcessError, Denied, LimitReached, SubprocessError, TimeoutExpired
from .popen import Popen
from .registry import info, processes
from .run import CompletedProcess, check_call, check_output, getoutput, getstatusoutput, run
from .run import call_ as call

__all__ = [
    "CalledProcessError",
    "CompletedProcess",
    "DEVNULL",
    "Denied",
    "LimitReached",
    "PIPE",
    "Popen",
    "STDOUT",
    "SubprocessError",
    "TimeoutExpired",
    "call",
    "check_call",
    "check_output",
    "getoutput",
    "getstatusoutput",
    "info",
    "processes",
    "run",
]
