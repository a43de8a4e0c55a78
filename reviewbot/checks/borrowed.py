"""Where a pointer's value comes from, and whether it carries a reference: the knowledge
get-put.release-not-taken (reviewbot/checks/release_not_taken.py) rests on.

A *borrowed* value is one that holds no reference of its own: a read of a field whose
owner keeps the reference (`dev->of_node`: the device core holds it), or the result of a
call that returns no reference (`dev_of_node()`), or of a conversion that passes its
argument through (`of_fwnode_handle(np)`): `BORROWING_CALLS`.
Anything else — a parameter (the caller may hand a reference over), a global, a call no
pack describes, an out-argument, an iterator macro's cursor — is *unknown*, and the rule
stays quiet about it.

Whether a field holds a reference is decided from the whole file: a field is *owning*
when some function of the file stores an acquired reference in it (`p->np =
of_parse_phandle(..)`), stores a local it does not release unconditionally afterwards, or
takes a reference on it (`of_node_get(p->np)`); it is *borrowing* when it is not owning and
either every store the file makes puts there a value that the storing function itself drops
afterwards on every path (`leaf->fw_token = np; .. of_node_put(np);`: the field keeps a
pointer, not a reference), or it is one of the fields the device model owns
(`BORROWED_FIELDS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tree_sitter import Node as TSNode

from reviewbot.cmodel import Function, args, callee, line_of, norm, parse_c, strip_parens, text
from reviewbot.cmodel.syntax import walk_type
from reviewbot.engine.keys import decl_ident, static_key, walk
from reviewbot.packs import Packs

# Fields of the driver model whose reference belongs to the object that has them (struct
# device's node, set up and dropped by the device core): a read of one takes no reference.
BORROWED_FIELDS = frozenset({"of_node", "fwnode"})

# Calls that return a pointer without a reference: None, or the argument whose reference
# (if any) the result carries (a conversion between node handles). Kept here, not in a
# pack: a pack entry would change how the engine treats what is passed to them.
BORROWING_CALLS: dict[str, int | None] = {
    "dev_of_node": None, "dev_fwnode": None,
    "of_fwnode_handle": 0, "to_of_node": 0, "of_node_to_fwnode": 0,
}

BORROWED = "borrowed"
NULL = "null"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Origin:
    """What a variable may hold: `kind` (borrowed / null / unknown) and, for a borrowed
    value, where it was read (`how`, `line`) for the finding's trace."""

    kind: str
    how: str = ""
    line: int = 0
    owner: str = ""  # the variable whose field was read (`pdev` of pdev->dev.of_node)


@dataclass
class FieldFacts:
    """What one file does with each field name: stores that keep a reference (`owning`),
    stores of a value the storer drops afterwards (`borrowing`, with its line)."""

    owning: set[str] = field(default_factory=set)
    got: set[str] = field(default_factory=set)  # of_node_get(p->np)
    borrowing: dict[str, tuple[int, str]] = field(default_factory=dict)  # line, function

    def borrowed(self, name: str) -> bool:
        """A read of the field takes no reference."""
        if name in self.owning:
            return False
        return name in BORROWED_FIELDS or (name in self.borrowing and name not in self.got)

    def stores_borrowed(self, name: str) -> bool:
        """The file's own evidence that the field holds no reference: it stores there
        only pointers it drops, and never takes a reference on it."""
        return name in self.borrowing and name not in self.owning and name not in self.got


_FIELD_TAIL = re.compile(r"(?:->|\.)\s*([A-Za-z_]\w*)$")


def field_name(expr: str) -> str:
    """`a->b.c` -> `c`; '' for an expression that is not a field."""
    m = _FIELD_TAIL.search(expr)
    return m.group(1) if m else ""


def file_functions(fn: Function) -> Iterator[TSNode]:
    """The function definitions of the whole file `fn` is in (also those in #ifdef blocks);
    a function parsed alone (parse_region: a review reads only what a patch touches) has
    its file parsed whole for this."""
    root = fn.node
    while root.parent is not None:
        root = root.parent
    if root.start_byte != 0 or root.end_byte < len(fn.source.rstrip()):
        root = parse_c(fn.source).tree.root_node
    yield from walk_type(root, "function_definition")


