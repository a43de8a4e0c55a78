"""What each function of a directory does to exclusive locks, for the lock rules across
functions (reviewbot/checks/lock_calls.py): the locks it takes on every path before it
drops them (`first`), the caller's locks it drops (`drops`), the locks it returns holding
(`keeps`), and the orders it takes two locks in (`orders`), each named relative to its
parameters (`{0}->lock`) or as a global (`foo_mutex`), with the call chain that does it.

The call graph (knowledge/callgraph.py) keeps lock facts by class (the field name) and may
sets, for the context rules; a double lock or an order reversal needs more: the same lock
(the same expression once a callee's parameters are replaced by the caller's arguments)
held on *every* path to the call. So the flow here is a must-analysis of exact lock
expressions: a lock is held at a step when every path to it took it and none dropped it;
a trylock never counts as a take (it does not wait), a *_nested acquisition neither (a
lockdep subclass: the order or the nesting is deliberate); a call outside the graph that
is given the lock itself, or whose name says it unlocks, lets go of what it is given.

Every take and order also carries the locks' classes (knowledge/lock_classes.py: the struct
type of the object and the field chain), which the order check across functions compares;
orders and nests are read from the flow's final states only.

Locks are the packs' hand-written resources of kind "lock" marked `ordered` (the same set
as reviewbot/checks/lock_state.py). Summaries are computed on demand, callees first
(recursion is cut: a function in the middle of its own summary looks empty).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from reviewbot.knowledge.callgraph import CallGraph, FunctionRecord, LazyGraph
from reviewbot.knowledge.ctxfacts import Body, CallEv
from reviewbot.knowledge.lock_classes import lock_class
from reviewbot.packs import Packs
from reviewbot.packs.learned_layer import KNOWN_NORETURN
from reviewbot.packs.lookup import LEARNED

DEPTH = 10  # callee chains followed this deep (deeper: the callee looks empty)

_READ = re.compile(r"(^|_)read(_|$)|_shared$")
_UNLOCKING = re.compile(r"(?:^|_)unlock(?:_|$)")
_ADDR_ARROW = re.compile(r"\(&([^()]+)\)->")
_PAREN_WORD = re.compile(r"(?<![\w)\]])\(([\w>.\-]+)\)")
_ROOT = re.compile(r"^([A-Za-z_]\w*)")
_WORD = re.compile(r"[A-Za-z_]\w*")
_GLOBAL = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")  # `foo_mutex`, `foo_data.lock`
_CALLED = re.compile(r"^[A-Za-z_]\w*\(")  # a lock named by a call's result


# ------------------------------------------------------------------ lock names


def tidy(expr: str) -> str:
    """A lock expression in one spelling: no `&` in front, no parentheses around a word
    (`&(p)->lock` is `p->lock`), `(&a->b)->c` is `a->b.c`."""
    s = expr.replace(" ", "")
    while s.startswith("&"):
        s = s[1:]
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        s = s[1:-1].lstrip("&")
    prev = None
    while prev != s:
        prev = s
        s = _PAREN_WORD.sub(r"\1", s)
        s = _ADDR_ARROW.sub(r"\1.", s)
    return s


def canon(expr: str, aliases: dict[str, str], depth: int = 0) -> str:
    """`expr` tidied, its root local replaced by the one value it is given (`sdp =
    GFS2_SB(inode)`), recursively."""
    s = tidy(expr)
    m = _ROOT.match(s)
    if m is None or depth > 4:
        return s
    root, rest = m.group(1), s[m.end():]
    if root in aliases and not rest.startswith("("):
        value = tidy(aliases[root])
        if rest and not re.fullmatch(r"[\w>.\-]+", value):
            value = f"({value})"
        if aliases[root].lstrip().startswith("&") and rest.startswith("->"):
            rest = "." + rest[2:]  # lock = &p->l; lock->x is p->l.x
        return canon(value + rest, aliases, depth + 1)
    return s


def root_of(expr: str) -> str:
    """The variable an expression is reached from (calls such as GFS2_SB(x) skipped)."""
    for m in _WORD.finditer(expr):
        if expr[m.end():m.end() + 1] != "(":
            return m.group(0)
    return ""


def template(expr: str, params: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    """How a function names a lock for its callers: `{N}` for its parameter N, a global
    as it is (with its file: see `qualify`); None for a lock of its own locals (no caller
    can name it)."""
    if GLOBAL_AT in expr:
        return expr
    root = root_of(expr)
    if root in params:
        return re.sub(r"\b(" + "|".join(map(re.escape, params)) + r")\b",
                      lambda m: "{" + str(params.index(m.group(1))) + "}", expr)
    return None  # a local's (or what a local points to): the caller cannot name it


GLOBAL_AT = "@"


def qualify(expr: str, params: tuple[str, ...], aliases: dict[str, str], path: str) -> str:
    """A global lock named with the file that names it (`irq_controller_lock@x.c`): two
    files may each have a static lock of one name, and which are one object is not
    known here, so a global matches only in the file that names it."""
    root = root_of(expr)
    if root in params or root in aliases or not _GLOBAL.fullmatch(expr):
        return expr
    return f"{expr}{GLOBAL_AT}{path}"


def shown(expr: str) -> str:
    """A lock as a message names it (a global without its file)."""
    return expr.split(GLOBAL_AT, 1)[0]


def fill(tmpl: str, argv: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    """A callee's lock template as the caller names it, with the call's arguments."""
    try:
        s = re.sub(r"\{(\d+)\}", lambda m: "(" + argv[int(m.group(1))] + ")", tmpl)
    except IndexError:
        return None
    if re.search(r"\((?:NULL|0)\)", s):
        return None  # f(.., NULL, ..): no lock passed, none taken
    return canon(s, aliases)


def suffix(expr: str) -> tuple[str, str]:
    """(root, the rest): `p->a.lock` is ("p", "->a.lock")."""
    root = root_of(expr)
    i = expr.find(root) if root else -1
    return (root, expr[i + len(root):]) if i >= 0 else ("", expr)


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Via:
    """How a lock operation is reached from a function: the call at `line` of it, to
    `callee` (the primitive itself at the end of the chain), then the callee's own."""

    line: int
    callee: str
    path: str = ""
    inner: Via | None = None

    def chain(self) -> list[Via]:
        out, v = [], self
        while v is not None:
            out.append(v)
            v = v.inner
        return out


