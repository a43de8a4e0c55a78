"""What a path knows when the function is entered.

An out-parameter slot the function tests before it first fills it (`if (!*raw_super) {
..; *raw_super = super; }` in f2fs's read_raw_super_block()) is the caller's empty slot:
callers pass the address of a pointer they set to NULL, and the test asks whether this
call filled it yet. Walked from an unknown value, the slot could be full from the start,
so that the function never stores its allocation and never frees it either: a leak no
caller can cause. The slot starts NULL instead.
"""

from __future__ import annotations

from reviewbot.cmodel import Function, line_of, text
from reviewbot.engine.keys import static_key


def _is_test(n) -> bool:
    """`*p` is what a condition tests: `!*p`, `*p == NULL`, `if (*p)`."""
    p = n.parent
    while p is not None and p.type == "parenthesized_expression":
        p = p.parent
    if p is None:
        return False
    if p.type == "unary_expression" and text(p.child_by_field_name("operator")) == "!":
        return True
    if p.type == "binary_expression" and text(p.child_by_field_name("operator")) in ("==", "!="):
        return any(text(p.child_by_field_name(s)) == "NULL" for s in ("left", "right"))
    return p.type in ("if_statement", "while_statement")


def empty_slots(fn: Function) -> list[str]:
    """The keys of out-parameter slots (`*raw_super`) the function tests before it first
    assigns them, and assigns somewhere."""
    params = set(fn.params)
    tested: dict[str, int] = {}
    stored: dict[str, int] = {}
    for n in fn.of_type("pointer_expression"):
        arg = n.child_by_field_name("argument")
        if text(n.child_by_field_name("operator")) != "*" or arg is None \
                or arg.type != "identifier" or text(arg) not in params:
            continue
        name, ln = text(arg), line_of(n)
        p = n.parent
        if p is not None and p.type == "assignment_expression" and \
                p.child_by_field_name("left") is not None and \
                p.child_by_field_name("left").start_byte == n.start_byte:
            stored[name] = min(stored.get(name, ln), ln)
        elif _is_test(n):
            tested[name] = min(tested.get(name, ln), ln)
    return [static_key(f"*{p}") for p in sorted(tested) if p in stored and tested[p] <= stored[p]]
