"""A wasmproc guest in Python: runs, starts, lists, inspects and kills
processes through the `wasmproc:process` capability.

Usage (the arguments after `--` of `wasmproc run`):

    demo                    every call below, in order (the default)
    run PROGRAM [ARG...]    run to completion, print its stdout and status
    start-kill PROGRAM [ARG...]
                            start in the background, get, list, kill, get
    list                    start two `sleep 30`, list them, kill them
    get ID                  a snapshot of one process (a made-up id fails)

Every failed call prints `error: <kind>: <detail>` and the guest exits 1.
Calls that return `result<_, error>` in WIT raise
`componentize_py_types.Err`; its `.value` is one of the `Error_*` classes
of `wit_world.imports.types`, matched below with `match`.
"""

import sys

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import process
from wit_world.imports.types import (
    Buffering,
    Command,
    Error_Denied,
    Error_Invalid,
    Error_Io,
    Error_LimitReached,
    Error_NotFound,
    Error_SpawnFailed,
    Error_TimedOut,
    ExitStatus_Exited,
    ExitStatus_Signaled,
    StartOptions,
    StdioMode,
)


class GuestError(Exception):
    """A failed capability call, already reported on stdout."""


def describe(error) -> str:
    """`<kind>: <detail>` for a WIT `error` value."""
    match error:
        case Error_Denied(reason):
            return f"denied: {reason}"
        case Error_NotFound(id):
            return f"not-found: {id}"
        case Error_Invalid(reason):
            return f"invalid: {reason}"
        case Error_LimitReached(reason):
            return f"limit-reached: {reason}"
        case Error_SpawnFailed(reason):
            return f"spawn-failed: {reason}"
        case Error_TimedOut():
            return "timed-out"
        case Error_Io(reason):
            return f"io: {reason}"
    return f"unknown: {error!r}"


def call(what, *args):
    """Calls a capability function; reports a WIT error and raises."""
    try:
        return what(*args)
    except Err as err:
        print(f"error: {describe(err.value)}")
        raise GuestError() from None


def status(exit) -> str:
    match exit:
        case ExitStatus_Exited(code):
            return f"exited {code}"
        case ExitStatus_Signaled(signal):
            return f"signaled {signal}"
    return "running"


def command(program: str, args: list) -> Command:
    return Command(program=program, args=args, env=[], cwd=None, stdin=None, timeout_ms=None)


BACKGROUND = StartOptions(
    stdin=StdioMode.NULL,
    stdout=StdioMode.NULL,
    stderr=StdioMode.NULL,
    buffering=Buffering.RING,
    buffer_bytes=None,
)


def run(program: str, args: list) -> None:
    output = call(process.run, command(program, args))
    sys.stdout.write(output.stdout.decode("utf-8", "replace"))
    print(f"status: {status(output.status)}")


def start_kill(program: str, args: list) -> None:
    id = call(process.start, command(program, args), BACKGROUND)
    print(f"started: {id}")
    info = call(process.get, id)
    print(f"state: {info.state.name.lower()} pid: {info.pid} program: {info.program}")
    print(f"listed: {'yes' if id in process.list() else 'no'}")
    call(process.kill, id)
    info = call(process.get, id)
    print(f"after kill: {info.state.name.lower()} {status(info.exit)}")


def list_processes() -> None:
    ids = [call(process.start, command("sleep", ["30"]), BACKGROUND) for _ in range(2)]
    listed = process.list()
    print(f"count: {len(listed)}")
    print(f"in start order: {'yes' if listed[-2:] == ids else 'no'}")
    for id in ids:
        call(process.kill, id)
    print(f"killed: {len(ids)}")


def get(id: str) -> None:
    info = call(process.get, id)
    print(f"state: {info.state.name.lower()} pid: {info.pid} program: {info.program}")


def demo() -> None:
    run("echo", ["hello from python"])
    start_kill("sleep", ["30"])
    list_processes()
    for program in ["rm", "no-such-program"]:
        try:
            run(program, ["-rf", "/"])
        except GuestError:
            pass
    try:
        get("made-up-id")
    except GuestError:
        pass


class Run(exports.Run):
    """The `wasi:cli/run` export: the guest's `main`."""

    def run(self) -> None:
        argv = sys.argv[1:] or ["demo"]
        verb, rest = argv[0], argv[1:]
        try:
            match verb:
                case "demo":
                    demo()
                case "run" if rest:
                    run(rest[0], rest[1:])
                case "start-kill" if rest:
                    start_kill(rest[0], rest[1:])
                case "list":
                    list_processes()
                case "get" if len(rest) == 1:
                    get(rest[0])
                case _:
                    print(__doc__)
                    raise GuestError()
        except GuestError:
            sys.stdout.flush()
            raise Err(None)
        sys.stdout.flush()
