#!/usr/bin/env python3
"""Check that a change leaves what reviewbot reports unchanged.

`snapshot OUT` runs, with the reviewbot of this checkout (or --reviewbot PATH),

- `reviewbot audit fs --format json --min-confidence low` over linux-source-6.1's fs/,
- `reviewbot review MBOX --tree TREE --format json` over the 1,000-patch batch of
  bench/batch.py (same generator, same seed),
- `reviewbot eval` over ../shared/corpus and ../shared/corpus-real (when present),

and writes one JSON file: each finding reduced to (rule, file, function, line, message,
confidence, lines). `compare A B` prints what differs and exits 1 if anything does.

    .venv/bin/python bench/same_findings.py snapshot /tmp/before.json
    (change the code)
    .venv/bin/python bench/same_findings.py snapshot /tmp/after.json
    .venv/bin/python bench/same_findings.py compare /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

KEYS = ("rule", "file", "function", "line", "message", "confidence", "lines")


def _norm(findings: list[dict]) -> list[list]:
    return sorted([[f.get(k) for k in KEYS] for f in findings], key=repr)


def _eval_text(out: str | bytes) -> str:
    """eval's JSON without its `version` (which outputs since carry): the findings are
    compared, and snapshots taken before the field compare the same."""
    doc = json.loads(out)
    doc.pop("version", None)
    return json.dumps(doc, indent=2) + "\n"


def snapshot(out: Path, reviewbot: str, n: int) -> None:
    tree = c.kernel_tree()
    result: dict[str, object] = {}
    r = c.run([reviewbot, "audit", "fs", "--format", "json", "--min-confidence", "low"],
              cwd=tree, capture=True)
    if r.rc not in (0, 1):
        raise SystemExit("reviewbot audit failed")
    result["audit-fs"] = _norm(json.loads(r.out)["findings"])
    c.log(f"audit fs: {len(result['audit-fs'])} findings in {r.wall:.1f} s")

    patches = c.make_patches(tree, n, seed=1)
    mbox = c.cache_dir() / f"same-{len(patches)}.mbox"
    mbox.write_text("".join(patches), errors="surrogateescape")
    r = c.run([reviewbot, "review", str(mbox), "--tree", str(tree), "--format", "json"],
              capture=True)
    if r.rc not in (0, 1):
        raise SystemExit("reviewbot review failed")
    doc = json.loads(r.out)
    per_patch = []
    for s in doc["series"]:
        for p in s["patches"]:
            per_patch.append([p.get("subject"), p.get("context"), _norm(p["findings"])])
    result["batch"] = per_patch
    c.log(f"batch: {len(per_patch)} patches, "
          f"{sum(len(p[2]) for p in per_patch)} findings in {r.wall:.1f} s")

    shared = c.REPO.parent / "shared"
    for name in ("corpus", "corpus-real"):
        if (shared / name).is_dir():
            r = c.run([reviewbot, "eval", str(shared / name), "--format", "json"],
                      capture=True)
            result[f"eval-{name}"] = _eval_text(r.out) if r.rc in (0, 1) else f"failed: rc {r.rc}"
    out.write_text(json.dumps(result, indent=0, sort_keys=True))
    print(f"wrote {out}")


def compare(a: Path, b: Path) -> int:
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    bad = 0
    for key in sorted(set(da) | set(db)):
        va, vb = da.get(key), db.get(key)
        if va == vb:
            print(f"{key}: same")
            continue
        bad += 1
        print(f"{key}: DIFFERENT")
        if isinstance(va, list) and isinstance(vb, list) and key == "audit-fs":
            sa, sb = {json.dumps(x) for x in va}, {json.dumps(x) for x in vb}
            for x in sorted(sa - sb)[:20]:
                print(f"  - {x}")
            for x in sorted(sb - sa)[:20]:
                print(f"  + {x}")
        elif isinstance(va, list) and isinstance(vb, list):
            for i, (pa, pb) in enumerate(zip(va, vb, strict=False)):
                if pa != pb:
                    print(f"  patch {i}: {pa[0]}\n    - {pa[2]}\n    + {pb[2]}")
            if len(va) != len(vb):
                print(f"  {len(va)} patches before, {len(vb)} after")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("out", type=Path)
    s.add_argument("--reviewbot", default=c.REVIEWBOT)
    s.add_argument("-n", type=int, default=1000)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "snapshot":
        snapshot(args.out, args.reviewbot, args.n)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
