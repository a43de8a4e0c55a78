"""The path rules of lock state (reviewbot/checks/lock_state.py) alone over directories of a
kernel tree, at every confidence: a cheaper way than a whole audit to find their real cases.
Each directory's call graph is given to the walk (the lock summaries). `python
bench/lock_walk.py TREE DIR... > out.jsonl` (one JSON line per finding of the lock rules)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter

RULES = ("get-put.double-lock", "get-put.unlock-unheld", "get-put.lock-order",
         "get-put.double-release")
_LOCKS = re.compile(rb"\b(?:mutex_|spin_|raw_spin_|read_|write_|down_|up_|inode_)(?:un)?lock|"
                    rb"\b(?:down|up)_(?:read|write)")


def main(argv: list[str]) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lock_calls import _groups

    from reviewbot.checks.lock_state import LockStateChecker
    from reviewbot.cmodel import parse_c
    from reviewbot.engine import Walker
    from reviewbot.knowledge.callgraph import LazyGraph, build_callgraph
    from reviewbot.knowledge.infer import infer_pairs
    from reviewbot.packs import load_packs

    tree, dirs = argv[0], argv[1:]
    base = load_packs()
    counts: Counter[tuple[str, str]] = Counter()
    t0 = time.monotonic()
    for _d, files in sorted(_groups(tree, dirs).items()):
        group = {}
        for f in files:
            with open(f, "rb") as fh:
                data = fh.read()
            if _LOCKS.search(data):
                group[os.path.relpath(f, tree)] = data.decode("utf-8", "replace")
        if not group:
            continue
        cwd = os.getcwd()
        os.chdir(tree)
        try:
            g = build_callgraph(group, base.context)
        except Exception:  # noqa: BLE001 - a directory the graph cannot take is skipped
            os.chdir(cwd)
            continue
        os.chdir(cwd)
        for path, text in sorted(group.items()):
            lazy = LazyGraph(path, lambda g=g: g)
            packs = base.for_file(path)
            try:
                cf = parse_c(text, path)
            except Exception:  # noqa: BLE001
                continue
            for fn in cf.functions:
                if fn.node.end_byte - fn.node.start_byte > 60_000 or \
                        not _LOCKS.search(fn.node.text or b""):
                    continue
                try:
                    p = packs.with_inferred(infer_pairs(fn, packs))
                    w = Walker(fn, p, [LockStateChecker()], effort="audit", callgraph=lazy)
                    raws = w.run()
                except Exception:  # noqa: BLE001
                    continue
                for raw in raws:
                    if raw.rule not in RULES or (raw.rule == "get-put.double-release" and
                                                 "unlocked twice" not in raw.message):
                        continue
                    counts[(raw.rule, raw.confidence)] += 1
                    print(json.dumps({"rule": raw.rule, "confidence": raw.confidence,
                                      "file": path, "function": fn.name, "line": raw.line,
                                      "resource": raw.resource, "message": raw.message}))
                fn.drop_cfg()
            sys.stdout.flush()
    sys.stderr.write(f"{sum(counts.values())} findings in {time.monotonic() - t0:.0f} s: "
                     + ", ".join(f"{r} {c} {n}" for (r, c), n in sorted(counts.items()))
                     + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