def _top_statements(fn: TSNode) -> list[TSNode]:
    body = fn.child_by_field_name("body")
    return [c for c in body.named_children if c.type != "comment"] if body is not None else []


def _unconditional_release(fn: TSNode, var: str, after: int, packs: Packs) -> bool:
    """The function drops `var` by a statement of its top-level block after line `after`,
    before any label (so every path that gets there runs it)."""
    for s in _top_statements(fn):
        if s.type == "labeled_statement":
            return False
        if line_of(s) <= after or s.type != "expression_statement":
            continue
        c = s.named_children[0] if s.named_child_count else None
        if c is None or c.type != "call_expression":
            continue
        spec = packs.calls.get(callee(c))
        if spec and spec.releases and any(static_key(text(a)) == var for a in args(c)):
            return True
    return False


def _store_kind(value: TSNode, fn: TSNode, line: int, packs: Packs,
                locals_: set[str]) -> str:
    """How a value stored in a field leaves it: "borrowing" or "owning"."""
    v = _unwrap(value)
    t = norm(text(v))
    if t in ("NULL", "0"):
        return "neutral"
    if v.type == "field_expression":
        return "neutral"  # copied from another field: as good as what that one holds
    if v.type == "call_expression":
        if BORROWING_CALLS.get(callee(v), 0) is None:
            return "borrowing"
        return "owning"
    if v.type == "identifier" and t in locals_ and _unconditional_release(fn, t, line, packs):
        return "borrowing"
    return "owning"


def _name_of(f: TSNode) -> str:
    d = f.child_by_field_name("declarator")
    while d is not None and d.type not in ("identifier", "field_identifier"):
        d = d.child_by_field_name("declarator")
    return text(d) if d is not None else ""


def _unwrap(n: TSNode) -> TSNode:
    while True:
        n = strip_parens(n) or n
        if n.type == "cast_expression" and n.child_by_field_name("value") is not None:
            n = n.child_by_field_name("value")
            continue
        return n


def _locals(fn: TSNode) -> set[str]:
    out: set[str] = set()
    for d in walk(fn.child_by_field_name("body"), "declaration"):
        for c in d.named_children:
            ident = decl_ident(c) if c.type != "identifier" else c
            if ident is not None:
                out.add(text(ident))
    return out


_CACHE: dict[bytes, FieldFacts] = {}
# a function's own facts, by its text: the image after a patch shares all but the changed
# functions with the image before, so their scan is done once (lines are kept relative)
_FN_CACHE: dict[bytes, FieldFacts] = {}


def field_facts(fn: Function, packs: Packs) -> FieldFacts:
    """The field facts of the file `fn` is in (computed once per file text)."""
    got = _CACHE.get(fn.source)
    if got is not None:
        return got
    facts = FieldFacts()
    for f in file_functions(fn):
        body = f.child_by_field_name("body")
        if body is None:
            continue
        key = fn.source[f.start_byte:f.end_byte]
        own = _FN_CACHE.get(key)
        if own is None:
            own = _FN_CACHE[key] = _function_facts(f, body, packs)
        facts.owning |= own.owning
        facts.got |= own.got
        base = line_of(f)
        for name, (rel, fname) in own.borrowing.items():
            facts.borrowing.setdefault(name, (base + rel, fname))
    if len(_CACHE) > 8:  # the functions of the files seen last go with them
        _CACHE.clear()
        _FN_CACHE.clear()
    _CACHE[fn.source] = facts
    return facts


def _function_facts(f: TSNode, body: TSNode, packs: Packs) -> FieldFacts:
    """One function's stores and gets of fields; borrowing lines relative to its start."""
    facts = FieldFacts()
    base = line_of(f)
    loc = _locals(f)
    for a in walk(body, "assignment_expression"):
        lhs = a.child_by_field_name("left")
        rhs = a.child_by_field_name("right")
        if lhs is None or rhs is None or lhs.type != "field_expression":
            continue
        name = field_name(norm(text(lhs)))
        if not name:
            continue
        kind = _store_kind(rhs, f, line_of(a), packs, loc)
        if kind == "owning":
            facts.owning.add(name)
        elif kind == "borrowing":
            facts.borrowing.setdefault(name, (line_of(a) - base, _name_of(f)))
    for c in walk(body, "call_expression"):
        spec = packs.calls.get(callee(c))
        if spec is None or not spec.acquires:
            continue
        for t in spec.targets:
            if t.how == "arg" and 0 <= t.index < len(args(c)):
                name = field_name(static_key(text(args(c)[t.index])))
                if name:
                    facts.got.add(name)  # of_node_get(p->np): the field may be a reference
    return facts


