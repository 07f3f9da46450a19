"""`Popen`: a process started in the background, with file-object streams."""

import time

from . import _command
from ._command import DEVNULL, PIPE, STDOUT
from ._host import call, process, returncode, wit
from ._streams import MAX_READ, STDERR as _STDERR, STDOUT as _STDOUT, input_file, output_file
from .errors import TimeoutExpired

# How long `communicate` waits on one stream while another is open too.
_INTERLEAVED_WAIT_MS = 50

# `signal` numbers a guest may send, as the host's signals.
_SIGNALS = {
    15: wit.Signal.TERMINATE,
    9: wit.Signal.KILL,
    2: wit.Signal.INTERRUPT,
    1: wit.Signal.HANGUP,
    3: wit.Signal.QUIT,
    10: wit.Signal.USER1,
    12: wit.Signal.USER2,
}


def _mode(value, what):
    if value == PIPE:
        return wit.StdioMode.PIPED
    if value is None or value == DEVNULL:
        return wit.StdioMode.NULL
    if value == STDOUT:
        raise ValueError("stderr=STDOUT is supported by run, call and check_output, not by Popen")
    raise ValueError(f"{what} must be PIPE, DEVNULL or None, not {value!r}: a guest has no file descriptors to give")


class Popen:
    """A process started in the background, like `subprocess.Popen`.

    `stdin`, `stdout` and `stderr` are file objects for the streams given
    as `PIPE` (text files when `text`, `encoding`, `errors` or
    `universal_newlines` is given), else `None`: `None` and `DEVNULL`
    both connect the stream to `/dev/null`.

    `timeout` (seconds) is a wasmproc addition: the host kills the process
    with its group once it has run that long.
    """

    def __init__(
        self,
        args,
        bufsize=-1,
        executable=None,
        stdin=None,
        stdout=None,
        stderr=None,
        shell=False,
        cwd=None,
        env=None,
        universal_newlines=None,
        *,
        text=None,
        encoding=None,
        errors=None,
        timeout=None,
    ):
        self.args = args
        self.returncode = None
        self.stdin = self.stdout = self.stderr = None
        self._codec = _command.text_codec(text, encoding, errors, universal_newlines)
        self.text_mode = self._codec is not None
        argv = _command.argv(args, shell, executable)
        self._program = argv[0]
        options = wit.StartOptions(
            stdin=_mode(stdin, "stdin"),
            stdout=_mode(stdout, "stdout"),
            stderr=_mode(stderr, "stderr"),
            buffering=wit.Buffering.LOSSLESS,
            buffer_bytes=None,
        )
        cmd = _command.command(argv, cwd=cwd, env=env, timeout=timeout)
        self.id = call(process.start, cmd, options, program=self._program)
        """The host's id of the process."""
        self._raw = {}
        if stdin == PIPE:
            self.stdin = input_file(self.id, self._codec)
        if stdout == PIPE:
            self.stdout, self._raw[_STDOUT] = output_file(self.id, _STDOUT, self._codec)
        if stderr == PIPE:
            self.stderr, self._raw[_STDERR] = output_file(self.id, _STDERR, self._codec)
        self.pid = call(process.get, self.id).pid
        self._input_left = None
        self._partial = {_STDOUT: bytearray(), _STDERR: bytearray()}

    def __repr__(self):
        args = repr(self.args)
        if len(args) > 80:
            args = args[:76] + "..."
        return f"<{type(self).__name__}: returncode: {self.returncode} args: {args}>"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, value, traceback):
        for file in (self.stdout, self.stderr):
            if file is not None:
                file.close()
        try:
            if self.stdin is not None:
                self.stdin.close()
        finally:
            self.wait()

    def info(self):
        """The host's snapshot of the process (a WIT `process-info`)."""
        return call(process.get, self.id)

    def poll(self):
        """The return code if the process has ended, else `None`."""
        if self.returncode is None:
            self._set_status(call(process.wait, self.id, 0))
        return self.returncode

    def wait(self, timeout=None):
        """Waits for the process to end and returns its return code; raises
        `TimeoutExpired` if `timeout` seconds pass first (the process keeps
        running)."""
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            while self.returncode is None:
                self._set_status(call(process.wait, self.id, None))
        else:
            self._set_status(call(process.wait, self.id, _command.timeout_ms(timeout)))
            if self.returncode is None:
                raise TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, input=None, timeout=None):
        """Sends `input` to stdin (then closes it), reads stdout and stderr
        to their end, waits for the process and returns `(stdout, stderr)`
        (`None` for a stream that is not piped). After `TimeoutExpired` it
        may be called again to go on, without `input`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if input is not None and self._input_left is not None:
            raise ValueError("Cannot send input after starting communication")
        if self._input_left is None:
            self._input_left = _command.encode(input, self._codec) or b""
            if self._input_left and self.stdin is None:
                raise ValueError("input given but stdin is not PIPE")
            if self.stdin is not None:
                self.stdin.flush()
        while True:
            self._feed_stdin()
            open_streams = [s for s, raw in self._raw.items() if not raw.cursor.ended]
            if not open_streams and (self.stdin is None or self.stdin.closed):
                break
            left_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if left_ms == 0:
                raise TimeoutExpired(self.args, timeout, self._partial_text(_STDOUT), self._partial_text(_STDERR))
            wait_ms = _INTERLEAVED_WAIT_MS if len(open_streams) > 1 or self._input_left else 1000
            wait_ms = wait_ms if left_ms is None else min(wait_ms, left_ms)
            for stream in open_streams:
                raw = self._raw[stream]
                if raw.used:
                    file = self.stdout if stream == _STDOUT else self.stderr
                    rest = file.read()
                    self._partial[stream] += rest.encode(*self._codec) if self._codec else rest
                    raw.cursor.ended = True
                else:
                    self._partial[stream] += raw.cursor.fetch(MAX_READ, wait_ms)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self.wait(left)
        except TimeoutExpired:
            raise TimeoutExpired(self.args, timeout, self._partial_text(_STDOUT), self._partial_text(_STDERR)) from None
        result = tuple(self._partial_text(s) if s in self._raw else None for s in (_STDOUT, _STDERR))
        for file in (self.stdout, self.stderr):
            if file is not None:
                file.close()
        return result

    def _partial_text(self, stream):
        data = bytes(self._partial[stream])
        return _command.decode(data, self._codec)

    def _feed_stdin(self):
        """Writes what input is left without waiting long; closes stdin
        once it is all delivered. A child that stopped reading is no error
        (as a broken pipe is not for `subprocess`)."""
        if self.stdin is None or self.stdin.closed:
            return
        if self._input_left:
            try:
                taken = call(process.write, self.id, self._input_left[:MAX_READ], 10)
                self._input_left = self._input_left[taken:]
            except (OSError, ValueError):
                self._input_left = b""
        if not self._input_left:
            try:
                self.stdin.close()
            except (OSError, ValueError):
                pass

    def send_signal(self, sig):
        """Sends `sig` (a number from `signal`: TERM, KILL, INT, HUP, QUIT,
        USR1, USR2) to the process's group; nothing once it has ended."""
        if self.returncode is not None:
            return
        try:
            signal = _SIGNALS[int(sig)]
        except KeyError:
            raise ValueError(f"signal {int(sig)} cannot be sent by a guest") from None
        call(process.send_signal, self.id, signal)

    def terminate(self):
        """Sends SIGTERM."""
        self.send_signal(15)

    def kill(self):
        """Stops the process: SIGTERM to its group, then SIGKILL after the
        host's grace period (a difference from `subprocess`, which sends
        SIGKILL at once). Returns once the process has been reaped."""
        if self.returncode is None:
            call(process.kill, self.id)

    def _set_status(self, status):
        if status is not None and self.returncode is None:
            self.returncode = returncode(status)
