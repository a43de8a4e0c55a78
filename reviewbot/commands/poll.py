"""`reviewbot poll`: the cron job. Mirror the watched lists, review new series, draft replies.

Exit 0 when the run completed (whatever it found); 3 when it completed only in part: an
item failed (it is tried again by later runs, and parked after the last try), a list
could not be read while others were, a gap in the HTTP fallback, the run's deadline; 2
with a one-line message on bad configuration, a held lock or an unreachable server (that
list's state is left as it was). `--status` lists the failed and parked items.
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
    p.add_argument("--since", metavar="DATE",
                   help="skip messages dated before DATE (YYYY-MM-DD or ISO 8601; UTC unless "
                        "it says): for the first poll of a big list")
    p.add_argument("--status", action="store_true",
                   help="list the items that failed (waiting for a retry) and those parked")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log each step on stderr: fetches, each message ingested or skipped "
                        "and why, each series reviewed, each draft written")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import logging

    from reviewbot.config import load_config
    from reviewbot.cron.poll import options, run_poll
    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.status import EXIT_BAD_INPUT, EXIT_CLEAN, EXIT_INCOMPLETE

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="reviewbot: %(message)s", stream=sys.stderr)
    cfg = load_config(args.config)
    opts = options(cfg, args)
    if args.status:
        from reviewbot.cron.poll import print_status

        return print_status(opts, sys.stdout)
    opts.packs = load_packs(user_pack_paths(args.pack, args.config))
    report = run_poll(opts)
    for line in report.problems():
        sys.stderr.write(f"reviewbot: {line}\n")
    if report.errors and len(report.errors) == len(opts.lists) and not report.new:
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(report.summary())
    return EXIT_INCOMPLETE if report.incomplete else EXIT_CLEAN
