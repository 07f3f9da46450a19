#!/usr/bin/env bash
# Checks that the modules of host/src import downward only: each layer may
# name (`crate::…`) the layers below it, never one above. The order, lowest
# first, is scripts/layers.txt (ARCHITECTURE.md draws it); module-graph.py
# checks the same order on the resolved `use` edges, and that no module
# imports itself back. Exits 1 and names each upward import.
set -euo pipefail
cd "$(dirname "$0")/../host/src"

mapfile -t order < <(grep -vE '^(#|$)' ../../scripts/layers.txt)
rank() {
    local i
    for i in "${!order[@]}"; do
        [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo "unknown layer: $1" >&2
    exit 2
}
names=$(IFS='|'; echo "${order[*]}")

bad=0
for layer in "${order[@]}"; do
    if [ -d "$layer" ]; then files=$(find "$layer" -name '*.rs'); else files="$layer.rs"; fi
    own=$(rank "$layer")
    for file in $files; do
        while IFS= read -r hit; do
            [ -z "$hit" ] && continue
            line=${hit%%:*}
            named=$(sed -E 's/.*crate::([a-z_]+).*/\1/' <<<"${hit#*:}")
            [ "$named" = "$layer" ] && continue
            other=$(rank "$named")
            if [ "$other" -gt "$own" ]; then
                echo "host/src/$file:$line: $layer imports $named, a layer above it" >&2
                bad=1
            fi
        done < <(grep -noE "crate::($names)\b" "$file" || true)
    done
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "host/src: every import points down (${order[*]})"
