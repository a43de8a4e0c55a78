"""What error-path.missing-undo reads in a function's syntax: the calls that publish
state and undo it, counters, unwind code (the error-only lines), and the undo forms of a
function in terms of its parameters, to bind at a call."""

from __future__ import annotations

import re
from typing import NamedTuple

from tree_sitter import Node as TSNode

from reviewbot.cmodel import Function, args, callee, line_of, norm, text
from reviewbot.engine import local_kinds
from reviewbot.engine.keys import static_key

# how state is published, and undone: call name -> (kind, index of the place argument)
PUBLISH_CALLS: dict[str, tuple[str, int]] = {
    **{n: ("link", 0) for n in ("list_add", "list_add_tail", "list_add_rcu",
                                "list_add_tail_rcu", "hlist_add_head", "hlist_add_head_rcu",
                                "hlist_add_before", "hlist_add_behind", "hlist_add_tail_rcu",
                                "list_move", "list_move_tail")},
    "hash_add": ("link", 1), "hash_add_rcu": ("link", 1),
    **{n: ("table", 0) for n in ("idr_alloc", "idr_alloc_cyclic", "idr_alloc_u32",
                                 "xa_store", "xa_insert", "xa_alloc", "xa_alloc_cyclic",
                                 "radix_tree_insert")},
    "rcu_assign_pointer": ("store", 0),
}
UNDO_CALLS: dict[str, tuple[str, int]] = {
    **{n: ("link", 0) for n in ("list_del", "list_del_init", "list_del_rcu",
                                "list_del_init_careful", "hlist_del", "hlist_del_init",
                                "hlist_del_rcu", "hlist_del_init_rcu", "hash_del",
                                "hash_del_rcu")},
    **{n: ("table", 0) for n in ("idr_remove", "xa_erase", "radix_tree_delete")},
}
DRVDATA = re.compile(r"^(\w+_set_drvdata|\w+_set_clientdata|usb_set_intfdata|i2c_set_adapdata)$")
COUNTER_FAMILIES = ("atomic_long", "atomic64", "refcount", "atomic")
NULL_TEXTS = frozenset({"NULL", "0", "(void *)0"})


def counter(name: str) -> str:
    """'inc', 'dec', 'take' (any other change: set, add) or '' for an atomic/refcount call."""
    for fam in COUNTER_FAMILIES:
        if name in (f"{fam}_inc", f"{fam}_inc_return"):
            return "inc"
        if name in (f"{fam}_dec", f"{fam}_dec_return", f"{fam}_dec_and_test"):
            return "dec"
        if name.startswith((f"{fam}_set", f"{fam}_add", f"{fam}_sub", f"{fam}_inc",
                            f"{fam}_xchg", f"{fam}_cmpxchg")):
            return "take"
    return ""


class Undo(NamedTuple):
    """A static undo form: kind and place (templates `{N}` for a callee's parameters,
    `*->f` for a field of something the callee found itself), where, and whether that is
    unwind code. Kind "take" is a counter counted up or set, which no publication undoes."""

    kind: str
    key: str
    line: int
    unwind: bool = False
    direct: bool = True  # in the function itself, not in a helper it calls


def unwind_lines(fn: Function) -> list[tuple[int, int]]:
    """Line ranges of error-only code: the block of an `if` that ends in a goto or an
    error return, and the labels of an unwind ladder (reached only by jumps: the statement
    before them returns or jumps, or is unwind code itself) up to their return."""
    out: list[tuple[int, int]] = []
    ladder: set[str] = set()  # labels of unwind code
    body = fn.body
    region, jumped = False, False
    for st in body.named_children if body is not None else []:
        if st.type == "comment":
            continue
        inner = st
        while inner.type == "labeled_statement":
            if region or jumped:
                region = True
                ladder.add(text(inner.child_by_field_name("label")))
            kids = [k for k in inner.named_children if k.type != "statement_identifier"]
            if not kids:
                break
            inner = kids[-1]
        if region:
            out.append((line_of(st), st.end_point[0] + 1))
        jumped = inner.type == "return_statement"  # (`goto got; got:` is no ladder)
        if region and inner.type == "return_statement":
            region = False
    errnos = errno_vars(fn)
    kinds = local_kinds(fn)
    for ifs in fn.of_type("if_statement"):
        c = ifs.child_by_field_name("consequence")
        if c is None or ifs.child_by_field_name("alternative") is not None:
            continue
        kids = [k for k in c.named_children if k.type != "comment"] \
            if c.type == "compound_statement" else [c]
        cond = norm(text(ifs.child_by_field_name("condition")))
        if kids and leaves_on_error(kids[-1], ladder, errnos, kinds, cond):
            out.append((line_of(c), c.end_point[0] + 1))
    return out


