#!/usr/bin/env python3
"""Reads a module graph in DOT from `cargo modules dependencies` (modules
only, "uses" edges) on stdin and prints every import cycle: each strongly
connected set of more than one module. Exits 1 if there is any."""
import re
import sys

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

for scc in sccs:
    print("cycle: " + " <-> ".join(scc))
    for a in scc:
        for b in sorted(edges[a] & set(scc)):
            print(f"  {a} uses {b}")
print(f"{len(edges)} modules, {sum(len(v) for v in edges.values())} import edges, {len(sccs)} cycles")
sys.exit(1 if sccs else 0)
