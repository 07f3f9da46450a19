"""A child's piped streams as Python file objects."""

import io

from ._host import WAIT_MS, call, process, wit

# Most bytes one `read` asks the host for.
MAX_READ = 1 << 20


class OutputCursor:
    """Reads one piped output stream of a process, from the host's buffer."""

    def __init__(self, id, stream):
        self.id = id
        self.stream = stream
        self.next = 0
        self.ended = False
        self.dropped = 0

    def fetch(self, max_bytes, wait_ms):
        """Up to `max_bytes` new bytes, waiting at most `wait_ms` for some;
        `b""` when none came (check `ended`)."""
        if self.ended:
            return b""
        chunk = call(process.read, self.id, self.stream, self.next, max_bytes, wait_ms)
        self.next = chunk.next
        self.ended = chunk.ended
        self.dropped += chunk.dropped
        return bytes(chunk.data)


class _OutputRaw(io.RawIOBase):
    """The raw reader under `Popen.stdout` and `Popen.stderr`."""

    def __init__(self, cursor):
        super().__init__()
        self.cursor = cursor
        self.used = False

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        self.used = True
        while True:
            data = self.cursor.fetch(min(len(view), MAX_READ), WAIT_MS)
            if data:
                view[: len(data)] = data
                return len(data)
            if self.cursor.ended:
                return 0


class _InputRaw(io.RawIOBase):
    """The raw writer under `Popen.stdin`; closing it closes the child's
    stdin once what was written has been delivered."""

    def __init__(self, id):
        super().__init__()
        self.id = id

    def writable(self):
        return True

    def write(self, data):
        data = bytes(data)
        taken = 0
        while taken < len(data):
            taken += call(process.write, self.id, data[taken : taken + MAX_READ], WAIT_MS)
        return taken

    def close(self):
        if not self.closed:
            try:
                call(process.close_stdin, self.id)
            except (OSError, ValueError):
                # The process already ended, or its stdin is gone.
                pass
        super().close()


def output_file(id, stream, codec):
    """A readable file object over a piped output stream, and its raw
    reader (whose `cursor` reads the stream directly while `used` is
    false)."""
    raw = _OutputRaw(OutputCursor(id, stream))
    file = io.BufferedReader(raw)
    if codec is not None:
        file = io.TextIOWrapper(file, encoding=codec[0], errors=codec[1])
    return file, raw


def input_file(id, codec):
    """A writable file object over a piped stdin."""
    file = io.BufferedWriter(_InputRaw(id))
    if codec is not None:
        file = io.TextIOWrapper(file, encoding=codec[0], errors=codec[1], write_through=True)
    return file


STDOUT = wit.OutputStream.STDOUT
STDERR = wit.OutputStream.STDERR