def errno_vars(fn: Function) -> set[str]:
    """Variables assigned an error code somewhere (`err = -ENOMEM`, `ret = PTR_ERR(p)`)."""
    out = set()
    for a in fn.of_type("assignment_expression"):
        rhs = norm(text(a.child_by_field_name("right")))
        if rhs.startswith(("-E", "PTR_ERR(")):
            out.add(norm(text(a.child_by_field_name("left"))))
    return out


def leaves_on_error(st: TSNode, ladder: set[str], errnos: set[str],
                     kinds: dict[str, str], cond: str) -> bool:
    """A goto into the unwind ladder, or a return of an error: a literal errno, an error
    pointer, or a status variable (an error variable, or the value the branch tested),
    not an object."""
    if st.type == "goto_statement":
        label = st.child_by_field_name("label")
        return label is not None and text(label) in ladder
    if st.type != "return_statement" or not st.named_child_count:
        return False
    e = st.named_children[0]
    t = norm(text(e))
    if t.startswith(("-", "ERR_PTR", "PTR_ERR", "ERR_CAST", "dev_err_probe")):
        return True
    return e.type == "identifier" and kinds.get(t) != "pointer" and (
        t in errnos or re.search(rf"(?<![\w>.]){re.escape(t)}(?![\w\[])", cond) is not None)


def in_ranges(line: int, ranges: list[tuple[int, int]]) -> bool:
    return any(a <= line <= b for a, b in ranges)


def undo_forms(fn: Function) -> list[Undo]:
    """The undo forms in a function's body (and its counters counted up: "take")."""
    out: list[Undo] = []
    unwind = unwind_lines(fn)
    for c in fn.of_type("call_expression"):
        name, a = callee(c), args(c)
        form = UNDO_CALLS.get(name)
        op = counter(name)
        if form is not None and form[1] < len(a):
            out.append(Undo(form[0], static_key(text(a[form[1]])), line_of(c)))
        elif op == "dec" and a:
            out.append(Undo("count", static_key(text(a[0])), line_of(c)))
        elif op in ("inc", "take") and a:
            key = static_key(text(a[0] if not name.split("_")[-1].startswith(("add", "sub"))
                                  or len(a) < 2 else a[1]))
            out.append(Undo("take", key, line_of(c)))
        elif (DRVDATA.match(name) or name in ("rcu_assign_pointer", "RCU_INIT_POINTER")) \
                and len(a) >= 2 and norm(text(a[1])) in NULL_TEXTS:
            kind = "drvdata" if DRVDATA.match(name) else "store"
            out.append(Undo(kind, static_key(text(a[0])), line_of(c)))
    for x in fn.of_type("assignment_expression"):
        if norm(text(x.child_by_field_name("right"))) in NULL_TEXTS:
            out.append(Undo("store", static_key(text(x.child_by_field_name("left"))),
                            line_of(x)))
    return [u._replace(unwind=in_ranges(u.line, unwind)) for u in out]


def template(fn: Function, forms: list[Undo]) -> list[Undo]:
    """A helper's forms in terms of its parameters (`{0}->node`), globals, or a field of
    something it found itself (`*->num_waiting`: it may be the caller's)."""
    declared = local_kinds(fn)
    out = []
    for u in forms:
        m = re.match(r"[A-Za-z_]\w*", u.key)
        root = m.group(0) if m else ""
        if root in fn.params:
            out.append(u._replace(key=f"{{{fn.params.index(root)}}}" + u.key[len(root):]))
        elif root and root not in declared:
            out.append(u)  # a global
        elif "->" in u.key:
            out.append(u._replace(key="*->" + u.key.rsplit("->", 1)[1]))
    return out


DEFINED = re.compile(rb"^(?:[A-Za-z_][\w \t\*]*?[\s\*])?([A-Za-z_]\w*)\s*\(", re.M)


def defined_names(source: bytes) -> frozenset[str]:
    """Names a line of the file starts to define or declare (kernel style: column 0)."""
    return frozenset(m.group(1).decode() for m in DEFINED.finditer(source))


def bind(forms: list[Undo], argv: list[str], canon, line: int, unwind: bool) -> list[Undo]:
    """A helper's forms at a call `line` with arguments `argv`."""
    out = []
    for u in forms:
        m = re.match(r"\{(\d+)\}", u.key)
        if m is None:
            out.append(u._replace(line=line, unwind=unwind))
        elif int(m.group(1)) < len(argv):
            out.append(u._replace(key=canon(argv[int(m.group(1))]) + u.key[m.end():],
                                  line=line, unwind=unwind))
    return out
