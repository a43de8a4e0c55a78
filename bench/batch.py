#!/usr/bin/env python3
"""Batch review: one reviewbot process over an mbox of many patches against a tree.

The mbox holds N single-patch mails generated from linux-source-6.1 fs/ (real functions
with goto labels, one small error-path edit each, correct `index` lines); --tree is the
extracted git tree. Prints patches per second and the child's peak RSS.
Targets: >= 100 patches/s, peak memory < 200 MB. Each run reviews the patches as new: the
findings kept from an earlier run (review/result_cache.py) are dropped before it.

    .venv/bin/python bench/batch.py [-n 1000] [--format json] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="patches in the mbox (default 1000)")
    ap.add_argument("--format", default="json", choices=["text", "json"])
    ap.add_argument("--repeat", type=int, default=1, help="runs (the best and median shown)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tree = c.kernel_tree()
    patches = c.make_patches(tree, args.n, seed=args.seed)
    mbox = c.cache_dir() / f"batch-{len(patches)}.mbox"
    mbox.write_text("".join(patches), errors="surrogateescape")
    cmd = [c.REVIEWBOT, "review", str(mbox), "--tree", str(tree), "--format", args.format]
    walls, rss = [], []
    findings = None
    for _ in range(args.repeat):
        c.drop_kept_results()
        r = c.run(cmd, capture=True)
        if r.rc not in (0, 1):
            raise SystemExit("reviewbot review failed")
        walls.append(r.wall)
        rss.append(r.maxrss_mb)
        if args.format == "json" and findings is None:
            import json
            doc = json.loads(r.out)
            pats = [p for s in doc["series"] for p in s["patches"]]
            findings = (len(pats), sum(len(p["findings"]) for p in pats),
                        sum(1 for p in pats if p["context"] == "tree"))
    wall = c.median(walls)
    rate = (findings[0] if findings else len(patches)) / wall
    print(f"mbox: {len(patches)} patches generated from linux-source-6.1 fs/ ({mbox})")
    print(f"command: reviewbot review MBOX --tree TREE --format {args.format}")
    if findings:
        print(f"reviewed: {findings[0]} patches ({findings[2]} with tree context), "
              f"{findings[1]} findings")
    print(f"wall: {wall:.2f} s (median of {len(walls)})")
    print(f"throughput: {rate:.0f} patches/s  (target >= 100: {'met' if rate >= 100 else 'MISSED'})")
    print(f"peak RSS: {max(rss):.0f} MB  (target < 200: {'met' if max(rss) < 200 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
