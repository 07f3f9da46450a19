#!/usr/bin/env bash
# Makes target/lsp-venv: a virtual environment of the system's python3 with
# python-lsp-server, the real language server that the confinement test
# `confine_language_server_session_good` talks to. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/lsp-venv
version=1.15.0
if [ -x "$venv/bin/pylsp" ] && "$venv/bin/pip" show python-lsp-server 2>/dev/null | grep -qx "Version: $version"; then
    exit 0
fi
echo "==> making $venv (python-lsp-server $version)"
rm -rf "$venv"
# The system's interpreter, so the venv's python3 resolves into /usr, which
# confined programs may read; a version manager's would live in a home.
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "python-lsp-server==$version"