@dataclass(frozen=True)
class Take:
    """A lock taken (`expr` in the function's own names; `read` for a read side)."""

    expr: str
    via: Via
    read: bool
    cls: str = ""  # its class (knowledge/lock_classes.py), "" when not known


@dataclass(frozen=True)
class Order:
    """`inner` taken while `outer` is held (every path to the take holds it)."""

    outer: str
    inner: str
    outer_line: int
    outer_call: str
    inner_via: Via
    held: frozenset[str] = frozenset()  # every lock held at the take (a common outer lock
    # serialises the two orders)
    outer_cls: str = ""  # the classes of the two (knowledge/lock_classes.py)
    inner_cls: str = ""
    held_cls: frozenset[str] = frozenset()
    direct: bool = False  # both taken by this function's own calls of a lock primitive
    outer_read: bool = False  # read sides (readers do not wait for readers)
    inner_read: bool = False


@dataclass(frozen=True)
class Nest:
    """A call that takes `lock` again, held by the function since `held_line`."""

    lock: str
    held_line: int
    held_call: str
    via: Via


@dataclass
class LockSummary:
    """One function's lock facts; `first`, `drops`, `keeps` in template form."""

    first: dict[str, Take] = field(default_factory=dict)
    drops: frozenset[str] = frozenset()
    keeps: dict[str, Take] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)  # in the function's own names
    nests: list[Nest] = field(default_factory=list)  # double locks through a callee
    takes_any: bool = False


_EMPTY = LockSummary()


class _Held(NamedTuple):
    """A lock every path to a step holds: where it was taken, its class, and whether this
    function's own call of a primitive took it (`direct`) rather than a callee (a tuple:
    engine/return_locks.py reads its first and third)."""

    lock: str
    line: int
    call: str
    read: bool
    cls: str
    direct: bool


@dataclass(frozen=True)
class _State:
    held: frozenset[_Held]  # must be held
    first: frozenset[str]  # the path's first operation on these was a take (must)
    seen: frozenset[str]  # operated on (may)
    taken: frozenset[str]  # taken on the path (may)


def _join(a: _State, b: _State) -> _State:
    held_b = {h.lock for h in b.held}
    return _State(frozenset(h for h in a.held if h.lock in held_b), a.first & b.first,
                  a.seen | b.seen, a.taken | b.taken)


