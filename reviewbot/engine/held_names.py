"""More names for what a path holds, given by an assignment to a local pointer
(reviewbot/engine/transfer.py): a pointer into a held buffer (`label = &labels[i * n]`:
stored, it stores the buffer), and a copy of a name of a held object's member
(`fsn_mark = new_fsn_mark`, itself `&new_dn_mark->fsn_mark`: a put of the copy is one of
the member, which frees its container). And a pointer a call no pack describes returns
from a buffer it was given (`p = dentry_path_raw(dentry, name, NAME_MAX)`): it may point
into the buffer, so storing it (`qstr.name = ++p`) stores the buffer; it is no other name
for the buffer otherwise (its IS_ERR() test says nothing of the allocation)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reviewbot.cmodel import args, callee, norm, strip_parens, text
from reviewbot.engine.keys import base_of_field, decl_ident
from reviewbot.engine.state import HELD, PENDING, PathState, Res
from reviewbot.engine.values import P

if TYPE_CHECKING:
    from tree_sitter import Node as TSNode

    from reviewbot.engine.facts import FunctionFacts
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


_STEP = re.compile(r"^(?:\+\+|--)?([A-Za-z_]\w*)(?:\+\+|--|\s*[+-]\s*\w+)?$")


def interior_pointers(facts: FunctionFacts) -> dict[str, str]:
    """Local pointers given only results of calls no pack describes, each passed the same
    local the function acquires (`p = dentry_path_raw(dentry, name, NAME_MAX)` of `name =
    kmalloc(..)`) -> that local."""
    acquired = {key for _rid, key in facts.static_acquires}
    seen: dict[str, set[str]] = {}
    for c in facts.fn.of_type("call_expression"):
        p = c.parent
        if p is None or facts.packs.calls.get(callee(c)) is not None:
            continue
        lhs = _assigned_name(p)
        bufs = {norm(text(a)) for a in args(c)} & facts.locals & acquired
        if lhs in facts.local_pointers and len(bufs) == 1:
            seen.setdefault(lhs, set()).update(bufs)
    counts: dict[str, int] = {}
    for lhs, _rhs in facts.assignments:
        counts[lhs] = counts.get(lhs, 0) + 1
    calls = {lhs: len([1 for c in facts.fn.of_type("call_expression") if c.parent is not None
                       and _assigned_name(c.parent) == lhs]) for lhs in seen}
    return {lhs: next(iter(b)) for lhs, b in seen.items()
            if len(b) == 1 and counts.get(lhs, 0) == calls[lhs]}


def _assigned_name(n: TSNode) -> str:
    """The variable a call's result is given to, when the call is all the value."""
    if n.type == "init_declarator":
        d = decl_ident(n.child_by_field_name("declarator"))
        return text(d) if d is not None else ""
    if n.type == "assignment_expression":
        return norm(text(n.child_by_field_name("left")))
    return ""


def stored_interior(w: Walker, rhs: TSNode, st: PathState) -> list[Res]:
    """What storing `rhs` (`++p`, `p + 1`, `p` of an interior pointer) stores: the held
    buffer the pointer points into."""
    m = _STEP.match(norm(text(strip_parens(rhs) or rhs)))
    buf = w.facts.interior.get(m.group(1)) if m is not None else None
    if buf is None:
        return []
    key = w.canon(buf, st)
    return [r for r in st.res.values() if r.key == key and r.status in (HELD, PENDING)]