# ---------------------------------------------------------------------- a local's values


def definitions(body: TSNode, var: str) -> list[TSNode | None]:
    """Every value `var` is given in the function (None: one the text cannot tell: an
    out-argument `&var`, an iterator macro's cursor, `var += ..`)."""
    out: list[TSNode | None] = []
    for d in walk(body, "init_declarator"):
        ident = decl_ident(d.child_by_field_name("declarator"))
        if ident is not None and text(ident) == var:
            v = d.child_by_field_name("value")
            if v is not None:
                out.append(v)
    for a in walk(body, "assignment_expression"):
        if norm(text(a.child_by_field_name("left"))) != var:
            continue
        out.append(a.child_by_field_name("right")
                   if text(a.child_by_field_name("operator")) == "=" else None)
    for u in walk(body, "update_expression"):
        if norm(text(u.child_by_field_name("argument"))) == var:
            out.append(None)
    for c in walk(body, "call_expression"):
        for x in args(c):
            t = norm(text(x))
            if t == "&" + var or (t == var and "each" in callee(c)):
                out.append(None)  # filled by the call, or the cursor of an iterator macro
    return out


def origin(value: TSNode | None, body: TSNode, params: list[str], locals_: set[str],
           packs: Packs, facts: FieldFacts, depth: int = 0,
           seen: frozenset[str] = frozenset()) -> Origin:
    """What `value` holds: a borrowed pointer, NULL, or something unknown."""
    if value is None or depth > 4:
        return Origin(UNKNOWN)
    v = _unwrap(value)
    t = norm(text(v))
    if t in ("NULL", "0"):
        return Origin(NULL)
    if v.type == "identifier":
        if t in params or t not in locals_ or t in seen:
            return Origin(UNKNOWN)
        return combine([origin(d, body, params, locals_, packs, facts, depth + 1, seen | {t})
                        for d in definitions(body, t)])
    if v.type == "field_expression":
        name = field_name(t)
        if name and facts.borrowed(name):
            m = re.match(r"[A-Za-z_]\w*", t)
            return Origin(BORROWED, f"{t} (a field read, which takes no reference)", line_of(v),
                          m.group(0) if m else "")
        return Origin(UNKNOWN)
    if v.type == "call_expression":
        name = callee(v)
        spec = packs.calls.get(name)
        if name not in BORROWING_CALLS or (spec is not None and (spec.acquires or spec.releases)):
            return Origin(UNKNOWN)
        through = BORROWING_CALLS[name]
        if through is None:
            return Origin(BORROWED, f"{name}(), which returns no reference", line_of(v))
        a = args(v)
        if through >= len(a):
            return Origin(UNKNOWN)
        inner = origin(a[through], body, params, locals_, packs, facts, depth + 1, seen)
        if inner.kind == BORROWED:
            return Origin(BORROWED, f"{t} of {inner.how}", inner.line, inner.owner)
        return inner
    if v.type == "pointer_expression" and text(v.child_by_field_name("operator")) == "&":
        # &np->fwnode: the handle embedded in the node np names
        arg = _unwrap(v.child_by_field_name("argument"))
        if arg is not None and arg.type == "field_expression":
            inner = origin(arg.child_by_field_name("argument"), body, params, locals_, packs,
                           facts, depth + 1, seen)
            if inner.kind == BORROWED:
                return Origin(BORROWED, f"{t} of {inner.how}", inner.line, inner.owner)
        return Origin(UNKNOWN)
    if v.type == "conditional_expression":
        return combine([origin(v.child_by_field_name(k), body, params, locals_, packs, facts,
                               depth + 1, seen) for k in ("consequence", "alternative")])
    return Origin(UNKNOWN)


def combine(origins: list[Origin]) -> Origin:
    """Borrowed when every value is borrowed or NULL (and one is borrowed)."""
    if not origins or any(o.kind == UNKNOWN for o in origins):
        return Origin(UNKNOWN)
    borrowed = [o for o in origins if o.kind == BORROWED]
    return borrowed[0] if borrowed else Origin(NULL)
