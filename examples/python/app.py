"""A wasmproc guest in Python: runs, starts, lists, inspects and kills
processes with the `wasmproc` SDK, shaped like `subprocess`.

Usage (the arguments after `--` of `wasmproc run`):

    demo                    every call below, in order (the default)
    run PROGRAM [ARG...]    run to completion, print its stdout and status
    start-kill PROGRAM [ARG...]
                            start in the background, inspect, list, kill
    list                    start two `sleep 30`, list them, kill them
    get ID                  a snapshot of one process (a made-up id fails)

Every failed call prints `error: <kind>: <detail>` (the kind of the WIT
error the host returned, which every exception of the SDK keeps as
`wit_error`) and the guest exits 1.
"""

import sys

import wasmproc
from componentize_py_types import Err
from wit_world import exports


class GuestError(Exception):
    """A failed call, already reported on stdout."""


def report(error: Exception) -> GuestError:
    """Prints `error: <kind>: <detail>` for an exception of the SDK."""
    wit = getattr(error, "wit_error", None)
    kind = type(wit).__name__.removeprefix("Error_") if wit is not None else type(error).__name__
    kind = {"NotFound": "not-found", "LimitReached": "limit-reached", "SpawnFailed": "spawn-failed"}.get(kind, kind.lower())
    detail = getattr(wit, "value", None)
    print(f"error: {kind}: {detail}" if detail is not None else f"error: {kind}")
    return GuestError()


def status(returncode) -> str:
    if returncode is None:
        return "running"
    return f"exited {returncode}" if returncode >= 0 else f"signaled {-returncode}"


def run(program: str, args: list) -> None:
    try:
        done = wasmproc.run([program, *args], capture_output=True, text=True)
    except OSError as error:  # Denied is a PermissionError, an OSError
        raise report(error) from None
    sys.stdout.write(done.stdout)
    print(f"status: {status(done.returncode)}")


def start_kill(program: str, args: list) -> None:
    try:
        child = wasmproc.Popen([program, *args])
    except OSError as error:
        raise report(error) from None
    print(f"started: {child.id}")
    info = child.info()
    print(f"state: {info.state.name.lower()} pid: {child.pid} program: {info.program}")
    print(f"listed: {'yes' if child.id in wasmproc.processes() else 'no'}")
    child.kill()
    print(f"after kill: {child.info().state.name.lower()} {status(child.wait())}")


def list_processes() -> None:
    children = [wasmproc.Popen(["sleep", "30"]) for _ in range(2)]
    listed = wasmproc.processes()
    print(f"count: {len(listed)}")
    print(f"in start order: {'yes' if listed[-2:] == [c.id for c in children] else 'no'}")
    for child in children:
        child.kill()
    print(f"killed: {len(children)}")


def get(id: str) -> None:
    try:
        info = wasmproc.info(id)
    except ProcessLookupError as error:
        raise report(error) from None
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
            # The error case of `wasi:cli/run`: the guest exits 1.
            raise Err(None)
        sys.stdout.flush()
