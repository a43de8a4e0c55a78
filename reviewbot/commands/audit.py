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
    from ..checks.ops_mismatch import TreeIndex
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
    index = None
    if not args.no_consensus and len(sources) > 1 and packs.ops:
        index = TreeIndex()
        for f, text in sources.items():
            index.add_file(f, text, packs)
    findings = []
    for f, text in sources.items():
        cf = parse_c(text, f)
        findings += analyze_cfile(cf, f, None, packs, _exclude(index, f, sources, packs))
    if args.format == "json":
        json.dump(audit_json(findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for fd in findings:
            sys.stdout.write(finding_line(fd, with_status=False) + "\n")
        sys.stdout.write(f"{len(findings)} finding(s) in {len(sources)} file(s)\n")
    return 1 if findings else 0


def _exclude(index, path, sources, packs):
    """Consensus for a file is mined from the other files only."""
    if index is None:
        return None
    from ..checks.ops_mismatch import TreeIndex

    if not any(f.getter in sources[path] for f in packs.ops.values()):
        return None
    idx = TreeIndex()
    for f, text in sources.items():
        if f != path:
            idx.add_file(f, text, packs)
    return idx
