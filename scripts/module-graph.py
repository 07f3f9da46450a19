#!/usr/bin/env python3
"""Reads the module graph of wasmproc-host in DOT from `cargo modules
dependencies` (modules only, "uses" edges, resolved: grouped and `super::`
imports included) on stdin and prints every import cycle (each strongly
connected set of more than one module) and every import of a layer above
the importer's (the order is scripts/layers.txt). Exits 1 if there is
any."""
import pathlib
import re
import sys

LAYERS = [
    line.strip()
    for line in (pathlib.Path(__file__).parent / "layers.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

edges = {}
for line in sys.stdin:
    m = re.match(r'\s*"([^"]+)" -> "([^"]+)" \[label="uses"', line)
    if m and m.group(1) != m.group(2):
        edges.setdefault(m.group(1), set()).add(m.group(2))
        edges.setdefault(m.group(2), set())

# Tarjan's strongly connected components, iteratively.
index, low, on_stack, stack, sccs, counter = {}, {}, set(), [], [], [0]
for root in sorted(edges):
    if root in index:
        continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = counter[0]
    counter[0] += 1
    stack.append(root)
    on_stack.add(root)
    while work:
        node, children = work[-1]
        for child in children:
            if child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
                break
            if child in on_stack:
                low[node] = min(low[node], index[child])
        else:
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member == node:
                        break
                if len(scc) > 1:
                    sccs.append(sorted(scc))

def layer(module):
    """The rank of a module's layer (its top-level module), or None for the
    crate root and anything outside the layers."""
    parts = module.split("::")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


upward = sorted(
    (a, b)
    for a, targets in edges.items()
    for b in targets
    if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)
)
for a, b in upward:
    print(f"upward: {a} uses {b} ({LAYERS[layer(a)]} is below {LAYERS[layer(b)]})")

for scc in sccs:
    print("cycle: " + " <-> ".join(scc))
    for a in scc:
        for b in sorted(edges[a] & set(scc)):
            print(f"  {a} uses {b}")
print(
    f"{len(edges)} modules, {sum(len(v) for v in edges.values())} import edges, "
    f"{len(sccs)} cycles, {len(upward)} upward imports"
)
sys.exit(1 if sccs or upward else 0)
