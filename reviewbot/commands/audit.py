"""`reviewbot audit FILE|DIR...`: run the rules over whole files, no patch involved."""

from __future__ import annotations

import os
import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="analyse whole C files or directories (no patch)")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--min-confidence", choices=("low", "medium", "high"), default="medium",
                   help="hide findings below this confidence (default medium: whole-file "
                        "audits of mature code are where low-confidence rules guess wrong)")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help="worker processes (default: one per core)")
    p.add_argument("--no-consensus", action="store_true",
                   help="do not mine the audited files for ops-table consensus")
    p.add_argument("--config", metavar="FILE", help="configuration file (its [packs])")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.set_defaults(run=run)


def _files(paths: list[str]) -> list[str]:
    from reviewbot.model import InputError

    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out += [os.path.join(root, f) for f in sorted(files) if f.endswith(".c")]
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise InputError(f"audit: no such file or directory: {p}")
    return out


def run(args) -> int:
    import json

    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.review.report import audit_json, finding_line

    global _GROUPS, _NO_CONSENSUS, _PACKS
    _PACKS = load_packs(user_pack_paths(args.pack, args.config))  # before the workers fork
    _DIRS.clear()  # built with the packs of an earlier run in this process
    files = _files(args.paths)
    # A directory is a subsystem: siblings and ops-table consensus are mined within it.
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(os.path.dirname(f), []).append(f)
    jobs = args.jobs or (os.cpu_count() or 1)
    from reviewbot import gctune

    gctune.tune()
    _GROUPS = groups
    _NO_CONSENSUS = args.no_consensus
    findings = []
    if jobs > 1 and len(files) > 8:
        import multiprocessing

        # fork: workers share the file lists. A worker takes a whole directory, so each
        # directory's sibling and consensus indexes are built once; the largest go first so
        # the small ones even out the end.
        def size(d: str) -> int:
            return sum(os.path.getsize(f) for f in groups[d] if os.path.exists(f))

        by_file: dict[str, list] = {}
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for part in pool.imap_unordered(_audit_dir, sorted(groups, key=size, reverse=True)):
                by_file.update(part)
        for f in files:  # the order of a run on one core
            findings += by_file.get(f, [])
    else:
        for f in files:
            findings += _audit_file(f)
    rank = {"low": 0, "medium": 1, "high": 2}
    findings = [f for f in findings if rank[f.confidence] >= rank[args.min_confidence]]
    if args.format == "json":
        json.dump(audit_json(findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for fd in findings:
            sys.stdout.write(finding_line(fd, with_status=False) + "\n")
        sys.stdout.write(f"{len(findings)} finding(s) in {len(files)} file(s)\n")
    return 1 if findings else 0


_GROUPS: dict[str, list[str]] = {}
_NO_CONSENSUS = False
_PACKS = None
_DIRS: dict[str, tuple] = {}


def _dir_state(d: str):
    """The sources and sibling index of one directory, built once per process."""
    got = _DIRS.get(d)
    if got is None:
        from reviewbot.checks.siblings import SiblingIndex
        from reviewbot.packs import load_packs

        packs = _PACKS or load_packs()
        group: dict[str, str] = {}
        for f in _GROUPS.get(d, []):
            try:
                with open(f, "rb") as fh:
                    group[f] = fh.read().decode("utf-8", "replace")
            except OSError as e:
                sys.stderr.write(f"reviewbot: audit: cannot read {f}: {e.strerror}\n")
        siblings = SiblingIndex(group, packs) if len(group) > 1 else None
        _DIRS.clear()  # one directory at a time keeps memory flat
        got = _DIRS[d] = (group, siblings, packs)
    return got


def _audit_dir(d: str) -> list[tuple[str, list]]:
    return [(f, _audit_file(f)) for f in _GROUPS.get(d, [])]


def _audit_file(path: str) -> list:
    from reviewbot.cmodel import parse_c
    from reviewbot.review.analysis import analyze_cfile

    group, siblings, packs = _dir_state(os.path.dirname(path))
    if path not in group:
        return []
    index = None if _NO_CONSENSUS else _exclude(path, group, packs)
    cf = parse_c(group[path], path)
    try:
        return analyze_cfile(cf, path, None, packs, index, siblings=siblings, effort="audit")
    finally:
        for fn in cf.functions:
            fn.drop_cfg()


def _exclude(path, sources, packs):
    """Ops-table consensus for a file, mined from the other files of its directory."""
    from reviewbot.checks.ops_mismatch import TreeIndex

    if not packs.ops or not any(f.getter in sources[path] for f in packs.ops.values()):
        return None
    idx = TreeIndex()
    for f, text in sources.items():
        if f != path:
            idx.add_file(f, text, packs)
    return idx
