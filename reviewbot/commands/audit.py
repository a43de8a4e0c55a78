"""`reviewbot audit FILE|DIR...`: run the rules over whole files, no patch involved.

With --baseline FILE, the first run writes the findings' fingerprints to FILE and later
runs print only the findings not in it (reviewbot/review/baseline.py); --ignore, the
configuration's [[ignore]], `git config reviewbot.ignore` and `reviewbot: ignore RULE`
comments in the code leave findings out (reviewbot/review/ignore.py)."""

from __future__ import annotations

import os
import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="analyse whole C files or directories (no patch)")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "json", "terse"), default="text")
    p.add_argument("--terse", action="store_const", const="terse", dest="format",
                   help="one line per finding, file:line: rule: message (--format terse)")
    p.add_argument("--baseline", metavar="FILE",
                   help="write the findings' fingerprints to FILE if it does not exist, "
                        "else print only the findings that are not in it")
    p.add_argument("--ignore", action="append", metavar="RULE[:GLOB[:FUNCTION]]",
                   help="leave out this rule's findings (full id, short name or category; "
                        "repeatable)")
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


C_FILES = (".c", ".h")


def _files(paths: list[str]) -> list[str]:
    """The C files to audit: a directory's .c files (recursively), a file named as given
    if it is C source; anything else is bad input."""
    from reviewbot.model import InputError

    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".c")]
            if not found:
                raise InputError(f"audit: {p}: no C source files (.c) in this directory")
            out += found
        elif os.path.isfile(p):
            if not p.endswith(C_FILES):
                raise InputError(f"audit: {p}: not a C source file (.c or .h)")
            out.append(p)
        else:
            raise InputError(f"audit: no such file or directory: {p}")
    return out


def run(args) -> int:
    from reviewbot.config import settings
    from reviewbot.packs import load_packs, user_pack_paths

    global _GROUPS, _NO_CONSENSUS, _PACKS
    st = settings(args)
    files = _files(args.paths)
    # before the workers fork
    _PACKS = load_packs(tuple(st.git_packs) + user_pack_paths(args.pack, args.config))
    _DIRS.clear()  # built with the packs of an earlier run in this process
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
    bar = _progress(len(files), args.format)
    if jobs > 1 and len(files) > 8:
        import multiprocessing

        # fork: workers share the file lists. A worker takes a whole directory, so each
        # directory's sibling and consensus indexes are built once; the largest go first so
        # the small ones even out the end.
        def size(d: str) -> int:
            return sum(os.path.getsize(f) for f in groups[d] if os.path.exists(f))

        by_file: dict[str, tuple[list, list[str]] | None] = {}
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for part in pool.imap_unordered(_audit_dir, sorted(groups, key=size, reverse=True)):
                by_file.update(part)
                bar.advance(len(part))
    else:
        by_file = {}
        for f in files:
            by_file[f] = _audit_file(f)
            bar.advance(1)
    bar.close()
    unread = [f for f in files if by_file.get(f) is None]
    left_out: list[str] = []
    for f in files:  # the order of a run on one core
        got = by_file.get(f)
        if got is not None:
            findings += got[0]
            left_out += got[1]
    rank = {"low": 0, "medium": 1, "high": 2}
    findings = [f for f in findings if rank[f.confidence] >= rank[args.min_confidence]]
    findings = _leave_out(findings, st.ignores)
    known = 0
    if args.baseline:
        findings, known = _against_baseline(findings, args.baseline)
    _write(findings, len(files), known, args)
    if unread:  # said per file on stderr as it happened; here the sum, and exit 3
        sys.stderr.write(f"reviewbot: warning: audited incompletely: {len(unread)} file(s) "
                         f"could not be read: {', '.join(unread)}\n")
    if left_out:
        sys.stderr.write(f"reviewbot: warning: audited incompletely: {len(left_out)} "
                         f"function(s) not analysed: {'; '.join(left_out)}\n")
    from reviewbot.status import EXIT_FINDINGS, EXIT_INCOMPLETE, combine

    return combine(EXIT_FINDINGS if findings else 0,
                   EXIT_INCOMPLETE if unread or left_out else 0)


