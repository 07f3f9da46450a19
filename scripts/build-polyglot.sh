#!/usr/bin/env bash
# Builds the Python and JavaScript guests (the examples and the SDKs' parity
# guests) into target/polyglot/
# (or $WASMPROC_POLYGLOT_DIR):
#
#   python-guest.wasm   examples/python, with componentize-py from PyPI,
#                       installed into a virtual environment under target/
#                       with the Python SDK (guest-sdk/python, by pip)
#   python-parity.wasm  guest-sdk/python/parity, the same way
#   js-guest.wasm       examples/js, bundled with the JavaScript SDK
#                       (guest-sdk/js) by esbuild, then componentized by
#                       jco + componentize-js, all from npm (`npm ci` in
#                       examples/js, versions from package-lock.json)
#   js-parity.wasm      guest-sdk/js/parity, the same way
#
# With `python`, it also makes target/lsp-venv (scripts/lsp-venv.sh): the
# real language server a confinement test talks to.
#
# Usage: scripts/build-polyglot.sh [python|js]...   (default: both)
#
# Idempotent: a tool is installed again only when its pinned version changes,
# a component is rebuilt only when its sources or the WIT changed.
#
# Each component then gets its plugin manifest (wasmproc-manifest.toml
# beside its sources) written in with `wasmproc manifest add`, run as
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

# Runs `build COMPONENT SOURCES...` unless COMPONENT's stamp matches its
# sources; then writes MANIFEST into it. `build` writes COMPONENT.
build_if_changed() {
    local wasm=$1 manifest=$2 build=$3 want have=""
    shift 3
    # shellcheck disable=SC2046
    want=$(stamp "$@" $(wit_files))
    [[ -f $wasm.stamp ]] && have=$(cat "$wasm.stamp")
    if [[ -f $wasm && $want == "$have" ]]; then
        echo "==> $wasm is up to date"
    else
        echo "==> building $wasm"
        "$build" "$wasm"
        echo "$want" > "$wasm.stamp"
    fi
    add_manifest "$wasm" "$manifest"
}

# The Python SDK's sources, and the JavaScript SDK's.
python_sdk() { find guest-sdk/python/wasmproc guest-sdk/python/pyproject.toml -name '*.py' -o -name '*.toml' | sort; }
js_sdk() { find guest-sdk/js/index.js guest-sdk/js/src guest-sdk/js/package.json -type f | sort; }

# componentize-py with the venv active, so it finds the installed SDK.
componentize_py() {
    local wasm=$1 dir=$2
    # Bytecode caches would land in the source tree; the component embeds
    # its own.
    VIRTUAL_ENV=$out/venv PATH=$out/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 \
        componentize-py --quiet -d examples/wit -w command componentize -p "$dir" app \
        -o "${wasm%.wasm}.tmp.wasm"
    mv "${wasm%.wasm}.tmp.wasm" "$wasm"
}
build_python_example() { componentize_py "$1" examples/python; }
build_python_parity() { componentize_py "$1" guest-sdk/python/parity; }

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
    # The SDK, installed with pip as a guest author would install it.
    # shellcheck disable=SC2046
    want=$(stamp $(python_sdk))
    have=""
    [[ -f $venv/.sdk ]] && have=$(cat "$venv/.sdk")
    if [[ $want != "$have" ]]; then
        echo "==> installing the wasmproc Python SDK into $venv"
        local copy
        copy=$(mktemp -d)
        # Built from a copy: pip leaves build/ and *.egg-info beside the
        # sources it builds.
        cp -r guest-sdk/python/pyproject.toml guest-sdk/python/README.md guest-sdk/python/wasmproc "$copy/"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$copy"
        rm -rf "$copy"
        echo "$want" > "$venv/.sdk"
    fi
    # shellcheck disable=SC2046
    build_if_changed "$out/python-guest.wasm" examples/python/wasmproc-manifest.toml \
        build_python_example "$requirements" $(python_sdk) examples/python/*.py
    # shellcheck disable=SC2046
    build_if_changed "$out/python-parity.wasm" guest-sdk/python/parity/wasmproc-manifest.toml \
        build_python_parity "$requirements" $(python_sdk) guest-sdk/python/parity/*.py
}

# esbuild bundles a guest and the SDK into one module (componentize-js
# takes one), then jco componentizes it.
componentize_js() {
    local wasm=$1 entry=$2 bin=$root/examples/js/node_modules/.bin
    local bundle=${wasm%.wasm}.bundle.js
    "$bin/esbuild" "$entry" --bundle --format=esm --platform=neutral --log-level=warning \
        --external:'wasmproc:*' --external:'wasi:*' --outfile="$bundle"
    (cd "$(dirname "$bundle")" && "$bin/jco" componentize "$(basename "$bundle")" \
        --wit "$root/examples/wit" --world-name command --disable http fetch-event \
        --out "${wasm%.wasm}.tmp.wasm")
    mv "${wasm%.wasm}.tmp.wasm" "$wasm"
}
build_js_example() { componentize_js "$1" examples/js/guest.js; }
build_js_parity() { componentize_js "$1" guest-sdk/js/parity/guest.js; }

build_js() {
    local dir=examples/js want have=""
    want=$(stamp "$dir/package-lock.json")
    [[ -f $dir/node_modules/.lock-stamp ]] && have=$(cat "$dir/node_modules/.lock-stamp")
    if [[ $want != "$have" ]]; then
        echo "==> npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" > "$dir/node_modules/.lock-stamp"
    fi
    # shellcheck disable=SC2046
    build_if_changed "$out/js-guest.wasm" "$dir/wasmproc-manifest.toml" \
        build_js_example "$dir/package-lock.json" $(js_sdk) "$dir"/*.js
    # shellcheck disable=SC2046
    build_if_changed "$out/js-parity.wasm" guest-sdk/js/parity/wasmproc-manifest.toml \
        build_js_parity "$dir/package-lock.json" $(js_sdk) guest-sdk/js/parity/*.js
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(python js)
for target in "${targets[@]}"; do
    case $target in
        python) build_python && bash scripts/lsp-venv.sh ;;
        js) build_js ;;
        *) echo "usage: $0 [python|js]..." >&2; exit 2 ;;
    esac
done
