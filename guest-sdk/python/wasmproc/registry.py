"""The guest's processes as the host lists them (a wasmproc addition)."""

from ._host import call, process


def processes():
    """The ids of this guest's processes, running and recently ended, in
    start order (`Popen.id` is one)."""
    return process.list()


def info(id):
    """The host's snapshot of one of this guest's processes (a WIT
    `process-info`); `ProcessLookupError` for an id that is not one."""
    return call(process.get, id)
