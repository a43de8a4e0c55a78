"""More names for what a path holds, given by an assignment to a local pointer
(reviewbot/engine/transfer.py): a pointer into a held buffer (`label = &labels[i * n]`:
stored, it stores the buffer), and a copy of a name of a held object's member
(`fsn_mark = new_fsn_mark`, itself `&new_dn_mark->fsn_mark`: a put of the copy is one of
the member, which frees its container)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reviewbot.engine.keys import base_of_field
from reviewbot.engine.state import HELD, PENDING, PathState
from reviewbot.engine.values import P

if TYPE_CHECKING:
    from reviewbot.engine.walker import Walker

_INTO = re.compile(r"&([A-Za-z_]\w*)\[.+\]")


def _held(key: str, st: PathState) -> bool:
    return any(r.key == key and r.status in (HELD, PENDING) for r in st.res.values())


def names_of_held(w: Walker, lhs_raw: str, rt: str, rtext: str, src_key: str,
                  st: PathState) -> str:
    """What the local pointer `lhs_raw = rtext` now names, or "" (nothing held)."""
    inner = _INTO.fullmatch(rtext)
    if inner is not None:
        root = w.canon(inner.group(1), st)
        return root if _held(root, st) else ""
    if rt == "identifier" and rtext in st.alias and src_key:
        owner = base_of_field(src_key)
        if owner != src_key and _held(owner, st):
            st.values[src_key] = P  # the address of a member of a held object
            return src_key
    return ""
