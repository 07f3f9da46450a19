"""What a denial looks like to Python code: `wasmproc.Denied`, a
`PermissionError` with the host's reason and the WIT error, from every
way of starting a process. Prints one line per check."""

import errno

import wasmproc as subprocess


def attempt(what, function):
    try:
        function()
    except PermissionError as err:
        print(
            f"{what}: PermissionError denied={isinstance(err, subprocess.Denied)}"
            f" eacces={err.errno == errno.EACCES} wit={type(err.wit_error).__name__} reason={err.reason}"
        )
    except Exception as err:
        print(f"{what}: {type(err).__name__}: {err}")
    else:
        print(f"{what}: not refused")


def main():
    attempt("run", lambda: subprocess.run(["rm", "-rf", "/tmp/x"]))
    attempt("check_output", lambda: subprocess.check_output(["rm", "-rf", "/tmp/x"]))
    attempt("popen", lambda: subprocess.Popen(["rm", "-rf", "/tmp/x"], stdout=subprocess.PIPE))
    attempt("undeclared", lambda: subprocess.run(["curl", "http://127.0.0.1/"]))
    attempt("shell", lambda: subprocess.run("echo hi", shell=True))
