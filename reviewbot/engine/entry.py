"""What a path knows when the function is entered.

An out-parameter slot the function tests before it first fills it (`if (!*raw_super) {
..; *raw_super = super; }` in f2fs's read_raw_super_block()) is the caller's empty slot:
callers pass the address of a pointer they set to NULL, and the test asks whether this
call filled it yet. Walked from an unknown value, the slot could be full from the start,
so that the function never stores its allocation and never frees it either: a leak no
caller can cause. The slot starts NULL instead.
"""

from __future__ import annotations

from reviewbot.cmodel import Function, line_of, strip_parens, text
from reviewbot.engine.facts import local_kinds
from reviewbot.engine.keys import static_key


def _deref(n, params: set[str]) -> str:
    """The parameter p of `*p` (parentheses stripped), or ""."""
    n = strip_parens(n)
    if n is None or n.type != "pointer_expression" or \
            text(n.child_by_field_name("operator")) != "*":
        return ""
    arg = n.child_by_field_name("argument")
    return text(arg) if arg is not None and arg.type == "identifier" and text(arg) in params else ""


def _negated(n) -> bool:
    p = n.parent
    while p is not None and p.type == "parenthesized_expression":
        p = p.parent
    return p is not None and p.type == "unary_expression" and \
        text(p.child_by_field_name("operator")) == "!"


def _tested(atom, params: set[str]) -> str:
    """The parameter p a condition atom tests the slot of for NULL: `!*p`, `*p == NULL`
    (not a plain `if (*p)`, nor `&& *len`: an in-out count is tested so too)."""
    a = strip_parens(atom)
    if a is not None and a.type == "unary_expression" and \
            text(a.child_by_field_name("operator")) == "!":
        a = a.child_by_field_name("argument")
    elif a is not None and a.type == "pointer_expression":
        if not _negated(a):  # the graph's atom of `!*p` is `*p`
            return ""
    elif a is not None and a.type == "binary_expression" and \
            text(a.child_by_field_name("operator")) in ("==", "!="):
        sides = [a.child_by_field_name("left"), a.child_by_field_name("right")]
        if not any(text(x) == "NULL" for x in sides):
            return ""
        a = next((x for x in sides if text(x) != "NULL"), None)
    return _deref(a, params)


def empty_slots(fn: Function) -> list[str]:
    """The keys of out-parameter slots (`*raw_super`) the function tests for NULL before it
    first assigns them, and assigns a local pointer somewhere."""
    params = set(fn.params)
    pointers = {n for n, k in local_kinds(fn).items() if k == "pointer"}
    stored: dict[str, int] = {}
    for a in fn.of_type("assignment_expression"):
        p = _deref(a.child_by_field_name("left"), params)
        if p and text(a.child_by_field_name("right")) in pointers:  # `*raw_super = super`
            stored[p] = min(stored.get(p, line_of(a)), line_of(a))
    if not stored:
        return []
    tested: dict[str, int] = {}
    fn.cfg()
    for n in fn.nodes:
        if n.kind == "cond" and n.ts is not None:
            p = _tested(n.ts, params)
            if p:
                tested[p] = min(tested.get(p, n.line), n.line)
    return [static_key(f"*{p}") for p in sorted(tested) if p in stored and tested[p] <= stored[p]]