class LockSummaries:
    """The lock summaries of one call graph's functions, computed when first asked."""

    def __init__(self, g: CallGraph, packs: Packs):
        self.g, self.packs = g, packs
        self._done: dict[int, LockSummary] = {}
        self._busy: set[int] = set()
        self._kinds: dict[str, tuple[str, str, bool]] = {}

    # -- what a call is
    def kind(self, name: str) -> tuple[str, str, bool]:
        """(what, target, read): what is "take", "try", "drop" or ""; target the
        argument format of the lock (`{0}`, `{0}->i_rwsem`)."""
        got = self._kinds.get(name)
        if got is None:
            got = self._kinds[name] = self._kind(name)
        return got

    def _kind(self, name: str) -> tuple[str, str, bool]:
        spec = self.packs.calls.get(name)
        if spec is None:
            return "", "", False
        if spec.pack == LEARNED or spec.inferred:
            # a learned wrapper says too little to count as a take; an unlock it is
            # said to make still lets go of the lock (when the graph has no body for it)
            if not spec.releases or not spec.targets or spec.targets[0].how not in ("arg", "fmt"):
                return "", "", False
            t = spec.targets[0]
            return "learned-drop", "{" + str(t.index) + "}" if t.how == "arg" else t.fmt, False
        locks = [rid for rid in (*spec.acquires, *spec.releases) if self._exclusive(rid)]
        if not locks or not spec.targets:
            return "", "", False
        t = spec.targets[0]
        tgt = "{" + str(t.index) + "}" if t.how == "arg" else t.fmt if t.how == "fmt" else ""
        if not tgt:
            return "", "", False
        read = bool(_READ.search(name))
        if spec.acquires:
            if spec.success == "true" or name.endswith("_nested"):
                return "try", tgt, read
            return "take", tgt, read
        return "drop", tgt, read

    def _exclusive(self, rid: str) -> bool:
        k = self.packs.resources.get(rid)
        return k is not None and k.kind == "lock" and k.ordered and k.pack != LEARNED

    # -- summaries
    def of(self, r: FunctionRecord, depth: int = 0) -> LockSummary:
        k = id(r)
        got = self._done.get(k)
        if got is not None:
            return got
        if k in self._busy or depth > DEPTH:
            return _EMPTY  # recursion, or too deep: nothing known
        self._busy.add(k)
        try:
            got = _Flow(self, r, depth).run()
        except IndexError:  # a body whose steps do not fit together: nothing known of it
            got = _EMPTY
        finally:
            self._busy.discard(k)
        self._done[k] = got
        return got

    def callee(self, ev: CallEv, r: FunctionRecord) -> FunctionRecord | None:
        """The function of the graph a call of `r` reaches (not a lock primitive, nor a
        macro: its text has no arguments to map)."""
        if self.kind(ev.name)[0] not in ("", "learned-drop"):
            return None  # a lock primitive: the pack says what it does
        c = self.g.resolve(ev.name, r.path)
        return c if c is not None and c is not r and c.body.kind != "macro" else None

    def all_orders(self) -> list[tuple[FunctionRecord, Order]]:
        """Every function's orders (the directory's), for the reversal across functions."""
        got = self.__dict__.get("_orders")
        if got is None:
            got = [(r, o) for r in self.g.records if r.body.kind == "function"
                   for o in self.of(r).orders]
            self.__dict__["_orders"] = got
        return got


def function_in(lazy: LazyGraph | None, name: str) -> tuple[CallGraph, FunctionRecord] | None:
    """The directory's graph and the record of the function `name` of its file, without
    solving the context facts (the lock summaries need only the steps), or None."""
    try:
        g = lazy.get() if lazy is not None else None
    except IndexError:  # a graph the image cannot be given (seen once in the 1,000-patch
        return None  # batch): the walk goes on without summaries, the review complete
    if g is None:
        return None
    for r in g.by_name.get(name, ()):
        if r.path == lazy.path and r.body.kind == "function":
            return g, r
    return None


def summaries(g: CallGraph, packs: Packs) -> LockSummaries:
    """The lock summaries of graph `g`, kept on the graph: they refer to it, so a table
    keyed weakly by the graph would keep every graph of a run alive (a batch's worker grew
    by ~1 MB a patch)."""
    got = g.__dict__.get("_lock_summaries")
    if got is None or got.packs.calls is not packs.calls:  # (a copy with tree summaries
        # added per file has the same calls)
        got = g.__dict__["_lock_summaries"] = LockSummaries(g, packs)
    return got


