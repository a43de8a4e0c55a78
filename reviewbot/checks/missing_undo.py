"""error-path.missing-undo: published state left in place on an error exit.

A function that publishes something — links an object it allocated into a list, stores
it in a longer-lived object, sets it as a device's driver data, enters it in a table,
counts a shared counter up — must undo that on the error exits that give up afterwards.
The engine says when a held object is stored in a longer-lived place (the ownership
model of reviewbot/engine/transfer.py: the `publish` event); this checker keeps, per
path, what was published and not undone yet, and which of it the path then freed.
Evidence comes from the function itself: the same place undone elsewhere (a sibling
error exit, the success path, or a helper of the same file it calls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from tree_sitter import Node as TSNode

from reviewbot.checks import register, rule
from reviewbot.checks.undo_forms import (
    DRVDATA,
    NULL_TEXTS,
    PUBLISH_CALLS,
    UNDO_CALLS,
    Undo,
    bind,
    counter,
    defined_names,
    in_ranges,
    template,
    undo_forms,
    unwind_lines,
)
from reviewbot.cmodel import Function, Node, args, callee, line_of, norm, parse_region, text
from reviewbot.engine import (
    ESCAPED,
    HELD,
    PENDING,
    Checker,
    Cond,
    Exit,
    PathState,
    Res,
    Walker,
)
from reviewbot.engine.keys import base_of_field, decl_ident, static_key, walk

MISSING_UNDO = rule(
    "error-path.missing-undo", "warning", "medium",
    "an error exit leaves published state in place: an object still linked, stored or "
    "counted after it was freed or the error returned",
    """
What it finds: an error exit reached after the function published state, with that state
not undone on the path:
- an object the function holds linked into a list (`list_add`, `hlist_add_head`,
  `hash_add`), stored in a longer-lived place (`obj->priv = x`, `*out = x`,
  `rcu_assign_pointer`), set as driver data (`platform_set_drvdata`) or entered in a table
  (`idr_alloc`, `xa_store`), and then freed on that path while still published;
- a shared counter counted up (`atomic_inc(&c)`, `refcount_inc`) and not counted down,
  or a count the function holds from its caller (it counts down on an earlier error exit
  and never up) not dropped on a later one.
Reported only with evidence in the function: the same place is undone elsewhere
(`list_del(&x->node)`, `obj->priv = NULL`, `dev_set_drvdata(dev, NULL)`, `idr_remove`,
`atomic_dec(&c)`), on another exit or the success path, directly or in a helper of the
same file it calls; a conditional undo (`if (max) atomic_dec(&c)`) on the path counts for
its exit.

Why it matters: the list, the parent object or the driver core still points at freed
memory (a use after free as soon as someone walks the list or reads the field); a
counter that is never counted down blocks a limit, a wait for zero or a module unload.

Example:
    t = alloc_transport(client_sk);
    if (!t) {
        sock_release(client_sk);
        atomic_dec(&active_num_conn);     /* the count the caller took */
        return -ENOMEM;
    }
    ...
    if (IS_ERR(handler)) {
        rc = PTR_ERR(handler);
        free_transport(t);                /* active_num_conn is never dropped */
    }
    return rc;

Known false positives: an undo done by a helper of another file (`foo_remove(x)`) whose
name does not say it releases; a counter handed over to an object whose teardown drops
it; a container the caller frees at once on error (its fields then point nowhere anyone
reads).

