#!/usr/bin/env python3
"""How often reviewbot flags real error-path mistakes in subsystems no pack describes.

For every function of the chosen directories of linux-source-6.1 that has an unwind ladder,
make one-line mutations of the kind a careless patch makes, review each as a patch against
the unmodified tree, and count those with an introduced finding in that function:
- drop-release: delete a release-looking call right under an unwind label;
- goto-to-return: turn a `goto LABEL;` whose label code releases something into
  `return ERRVAR;`;
- wrong-label: send a goto to the label one step further down the ladder.
Not every mutation is a bug (the label may release nothing held there), so the figure is a
flag rate, a lower bound on what a reviewer sees. Also prints the time per review.

    .venv/bin/python bench/mutations.py [DIR ...] [-n PER_KIND]
    (default DIRs: fs/ocfs2 drivers/spi net/core)
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _common as c  # noqa: E402

_LABEL = re.compile(r"^(\w+):\s*$")
_GOTO = re.compile(r"^(\s+)goto (\w+);\s*$")
_REL = re.compile(r"^\s+(\w*(put|free|release|unlock|destroy|commit|end|unregister|"
                  r"uninit|unmap|disable|unprepare)\w*)\(.*\);\s*$")


def mutations(path: str, text: str) -> list[tuple[str, str, int, str | None]]:
    """(kind, function, line index, new line or None to delete)."""
    lines = text.split("\n")
    out = []
    for a, b in c._functions(lines):
        labels = [(i, _LABEL.match(lines[i]).group(1)) for i in range(a, b)
                  if _LABEL.match(lines[i])]
        if not labels:
            continue
        fn = c._fname(lines, a)
        var = next((m.group(1) for ln in lines[a:a + 30] if (m := c._ERRVAR.match(ln))), None)
        releasing = set()
        for n, (i, name) in enumerate(labels):
            end = labels[n + 1][0] if n + 1 < len(labels) else b
            if any(_REL.match(ln) for ln in lines[i + 1:end]):
                releasing.add(name)
            if i + 1 < b and _REL.match(lines[i + 1]):
                out.append(("drop-release", fn, i + 1, None))
        order = [name for _i, name in labels]
        for i in range(a + 1, b):
            m = _GOTO.match(lines[i])
            if not m or m.group(2) not in order:
                continue
            if var and m.group(2) in releasing:
                out.append(("goto-to-return", fn, i, f"{m.group(1)}return {var};"))
            k = order.index(m.group(2))
            if k + 1 < len(order) and m.group(2) in releasing:
                out.append(("wrong-label", fn, i, f"{m.group(1)}goto {order[k + 1]};"))
    return out


def plain_tree(dirs: list[str]) -> Path:
    """The directories extracted from linux-source-6.1 into a plain directory (once)."""
    import subprocess

    root = c.cache_dir() / "plain"
    tree = root / c.TOP
    missing = [d for d in dirs if not (tree / d).is_dir()]
    if missing:
        root.mkdir(parents=True, exist_ok=True)
        c.log(f"bench: extracting {', '.join(missing)} from {c.TARBALL} (once)")
        subprocess.run(["tar", "-xJf", str(c.TARBALL), "-C", str(root), "--wildcards",
                        *[f"{c.TOP}/{d}/*" for d in missing]], check=True)
    return tree


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", default=["fs/ocfs2", "drivers/spi", "net/core"])
    ap.add_argument("-n", type=int, default=40, help="mutations per kind and directory")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from reviewbot.model import Patch, Series
    from reviewbot.review.pipeline import Reviewer

    tree = plain_tree(args.dirs)
    rng = random.Random(args.seed)
    reviewer = Reviewer(str(tree))
    print(f"tree: {tree}")
    total_t, total_n = 0.0, 0
    for d in args.dirs:
        files = sorted((tree / d).rglob("*.c"))
        pool: dict[str, list] = {}
        for f in files:
            rel = str(f.relative_to(tree))
            text = f.read_text(errors="replace")
            for kind, fn, idx, new in mutations(rel, text):
                pool.setdefault(kind, []).append((rel, text, fn, idx, new))
        for kind in ("drop-release", "goto-to-return", "wrong-label"):
            cands = pool.get(kind, [])
            rng.shuffle(cands)
            flagged = done = 0
            for rel, text, fn, idx, new in cands[: args.n]:
                diff = c.make_patch(rel, text, "goto-to-return" if new else "drop", idx, new,
                                    fn, done)
                body = diff[diff.index("diff --git"):diff.index("-- \n")]
                patch = Patch(subject=f"{fn}: {kind}", raw_subject="", message_id="",
                              diff=body)
                t = time.perf_counter()
                res = reviewer.review_series(Series(patch.subject, 1, "", [patch]))
                total_t += time.perf_counter() - t
                total_n += 1
                done += 1
                if any(f.status == "introduced" and f.function == fn for f in res.findings()):
                    flagged += 1
            rate = f"{flagged / done:.0%}" if done else "-"
            print(f"{d:<14} {kind:<15} flagged {flagged:>3}/{done:<3} ({rate})")
    if total_n:
        print(f"reviews: {total_n}, {1000 * total_t / total_n:.0f} ms each on average "
              "(in-process, startup excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
