#!/usr/bin/env bash
# Checks that the modules of host/src import downward only: each layer may
# name (`crate::…`) the layers below it, never its own peers' upper
# neighbours or anything above. The order, lowest first (ARCHITECTURE.md):
#
#   base      sys, types, deadline, error, audit
#   policy    the grant language (data and pure checks)
#   manifest  what a plugin declares
#   os        spawner, child, cgroups, subreaper, watchdog, confinement
#   process   the manager, a process, capture, buffers, the registry
#   session   a guest's context, admission, its rate bucket
#   wit       bindings, the adapter, the linker
#   embed     the runtime, its pool, cache and compiler
#
# Cycles between modules are checked by `cargo modules dependencies
# --acyclic` in CI; this checks the order of the layers, which a cycle
# check alone does not. Exits 1 and names each upward import.
set -euo pipefail
cd "$(dirname "$0")/../host/src"

order=(sys types deadline error audit policy manifest os process session wit embed)
rank() {
    local i
    for i in "${!order[@]}"; do
        [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo "unknown layer: $1" >&2
    exit 2
}
# The base modules are one layer: they may not name one another upward
# either, but audit may name types.
base_rank=4

bad=0
for layer in "${order[@]}"; do
    if [ -d "$layer" ]; then files=$(find "$layer" -name '*.rs'); else files="$layer.rs"; fi
    own=$(rank "$layer")
    [ "$own" -le "$base_rank" ] && own_cmp=$base_rank || own_cmp=$own
    for file in $files; do
        while IFS= read -r hit; do
            [ -z "$hit" ] && continue
            line=${hit%%:*}
            named=$(sed -E 's/.*crate::([a-z_]+).*/\1/' <<<"${hit#*:}")
            [ "$named" = "$layer" ] && continue
            other=$(rank "$named")
            [ "$other" -le "$base_rank" ] && other_cmp=$base_rank || other_cmp=$other
            if [ "$other_cmp" -gt "$own_cmp" ] || { [ "$own" -le "$base_rank" ] && [ "$other" -gt "$own" ]; }; then
                echo "host/src/$file:$line: $layer imports $named, a layer above it" >&2
                bad=1
            fi
        done < <(grep -noE 'crate::(sys|types|deadline|error|audit|policy|manifest|os|process|session|wit|embed)\b' "$file" || true)
    done
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "host/src: every import points down (${order[*]})"