class _Flow:
    """The must-flow of one function (see the module doc)."""

    def __init__(self, s: LockSummaries, r: FunctionRecord, depth: int):
        self.s, self.r, self.depth = s, r, depth
        self.body: Body = r.body
        self.out = LockSummary()
        self._drops: set[str] = set()
        self._orders: dict[tuple[str, str], Order] = {}
        self._nests: dict[tuple[str, int], Nest] = {}
        # orders and nests are read from the states the flow ends with, not from the
        # visits before a join let go of a lock (a switch's no-case edge reaching the
        # code after it first, with the lock its cases drop still held)
        self._record = False

    def run(self) -> LockSummary:
        got = self.returns()
        if got is None:
            return _EMPTY  # no lock operation here or below
        self._finish([st for _i, st in got])
        return self.out

    def returns(self) -> list[tuple[int, _State]] | None:
        """Each visit of a return (its step and the state there) by the flow over the
        body; None when nothing here or below operates on a lock."""
        b = self.body
        if not any(self.s.kind(ev.name)[0] or self._callee(ev) for st in b.steps
                   for ev in st.calls):
            return None
        into = {b.entry: _State(frozenset(), frozenset(), frozenset(), frozenset())}
        todo = deque([b.entry])
        visits = 0
        ends: list[tuple[int, _State]] = []
        while todo and visits < 40 * len(b.steps) + 50:
            visits += 1
            i = todo.popleft()
            st = b.steps[i]
            out = self._step(st.calls, into[i])
            if any(ev.name in KNOWN_NORETURN for ev in st.calls):
                continue
            if st.ret or not st.succ:
                ends.append((i, out))
            for s in st.succ:
                old = into.get(s)
                new = out if old is None else _join(old, out)
                if new != old:
                    into[s] = new
                    todo.append(s)
        self._record = True
        for i, st_in in into.items():
            self._step(b.steps[i].calls, st_in)
        return ends

    def _callee(self, ev: CallEv) -> FunctionRecord | None:
        return self.s.callee(ev, self.r)

    def _lock(self, tgt: str, ev: CallEv) -> str | None:
        b = self.body
        lock = fill(tgt, ev.args, b.aliases) if ev.args else None
        return qualify(lock, b.params, b.aliases, b.path) if lock else None

    def _cls(self, tmpl: str, args: tuple[str, ...], lock: str) -> str:
        """The class of `lock`, a template filled with a call's arguments, from the
        function's own spelling of it (its locals' declared types); a global is its own
        class."""
        if GLOBAL_AT in lock:
            return lock
        own = fill(tmpl, args, {})
        return lock_class(own, self.body.types, self.body.aliases) if own else ""

    def _step(self, calls: tuple[CallEv, ...], st: _State) -> _State:
        for ev in calls:
            what, tgt, read = self.s.kind(ev.name)
            if what == "take":
                lock = self._lock(tgt, ev)
                if lock:
                    st = self._take(st, Take(lock, Via(ev.line, ev.name), read,
                                             self._cls(tgt, ev.args, lock)))
            elif what == "try":
                lock = self._lock(tgt, ev)
                if lock:
                    st = _State(st.held, st.first, st.seen | {lock}, st.taken)
            elif what == "drop" or (what == "learned-drop" and self._callee(ev) is None):
                lock = self._lock(tgt, ev)
                if lock:
                    st = self._drop(st, lock)
            else:
                st = self._call(ev, st)
        return st

    def _take(self, st: _State, t: Take, before: frozenset | None = None) -> _State:
        """`before`: the locks held before the call that takes it (a callee's own order
        between two locks it takes is in its own summary)."""
        self.out.takes_any = True
        for h in (st.held if before is None else before) if self._record else ():
            if h.lock == t.expr:
                if not (h.read and t.read) and t.via.inner is not None:
                    self._nests.setdefault((h.lock, t.via.line),
                                           Nest(h.lock, h.line, h.call, t.via))
            else:
                self._orders.setdefault((h.lock, t.expr), Order(
                    h.lock, t.expr, h.line, h.call, t.via, frozenset(x.lock for x in st.held),
                    h.cls, t.cls, frozenset(x.cls for x in st.held if x.cls),
                    h.direct and t.via.inner is None, h.read, t.read))
        first = st.first | {t.expr} if t.expr not in st.seen else st.first
        held = frozenset(h for h in st.held if h.lock != t.expr) | \
            {_Held(t.expr, t.via.line, t.via.callee, t.read, t.cls, t.via.inner is None)}
        return _State(held, first, st.seen | {t.expr}, st.taken | {t.expr})

    def _drop(self, st: _State, lock: str) -> _State:
        if lock not in st.taken:
            self._drops.add(lock)  # a lock the caller holds
        gone = {lock}
        if _CALLED.match(lock) and not any(h.lock == lock for h in st.held):
            # a lock a call returns, unlocked under another name (`m =
            # kernfs_open_file_mutex_lock(kn); .. mutex_unlock(m)`): every lock named by a
            # call may be the one
            gone |= {h.lock for h in st.held if _CALLED.match(h.lock)}
        return _State(frozenset(h for h in st.held if h.lock not in gone), st.first,
                      st.seen | gone, st.taken)

    def _call(self, ev: CallEv, st: _State) -> _State:
        c = self._callee(ev)
        if c is None:
            spec = self.s.packs.calls.get(ev.name)
            if spec is not None and not spec.releases:
                return st  # the pack describes it: it lets go of no lock
            # outside the graph: given the lock itself, or named for unlocking, it may let
            # go of what it is given
            given = {canon(a, self.body.aliases) for a in ev.args}
            roots = {root_of(x) for x in given}
            unlocking = bool(_UNLOCKING.search(ev.name.rsplit("->", 1)[-1]))
            held = frozenset(h for h in st.held if h.lock not in given and
                             not (unlocking and root_of(h.lock) in roots))
            return st if held == st.held else _State(held, st.first, st.seen, st.taken)
        cs = self.s.of(c, self.depth + 1)
        if cs is _EMPTY:
            return st
        al = self.body.aliases
        # a caller's lock the callee drops may be dropped before its own takes
        # (grab_super() unlocks sb_lock, then takes s_umount): no order from it
        gone = {x for tm in cs.drops if (x := fill(tm, ev.args, al))}
        before = frozenset(h for h in st.held if h.lock not in gone)
        for tm, t in cs.first.items():
            lock = fill(tm, ev.args, al)
            if lock:
                via = Via(ev.line, ev.name, c.path, t.via)
                st = self._take(st, Take(lock, via, t.read, t.cls or self._cls(tm, ev.args, lock)),
                                before)
                # the callee lets go of it again unless it keeps it
                if tm not in cs.keeps:
                    st = _State(frozenset(h for h in st.held if h.lock != lock), st.first,
                                st.seen, st.taken)
        for tm in cs.drops:
            lock = fill(tm, ev.args, al)
            if lock:
                st = self._drop(st, lock)
                before = frozenset(h for h in before if h.lock != lock)  # let go of first
        for tm, t in cs.keeps.items():
            lock = fill(tm, ev.args, al)
            if lock and tm not in cs.first:
                st = self._take(st, Take(lock, Via(ev.line, ev.name, c.path, t.via), t.read,
                                         t.cls or self._cls(tm, ev.args, lock)), before)
        return st

    def _finish(self, ends: list[_State]) -> None:
        b, out = self.body, self.out
        if ends:
            first = frozenset.intersection(*(e.first for e in ends))
            held = frozenset.intersection(*(frozenset(h.lock for h in e.held) for e in ends))
        else:
            first = held = frozenset()
        takes = {}
        for e in ends:
            for h in e.held:
                takes.setdefault(h.lock, Take(h.lock, Via(h.line, h.call), h.read, h.cls))
        for lock in first:
            tm = template(lock, b.params, b.aliases)
            if tm is not None:
                out.first[tm] = self._first_take(lock, ends)
        for lock in held:
            tm = template(lock, b.params, b.aliases)
            if tm is not None and lock in takes:
                out.keeps[tm] = takes[lock]
        out.drops = frozenset(tm for x in self._drops
                              if (tm := template(x, b.params, b.aliases)) is not None)
        out.orders = list(self._orders.values())
        out.nests = list(self._nests.values())

    def _first_take(self, lock: str, ends: list[_State]) -> Take:
        """The witness of a lock taken on every path: its first take in the body."""
        best: Take | None = None
        for st in self.body.steps:
            for ev in st.calls:
                what, tgt, read = self.s.kind(ev.name)
                if what == "take" and self._lock(tgt, ev) == lock:
                    t = Take(lock, Via(ev.line, ev.name), read, self._cls(tgt, ev.args, lock))
                    if best is None or t.via.line < best.via.line:
                        best = t
                elif what in ("", "learned-drop") and (c := self._callee(ev)) is not None:
                    cs = self.s.of(c, self.depth + 1)
                    for tm, ct in cs.first.items():
                        if fill(tm, ev.args, self.body.aliases) == lock and \
                                (best is None or ev.line < best.via.line):
                            best = Take(lock, Via(ev.line, ev.name, c.path, ct.via), ct.read,
                                        ct.cls or self._cls(tm, ev.args, lock))
        return best if best is not None else Take(lock, Via(self.body.line, "?"), False)
