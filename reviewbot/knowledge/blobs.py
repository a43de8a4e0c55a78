"""The git blob id of a file's content: what the caches of per-file knowledge are keyed by
(the learn pass, the function summaries, the context rules' facts), so that a file read
from a git tree and the same content read from disk share an entry."""

from __future__ import annotations

import hashlib


def blob_id(data: bytes) -> str:
    """What `git hash-object` prints for `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
