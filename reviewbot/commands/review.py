"""`reviewbot review`: a patch, an mbox, a directory, stdin, a lore thread or local commits."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="review a patch, a series (mbox, directory) or a lore thread")
    p.add_argument("paths", nargs="*", metavar="PATCH|MBOX|DIR|-")
    p.add_argument("--tree", help="source tree the patches apply to (git repository or directory)")
    p.add_argument("--base", default="HEAD", help="revision of --tree for files not found by blob id")
    p.add_argument("--format", choices=("text", "json", "email"), default="text")
    p.add_argument("--all", action="store_true", help="also list preexisting findings")
    p.add_argument("--all-revisions", action="store_true", help="review every revision, not the newest")
    p.add_argument("--msgid", help="fetch this Message-ID or URL from lore (b4) and review it")
    p.add_argument("--git", metavar="REV_RANGE",
                   help="review local commits (A..B, or one commit) of --repo before sending")
    p.add_argument("--repo", default=".", help="repository for --git (default: .)")
    p.add_argument("--lore", help="public-inbox base URL for --msgid (default lore.kernel.org/all)")
    p.add_argument("--outdir", help="with --format email: write .eml drafts here")
    p.add_argument("--maildir", help="with --format email: write drafts into this Maildir")
    p.add_argument("--send", action="store_true", help="send the drafts (only if the config allows)")
    p.add_argument("--config", help="configuration file (TOML)")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help="worker processes for many series (default: one per core)")
    p.set_defaults(run=run)


def load_series(args):
    if args.msgid:
        from reviewbot.input.lore import fetch_series

        return fetch_series(args.msgid, args.lore)
    from reviewbot.input.mbox import load_paths

    # only email drafts read the original messages (Patch.message)
    return load_paths(args.paths, all_revisions=args.all_revisions,
                      messages=args.format == "email")


def run(args) -> int:
    from reviewbot.model import InputError
    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.review.pipeline import review_all
    from reviewbot.review.report import write_json, write_text

    if not args.paths and not args.msgid and not args.git:
        raise InputError("review: give a patch, mbox, directory, '-', --msgid or --git")
    packs = load_packs(user_pack_paths(args.pack, args.config))
    if args.git:
        from reviewbot.input.localgit import series_from_range

        one, repo, base = series_from_range(args.git, args.repo)
        series = [one]
        args.tree, args.base = args.tree or repo, base if not args.tree else args.base
    else:
        series = load_series(args)
    results = review_all(series, args.tree, args.base, args.jobs, packs=packs)
    reviewed = sum(1 for r in results for p in r.patches if p.files)
    if reviewed == 0:
        raise InputError("nothing could be reviewed: no file changes found in the input")
    if args.format == "json":
        write_json(results, sys.stdout, args.all)
    elif args.format == "email":
        from reviewbot.config import load_config
        from reviewbot.mail.draft import emit

        emit(results, args, load_config(args.config))
    else:
        write_text(results, sys.stdout, args.all)
    found = any(f.status == "introduced" for r in results for f in r.findings())
    return 1 if found else 0
