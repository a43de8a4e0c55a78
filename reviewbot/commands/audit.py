"""`reviewbot audit FILE|DIR...`: run the rules over whole files, no patch involved."""

from __future__ import annotations

import os
import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="analyse whole C files or directories (no patch)")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-consensus", action="store_true",
                   help="do not mine the audited files for ops-table consensus")
    p.set_defaults(run=run)


def _files(paths: list[str]) -> list[str]:
    from ..model import InputError

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

    from ..analysis import analyze_cfile
    from ..cmodel import parse_c
    from ..packs import load_packs
    from ..report import audit_json, finding_line

    packs = load_packs()
    files = _files(args.paths)
    sources: dict[str, str] = {}
    for f in files:
        try:
            with open(f, "rb") as fh:
                sources[f] = fh.read().decode("utf-8", "replace")
        except OSError as e:
            sys.stderr.write(f"reviewbot: audit: cannot read {f}: {e.strerror}\n")
    from ..checks.siblings import SiblingIndex

    # A directory is a subsystem: siblings and ops-table consensus are mined within it.
    groups: dict[str, dict[str, str]] = {}
    for f, text in sources.items():
        groups.setdefault(os.path.dirname(f), {})[f] = text
    findings = []
    for group in groups.values():
        siblings = SiblingIndex(group, packs) if len(group) > 1 else None
        for f, text in group.items():
            index = None if args.no_consensus else _exclude(f, group, packs)
            findings += analyze_cfile(parse_c(text, f), f, None, packs, index, siblings=siblings,
                                      effort="audit")
    if args.format == "json":
        json.dump(audit_json(findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for fd in findings:
            sys.stdout.write(finding_line(fd, with_status=False) + "\n")
        sys.stdout.write(f"{len(findings)} finding(s) in {len(sources)} file(s)\n")
    return 1 if findings else 0


def _exclude(path, sources, packs):
    """Ops-table consensus for a file, mined from the other files of its directory."""
    from ..checks.ops_mismatch import TreeIndex

    if not packs.ops or not any(f.getter in sources[path] for f in packs.ops.values()):
        return None
    idx = TreeIndex()
    for f, text in sources.items():
        if f != path:
            idx.add_file(f, text, packs)
    return idx
