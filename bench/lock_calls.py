"""The lock rules across functions (reviewbot/checks/lock_calls.py) over whole directories
of a kernel tree, without the rest of the audit: one call graph per directory, every
function's findings. `python bench/lock_calls.py TREE DIR... > out.jsonl` (one JSON line
per finding; a summary line on stderr)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter


def _groups(tree: str, dirs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in dirs:
        for root, _dirs, files in os.walk(os.path.join(tree, d)):
            cs = sorted(f for f in files if f.endswith(".c"))
            if cs:
                out[os.path.relpath(root, tree)] = [os.path.join(root, f) for f in cs]
    return out


def main(argv: list[str]) -> int:
    from reviewbot.checks.lock_calls import AcrossFunctions
    from reviewbot.knowledge.callgraph import build_callgraph
    from reviewbot.knowledge.lock_summaries import summaries
    from reviewbot.packs import load_packs

    if len(argv) < 2:
        sys.stderr.write("usage: bench/lock_calls.py TREE DIR...\n")
        return 2
    tree, dirs = argv[0], argv[1:]
    packs = load_packs()
    checker = AcrossFunctions()
    counts: Counter[tuple[str, str]] = Counter()
    t0 = time.monotonic()
    for _d, files in sorted(_groups(tree, dirs).items()):
        group = {}
        for f in files:
            with open(f, "rb") as fh:
                group[os.path.relpath(f, tree)] = fh.read().decode("utf-8", "replace")
        cwd = os.getcwd()
        os.chdir(tree)  # the graph reads included headers relative to the tree
        try:
            g = build_callgraph(group, packs.context)
        finally:
            os.chdir(cwd)
        s = summaries(g, packs)
        for r in g.records:
            if r.body.kind != "function" or r.path not in group:
                continue
            for raw in checker.raws(s, r):
                counts[(raw.rule, raw.confidence)] += 1
                print(json.dumps({"rule": raw.rule, "confidence": raw.confidence,
                                  "file": r.path, "function": r.name, "line": raw.line,
                                  "resource": raw.resource, "message": raw.message}))
        sys.stdout.flush()
    sys.stderr.write(f"{sum(counts.values())} findings in {time.monotonic() - t0:.0f} s: "
                     + ", ".join(f"{r} {c} {n}" for (r, c), n in sorted(counts.items()))
                     + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
