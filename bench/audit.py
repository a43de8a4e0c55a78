#!/usr/bin/env python3
"""Whole-file audit: `reviewbot audit fs/` over linux-source-6.1 (no patch involved).

Runs, as one process from the extracted tree (see _common.kernel_tree),

    reviewbot audit fs --format json

and prints files per second, the number of findings (by category) and the child's peak RSS.
Targets: >= 50 files/s, peak memory < 200 MB. The default is all of fs/ (1,300+ .c files);
give directories to audit a subset, e.g. `bench/audit.py fs/gfs2 fs/ext4`.

    .venv/bin/python bench/audit.py [DIR ...] [--no-consensus]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", default=["fs"],
                    help="directories of the tree to audit (default: fs)")
    ap.add_argument("--no-consensus", action="store_true",
                    help="pass --no-consensus (no ops-table consensus mining)")
    args = ap.parse_args()

    tree = c.kernel_tree()
    nfiles = 0
    for d in args.dirs:
        for _root, _dirs, files in os.walk(tree / d):
            nfiles += sum(1 for f in files if f.endswith(".c"))
    cmd = [c.REVIEWBOT, "audit", *args.dirs, "--format", "json"]
    if args.no_consensus:
        cmd.append("--no-consensus")
    c.log(f"bench: {' '.join(cmd[1:])} ({nfiles} .c files) in {tree}")
    r = c.run(cmd, cwd=tree, capture=True)
    if r.rc not in (0, 1):
        raise SystemExit("reviewbot audit failed")
    findings = json.loads(r.out)["findings"]
    by_cat = collections.Counter(f.get("category", "?") for f in findings)
    by_sev = collections.Counter(f.get("severity", "?") for f in findings)
    rate = nfiles / r.wall
    print(f"audit: {' '.join(args.dirs)} of linux-source-6.1: {nfiles} .c files")
    print(f"command: reviewbot audit {' '.join(args.dirs)} --format json"
          + (" --no-consensus" if args.no_consensus else ""))
    print(f"wall: {r.wall:.1f} s")
    print(f"throughput: {rate:.1f} files/s  (target >= 50: {'met' if rate >= 50 else 'MISSED'})")
    print(f"findings: {len(findings)} ("
          + ", ".join(f"{k} {v}" for k, v in sorted(by_cat.items())) + "; "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_sev.items())) + ")")
    print(f"peak RSS: {r.maxrss_mb:.0f} MB  (target < 200: "
          f"{'met' if r.maxrss_mb < 200 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
