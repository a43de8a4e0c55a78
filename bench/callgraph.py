#!/usr/bin/env python3
"""The call graph and facts of one subsystem (the context rules' knowledge): time and memory.

Builds, in this process, `knowledge.callgraph.build_callgraph` over the .c files of a
directory of linux-source-6.1 (default fs/gfs2) and the headers they include, three ways:

- cold: nothing cached (the on-disk cache of file facts pointed at an empty directory);
- disk: the file facts read back from that cache (a new process on a tree seen before);
- warm: the facts in memory (a second graph in one process: what a review's image costs);
- derive: one file replaced (a patch's post-image), derived from the warm graph;
- calls: every call made under a lock evaluated with its arguments, as
  context.sleep-in-atomic asks (reviewbot/knowledge/sleeps.py), on the cold graph;

and prints CPU seconds (process time, not disturbed by other load) and wall seconds of
each, the records and their facts (how many may sleep, return holding a lock, are reached
in reclaim) and the peak of Python allocations (tracemalloc) of a second cold build. Goal: well
under a second for fs/gfs2.

    .venv/bin/python bench/callgraph.py [DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def _timed(fn):
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - t0, time.perf_counter() - w0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default="fs/gfs2", help="directory of the tree")
    args = ap.parse_args()
    tree = Path(os.environ.get("REVIEWBOT_KERNEL", "/work/kernel/linux-source-6.1"))
    if not (tree / args.dir).is_dir():
        tree = c.kernel_tree()
    d = tree / args.dir
    src = {str(p): p.read_bytes() for p in sorted(d.glob("*.c"))}
    if not src:
        raise SystemExit(f"bench: no .c files in {d}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["REVIEWBOT_CONTEXT_CACHE"] = cache
        from reviewbot.knowledge import ctxfacts
        from reviewbot.knowledge.callgraph import build_callgraph
        from reviewbot.packs import load_packs

        ctx = load_packs().context

        def build():
            g = build_callgraph(src, ctx)
            g.in_reclaim(g.records[0])  # the reclaim facts, as an audit asks for them
            return g

        g, cpu, wall = _timed(build)
        for sub in os.listdir(cache):  # again from nothing, allocations traced
            shutil.rmtree(os.path.join(cache, sub))
        ctxfacts._CACHE.clear()
        tracemalloc.start()
        build()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        ctxfacts._CACHE.clear()
        _g, dcpu, dwall = _timed(build)
        _g, wcpu, wwall = _timed(build)
        first = next(iter(src))
        changed = ctxfacts.file_facts(src[first] + b"\n/* changed */\n", first)
        _g, xcpu, xwall = _timed(lambda: g.derive([changed]))
        from reviewbot.knowledge.sleeps import sleeps_at

        def evaluate():
            return sum(1 for r in g.records for ev, _held in r.locked_calls
                       if sleeps_at(g, ev, r))

        asked, ecpu, ewall = _timed(evaluate)
    files = len({r.path for r in g.records})
    sleeps = sum(1 for r in g.records if r.sleeps is not None)
    locks = sum(1 for r in g.records if r.acquires)
    reach = sum(1 for r in g.records if g.in_reclaim(r))
    print(f"{args.dir}: {len(src)} .c files, {files} files with headers, "
          f"{len(g.records)} functions and macros")
    print(f"  cold   {cpu:6.2f} s CPU {wall:6.2f} s wall, peak {peak / 1e6:.0f} MB allocated")
    print(f"  disk   {dcpu:6.2f} s CPU {dwall:6.2f} s wall (file facts from the cache)")
    print(f"  warm   {wcpu:6.2f} s CPU {wwall:6.2f} s wall (file facts in memory)")
    print(f"  derive {xcpu:6.2f} s CPU {xwall:6.2f} s wall (one file changed)")
    locked = sum(len(r.locked_calls) for r in g.records)
    print(f"  calls  {ecpu:6.2f} s CPU {ewall:6.2f} s wall ({locked} calls under a lock "
          f"evaluated with their arguments, {asked} may sleep)")
    print(f"  facts: {sleeps} may sleep, {locks} return holding a lock, {reach} reached in "
          f"reclaim from {len(g.entries)} entry points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
