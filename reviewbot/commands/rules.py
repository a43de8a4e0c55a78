"""`reviewbot rules [RULE] [--packs]`: list the rules, show one rule's documentation, or
list the packs loaded (in load order, with their entries and what each overrides)."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list rules, show one rule's documentation, or --packs")
    p.add_argument("rule", nargs="?", help="a rule's id or short name (direct-return)")
    p.add_argument("--packs", action="store_true",
                   help="list the packs loaded, in load order, and what each overrides")
    p.add_argument("--config", metavar="FILE", help="configuration file (its [packs])")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable)")
    p.set_defaults(run=run)


def run(args) -> int:
    from reviewbot.checks import all_rules
    from reviewbot.config import settings
    from reviewbot.packs import load_packs, user_pack_paths

    packs = load_packs(tuple(settings(args).git_packs)  # git config reviewbot.pack
                       + user_pack_paths(args.pack, args.config))
    if args.packs:
        write_packs(packs, sys.stdout)
        return 0
    rules = all_rules()
    if args.rule:
        r = rules[find_rule(args.rule, rules)]
        sys.stdout.write(
            f"{r.id}  ({r.category}, severity {r.severity}, confidence {r.confidence})\n"
            f"{r.summary}\n\n{r.doc}\n"
        )
        return 0
    for r in sorted(rules.values(), key=lambda r: r.id):
        sys.stdout.write(f"{r.id:<32} {r.severity:<8} {r.confidence:<7} {r.summary}\n")
    sys.stdout.write(f"\npacks: {', '.join(packs.names)} ({len(packs.calls)} calls, "
                     f"{len(packs.resources)} resource kinds; 'reviewbot rules --packs')\n")
    return 0


def find_rule(name: str, ids) -> str:
    """The rule id `name` means: an id, or a short name (direct-return is
    error-path.direct-return); InputError naming the candidates if several rules have it."""
    from reviewbot.model import InputError

    if name in ids:
        return name
    same = sorted(i for i in ids if i.split(".", 1)[-1] == name)
    if len(same) > 1:
        raise InputError(f"rules: {name!r} is ambiguous: {', '.join(same)} (give the full id)")
    if not same:
        raise InputError(f"rules: unknown rule {name!r} (see 'reviewbot rules')")
    return same[0]


def write_packs(packs, out) -> None:
    """Each pack file in load order: layer, name, path, entries per section, overrides."""
    out.write("packs in load order (a later pack's entry replaces an earlier one's):\n")
    for n, s in enumerate(packs.sources, 1):
        counts = ", ".join(f"{k} {v}" for k, v in s.counts if v)
        out.write(f"{n:>3}. {s.name} ({s.layer}) {s.path}\n     {counts or 'no entries'}\n")
        for o in s.overrides:
            out.write(f"     overrides {o.entry} of {o.replaced}\n")
    out.write(f"total: {len(packs.calls)} calls, {len(packs.resources)} resource kinds, "
              f"{len(packs.assigns)} assignment patterns, {len(packs.tests)} tests, "
              f"{len(packs.ops)} ops families\n")
