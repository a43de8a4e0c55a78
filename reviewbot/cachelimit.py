"""Bounds on the caches kept between runs (under datafiles.user_cache_dir()).

The context facts, the summaries and the learned facts are kept per file content, the
findings of a review per change (review/result_cache.py), and the pack cache per list of
pack roots: every kernel version reviewed, every pack change and
every format bump adds files, and nothing else ever removes them. So, at most once an hour
(a stamp file in the cache's directory says when it was last done), the first process that
writes to a cache removes the directories of its other format versions (`context/v1` once
`v2` is written) and then its oldest files (by modification time) until the cache holds
at most its limit: $REVIEWBOT_CACHE_MAX_MB megabytes each (default 512). Failures are
silent: a cache that cannot be pruned is still a cache.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass

DEFAULT_MB = 512
EVERY_SECONDS = 3600
STAMP = ".pruned"
_done: set[str] = set()


@dataclass(frozen=True)
class Pruned:
    """What a pruning removed, and what the cache holds after it."""

    files: int
    bytes_removed: int
    bytes_kept: int
    versions: tuple[str, ...]  # directories of other format versions removed


def limit_bytes() -> int:
    try:
        mb = float(os.environ.get("REVIEWBOT_CACHE_MAX_MB", DEFAULT_MB))
    except ValueError:
        mb = DEFAULT_MB
    return max(0, int(mb * 1024 * 1024))


def after_write(root: str, current: str = "") -> Pruned | None:
    """Called after a process writes under the cache directory `root` (whose format
    version directory is `current`, if it has them): prunes it when it was not pruned in
    the last hour. None when nothing was done."""
    if not root or root in _done:
        return None
    _done.add(root)
    stamp = os.path.join(root, STAMP)
    try:
        if time.time() - os.stat(stamp).st_mtime < EVERY_SECONDS:
            return None
    except OSError:
        pass  # never pruned
    try:
        got = prune(root, limit_bytes(), current)
        with open(stamp, "w"):
            pass
    except OSError:
        return None
    return got


def prune(root: str, max_bytes: int, current: str = "") -> Pruned:
    """Remove `root`'s version directories other than `current` (names `v` + digits),
    then its oldest files until at most `max_bytes` remain."""
    versions = []
    if current:
        for e in os.scandir(root):
            if e.is_dir(follow_symlinks=False) and e.name != current and \
                    e.name[:1] == "v" and e.name[1:].isdigit():
                shutil.rmtree(e.path, ignore_errors=True)
                versions.append(e.name)
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            if n == STAMP:
                continue
            p = os.path.join(dirpath, n)
            try:
                st = os.stat(p, follow_symlinks=False)
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
    total = sum(size for _m, size, _p in files)
    removed = freed = 0
    for _mtime, size, p in sorted(files):
        if total <= max_bytes:
            break
        try:
            os.unlink(p)
        except OSError:
            continue
        total -= size
        removed += 1
        freed += size
    return Pruned(removed, freed, total, tuple(sorted(versions)))


def keep_newest(directory: str, prefix: str, suffix: str, keep: int) -> int:
    """Remove all but the `keep` newest files `prefix*suffix` of `directory` (one pack
    cache per list of pack roots: a checkout moved or removed leaves its file behind).
    Returns how many were removed."""
    try:
        found = [(e.stat().st_mtime, e.path) for e in os.scandir(directory)
                 if e.is_file() and e.name.startswith(prefix) and e.name.endswith(suffix)]
    except OSError:
        return 0
    removed = 0
    for _mtime, path in sorted(found, reverse=True)[keep:]:
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def write_file(file: str, data: bytes, root: str) -> None:
    """`data` into the cache file `file` atomically (a reader sees the old file or the new
    one), then after_write(root); any failure is silent: the cache is only a cache."""
    tmp = f"{file}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(file), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, file)
        after_write(root)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
