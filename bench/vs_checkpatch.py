#!/usr/bin/env python3
"""Single-patch review vs checkpatch.pl, whole processes, startup included.

For each patch (the public corpus cases with their base/ as --tree, plus patches generated
from linux-source-6.1 fs/ with the extracted git tree as --tree), run alternately

    reviewbot review PATCH --tree TREE
    perl TREE/scripts/checkpatch.pl --no-tree PATCH

(the order flips every round) and print the median wall time of each and their ratio.
Target: reviewbot at most half of checkpatch.pl (ratio <= 0.5).

    .venv/bin/python bench/vs_checkpatch.py [--generated 25] [--repeat 2] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def corpus_cases(corpus: Path) -> list[tuple[str, Path, Path]]:
    out = []
    for d in sorted((corpus / "cases").glob("*")):
        patch = next((d / n for n in ("patch.mbox", "patch.patch") if (d / n).exists()), None)
        if patch and (d / "base").is_dir():
            out.append((d.name, patch, d / "base"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="/work/shared/corpus",
                    help="corpus directory (cases/*/patch.mbox + base/); '' to skip")
    ap.add_argument("--generated", type=int, default=25,
                    help="patches generated from linux-source-6.1 fs/ (default 25)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each tool per patch")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    tree = c.kernel_tree()
    checkpatch = tree / "scripts" / "checkpatch.pl"
    jobs: list[tuple[str, Path, Path]] = []
    if args.corpus and Path(args.corpus, "cases").is_dir():
        jobs += corpus_cases(Path(args.corpus))
    elif args.corpus:
        c.log(f"bench: no corpus at {args.corpus}, generated patches only")
    gen_dir = c.cache_dir() / "vs_checkpatch"
    gen_dir.mkdir(exist_ok=True)
    for i, text in enumerate(c.make_patches(tree, args.generated, seed=args.seed)):
        p = gen_dir / f"{i:04d}.patch"
        p.write_text(text, errors="surrogateescape")
        jobs.append((f"gen-{i:04d}", p, tree))

    rb_times, cp_times, rb_rss, cp_rss = [], [], [], []
    rb_cmd = lambda patch, t: [c.REVIEWBOT, "review", str(patch), "--tree", str(t)]  # noqa: E731
    cp_cmd = lambda patch: ["perl", str(checkpatch), "--no-tree", str(patch)]  # noqa: E731
    # one untimed warm-up of each (page cache, .pyc)
    c.run(rb_cmd(jobs[0][1], jobs[0][2]))
    c.run(cp_cmd(jobs[0][1]), cwd=tree)
    k = 0
    for _rep in range(args.repeat):
        for _name, patch, t in jobs:
            pair = [("rb", rb_cmd(patch, t), None), ("cp", cp_cmd(patch), tree)]
            if k % 2:
                pair.reverse()
            k += 1
            for tool, cmd, cwd in pair:
                r = c.run(cmd, cwd=cwd)
                if tool == "rb":
                    if r.rc not in (0, 1):
                        raise SystemExit(f"reviewbot failed on {patch}")
                    rb_times.append(r.wall)
                    rb_rss.append(r.maxrss_mb)
                else:
                    cp_times.append(r.wall)
                    cp_rss.append(r.maxrss_mb)
    rb, cp = c.median(rb_times), c.median(cp_times)
    ncorp = sum(1 for j in jobs if not j[0].startswith("gen-"))
    print(f"patches: {len(jobs)} ({ncorp} corpus cases, {len(jobs) - ncorp} generated "
          f"from linux-source-6.1 fs/), {args.repeat} run(s) each, alternating")
    print(f"reviewbot review --tree   median {rb * 1000:7.0f} ms  "
          f"(min {min(rb_times) * 1000:.0f}, max {max(rb_times) * 1000:.0f}), "
          f"peak RSS {max(rb_rss):.0f} MB")
    print(f"checkpatch.pl --no-tree   median {cp * 1000:7.0f} ms  "
          f"(min {min(cp_times) * 1000:.0f}, max {max(cp_times) * 1000:.0f}), "
          f"peak RSS {max(cp_rss):.0f} MB")
    ratio = rb / cp
    print(f"ratio reviewbot/checkpatch: {ratio:.2f}  (target <= 0.50: "
          f"{'met' if ratio <= 0.5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
