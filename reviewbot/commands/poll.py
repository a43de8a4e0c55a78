"""`reviewbot poll`: the cron job. Mirror the watched lists, review new series, draft replies.

Exit 0 when the run completed (whatever it found), 2 with a one-line message on bad
configuration, a held lock or an unreachable server (that list's state is left as it was).
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help="mirror watched lists, review each new series once, draft replies (cron)",
        description=__doc__)
    p.add_argument("--config", metavar="FILE", help="TOML configuration ([poll], [[lists]])")
    p.add_argument("--lore", metavar="URL",
                   help="public-inbox server (or inbox) URL (default https://lore.kernel.org)")
    p.add_argument("--list", metavar="NAME", help="watch only this list (inbox name)")
    p.add_argument("--state", metavar="DB", help="SQLite state file")
    p.add_argument("--outbox", metavar="DIR", help="Maildir for the drafted replies")
    p.add_argument("--tree", metavar="PATH", help="source tree the patches apply to")
    p.add_argument("--lock", metavar="FILE", help="lock file (default: DB.lock)")
    p.add_argument("--wait-incomplete-hours", type=float, metavar="H",
                   help="how long an incomplete series waits for its missing patches")
    p.add_argument("--transport", choices=("auto", "git", "http"),
                   help="git epochs (pygit2) or HTTP (new.atom + t.mbox.gz); auto = git if offered")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.add_argument("-v", "--verbose", action="store_true", help="log what each step does")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import logging

    from reviewbot.config import load_config
    from reviewbot.cron.poll import options, run_poll
    from reviewbot.packs import load_packs, user_pack_paths

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="reviewbot: %(message)s", stream=sys.stderr)
    cfg = load_config(args.config)
    opts = options(cfg, args)
    opts.packs = load_packs(user_pack_paths(args.pack, args.config))
    report = run_poll(opts)
    for err in report.errors:
        sys.stderr.write(f"reviewbot: {err}\n")
    if report.errors and len(report.errors) == len(opts.lists):
        return 2
    if not args.quiet:
        print(report.summary())
    return 2 if report.errors else 0
