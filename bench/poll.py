#!/usr/bin/env python3
"""Cron mode: `reviewbot poll` against a local public-inbox of N messages.

Builds (once, cached) a v2 public-inbox with INDEXLEVEL=basic from the synthetic mbox of
gen_big.py in ../shared/lore-lab next to the repository, or $LORE_LAB (N messages: series of
a cover + 4 patches), serves it with public-inbox-httpd on loopback
(reviewbot.cron.localinbox.LocalInbox), then times, as whole processes:

    reviewbot poll --lore http://127.0.0.1:PORT --list NAME --state DB --outbox DIR -q
    1. first full poll (clone the epoch, ingest N messages, review every series, draft)
    2. the same again with nothing new
and, for reference, `reviewbot review MBOX` over the same mbox (the review part alone), so
first poll - review = mirroring + state + drafting overhead.
Targets: first poll < 10 s + review time, nothing-new poll < 0.3 s, peak memory < 200 MB.

    .venv/bin/python bench/poll.py [-n 10000] [--repeat-empty 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

# the lore lab sits in ../shared next to the repository (or where $LORE_LAB says)
GEN_BIG = Path(os.environ.get("LORE_LAB") or c.REPO.parent / "shared" / "lore-lab") / "gen_big.py"
NAME = "big"


def build_inbox(n: int):
    from reviewbot.cron.localinbox import LocalInbox

    root = c.cache_dir() / f"inbox-{n}"
    mbox = c.cache_dir() / f"big-{n}.mbox"
    if not (root / ".complete").exists():
        if not GEN_BIG.exists():
            raise SystemExit(f"{GEN_BIG} not found (set LORE_LAB to the lore-lab directory)")
        shutil.rmtree(root, ignore_errors=True)
        with open(mbox, "wb") as f:
            subprocess.run([sys.executable, str(GEN_BIG), str(n)], stdout=f, check=True)
        c.log(f"bench: importing {n} messages into {root} (INDEXLEVEL=basic, once)")
        import time
        t = time.perf_counter()
        ibx = LocalInbox(root, NAME, indexlevel="basic")
        ibx.create()
        ibx.import_mbox(mbox)
        (root / ".complete").write_text("ok\n")
        c.log(f"bench: inbox built in {time.perf_counter() - t:.1f} s")
    ibx = LocalInbox(root, NAME, indexlevel="basic")
    from reviewbot.cron.localinbox import free_port
    ibx.port = free_port()
    return ibx, mbox


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=10000, help="messages in the inbox (default 10000)")
    ap.add_argument("--repeat-empty", type=int, default=5,
                    help="nothing-new polls to run (median shown)")
    ap.add_argument("--no-review-baseline", action="store_true",
                    help="skip timing `reviewbot review` over the same mbox")
    args = ap.parse_args()

    sys.path.insert(0, str(c.REPO))
    ibx, mbox = build_inbox(args.n)
    work = Path(tempfile.mkdtemp(prefix="poll-", dir=c.cache_dir()))
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_STATE_HOME=str(work / "st"),
               XDG_CACHE_HOME=str(work / "cache"))
    db, outbox = work / "state.sqlite", work / "outbox"
    cmd = [c.REVIEWBOT, "poll", "--lore", "", "--list", NAME, "--state", str(db),
           "--outbox", str(outbox), "-q"]
    try:
        ibx.start()
        cmd[3] = ibx.server
        first = c.run(cmd, env=env)
        if first.rc != 0:
            raise SystemExit("first poll failed")
        empties = [c.run(cmd, env=env) for _ in range(max(1, args.repeat_empty))]
    finally:
        ibx.stop()
    drafts = sum(1 for _ in (outbox / "new").glob("*")) if (outbox / "new").is_dir() else 0
    counts = {}
    try:
        con = sqlite3.connect(db)
        for (t,) in con.execute("select name from sqlite_master where type='table'"):
            counts[t] = con.execute(f"select count(*) from {t}").fetchone()[0]
        con.close()
    except sqlite3.Error:
        pass
    review = None
    if not args.no_review_baseline:
        review = c.run([c.REVIEWBOT, "review", str(mbox), "--format", "json"], env=env)
    shutil.rmtree(work, ignore_errors=True)

    e_wall = c.median([r.wall for r in empties])
    peak = max([first.maxrss_mb] + [r.maxrss_mb for r in empties])
    print(f"inbox: {args.n} messages (gen_big.py: {args.n // 5} series of cover + 4 patches), "
          f"public-inbox-httpd on loopback, INDEXLEVEL=basic")
    print("state tables: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print(f"drafts written: {drafts}")
    print(f"first full poll: {first.wall:.2f} s, peak RSS {first.maxrss_mb:.0f} MB")
    if review is not None:
        over = first.wall - review.wall
        print(f"review alone (reviewbot review MBOX, same messages): {review.wall:.2f} s, "
              f"peak RSS {review.maxrss_mb:.0f} MB")
        print(f"first poll minus review: {over:.2f} s  (target < 10: "
              f"{'met' if over < 10 else 'MISSED'})")
    print(f"nothing-new poll: {e_wall * 1000:.0f} ms median of {len(empties)} "
          f"(min {min(r.wall for r in empties) * 1000:.0f})  (target < 300 ms: "
          f"{'met' if e_wall < 0.3 else 'MISSED'})")
    print(f"peak RSS of poll: {peak:.0f} MB  (target < 200: {'met' if peak < 200 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
