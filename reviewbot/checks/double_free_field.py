"""get-put.double-free-field: a field freed without being cleared, by a helper that one
path of a caller runs twice on the same object (or that a caller follows with its own free
of that field)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node as TSNode

from reviewbot.checks import register, rule
from reviewbot.checks.borrowed import file_functions
from reviewbot.cmodel import Function, Node, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import Checker, FunctionContext, Raw, static_key
from reviewbot.engine.explore import explore
from reviewbot.engine.keys import decl_ident, target_keys, walk
from reviewbot.packs import Packs
from reviewbot.packs.lookup import LEARNED

DOUBLE_FREE_FIELD = rule(
    "get-put.double-free-field", "error", "low",
    "a field freed without being cleared is freed again on the same path",
    """
What it finds: a helper of the file that frees a field of an object it is given
(`kfree(p->buf)`, unconditionally: a statement of its body, not under a test or a label)
and does not clear it (no `p->buf = NULL` after the free), called on a path of another
function that frees the same field of the same object again: a second call of that
helper (or of one that calls it) or a direct `kfree(x->buf)`, with nothing assigning the
object or the field in between and the object not handed to another call that could fill
it again.

Why it matters: the second kfree() frees memory that may already belong to someone else
(the slab reuses it at once); teardown code run twice (an error path that cleans up, then
the caller's unwind that cleans up again) is one of the commonest double frees in drivers.
Clearing the field in the helper (`p->buf = NULL`) makes the second call harmless.

Example:
    static void foo_free_bufs(struct foo *f)
    {
        kfree(f->rx);               /* f->rx not cleared */
    }
    ...
        if (err) {
            foo_free_bufs(f);
            goto err_free;          /* err_free: foo_free_bufs(f) again */
        }

Known false positives: the two calls are on paths the walk cannot tell apart (two tests
that exclude each other, a flag set by the first call); the helper frees only when a
condition it tests holds. Calls through function pointers, helpers of other files and
frees guarded by the helper's own tests are not seen (missed, not reported).

The path is one function's; helpers are summarised over the file (to a fixed point), not
over the directory. A double free of a field by two direct kfree() calls of one function
is get-put.double-release's, not this rule's (at least one of the two frees here goes
through a helper).
Smatch's check_free / check_double_free follow frees through helpers similarly.
Confidence: low (the walk is not path-sensitive on data: correlated tests are not
related).
""")

MAX_STEPS = 20000
ROUNDS = 4
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Freed:
    """`key` (`x->field`) freed at `line`, by `how` (a helper's name or the free itself)."""

    key: str
    line: int
    how: str
    helper: bool


class _Frees:
    """Whether a call is a hand-written pack's free of memory (kfree, kvfree, ...)."""

    def __init__(self, packs: Packs):
        self.packs = packs
        self.memo: dict[str, bool] = {}

    def __contains__(self, name: str) -> bool:
        got = self.memo.get(name)
        if got is None:
            s = self.packs.calls.get(name)
            got = self.memo[name] = s is not None and s.pack != LEARNED and any(
                (k := self.packs.resources.get(r)) is not None and k.kind == "memory"
                for r in s.releases)
        return got


def _params(f: TSNode) -> list[str]:
    d = f.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    out: list[str] = []
    plist = d.child_by_field_name("parameters") if d is not None else None
    for p in plist.named_children if plist is not None else []:
        x = p.child_by_field_name("declarator")
        while x is not None and x.type not in ("identifier",):
            x = x.child_by_field_name("declarator")
        out.append(text(x) if x is not None else "")
    return out


def _name(f: TSNode) -> str:
    d = f.child_by_field_name("declarator")
    while d is not None and d.type not in ("identifier",):
        d = d.child_by_field_name("declarator")
    return text(d) if d is not None else ""


_SUMMARIES: dict[bytes, dict[str, frozenset[tuple[int, str]]]] = {}


def helper_frees(fn: Function, packs: Packs) -> dict[str, frozenset[tuple[int, str]]]:
    """For each function of the file: the (parameter index, field path) pairs it frees by a
    top-level statement and never assigns afterwards (cached per file text)."""
    got = _SUMMARIES.get(fn.source)
    if got is not None:
        return got
    frees = _Frees(packs)
    funcs = [(f, _name(f), _params(f)) for f in file_functions(fn)]
    out: dict[str, frozenset[tuple[int, str]]] = {}
    for _ in range(ROUNDS):
        changed = False
        for f, name, params in funcs:
            body = f.child_by_field_name("body")
            if body is None or not name:
                continue
            mine: set[tuple[int, str]] = set()
            for s in body.named_children:
                if s.type == "labeled_statement":
                    break
                c = s.named_children[0] if s.type == "expression_statement" and \
                    s.named_child_count else None
                if c is None or c.type != "call_expression":
                    continue
                for key in _freed_keys(c, frees, out):
                    m = re.match(r"^([A-Za-z_]\w*)->(.+)$", key)
                    if m and m.group(1) in params and _IDENT.match(m.group(2).replace("->", "_")
                                                                  .replace(".", "_")):
                        if not _assigned_after(body, key, line_of(c)):
                            mine.add((params.index(m.group(1)), m.group(2)))
            if mine and frozenset(mine) != out.get(name):
                out[name] = frozenset(mine) | out.get(name, frozenset())
                changed = True
        if not changed:
            break
    if len(_SUMMARIES) > 8:
        _SUMMARIES.clear()
    _SUMMARIES[fn.source] = out
    return out


def _freed_keys(c: TSNode, frees: _Frees,
                helpers: dict[str, frozenset[tuple[int, str]]]) -> list[str]:
    """The `x->field` keys a call frees: a memory free of one, or a helper's frees."""
    name = callee(c)
    a = args(c)
    if name in frees:
        spec = frees.packs.calls.get(name)
        keys = target_keys(spec, c, static_key) if spec is not None else []
        return [k for k in keys if "->" in k]
    out = []
    for i, path in sorted(helpers.get(name, ())):
        if i < len(a):
            x = norm(text(a[i]))
            if _IDENT.match(x):
                out.append(f"{x}->{path}")
    return out


def _worth_a_look(fn: Function, packs: Packs) -> bool:
    """Two calls that may free fields of one object, one of them a call no pack describes
    whose name looks like a release (`foo_free_bufs(f)`), the other a call no pack
    describes or a free of a field (`kfree(f->rx)`), with the same variable in their
    arguments."""
    release_re = packs.idioms.release_re
    if release_re is None:
        return False
    frees = _Frees(packs)
    seen: dict[str, int] = {}
    helper_seen: set[str] = set()
    for c in fn.of_type("call_expression"):
        name = callee(c)
        a = args(c)
        if name in frees:
            spec = packs.calls.get(name)
            roots = {k.split("->")[0] for k in target_keys(spec, c, static_key)} \
                if spec is not None else set()
        elif packs.calls.get(name) is None:
            roots = {norm(text(x)) for x in a if _IDENT.match(norm(text(x)))}
            if release_re.search(name):
                helper_seen |= roots
        else:
            continue
        for r in roots:
            seen[r] = seen.get(r, 0) + 1
    return any(n >= 2 and r in helper_seen for r, n in seen.items())


def _assigned_after(body: TSNode, key: str, line: int) -> bool:
    """The helper gives the field a value after freeing it, or hands the whole object to a
    call that may (`memset(key, 0, sizeof(*key))`)."""
    for a in walk(body, "assignment_expression"):
        if line_of(a) > line and static_key(text(a.child_by_field_name("left"))) == key:
            return True
    root = key.split("->")[0]
    for c in walk(body, "call_expression"):
        if line_of(c) > line and any(norm(text(x)) in (root, "&" + root, "*" + root)
                                     for x in args(c)):
            return True
    return False


@register
class DoubleFreeFieldChecker(Checker):
    name = "double-free-field"
    rules = (DOUBLE_FREE_FIELD,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        fn, packs = ctx.fn, ctx.packs
        if not _worth_a_look(fn, packs):
            return []  # the file's helpers are summarised only for a function that may
            # free one object's fields twice
        helpers = helper_frees(fn, packs)
        if not helpers or not fn.callees() & set(helpers):
            return []
        return _Walk(fn, helpers, _Frees(packs)).run()


class _Walk:
    def __init__(self, fn: Function, helpers: dict[str, frozenset[tuple[int, str]]],
                 frees: _Frees):
        self.fn, self.helpers, self.frees = fn, helpers, frees
        self.raws: dict[str, Raw] = {}
        self.lines: set[int] = set()  # one finding per second free (a helper frees several)

    def run(self) -> list[Raw]:
        explore(self.fn.cfg(), frozenset(), self.edges, MAX_STEPS)
        return list(self.raws.values())

    def edges(self, node: Node, st: frozenset[Freed]) -> list[tuple[Node, frozenset[Freed]]]:
        if node.kind in ("stmt", "cond", "return", "switch") and node.ast is not None:
            st = self.statement(node.ast, st)
        return [(s, st) for s in node.succ]

    def statement(self, a, st: frozenset[Freed]) -> frozenset[Freed]:
        for n in _in_order(a):
            if n.type in ("assignment_expression", "init_declarator", "update_expression"):
                lhs = static_key(text(_assigned(n)))
                st = frozenset(f for f in st if not (f.key == lhs or f.key.startswith(lhs + "->")))
                continue
            name = callee(n)
            keys = _freed_keys(n, self.frees, self.helpers)
            helper = name in self.helpers
            if not keys:
                # an object handed to a call that could fill its fields again
                passed = {norm(text(x)).lstrip("&") for x in args(n)}
                st = frozenset(f for f in st if f.key.split("->")[0] not in passed)
                continue
            line = line_of(n)
            for key in sorted(keys):
                first = next((f for f in st if f.key == key), None)
                if first is not None and (first.helper or helper) and line not in self.lines:
                    self.report(key, first, line, name)
                st = frozenset(f for f in st if f.key != key) | {Freed(key, line, name, helper)}
        return st

    def report(self, key: str, first: Freed, line: int, how: str) -> None:
        helper = first.how if first.helper else how
        self.lines.add(line)
        self.raws.setdefault(key, Raw(
            DOUBLE_FREE_FIELD.id, line, key,
            f"'{key}' is freed twice on this path: {first.how}() at line {first.line} frees "
            f"it without clearing it, and {how}() frees it again here. Should {helper}() "
            f"set the field to NULL after freeing it, or one of the two calls go?",
            [(first.line, f"{first.how}() frees '{key}'"), (line, f"{how}() frees it again")],
            [line, first.line], "low"))


def _assigned(n):
    """What an assignment, a declaration or an increment gives a new value."""
    if n.type == "assignment_expression":
        return n.child_by_field_name("left")
    if n.type == "update_expression":
        return n.child_by_field_name("argument")
    return decl_ident(n.child_by_field_name("declarator"))


def _in_order(a) -> list:
    """Calls and assignments of a statement, arguments before their call."""
    out: list = []

    def visit(n) -> None:
        if n.type == "call_expression":
            for x in args(n):
                visit(x)
            out.append(n)
            return
        if n.type == "assignment_expression":
            visit(n.child_by_field_name("right"))
            out.append(n)
            return
        if n.type == "init_declarator":
            v = n.child_by_field_name("value")
            if v is not None:
                visit(v)
            out.append(n)
            return
        if n.type == "update_expression":  # p++: the pointer moves to another object
            out.append(n)
            return
        for c in n.named_children:
            visit(c)

    visit(strip_parens(a) or a)
    return out
