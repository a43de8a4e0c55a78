"""A file's function-like macros that name a member or a container of their argument.

`#define KSMBD_TRANS(t) (&(t)->transport)` and `#define TCP_TRANS(t) ((struct
tcp_transport *)container_of(t, struct tcp_transport, transport))` are accessors: a call
`ksmbd_tcp_disconnect(KSMBD_TRANS(t))` passes the address of a member of `t`, and a
helper doing `free_transport(TCP_TRANS(t))` frees the object its argument is a member of.
Read as calls, they hide both. Only these two shapes are expanded (one parameter, used
once): anything else a macro may do is not modelled, and an unknown macro stays a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MEMBER = "member"  # &(p)->m: the address of a member of the argument
CONTAINER = "container"  # container_of(p, T, m): the object the argument is a member of

_DEFINE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\([ \t]*([A-Za-z_]\w*)[ \t]*\)"
                     rb"[ \t]+((?:[^\n\\]|\\.)*(?:\\\n(?:[^\n\\]|\\.)*)*)", re.M)
_CAST = re.compile(r"^\(\s*(?:const\s+)?(?:struct\s+|union\s+)?[A-Za-z_]\w*\s*\*\s*\)\s*")


@dataclass(frozen=True)
class Macro:
    param: str
    kind: str  # MEMBER or CONTAINER
    member: str  # the member path (`transport`, `a.b`)
    type_: str = ""  # the container's type, for CONTAINER


def _unparen(s: str) -> str:
    while s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        s = s[1:-1].strip()
    return s


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _parse(param: str, body: str) -> Macro | None:
    body = _unparen(" ".join(body.replace("\\\n", " ").split()))
    body = _unparen(_CAST.sub("", body))
    p = re.escape(param)
    m = re.fullmatch(rf"&\s*\(?\s*\(?{p}\)?\s*->\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\)?",
                     body)
    if m is not None and _balanced(body):
        return Macro(param, MEMBER, re.sub(r"\s+", "", m.group(1)))
    m = re.fullmatch(rf"container_of\(\s*\(?{p}\)?\s*,\s*((?:struct\s+|union\s+)?[A-Za-z_]\w*)"
                     rf"\s*,\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\)", body)
    if m is not None:
        return Macro(param, CONTAINER, re.sub(r"\s+", "", m.group(2)), m.group(1))
    return None


@lru_cache(maxsize=16)
def accessor_macros(source: bytes) -> dict[str, Macro]:
    """The member and container accessor macros a file defines, by name."""
    if b"define" not in source:
        return {}
    out: dict[str, Macro] = {}
    for m in _DEFINE.finditer(source):
        got = _parse(m.group(2).decode(), m.group(3).decode("utf-8", "replace"))
        if got is not None:
            out[m.group(1).decode()] = got
    return out


def _simple(arg: str) -> bool:
    return re.fullmatch(r"[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*", arg) is not None


def expand(expr: str, macros: dict[str, Macro], kinds: frozenset[str] = frozenset(
        {MEMBER, CONTAINER})) -> str:
    """`expr` (normalised text) with an accessor macro call that is the whole expression
    written out: KSMBD_TRANS(t) -> &t->transport, TCP_TRANS(t) -> container_of(t, struct
    tcp_transport, transport). Anything else is returned as it is."""
    if not macros or not expr.endswith(")"):
        return expr
    i = expr.find("(")
    mac = macros.get(expr[:i]) if i > 0 else None
    if mac is None or mac.kind not in kinds:
        return expr
    arg = expr[i + 1:-1].strip()
    if not arg or not _balanced(arg) or "," in arg:
        return expr
    arg = _unparen(arg)
    if not _simple(arg):
        arg = f"({arg})"
    if mac.kind == MEMBER:
        return f"&{arg}->{mac.member}"
    return f"container_of({arg}, {mac.type_}, {mac.member})"
