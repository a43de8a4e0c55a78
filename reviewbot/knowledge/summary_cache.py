"""The per-file part of the tree's function summaries (tree_summaries.file_directs), kept
between runs so that a series, a cron run or the next review computes each file once.

A file's entry is keyed by its content (its git blob id) and the packs it was
computed with (Packs.signature, which changes whenever a pack does); it lives under
$XDG_CACHE_HOME/reviewbot/summaries (else ~/.cache). Without a pack signature (packs not
from load_packs) or a cache directory, nothing is kept on disk. An unreadable or foreign
entry is computed again; writes are atomic and failures to write are silent.
"""

from __future__ import annotations

import hashlib
import marshal
import os

from reviewbot import cachelimit
from reviewbot.cmodel import parse_c
from reviewbot.datafiles import user_cache_dir
from reviewbot.knowledge.blobs import blob_id
from reviewbot.knowledge.tree_summaries import OwnFacts, file_directs
from reviewbot.packs import Packs

FORMAT = 7
_memory: dict[tuple[str, str, str], list[OwnFacts]] = {}


def directs(path: str, source: str, packs: Packs) -> list[OwnFacts]:
    """The summaries' per-file facts of `path` with this content."""
    digest = blob_id(source.encode("utf-8", "surrogateescape"))
    key = (path, digest, packs.signature)
    got = _memory.get(key)
    if got is not None:
        return got
    stamp = hashlib.sha1(f"{FORMAT}\0{path}\0{packs.signature}".encode()).hexdigest()[:16]
    where = user_cache_dir("summaries")
    file = os.path.join(where, digest[:2], f"{digest}-{stamp}.marshal") \
        if where and packs.signature else None
    got = _read(file) if file else None
    if got is None:
        got = file_directs(path, parse_c(source, path), packs)
        if file:
            _write(file, got)
    if len(_memory) > 512:
        _memory.clear()
    _memory[key] = got
    return got


def _read(file: str) -> list[OwnFacts] | None:
    try:
        with open(file, "rb") as fh:
            fmt, rows = marshal.load(fh)
        if fmt != FORMAT:
            return None
        return [OwnFacts(name, path, static, set(rel), set(sto), set(fields), set(cont),
                         [tuple(p) for p in passes], fails)
                for name, path, static, rel, sto, fields, cont, passes, fails in rows]
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _write(file: str, directs_: list[OwnFacts]) -> None:
    rows = [(d.name, d.path, d.static, sorted(d.releases), sorted(d.stores),
             sorted(d.releases_fields), sorted(d.releases_container),
             [list(p) for p in d.passes], d.fails) for d in directs_]
    cachelimit.write_file(file, marshal.dumps((FORMAT, rows)),
                          os.path.dirname(os.path.dirname(file)))
