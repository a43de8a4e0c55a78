"""The findings of one file of a patch, kept between runs: reviewing the same patch again
(b4's per-patch check run twice, a series re-sent with its first patches unchanged, an
edit-review loop where one file changed) reads them instead of walking its functions again.

An entry is keyed by everything the review of that file reads but the tree: the reviewbot
code (its modules' sizes and mtimes), the packs (Packs.signature: no signature, no
entry), the file's paths, its texts before and after and the patch's changed lines, the
patch's other C files and the files the series' earlier patches changed (the overlay). The
tree directories the review read are listed in the entry with a digest of what was read,
and the entry is taken only while each still reads the same (like a make dependency
file). Entries live under $XDG_CACHE_HOME/reviewbot/results (else ~/.cache); writes are
atomic; an unreadable or foreign entry is computed again; a failure to write is silent.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from dataclasses import dataclass, field

from reviewbot import cachelimit
from reviewbot.datafiles import user_cache_dir
from reviewbot.model import FileImage, Finding, Site, TraceStep

FORMAT = 1
_stamp: str | None = None


def code_stamp() -> str:
    """Sizes and mtimes of reviewbot's own files: a changed module is a changed analysis."""
    global _stamp
    if _stamp is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        h = hashlib.sha1(str(FORMAT).encode())
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(files):
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue
                h.update(f"{dirpath[len(root):]}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0"
                         .encode())
        _stamp = h.hexdigest()
    return _stamp


def texts_digest(texts: dict[str, str | None]) -> str:
    """One digest of path -> text (None for absent)."""
    h = hashlib.sha1()
    for p in sorted(texts):
        t = texts[p]
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
        h.update(b"-" if t is None else t.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class Entry:
    """What the review of one file gave, and what of the tree it read."""

    findings: list[Finding]
    failed: list[str] = field(default_factory=list)  # "path: fn(): not analysed (why)"
    reads: dict[str, str] = field(default_factory=dict)  # read id -> digest


def file_key(signature: str | None, img: FileImage, others: list[FileImage],
             overlay: dict[str, str | None], tree_kind: str) -> str | None:
    """The key of one file's review, or None when nothing may be kept (packs without a
    signature, or no cache directory)."""
    if not signature or not user_cache_dir():
        return None
    h = hashlib.sha1(f"{code_stamp()}\0{signature}\0{tree_kind}\0".encode())
    for i in (img, *others):
        h.update(f"{i.path}\0{i.old_path}\0{i.context}\0{i.resolved}\0".encode())
        h.update(f"{sorted(i.changed_pre)}\0{sorted(i.changed_post)}\0".encode())
        h.update(texts_digest({"pre": i.pre, "post": i.post}).encode())
    h.update(texts_digest(overlay).encode())
    return h.hexdigest()


def _file(key: str) -> str | None:
    where = user_cache_dir("results")
    return os.path.join(where, key[:2], f"{key}.marshal") if where else None


def load(key: str) -> Entry | None:
    file = _file(key)
    if file is None:
        return None
    try:
        with open(file, "rb") as fh:
            fmt, rows, failed, reads = marshal.load(fh)
        if fmt != FORMAT:
            return None
        return Entry([_finding(r) for r in rows], list(failed), dict(reads))
    except (OSError, EOFError, ValueError, TypeError):
        return None


def store(key: str, entry: Entry) -> None:
    file = _file(key)
    if file is None:
        return
    data = marshal.dumps((FORMAT, [_row(f) for f in entry.findings], entry.failed,
                          entry.reads))
    cachelimit.write_file(file, data, os.path.dirname(os.path.dirname(file)))


def _trace(steps: list[TraceStep]) -> list[tuple[int, str]]:
    return [(t.line, t.note) for t in steps]


def _row(f: Finding) -> tuple:
    return (f.rule, f.category, f.severity, f.confidence, f.file, f.function, f.line,
            f.message, _trace(f.trace), f.status, f.resource, list(f.lines),
            [(s.line, s.message, _trace(s.trace)) for s in f.sites])


def _finding(r) -> Finding:
    (rule, category, severity, confidence, file, function, line, message, trace, status,
     resource, lines, sites) = r
    return Finding(rule, category, severity, confidence, file, function, line, message,
                   [TraceStep(a, b) for a, b in trace], status, resource, list(lines),
                   sites=[Site(a, b, [TraceStep(x, y) for x, y in t]) for a, b, t in sites])
