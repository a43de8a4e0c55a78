"""`reviewbot learn TREE -o PACK`: learn API pairs and facts from a kernel tree (docs/learning.md)."""

from __future__ import annotations

import os
import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="learn acquire/release pairs and API facts from a source tree")
    p.add_argument("tree", metavar="TREE")
    p.add_argument("-o", "--output", required=True, metavar="PACK",
                   help="the learned pack to write (JSON)")
    p.add_argument("--cache", metavar="DIR",
                   help="per-file fact cache (default $XDG_CACHE_HOME/reviewbot/learn)")
    p.add_argument("--no-cache", action="store_true", help="parse every file, cache nothing")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help="worker processes (default: one per core)")
    p.add_argument("--exclude", action="append", metavar="DIR",
                   help="a directory of TREE to skip (repeatable; default: tools, scripts, "
                        "Documentation, usr: user-space code)")
    p.add_argument("--static-wrappers", action="store_true",
                   help="also learn wrappers among static functions (scoped to their file)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(run=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from ..knowledge.aggregate import finish
    from ..knowledge.learned import LearnedFormatError, dumps, parse
    from ..knowledge.tree import DEFAULT_EXCLUDE, default_cache, learn_tree, tree_info
    from ..model import InputError

    tree = Path(args.tree)
    if not tree.is_dir():
        raise InputError(f"learn: not a directory: {args.tree}")
    out = Path(args.output)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK) or \
            (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"learn: cannot write {args.output}")
    cache = None if args.no_cache else Path(args.cache) if args.cache else default_cache()
    exclude = tuple(args.exclude) if args.exclude else DEFAULT_EXCLUDE
    t0 = time.perf_counter()
    part = learn_tree(tree.resolve(), cache, args.jobs, exclude,
                      progress=not args.quiet and sys.stderr.isatty())
    info = tree_info(tree.resolve())
    cmd = f"reviewbot learn {info['name']} -o {out.name}"
    shown = args.output if not os.path.isabs(args.output) else out.name
    regen = ("reviewbot learn /path/to/" + info["name"] + " -o " + shown +
             ("" if exclude == DEFAULT_EXCLUDE else
              "".join(f" --exclude {e}" for e in exclude)))
    if args.static_wrappers:
        regen += " --static-wrappers"
    k = finish(part, info, cmd, regen, static_wrappers=args.static_wrappers)
    text = dumps(k)
    import json

    try:  # validated as it will be loaded: a bad record never reaches a file
        parse(json.loads(text), str(out))
    except LearnedFormatError as e:
        raise InputError(f"learn: generated pack does not validate: {e}") from None
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    if not args.quiet:
        c = k.counts
        sys.stderr.write(
            f"learn: {part.files} files ({part.extracted} parsed, {part.cached} cached, "
            f"{part.failed} failed) in {time.perf_counter() - t0:.1f} s; "
            f"{c['pairs']} pairs, {c['acquirers']} acquirers, {c['releases']} releases, "
            f"{c['callbacks']} callbacks, {c['managed']} managed, {c['noreturn']} noreturn, "
            f"{c['must_check']} must-check -> {out} ({len(text.encode()) // 1024} KiB)\n")
    return 0
