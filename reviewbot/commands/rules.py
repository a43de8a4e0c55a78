"""`reviewbot rules [RULE]`: list the rules, or show one rule's documentation."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list rules, or show one rule's documentation")
    p.add_argument("rule", nargs="?")
    p.set_defaults(run=run)


def run(args) -> int:
    from reviewbot.checks import all_rules
    from reviewbot.model import InputError
    from reviewbot.packs import load_packs

    rules = all_rules()
    if args.rule:
        r = rules.get(args.rule)
        if r is None:
            raise InputError(f"rules: unknown rule {args.rule!r} (see 'reviewbot rules')")
        sys.stdout.write(
            f"{r.id}  ({r.category}, severity {r.severity}, confidence {r.confidence})\n"
            f"{r.summary}\n\n{r.doc}\n"
        )
        return 0
    for r in sorted(rules.values(), key=lambda r: r.id):
        sys.stdout.write(f"{r.id:<32} {r.severity:<8} {r.confidence:<7} {r.summary}\n")
    packs = load_packs()
    sys.stdout.write(f"\npacks: {', '.join(packs.names)} ({len(packs.calls)} calls, "
                     f"{len(packs.resources)} resource kinds)\n")
    return 0