def _leave_out(findings: list, ignores: list) -> list:
    """Findings less those ignored (rules) or marked in the code (the file is read again
    only for files with findings)."""
    from reviewbot.review.ignore import keep

    def text_of(path: str) -> str | None:
        try:
            with open(path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return None

    return keep(findings, ignores, text_of)


def _against_baseline(findings: list, path: str) -> tuple[list, int]:
    """(the findings not in the baseline, how many were), writing the baseline first if
    there is none."""
    from pathlib import Path

    from reviewbot.review import baseline

    p = Path(path)
    if not p.exists():
        baseline.write(p, findings)
        sys.stderr.write(f"reviewbot: baseline {path} written: {len(findings)} finding(s); "
                         "the next audit with it prints only new ones\n")
        return findings, 0
    new = baseline.new_findings(findings, baseline.read(p))
    return new, len(findings) - len(new)


def _write(findings: list, nfiles: int, known: int, args) -> None:
    from reviewbot.review.report import audit_json, finding_line, rule_counts, terse_line

    if args.format == "json":
        import json

        json.dump(audit_json(findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if args.format == "terse":
        for fd in findings:
            sys.stdout.write(terse_line(fd) + "\n")
        return
    for fd in findings:
        sys.stdout.write(finding_line(fd, with_status=False) + "\n")
    new = "new " if args.baseline and known else ""
    line = f"{len(findings)} {new}finding(s) in {nfiles} file(s)"
    if findings:
        line += f": {rule_counts(findings)}"
    if known:
        line += f" ({known} known, in baseline {args.baseline})"
    sys.stdout.write(line + "\n")


class _NoBar:
    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar(_NoBar):
    """A rich progress bar on stderr (files audited of all)."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress("audit", BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=True)
        self.task = self.progress.add_task("audit", total=total)
        self.progress.start()

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def close(self) -> None:
        self.progress.stop()


BAR_FILES = 50  # fewer files take a second or so: no bar


def _progress(total: int, fmt: str) -> _NoBar:
    """A progress bar only for a person watching: text output, stderr a terminal, a long
    audit; never in JSON or terse output, in a pipe or a log."""
    if fmt != "text" or total < BAR_FILES or not sys.stderr.isatty():
        return _NoBar()
    return _Bar(total)


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
        from reviewbot.input.limits import MAX_C_FILE, mib

        group: dict[str, str] = {}
        for f in _GROUPS.get(d, []):
            try:
                with open(f, "rb") as fh:
                    data = fh.read(MAX_C_FILE + 1)
            except OSError as e:
                sys.stderr.write(f"reviewbot: audit: cannot read {f}: {e.strerror}\n")
                continue
            if len(data) > MAX_C_FILE:  # parsing it could cost gigabytes
                sys.stderr.write(f"reviewbot: audit: {f}: more than {mib(MAX_C_FILE)}, the "
                                 "limit for one C file: not audited\n")
                continue
            group[f] = data.decode("utf-8", "replace")
        siblings = SiblingIndex(group, packs) if len(group) > 1 else None
        from reviewbot.cmodel import parse_c
        from reviewbot.knowledge.tree_summaries import dir_header_directs, summarize

        # parsed once: for the directory's summaries, then for each file's walk
        parsed = {f: parse_c(text, f) for f, text in group.items()}
        summaries = summarize(parsed.items(), packs, dir_header_directs(d, packs, MAX_C_FILE))
        _DIRS.clear()  # one directory at a time keeps memory flat
        got = _DIRS[d] = (group, siblings, packs, parsed, summaries, _dir_graph(group, packs))
    return got


def _dir_graph(group: dict[str, str], packs):
    """The call graph of a directory (the context rules), built when a file first asks."""
    from reviewbot.knowledge.callgraph import LazyGraph, build_callgraph

    return LazyGraph("", lambda: build_callgraph(group, packs.context) if packs.context
                     else None)


class _FileGraph:
    """One file's view of its directory's graph (the checkers look records up by path)."""

    def __init__(self, path: str, graph) -> None:
        self.path = path
        self._graph = graph

    def get(self):
        return self._graph.get()


def _audit_dir(d: str) -> list[tuple[str, list | None]]:
    return [(f, _audit_file(f)) for f in _GROUPS.get(d, [])]


def _audit_file(path: str) -> tuple[list, list[str]] | None:
    """(the findings of one file, its functions not analysed and why); None if it could
    not be read."""
    from reviewbot.review.analysis import analyze_cfile

    group, siblings, packs, parsed, summaries, graph = _dir_state(os.path.dirname(path))
    if path not in group:
        return None
    index = None if _NO_CONSENSUS else _exclude(path, group, packs)
    cf = parsed.pop(path)  # walked once; its syntax tree is not needed after
    failed: list[str] = []
    try:
        return analyze_cfile(cf, path, None, packs, index, siblings=siblings, effort="audit",
                             failed=failed, summaries=summaries,
                             callgraph=_FileGraph(path, graph)), failed
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
