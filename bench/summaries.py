#!/usr/bin/env python3
"""Function summaries of one directory (reviewbot/knowledge/tree_summaries.py), the way a
review with a tree computes them: every .c file of the directory read, its per-file facts
computed (parse + scan) or taken from the summary cache, then the fixed point.

Prints, for a clean summary cache (cold), the cache it filled (warm, a new process's first
review after an earlier one) and the in-process memo (a series' later patches), the wall
time and the peak RSS, and how many functions have a summary. Target (issue 11): fs/gfs2
under a second.

    .venv/bin/python bench/summaries.py [--dir fs/gfs2] [--tree DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def _tree(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("LINUX_TREE"), "/work/kernel/linux-source-6.1"):
        if cand and Path(cand, "Makefile").exists():
            return Path(cand)
    return c.kernel_tree()  # the fs/ subset extracted once into the benchmark cache


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="fs/gfs2", help="directory of the tree (default fs/gfs2)")
    ap.add_argument("--tree", help="kernel tree (default: /work/kernel/linux-source-6.1, "
                                   "$LINUX_TREE, else the benchmark's fs/ subset)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tree = _tree(args.tree)
    files = {f"{args.dir}/{p.name}": p.read_text(errors="replace")
             for p in sorted((tree / args.dir).glob("*.c"))}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        from reviewbot.knowledge import summary_cache
        from reviewbot.knowledge.tree_summaries import build
        from reviewbot.packs import load_packs

        packs = load_packs()

        def once() -> tuple[float, int]:
            t = time.perf_counter()
            directs = [d for f, text in files.items()
                       for d in summary_cache.directs(f, text, packs)]
            table = build(directs, packs)
            return time.perf_counter() - t, len(table)

        print(f"summaries of {args.dir}: {len(files)} files, "
              f"{sum(len(t) for t in files.values()) // 1024} KiB, tree {tree}")
        for label in ("cold (empty cache)", "warm (cache on disk)", "memo (same process)"):
            if label.startswith("warm"):
                summary_cache._memory.clear()
            runs = []
            for _ in range(args.repeat if not label.startswith("cold") else 1):
                if label.startswith("warm"):
                    summary_cache._memory.clear()
                runs.append(once())
            best = min(r[0] for r in runs)
            print(f"  {label:22} {best * 1000:7.1f} ms  ({runs[0][1]} functions summarised)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS of this process: {peak} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
