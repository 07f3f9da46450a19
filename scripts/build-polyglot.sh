#!/usr/bin/env bash
# Builds the Python and JavaScript example guests into target/polyglot/
# (or $WASMPROC_POLYGLOT_DIR):
#
#   python-guest.wasm   examples/python, with componentize-py from PyPI,
#                       installed into a virtual environment under target/
#   js-guest.wasm       examples/js, with jco + componentize-js from npm
#                       (`npm ci`, versions from package-lock.json)
#
# Usage: scripts/build-polyglot.sh [python|js]...   (default: both)
#
# Idempotent: a tool is installed again only when its pinned version changes,
# a component is rebuilt only when its sources or the WIT changed.
#
# Each component then gets its plugin manifest (examples/<lang>/
# wasmproc-manifest.toml) written in with `wasmproc manifest add`, run as
# $WASMPROC if set, else through `cargo run`. That step replaces the
# manifest the component carried, so it runs every time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${WASMPROC_POLYGLOT_DIR:-$root/target/polyglot}
mkdir -p "$out"

# A stamp of the inputs of a build: when it matches the stamp stored beside
# the output, the output is up to date.
stamp() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

# Writes a manifest into a built component (in place).
add_manifest() {
    local wasm=$1 manifest=$2
    echo "==> writing $manifest into $wasm"
    if [[ -n ${WASMPROC:-} ]]; then
        "$WASMPROC" manifest add "$wasm" --manifest "$manifest" >/dev/null
    else
        cargo run --quiet -p wasmproc -- manifest add "$wasm" --manifest "$manifest" >/dev/null
    fi
}

wit_files() {
    find -L examples/wit wit -name '*.wit' | sort
}

build_python() {
    local venv=$out/venv requirements=examples/python/requirements.txt
    local want have=""
    want=$(stamp "$requirements")
    [[ -f $venv/.requirements ]] && have=$(cat "$venv/.requirements")
    if [[ $want != "$have" ]]; then
        echo "==> installing componentize-py into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        echo "$want" > "$venv/.requirements"
    fi
    local wasm=$out/python-guest.wasm
    # shellcheck disable=SC2046
    want=$(stamp "$requirements" examples/python/*.py $(wit_files))
    have=""
    [[ -f $wasm.stamp ]] && have=$(cat "$wasm.stamp")
    if [[ -f $wasm && $want == "$have" ]]; then
        echo "==> $wasm is up to date"
        add_manifest "$wasm" examples/python/wasmproc-manifest.toml
        return
    fi
    echo "==> building $wasm"
    # Bytecode caches would land in the source tree; the component embeds
    # its own.
    PYTHONDONTWRITEBYTECODE=1 "$venv/bin/componentize-py" --quiet -d examples/wit -w command \
        componentize -p examples/python app -o "${wasm%.wasm}.tmp.wasm"
    mv "${wasm%.wasm}.tmp.wasm" "$wasm"
    echo "$want" > "$wasm.stamp"
    add_manifest "$wasm" examples/python/wasmproc-manifest.toml
}

build_js() {
    local dir=examples/js want have=""
    want=$(stamp "$dir/package-lock.json")
    [[ -f $dir/node_modules/.lock-stamp ]] && have=$(cat "$dir/node_modules/.lock-stamp")
    if [[ $want != "$have" ]]; then
        echo "==> npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" > "$dir/node_modules/.lock-stamp"
    fi
    local wasm=$out/js-guest.wasm
    # shellcheck disable=SC2046
    want=$(stamp "$dir/package-lock.json" "$dir"/*.js $(wit_files))
    have=""
    [[ -f $wasm.stamp ]] && have=$(cat "$wasm.stamp")
    if [[ -f $wasm && $want == "$have" ]]; then
        echo "==> $wasm is up to date"
        add_manifest "$wasm" "$dir/wasmproc-manifest.toml"
        return
    fi
    echo "==> building $wasm"
    (cd "$dir" && npx --no-install jco componentize guest.js --wit ../wit --world-name command \
        --disable http fetch-event --out "${wasm%.wasm}.tmp.wasm")
    mv "${wasm%.wasm}.tmp.wasm" "$wasm"
    echo "$want" > "$wasm.stamp"
    add_manifest "$wasm" "$dir/wasmproc-manifest.toml"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(python js)
for target in "${targets[@]}"; do
    case $target in
        python) build_python ;;
        js) build_js ;;
        *) echo "usage: $0 [python|js]..." >&2; exit 2 ;;
    esac
done
