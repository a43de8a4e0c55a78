"""`reviewbot eval CORPUS_DIR`: recall and precision on a labelled corpus (GUIDE section 3)."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="precision/recall on a labelled corpus")
    p.add_argument("corpus", metavar="CORPUS_DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--case", action="append", help="only cases whose id contains this")
    p.add_argument("--config", metavar="FILE", help="configuration file (its [packs])")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from reviewbot.config import settings
    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.review.evaluation import evaluate_corpus, render_text
    from reviewbot.review.report import JSON_VERSION

    packs = load_packs(tuple(settings(args).git_packs)  # git config reviewbot.pack
                       + user_pack_paths(args.pack, args.config))  # not a case's problem: exit 2
    report = evaluate_corpus(args.corpus, args.case, packs=packs)
    if args.format == "json":
        json.dump({"version": JSON_VERSION, **report}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_text(report, sys.stdout)
    return 0
