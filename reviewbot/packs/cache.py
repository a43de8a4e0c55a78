"""The pack cache: the checked, merged packs of a list of pack roots, kept between runs.

Importing tomllib and the schema, parsing and checking the packs is a tenth of a cold
single-patch review, so the result (in lookup.py's plain form) is kept in the user's cache
directory with the stat signature of each pack file and of each root it was listed from
(adding or removing a pack changes its directory's mtime). Any change, and any unreadable,
corrupt or unwritable cache, means the packs are read and checked again as without a cache;
packs that fail their checks are never stored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PACK_CACHES = 16  # files kept, one per list of pack roots (reviewbot/cachelimit.py)
_CACHE_FORMAT = 9  # lookup.to_plain of the merged packs, learned layer included (calls as bytes)


def _cache_file(roots: list[Path]) -> str | None:
    """One cache file per list of pack roots and Python version (marshal's format is
    Python's); None without a cache directory ($XDG_CACHE_HOME, else ~/.cache)."""
    import sys
    import zlib

    from reviewbot.datafiles import user_cache_dir

    base = user_cache_dir()
    if base is None:
        return None
    key = zlib.crc32("\0".join([sys.version, *map(str, roots)]).encode())
    return os.path.join(base, f"packs-{key:08x}.marshal")


def _signature(path: Path | str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def signatures(paths) -> list[tuple[str, tuple[int, int, int] | None]]:
    return [(str(p), _signature(p)) for p in paths]


def _cached(cache: str, roots: list[Path]) -> dict[str, Any] | None:
    """The cached plain packs of `roots` if every file and root they came from is
    unchanged."""
    import marshal

    try:
        with open(cache, "rb") as fh:
            fmt, sigs, plain = marshal.load(fh)
        if fmt != _CACHE_FORMAT or not isinstance(plain, dict) or \
                [p for p, _s in sigs[:len(roots)]] != [str(d) for d in roots]:
            return None
        for path, sig in sigs:
            if sig is None or _signature(path) != tuple(sig):
                return None
        return plain
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _store(cache: str, sigs: list, plain: dict[str, Any]) -> None:
    """Write the cache atomically; quietly nothing if it cannot be written (read-only
    home, a TOML value marshal cannot hold)."""
    import marshal

    if any(sig is None for _p, sig in sigs):
        return
    tmp = f"{cache}.{os.getpid()}.tmp"
    try:
        blob = marshal.dumps((_CACHE_FORMAT, sigs, plain))
        os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, cache)
        from reviewbot.cachelimit import keep_newest

        keep_newest(os.path.dirname(cache), "packs-", ".marshal", PACK_CACHES)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
