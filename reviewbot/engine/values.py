"""The value lattice: what the walker knows about a value on one path.

A value is a set of the abstract values it may have: ``Z`` zero/NULL, ``N`` a negative int
(an errno), ``P`` a positive int or a valid pointer, ``E`` an ERR_PTR. ``ALL`` is "nothing
known"; a branch narrows a value by intersection, and an empty set is an infeasible path.
"""

from __future__ import annotations

import re

from tree_sitter import Node as TSNode

from reviewbot.cmodel import callee
from reviewbot.packs import Idioms

ALL = frozenset("ZNPE")
Z, N, P, E = (frozenset(c) for c in "ZNPE")

# success kind of a pack call -> (values its result may have, the values meaning success)
SUCCESS_SETS = {
    "zero": (frozenset("ZN"), Z),
    "nonnull": (frozenset("ZP"), P),
    "not_err": (frozenset("EP"), P),
    "nonnull_not_err": (frozenset("ZEP"), P),
    "true": (frozenset("ZP"), P),
    "nonneg": (frozenset("ZNP"), frozenset("ZP")),
}

ERRNO = re.compile(r"^-\(?E[A-Z0-9_]+\)?$|^-\d+$")  # -ENOMEM, -(EIO), -1
CONST = re.compile(r"^-?\(?[A-Z][A-Z0-9_]*\)?$|^-?\d+[uUlL]*$|^-?0x[0-9a-fA-F]+[uUlL]*$")


def compare_sets(op: str, const: str) -> tuple[frozenset, frozenset]:
    """The values `x OP const` leaves x on its true and false branches."""
    c = const.strip("()")
    if c in ("0", "NULL", "0UL", "0L", "false"):
        cv = "Z"
    elif c.startswith("-"):
        cv = "N"
    else:
        cv = "P"
    if op == "==":
        if cv == "Z":
            return Z, frozenset("NPE")
        return frozenset(cv), ALL
    if op == "!=":
        if cv == "Z":
            return frozenset("NPE"), Z
        return ALL, frozenset(cv)
    if cv != "Z":
        return ALL, ALL
    if op == "<":
        return frozenset("NE"), frozenset("ZP")
    if op == ">=":
        return frozenset("ZP"), frozenset("NE")
    if op == ">":
        return P, frozenset("ZNE")
    if op == "<=":
        return frozenset("ZNE"), P
    return ALL, ALL


def const_values(t: str, src: frozenset, idioms: Idioms) -> frozenset:
    """The values of an assigned expression's text; `src` when it is not a constant."""
    if t in _ZERO or t in idioms.err_null:
        return Z
    if ERRNO.match(t):
        return N
    if t.startswith(idioms.err_ptr_calls) or t.startswith(idioms.err_cast_calls):
        return E
    if re.fullmatch(r"\d+[uUlL]*|0x[0-9a-fA-F]+|true", t):
        return P
    if t.startswith("&"):
        return P
    if t.startswith(idioms.ptr_err_calls):
        return frozenset("NZ")
    return src


_ZERO = frozenset({"0", "NULL", "false", "0UL", "0L"})


def call_values(c: TSNode, idioms: Idioms) -> frozenset:
    """The values a call's result may have, before any pack says more."""
    name = callee(c)
    if name in idioms.ptr_err:
        return frozenset("NZ")
    if name in idioms.err_ptr or name in idioms.err_cast:
        return E
    return ALL
