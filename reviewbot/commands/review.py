"""`reviewbot review`: a patch, an mbox, a directory, stdin, a lore thread or local commits."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="review a patch, a series (mbox, directory) or a lore thread")
    p.add_argument("paths", nargs="*", metavar="PATCH|MBOX|DIR|-")
    p.add_argument("--tree", help="source tree the patches apply to (git repository or "
                   "directory; default: the git repository here, if the patches are for it)")
    p.add_argument("--no-tree", action="store_true",
                   help="analyse the hunks only, on purpose (no exit 3 for that)")
    p.add_argument("--base", default="HEAD", help="revision of --tree for files not found by blob id")
    p.add_argument("--format", choices=("text", "json", "email", "terse"), default="text")
    p.add_argument("--terse", action="store_const", const="terse", dest="format",
                   help="one line per finding, file:line: rule: message (--format terse)")
    p.add_argument("--ignore", action="append", metavar="RULE[:GLOB[:FUNCTION]]",
                   help="leave out this rule's findings (full id, short name or category; "
                        "repeatable)")
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


def load_series(args, cfg: dict | None = None):
    from reviewbot.config import section
    from reviewbot.input.limits import InputCaps

    caps = InputCaps.from_config(section(cfg or {}, "review"))
    if args.msgid:
        from reviewbot.input.lore import fetch_series

        return fetch_series(args.msgid, args.lore, caps=caps)
    from reviewbot.input.mbox import load_paths

    # only email drafts read the original messages (Patch.message)
    return load_paths(args.paths, all_revisions=args.all_revisions,
                      messages=args.format == "email", caps=caps)


def run(args) -> int:
    from reviewbot.config import load_config, settings
    from reviewbot.model import InputError
    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.review.ignore import drop_ignored
    from reviewbot.review.pipeline import review_all
    from reviewbot.review.report import write_json, write_summary, write_terse, write_text
    from reviewbot.status import EXIT_FINDINGS, EXIT_INCOMPLETE, combine

    if not args.paths and not args.msgid and not args.git:
        raise InputError("review: give a patch, mbox, directory, '-', --msgid or --git")
    if args.no_tree and args.tree:
        raise InputError("review: --tree and --no-tree contradict each other")
    cfg = load_config(args.config)
    st = settings(args, cfg)
    packs = load_packs(tuple(st.git_packs) + user_pack_paths(args.pack, args.config))
    tree, base = (None if args.no_tree else st.tree), args.base
    if args.git:
        from reviewbot.input.localgit import series_from_range

        one, repo, rbase = series_from_range(args.git, args.repo)
        series = [one]
        tree, base = (args.tree, args.base) if args.tree else (repo, rbase)
    else:
        series = load_series(args, cfg)
    if tree is None and not args.no_tree:
        tree = found_tree(series)
    results = review_all(series, tree, base, args.jobs, packs=packs, keep_results=True)
    reviewed = sum(1 for r in results for p in r.patches if p.files)
    if reviewed == 0:
        raise InputError("nothing could be reviewed: no file changes found in the input")
    drop_ignored(results, st.ignores)
    if args.format == "json":
        write_json(results, sys.stdout, args.all)
    elif args.format == "terse":
        write_terse(results, sys.stdout, args.all)
    elif args.format == "email":
        from reviewbot.mail.draft import emit

        emit(results, args, cfg)
    else:
        write_text(results, sys.stdout, args.all)
        write_summary(results, sys.stdout)
    found = any(f.status == "introduced" for r in results for f in r.findings())
    incomplete = warn_incomplete(results, args.no_tree)
    left_out = warn_left_out(results)
    return combine(EXIT_FINDINGS if found else 0,
                   EXIT_INCOMPLETE if incomplete or left_out else 0)


def found_tree(series) -> str | None:
    """The git repository the command runs in, if the patches are for it; said on stderr."""
    from reviewbot.review.pipeline import find_tree

    tree = find_tree(series)
    if tree is not None:
        sys.stderr.write(f"reviewbot: reviewing against the git repository {tree} (HEAD); "
                         "--tree PATH for another tree, --no-tree for the hunks only\n")
    return tree


def warn_incomplete(results, no_tree: bool) -> list:
    """The files reviewed on their hunks only (not asked for with --no-tree), one warning
    line on stderr naming them and why."""
    from reviewbot.review.pipeline import incomplete_files

    inc = list(dict.fromkeys(incomplete_files(results, no_tree)))  # once per file and why
    if inc:
        named = "; ".join(f"{i.path} ({i.why})" for i in inc)
        sys.stderr.write(f"reviewbot: warning: reviewed incompletely, on the hunks only: "
                         f"{named} (exit status 3; --no-tree if that is what you want)\n")
    return inc


def warn_left_out(results) -> list[str]:
    """The patches that could not be reviewed and the functions not analysed, one warning
    line on stderr naming them (exit status 3: the rest was reviewed, not all of it)."""
    out = [f"{pr.patch.unreviewable}" for r in results for pr in r.patches
           if pr.patch.unreviewable]
    out += [n for r in results for pr in r.patches for n in pr.not_analysed]
    if out:
        sys.stderr.write(f"reviewbot: warning: reviewed incompletely, left out: "
                         f"{'; '.join(out)} (exit status 3)\n")
    return out
