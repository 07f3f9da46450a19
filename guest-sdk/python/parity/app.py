"""The Python SDK's parity guest: cases of CPython's
Lib/test/test_subprocess.py, re-expressed for a guest (the children are
small shell lines instead of `sys.executable -c ...`), run against
`wasmproc`.

Usage (the arguments after `--` of `wasmproc run`):

    parity DIR      every case; DIR is a directory the policy grants as a
                    working-directory root. Prints one line a case:
                    `case NAME: pass`, `case NAME: fail: WHY` or
                    `case NAME: difference: WHAT` (a deliberate difference
                    from `subprocess`, itself checked)
    denied          what a denial looks like to Python code
    lsp             a JSON-RPC conversation with a child through Popen pipes
"""

import sys

from wit_world import exports

import cases
import conversation
import denial


class Run(exports.Run):
    """The `wasi:cli/run` export."""

    def run(self) -> None:
        verb, rest = (sys.argv[1:2] or [""])[0], sys.argv[2:]
        match verb:
            case "parity" if len(rest) == 1:
                cases.run_all(rest[0])
            case "denied":
                denial.main()
            case "lsp":
                conversation.main()
            case _:
                print(__doc__)
        sys.stdout.flush()