Confidence: medium. Where an acquired resource is not released (error-path.missing-release)
that rule reports it; this one is about what was published, not acquired. Similar public
checks: none in smatch or the Clang Static Analyzer for the undo of a publication; HERO
and Hector find missing unwind calls from sibling exits, which is the evidence used here.
""")

IN_PROGRESS = frozenset({"-EINPROGRESS", "-EIOCBQUEUED"})
KINDS = {"link": "linked into a list", "table": "entered in a table",
         "store": "stored in", "drvdata": "set as driver data of", "count": "counted up"}


class Pub(NamedTuple):
    """One publication on a path."""

    kind: str  # link | table | store | drvdata | count
    key: str  # the place it was published at (canonical): the node, the field, the counter
    obj: str  # the object published ("" for a counter)
    line: int
    what: str  # how, for the message
    freed: int = 0  # line where the path freed obj while still published
    free_call: str = ""
    undone: bool = False
    pending: str = ""  # the variable whose first test says whether the call published


class Slot(NamedTuple):
    pubs: frozenset = frozenset()
    dropped: frozenset = frozenset()  # counts held from the caller, dropped on this path


_START = Slot()


def _table_result(w: Walker, st: PathState, ast: TSNode) -> str:
    """The variable a table call's result is assigned to in `ast` (`id = idr_alloc(..)`,
    `entry->id = id = ..`: the innermost), or ""."""
    for x in walk(ast, "assignment_expression"):
        inner = x.child_by_field_name("right")
        rhs = inner
        while rhs is not None and rhs.type == "assignment_expression":
            rhs = rhs.child_by_field_name("right")
        if rhs is not None and rhs.type == "call_expression" and \
                PUBLISH_CALLS.get(callee(rhs), ("",))[0] == "table":
            left = inner.child_by_field_name("left") if inner.type == \
                "assignment_expression" else x.child_by_field_name("left")
            return w.canon(text(left), st)
    return ""


def _route(st: PathState, line: int) -> tuple[int, ...]:
    """How a path left: the gotos it took and its return. Two paths of one route differ
    only in the branches they took in between (`if (limited) atomic_dec(&c);`)."""
    return tuple(ln for ln, what in st.trail if what.startswith("goto ")) + (line,)


@dataclass
class FnInfo:
    """What one function says about undo, computed once per walk."""

    undos: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    entered: dict[str, int] = field(default_factory=dict)  # counter -> first line it drops it
    heads: set[str] = field(default_factory=set)  # lists declared in the function
    # per-exit records, decided when every path is walked
    undoing: set[tuple[str, str, tuple[int, ...]]] = field(default_factory=set)
    candidates: list[tuple[Pub, Exit, PathState]] = field(default_factory=list)


@register
class MissingUndoChecker(Checker):
    name = "missing-undo"
    rules = (MISSING_UNDO,)
    events = frozenset({"publish", "stmt", "branch", "assume", "release", "exit", "end"})

    def needs_walk(self, fn: Function) -> bool:
        return any(counter(n) for n in fn.callees())  # counters: no pack describes them

    def __init__(self) -> None:
        self._walk: Walker | None = None
        self._info = FnInfo()
        self._src: bytes | None = None
        self._helpers: dict[str, list[Undo]] = {}  # of the file self._src
        self._defined: frozenset[str] = frozenset()
        self._testing: tuple[int, frozenset[str]] = (0, frozenset())  # the branch being taken
        self._result = ""  # the variable the statement being walked assigns a table call to

    # ------------------------------------------------------------------ setup
    def events_for(self, w: Walker) -> frozenset[str]:
        rtype = w.fn.node.child_by_field_name("type")
        if rtype is not None and text(rtype) == "bool":
            return frozenset()  # `return restart;`: no error exits
        names = w.fn.callees()
        if not (any(n in PUBLISH_CALLS or counter(n) or DRVDATA.match(n) for n in names)
                or any(norm(text(x.child_by_field_name("right"))) in NULL_TEXTS
                       for x in w.fn.of_type("assignment_expression"))):
            return frozenset()  # nothing published, nothing undone: nothing to say
        if w.fn.source is not self._src:
            self._src, self._helpers = w.fn.source, {}
            self._defined = defined_names(w.fn.source)
        info = FnInfo()
        self._info = info
        for c in w.fn.of_type("call_expression"):
            if callee(c) in ("LIST_HEAD", "HLIST_HEAD") and args(c):
                info.heads.add(norm(text(args(c)[0])))
        forms = list(undo_forms(w.fn))
        unwind = unwind_lines(w.fn)
        for c in w.fn.of_type("call_expression"):
            forms += self._helper_forms(w, c, None, in_ranges(line_of(c), unwind))
        taken = {u.key for u in forms if u.kind == "take"}
        direct = {u.key for u in forms if u.kind == "count" and u.unwind and u.direct}
        for u in forms:
            # evidence: undone in unwind code (a sibling error exit); a store only when
            # the function clears the field itself (a helper's teardown clears everything)
            if u.unwind and u.kind != "take" and not u.key.startswith("*") and (
                    u.kind != "store" or u.direct):
                info.undos.setdefault((u.kind, u.key), []).append(u.line)
        for (kind, key), lines in info.undos.items():
            # a count from the caller: dropped by the function's own unwind code (not only
            # by a helper, which may drop what another helper of it took), never taken
            if kind == "count" and key in direct and key not in taken and self._lives(w, key):
                info.entered[key] = min(lines)
        if not info.undos:
            return frozenset()  # nothing undone in unwind code: no evidence for anything
        self._walk, self._info = w, info
        return self.events

    def _helper_forms(self, w: Walker, c: TSNode, st: PathState | None,
                      unwind: bool = False) -> list[Undo]:
        """The undo forms of a same-file helper called as `c`, in the caller's terms."""
        forms = self._forms_of(w, callee(c), 3)
        if not forms:
            return []
        argv = [norm(text(x)) for x in args(c)]
        canon = (lambda x: w.canon(x, st)) if st is not None else static_key
        return bind(forms, argv, canon, line_of(c), unwind)

    def _forms_of(self, w: Walker, name: str, depth: int) -> list[Undo]:
        """A same-file function's forms, its own helpers' included (`depth` levels)."""
        if name not in self._defined or name == w.fn.name or w.packs.calls.get(name) is not None:
            return []
        forms = self._helpers.get(name)
        if forms is not None:
            return forms
        self._helpers[name] = []  # recursion stops here
        cf = parse_region(w.fn.source, "", set(), {name})
        fn = next((f for f in cf.functions if f.name == name), None)
        if fn is None:
            return []
        own = undo_forms(fn)
        if depth > 1:
            for c in fn.of_type("call_expression"):
                sub = self._forms_of(w, callee(c), depth - 1)
                if sub:
                    own += bind(sub, [norm(text(x)) for x in args(c)], static_key,
                                 line_of(c), False)
        forms = self._helpers[name] = [u._replace(direct=False) for u in template(fn, own)]
        return forms

    def _lives(self, w: Walker, key: str) -> bool:
        """The place outlives the function: a parameter's, a global, or borrowed."""
        m = re.match(r"\*?([A-Za-z_]\w*)", key)
        if m is None:
            return False
        root = m.group(1)
        if root in self._info.heads:
            return False  # LIST_HEAD(tmp): a list of the function's own
        return (root in w.fn.params or root not in w.facts.locals or root in w.facts.borrowed)

    # ------------------------------------------------------------------ the slot
    def initial(self) -> Slot:
        return _START

    def slot_key(self, slot: Slot) -> tuple:
        return (frozenset((p.kind, p.key, bool(p.freed), p.undone) for p in slot.pubs),
                slot.dropped)

    def on_publish(self, w: Walker, st: PathState, r: Res, line: int, how: str,
                   argv: tuple[str, ...]) -> None:
        if how == "store":
            kind, idx = "store", 0
        elif how in PUBLISH_CALLS:
            kind, idx = PUBLISH_CALLS[how]
        elif DRVDATA.match(how):
            kind, idx = "drvdata", 0
        else:
            return
        if idx >= len(argv):
            return
        place = w.canon(argv[idx], st)
        if kind in ("link", "table", "drvdata") and r.key != base_of_field(place) and \
                r.key not in {w.canon(x, st) for x in argv}:
            return  # something the object owns, carried along with it
        where = argv[1 - idx] if kind == "link" and len(argv) > 1 else place
        if not self._lives(w, w.canon(where, st)):
            return  # a local list or object: it dies with the function
        what = f"{argv[0]} = {r.key}" if how == "store" else \
            f"{how}({', '.join(argv)})"
        self._add(st, Pub(kind, place, r.key, line, what,
                          pending=self._result if kind == "table" else ""))

    def _add(self, st: PathState, pub: Pub) -> None:
        slot = st.slots[self.name]
        pubs = frozenset(p for p in slot.pubs if (p.kind, p.key) != (pub.kind, pub.key))
        st.set_slot(self.name, slot._replace(pubs=pubs | {pub}))

    def on_stmt(self, w: Walker, st: PathState, node: Node) -> None:
        """A statement, before its effects: what it undoes or counts up, and the variable
        a table publication in it is assigned to (`id = idr_alloc(..)`: published only if
        the result's test says it worked; on_publish comes during the statement)."""
        self._result = ""
        if node.kind != "stmt" or node.ast is None:
            return
        self._result = _table_result(w, st, node.ast)
        self._scan(w, st, node.ast)

    def on_branch(self, w: Walker, st: PathState, node: Node) -> None:
        if node.ast is None:
            return
        slot = st.slots[self.name]
        self._result = _table_result(w, st, node.ast)  # `if ((id = idr_alloc(..)) < 0)`
        pending = {p.pending for p in slot.pubs if p.pending} | {self._result}
        tested = {i for i in pending if i and re.search(
            rf"(?<![\w>.]){re.escape(i)}(?![\w\[])", norm(text(node.ast)))}
        self._testing = (node.line, frozenset(tested))
        self._scan(w, st, node.ast)

    def on_assume(self, w: Walker, st: PathState, cond: Cond | None) -> None:
        line, tested = self._testing
        if not tested or cond is None or cond.line != line:
            return
        slot = st.slots[self.name]
        # the failure side of `if (id < 0)`, `if (ret)`, `if (xa_is_err(old))`; the side
        # that holds only 0 and positive values worked; any other (`err == -ENOSPC` not
        # taken) decides nothing yet
        taken = cond.taken
        failed = "Z" not in taken and "N" in taken
        worked = taken <= frozenset("ZP")
        pubs = set()
        for p in slot.pubs:
            if p.pending in tested:
                if failed:
                    continue  # nothing was published on this side
                if worked:
                    p = p._replace(pending="")
            pubs.add(p)
        st.set_slot(self.name, slot._replace(pubs=frozenset(pubs)))

    def _scan(self, w: Walker, st: PathState, ast: TSNode) -> None:
        """Counts up, and undo forms, in a statement or condition."""
        slot = st.slots[self.name]
        undone: list[Undo] = []
        for c in walk(ast, "call_expression"):
            name, a = callee(c), args(c)
            if counter(name) == "inc" and a:
                key = w.canon(text(a[0]), st)
                if self._lives(w, key) and self._info.undos.get(("count", static_key(text(a[0])))):
                    self._add(st, Pub("count", key, "", line_of(c), f"{name}({norm(text(a[0]))})"))
                    slot = st.slots[self.name]
                continue
            form = UNDO_CALLS.get(name)
            if form is not None and form[1] < len(a):
                undone.append(Undo(form[0], w.canon(text(a[form[1]]), st), line_of(c)))
            elif counter(name) == "dec" and a:
                undone.append(Undo("count", w.canon(text(a[0]), st), line_of(c)))
            elif DRVDATA.match(name) and len(a) >= 2 and norm(text(a[1])) in NULL_TEXTS:
                undone.append(Undo("drvdata", w.canon(text(a[0]), st), line_of(c)))
            elif name in ("rcu_assign_pointer", "RCU_INIT_POINTER") and len(a) >= 2 \
                    and norm(text(a[1])) in NULL_TEXTS:
                undone.append(Undo("store", w.canon(text(a[0]), st), line_of(c)))
            elif slot.pubs or self._info.entered:
                undone += self._helper_forms(w, c, st)
                undone += self._released_by_name(w, st, slot, c)
        renamed = set()
        for x in walk(ast, "assignment_expression"):
            # any new value of the place: the object is no longer published there
            left = w.canon(text(x.child_by_field_name("left")), st)
            undone.append(Undo("store", left, -line_of(x)))
            renamed.add(left)
        for d in walk(ast, "init_declarator"):
            ident = decl_ident(d.child_by_field_name("declarator"))
            if ident is not None:
                renamed.add(text(ident))
        if undone:
            self._undo(st, undone)
        if renamed:
            self._rename(st, renamed)

    def _rename(self, st: PathState, names: set[str]) -> None:
        """The variable that named a published object names another one now (the next
        round of a loop: `p = kzalloc(..)` again): a free through it frees that one."""
        slot = st.slots[self.name]
        moved = {p for p in slot.pubs if p.obj in names and not p.freed}
        if moved:
            pubs = (slot.pubs - moved) | {p._replace(obj="") for p in moved}
            st.set_slot(self.name, slot._replace(pubs=frozenset(pubs)))

    def _released_by_name(self, w: Walker, st: PathState, slot: Slot, c: TSNode) -> list[Undo]:
        """A call of another file, named like a release, given a published object or its
        place: it may well undo the publication (`foo_remove(x)` does the list_del)."""
        name = callee(c)
        rel = w.packs.idioms.release_re
        if w.packs.calls.get(name) is not None or rel is None or not (
                rel.search(name) or re.search(r"(remove|unlink|del|detach|unregister)", name)):
            return []
        argv = {w.canon(text(x), st) for x in args(c)}
        return [Undo(p.kind, p.key, line_of(c)) for p in slot.pubs
                if p.key in argv or (p.obj and p.obj in argv)
                or any(p.key.startswith(a + "->") for a in argv)]

    def _undo(self, st: PathState, undone: list[Undo]) -> None:
        slot = st.slots[self.name]
        pubs = set(slot.pubs)
        dropped = set(slot.dropped)
        for u in undone:
            store = u.line < 0  # an assignment: only a store is undone, not by itself
            for p in list(pubs):
                if p.undone or not (p.key == u.key or (
                        u.key.startswith("*->") and p.key.endswith(u.key[1:]))):
                    continue
                if store and p.kind != "store":
                    continue
                if not store and p.kind != u.kind and not (
                        p.kind == "store" and u.kind == "store"):
                    continue
                pubs.discard(p)
                pubs.add(p._replace(undone=True))
            if u.kind == "count":
                dropped |= {k for k in self._info.entered
                            if k == u.key or (u.key.startswith("*->") and k.endswith(u.key[1:]))}
        new = Slot(frozenset(pubs), frozenset(dropped))
        if new != slot:
            st.set_slot(self.name, new)

    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str,
                   consume: bool) -> None:
        if consume or r.status not in (ESCAPED, HELD, PENDING):
            return
        slot = st.slots[self.name]
        hit = [p for p in slot.pubs if p.obj == r.key and not p.undone and not p.freed]
        if hit:
            pubs = (slot.pubs - set(hit)) | {p._replace(freed=line, free_call=call) for p in hit}
            st.set_slot(self.name, slot._replace(pubs=frozenset(pubs)))

    # ------------------------------------------------------------------ exits
    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None:
        if ex.kind != "error" or w is not self._walk or ex.expr in w.facts.local_pointers \
                or ex.expr in IN_PROGRESS:
            return  # `return dp;` returns an object found (maybe an error pointer), and
            # -EINPROGRESS says the work was handed on: neither gives up
        info = self._info
        slot = st.slots[self.name]
        line = ex.node.line
        route = _route(st, line)
        for p in slot.pubs:
            if p.undone:
                info.undoing.add((p.kind, p.key, route))
            elif p.kind == "count" or p.freed:
                info.candidates.append((p, ex, st))
        for key, first in info.entered.items():
            if key in slot.dropped:
                info.undoing.add(("count", key, route))
            else:
                info.candidates.append((Pub("count", key, "", first, "", undone=False), ex, st))

    def on_end(self, w: Walker) -> None:
        if w is not self._walk:
            return
        info, self._walk = self._info, None
        for p, ex, st in info.candidates:
            line = ex.node.line
            if (p.kind, p.key, _route(st, line)) in info.undoing:
                continue  # another path of this exit's route undoes it (a conditional undo)
            entered = not p.what
            if entered:
                # a count from the caller: exits after one that drops it must drop it too
                dropping = sorted(r[-1] for k, kk, r in info.undoing if kk == p.key and k == "count")
                if not dropping or dropping[0] > line:
                    continue
                self._report(w, st, p, ex, p.line, True)
                continue
            # the same place undone after it was published, on another path
            evidence = [ln for ln in info.undos.get((p.kind, static_key(p.key)), [])
                        if ln > p.line]
            if evidence:
                self._report(w, st, p, ex, evidence[0], False)

    def _report(self, w: Walker, st: PathState, p: Pub, ex: Exit, undo_line: int,
                entered: bool) -> None:
        line = ex.node.line
        gotos = [ln for ln, what in st.trail if what.startswith("goto ") and ln > p.line]
        at = gotos[0] if gotos else line
        if p.kind == "count" and entered:
            msg = (f"this error exit returns without dropping the count '{p.key}' that the "
                   f"function holds from its caller: it drops it at line {undo_line} on an "
                   f"earlier error exit, and never takes it itself. Is a decrement missing "
                   f"here?")
            extra = [(undo_line, f"'{p.key}' dropped on another exit"), (line, f"return {ex.expr}")]
        elif p.kind == "count":
            msg = (f"this error exit leaves '{p.key}' counted up by {p.what} at line {p.line}; "
                   f"the function counts it down at line {undo_line} on another path. Is a "
                   f"decrement missing here?")
            extra = [(line, f"return {ex.expr}")]
        else:
            how = KINDS[p.kind]
            place = f" {p.key}" if p.kind in ("store", "drvdata") else ""
            msg = (f"'{p.obj}' is freed by {p.free_call}() at line {p.freed} on this error "
                   f"path while still {how}{place} ({p.what} at line {p.line}); the function "
                   f"undoes that at line {undo_line} on another path. Should it be undone "
                   f"before the free?")
            extra = [(p.freed, f"{p.free_call}({p.obj}) while published"),
                     (line, f"return {ex.expr}")]
        w.report(MISSING_UNDO.id, at, p.key, msg, st, extra,
                 [at, p.line if p.line else undo_line, undo_line], confidence="medium")
