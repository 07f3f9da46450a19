"""Turns `subprocess`-style arguments into a WIT `command`."""

import math
import os

from ._host import wit

PIPE = -1
"""Connect the stream to a pipe the guest reads or writes."""
STDOUT = -2
"""For `stderr`: send it where stdout goes."""
DEVNULL = -3
"""Connect the stream to `/dev/null`."""


def argv(args, shell=False, executable=None):
    """The program and its arguments as a list of strings.

    A string is one program name (as in `subprocess` on POSIX) unless
    `shell` is true: then it runs as `sh -c args`, which works only where
    the host grants `sh`.
    """
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    else:
        args = list(args)
    args = [os.fsdecode(a) for a in args]
    if shell:
        args = ["sh", "-c", *args]
    if not args:
        raise ValueError("args is empty: there is no program to run")
    if executable is not None:
        args[0] = os.fsdecode(executable)
    return args


def timeout_ms(timeout):
    """Seconds (int or float, or `None`) as whole milliseconds, rounded up."""
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError(f"timeout must not be negative: {timeout}")
    return math.ceil(timeout * 1000)


def command(args, *, cwd=None, env=None, stdin=None, timeout=None):
    """The WIT `command` for `args` (a list from `argv`).

    The child's environment starts empty: `env` (a mapping) is all it gets,
    besides the variables the host's policy passes through.
    """
    pairs = [(os.fsdecode(k), os.fsdecode(v)) for k, v in (env or {}).items()]
    return wit.Command(
        program=args[0],
        args=args[1:],
        env=pairs,
        cwd=None if cwd is None else os.fsdecode(cwd),
        stdin=stdin,
        timeout_ms=timeout_ms(timeout),
    )


def text_codec(text, encoding, errors, universal_newlines):
    """The encoding to decode and encode with, or `None` for bytes."""
    if text or universal_newlines or encoding is not None or errors is not None:
        return encoding or "utf-8", errors or "strict"
    return None


def decode(data, codec):
    """Bytes as text with universal newlines, or as they are for `None`."""
    if codec is None or data is None:
        return data
    text = data.decode(*codec)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def encode(data, codec):
    """Input as bytes: text is encoded with `codec`."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return None if data is None else bytes(data)
    if codec is None:
        raise TypeError("input must be bytes unless text, encoding or errors is given")
    return data.encode(*codec)
