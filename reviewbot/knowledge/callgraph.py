"""A subsystem's call graph and per-function facts: "may sleep", "may block on the cluster"
(in reclaim context), "lock held on return", computed bottom-up to a fixed point.

The graph holds the functions of a directory's files (the reviewed or audited
subsystem), the static inline functions and function-like macros of the headers they
include (6.1's GFS2 log spinlock is taken by an inline of fs/gfs2/log.h; its withdrawing
assertion is a macro of fs/gfs2/util.h), and the functions stored in ops-structure members.
What a call means comes from the packs' `[context]` (reviewbot/packs/context.py): a pack
name is a primitive and wins over the callee's code; any other callee is summarised from
its code.

Per function, one `FunctionRecord`. Its facts:

- ``acquires``/``releases``: the locks it returns holding (taken inside, held on every
  return) and those it drops that its caller took (`gfs2_log_lock`/`gfs2_log_unlock`);
- ``sleeps``: the first call that may sleep (a pack primitive, an allocation whose flags
  may sleep, or a callee that may), as a `Witness` its chain is followed by;
- in reclaim context (the packs' reclaim tests taken as true): ``blocks``, the first call
  that may block on the cluster; ``allocs``, the first allocation that may recurse into
  reclaim; ``param_puts``, final puts of what its caller passes (whether they are the last
  is the caller's to say: a caller holding another reference makes them safe);
- ``more``: room for other families' facts (issue 11's acquires/releases per return
  class) in the same records.

The flow of one function (`_flow`) is a forward data flow over its `ctxfacts.Step` graph:
locks may be held (union at joins), extra references and a NOFS scope must be (intersection).
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from reviewbot.knowledge.ctxfacts import Body, CallEv, FileFacts, file_facts, name_graph
from reviewbot.knowledge.lockconds import Atom, guards, stable, templatable, truth
from reviewbot.packs.context import ContextKnowledge
from reviewbot.packs.learned_layer import KNOWN_NORETURN

__all__ = ["CallGraph", "FunctionRecord", "Held", "LockFact", "Site", "Witness",
           "build_callgraph", "lock_class"]


@dataclass(frozen=True, slots=True)
class Held:
    """A lock held on a path: its class (the field that names it), the expression, where it
    was taken and by which call (the primitive, or a callee returning with it), spin or
    mutex."""

    cls: str
    expr: str
    line: int
    via: str = ""
    spin: bool = True
    # the tests it is held under (knowledge/lockconds.py): a later test of one lets it go on
    # the other side; `given` are those a callee's lock fact says (a wrapper that takes it
    # only for some callers), which the path to a sleep may not show
    when: tuple[Atom, ...] = ()
    given: tuple[Atom, ...] = ()


@dataclass(frozen=True, slots=True)
class LockFact:
    """A lock a function returns holding: `template` with {N} for its parameter N."""

    template: str
    cls: str
    spin: bool
    when: tuple[Atom, ...] = ()  # held only under these tests ({N} for parameter N)


@dataclass(frozen=True, slots=True)
class Witness:
    """Why a fact holds: the call at `line` of the function, to `callee`; `primitive` when
    the packs name the callee (the chain ends here), else the callee's own witness goes on."""

    line: int
    callee: str
    primitive: bool
    what: str = ""  # for a primitive: "sleeps", "cluster", "put", "alloc"


@dataclass(frozen=True, slots=True)
class ParamPut:
    """A final put of `template` (an expression of the parameters, {N}) at `line`."""

    template: str
    line: int
    callee: str  # the put, or the callee that does it
    primitive: bool


@dataclass(frozen=True, slots=True)
class Site:
    """A call of a function reached in reclaim context that may block: `kind` cluster, put
    (a final put) or alloc; `held` the locks held at the call."""

    ev: CallEv
    kind: str
    witness: Witness
    held: tuple[Held, ...] = ()
    leaf: bool = True  # the blocking is decided here (not by a callee's own facts)


@dataclass
class FunctionRecord:
    body: Body
    acquires: tuple[LockFact, ...] = ()
    releases: frozenset[str] = frozenset()  # keys (see _key)
    sleeps: Witness | None = None
    blocks: Witness | None = None
    allocs: Witness | None = None
    param_puts: tuple[ParamPut, ...] = ()
    returns: frozenset[str] | None = None  # in reclaim context: the constants it returns
    sleep_drops: frozenset[str] = frozenset()  # its caller's locks it lets go to sleep (keys)
    locked_calls: list[tuple[CallEv, tuple[Held, ...]]] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    reclaim_calls: list[CallEv] = field(default_factory=list)
    more: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.body.name

    @property
    def path(self) -> str:
        return self.body.path


# ------------------------------------------------------------------ expressions

_ADDR_ARROW = re.compile(r"\(&([^()]+)\)->")
_PAREN_WORD = re.compile(r"(?<![\w)\]])\((\w+)\)")
_WORD = re.compile(r"[A-Za-z_]\w*")
_ROOT = re.compile(r"^([(&*]*)([A-Za-z_]\w*)")
_CALLED = re.compile(r"^[A-Za-z_]\w*\(.*\)$")
_UNLOCKING = re.compile(r"(?:^|_)unlock(?:_|$)")


def lock_class(expr: str) -> str:
    """What names a lock across functions: the field after the last `->` (`sd_log_lock` of
    `&sdp->sd_log_lock`), else the variable."""
    s = expr.lstrip("&*(")
    if _CALLED.match(s):  # a lock a call returns (ext4_group_lock_ptr(sb, group)): the call
        return _tidy(s)
    s = s.rstrip(")")
    return s.rsplit("->", 1)[-1] if "->" in s else s


def _tidy(s: str) -> str:
    s = _PAREN_WORD.sub(r"\1", s)
    prev = None
    while prev != s:
        prev, s = s, _ADDR_ARROW.sub(r"\1.", s)
    return s


def _canon(expr: str, aliases: dict[str, str], depth: int = 0) -> str:
    """`expr` with its root local replaced by what it names, recursively."""
    s = _tidy(expr)
    m = _ROOT.match(s)
    if m is None or depth > 4:
        return s
    root = m.group(2)
    rest = s[m.end():]
    if root in aliases and not rest.startswith("("):
        value = aliases[root]
        value = "(" + value + ")" if value[:1] in "&*" else value
        return _canon(m.group(1) + value + rest, aliases, depth + 1)
    return s


def _root_param(key: str, params: tuple[str, ...]) -> int:
    """The parameter `key` is reached from (skipping calls such as GFS2_I(...)), else -1."""
    for m in _WORD.finditer(key):
        if key[m.end():m.end() + 1] == "(":
            continue
        return params.index(m.group(0)) if m.group(0) in params else -1
    return -1


def _template(key: str, params: tuple[str, ...]) -> str:
    # a parameter, not a field of the same name (`&dev->lock` of f(dev, lock))
    return re.sub(r"(?<!->)(?<![\w.])(" + "|".join(map(re.escape, params)) + r")\b",
                  lambda m: "{" + str(params.index(m.group(1))) + "}", key) if params else key


def _fill(template: str, args: tuple[str, ...]) -> str | None:
    try:
        return _tidy(re.sub(r"\{(\d+)\}", lambda m: "(" + args[int(m.group(1))] + ")",
                            template))
    except IndexError:
        return None


def _key(expr: str, params: tuple[str, ...]) -> str:
    """How a function names a lock it drops for its caller: `@` and a template of its
    parameters when the lock is reached from one (`@&{0}->sd_log_lock`, `@{1}`), else the
    lock's class."""
    if _root_param(expr.lstrip("&*("), params) >= 0:
        return "@" + _template(expr, params)
    return lock_class(expr)


def key_class(key: str, args: tuple[str, ...]) -> str | None:
    """The class, at a call with `args`, of a lock the callee names by `key`."""
    if not key.startswith("@"):
        return key
    e = _fill(key[1:], args)
    return lock_class(e) if e is not None else None


def _rekey(key: str, args: tuple[str, ...], params: tuple[str, ...]) -> str | None:
    """A callee's `key` as the caller (with `params`) names it."""
    if not key.startswith("@"):
        return key
    e = _fill(key[1:], args)
    return _key(e, params) if e is not None else None


_GFP = re.compile(r"\b(__GFP_\w+|GFP_\w+)\b")
_EQ = re.compile(r"^([\w.>\-]+)(==|!=)([\w.>\-]+)$")
_CONST = re.compile(r"^-?(?:[A-Z_][A-Z0-9_]*|\d+)$")


def _returned(body: Body) -> str:
    """The local every return of `body` returns (`return ctx;`), or ""."""
    vals = {st.value.removeprefix("return").strip("(); ") for st in body.steps
            if st.ret and st.value}
    one = next(iter(vals)) if len(vals) == 1 else ""
    return one if _WORD.fullmatch(one) and one not in body.params else ""


def _returned_template(template: str, ret: str) -> str:
    """A lock of the returned object (`&ctx->lock`, ctx returned): `&{R}->lock`."""
    if not ret:
        return template
    m = _ROOT.match(template)
    if m is None or m.group(2) != ret or template[m.end():m.end() + 1] == "(":
        return template
    return m.group(1) + "{R}" + template[m.end():]


_NULL_TEST = re.compile(r"^(\w+)$|^(\w+)!=NULL$|^NULL!=(\w+)$")


def _non_null(cond: str, out_true: tuple, out_false: tuple) -> tuple[tuple, tuple]:
    """On the side where a pointer is NULL no lock of its object is held
    (`ctx = perf_lock_task_context(...); if (ctx) ...`: the lock was taken only for a
    context found)."""
    m = _NULL_TEST.match(cond)
    v = next((x for x in m.groups() if x), None) if m else None
    if v is None or not any(_ROOT.match(h.expr) and _ROOT.match(h.expr).group(2) == v
                            and "->" in h.expr for h in out_false[0]):
        return out_true, out_false
    kept = frozenset(h for h in out_false[0] if not (
        (m2 := _ROOT.match(h.expr)) and m2.group(2) == v and "->" in h.expr))
    return out_true, (kept, *out_false[1:])


def _join(a: tuple, b: tuple) -> tuple:
    """Locks that may be held; references and a NOFS scope that must be; values known on
    both sides (their constants added up); the caller's locks dropped on both."""
    va, vb = dict(a[3]), dict(b[3])
    vals = frozenset((k, va[k] | vb[k]) for k in va.keys() & vb.keys())
    return a[0] | b[0], a[1] & b[1], a[2] and b[2], vals, a[4] & b[4]


# ------------------------------------------------------------------ the graph


class CallGraph:
    """The records of a set of files, their facts, and the functions reclaim reaches."""

    def __init__(self, facts: list[FileFacts], ctx: ContextKnowledge, leaf_only: bool = True,
                 base: CallGraph | None = None, lazy: bool = False):
        """The graph of `facts`; with `base`, a graph of the same files but some (a patch's
        image): the records of unchanged files start from the base's facts, and only what
        the changed files reach or are reached from is computed again. `lazy`: a record's
        lock and sleep facts are computed when `record()` asks for it (with those of what
        it calls), not all at once (a review asks for the few functions it touches)."""
        self.ctx = ctx
        self.cond_cache: dict = {}  # knowledge/lockconds.py's, per body
        self._kinds: dict[str, str] = {}
        self._resolved: dict[tuple[str, str], FunctionRecord | None] = {}
        self.leaf_only = leaf_only  # audit: report where blocking is decided, once
        self.facts = facts
        self.by_name: dict[str, list[FunctionRecord]] = {}
        self.records: list[FunctionRecord] = []
        self.entries: dict[int, str] = {}  # id(record) -> why it is an entry point
        kept = {id(ff): ff for ff in base.facts} if base is not None else {}
        old = {}
        if base is not None:
            for r in base.records:
                old.setdefault(r.path, []).append(r)
        seed: set[int] | None = None if base is None else set()
        fresh_names: set[str] = set()
        for ff in facts:
            same = id(ff) in kept
            for k, b in enumerate(ff.bodies):
                if same:
                    o = old[ff.path][k]
                    r = replace(o, more=dict(o.more))
                else:
                    r = FunctionRecord(b)
                    fresh_names.add(b.name)
                    if seed is not None:
                        seed.add(len(self.records))
                self.records.append(r)
                self.by_name.setdefault(b.name, []).append(r)
        if base is not None:  # the functions the changed files defined before, too
            for ff in base.facts:
                if id(ff) not in {id(x) for x in facts}:
                    fresh_names.update(b.name for b in ff.bodies)
        self._callers: dict[str, set[int]] = {}
        for i, r in enumerate(self.records):
            for st in r.body.steps:
                for ev in st.calls:
                    self._callers.setdefault(ev.name, set()).add(i)
        if seed is not None:
            for name in fresh_names:
                seed |= self._callers.get(name, set())
        self._entry_points(facts)
        self._solved: set[int] | None = None  # None: every record's facts are computed
        if base is not None and base._solved is not None:
            lazy = True
        if lazy:
            self._solved = set()
            if base is not None:
                done = {_key_of(base.records[i]) for i in (base._solved if base._solved
                        is not None else range(len(base.records)))}
                stale = self._upward(fresh_names) | (seed or set())  # the new records too
                self._solved = {i for i, r in enumerate(self.records)
                                if i not in stale and _key_of(r) in done}
        else:
            self._solve(seed)
        self.parent: dict[int, tuple[FunctionRecord, CallEv] | None] = {}
        self.put_sites: dict[int, list[Site]] = {}
        # reclaim facts are computed when first asked (a review asks only for a function
        # reclaim may reach), from the base's when it has them
        self._reclaim_seed = seed if base is not None and base._reclaim_done else None
        self._reclaim_known = base._reclaim_near if self._reclaim_seed is not None else set()
        self._reclaim_near: set[tuple[str, str, int]] = set()  # the records computed
        self._reclaim_done = False

    def _upward(self, names: set[str]) -> set[int]:
        """The records that call one of `names`, transitively."""
        out: set[int] = set()
        todo = list(names)
        while todo:
            for j in self._callers.get(todo.pop(), ()):
                if j not in out:
                    out.add(j)
                    todo.append(self.records[j].name)
        return out

    def _down(self, start: Iterable[int]) -> set[int]:
        """`start` and what it calls, transitively (indices)."""
        index = self._index()
        out: set[int] = set()
        todo = list(start)
        while todo:
            i = todo.pop()
            if i in out:
                continue
            out.add(i)
            r = self.records[i]
            for st in r.body.steps:
                for ev in st.calls:
                    c = self.resolve(ev.name, r.path)
                    if c is not None and index[id(c)] not in out:
                        todo.append(index[id(c)])
        return out

    def _index(self) -> dict[int, int]:
        got = self.__dict__.get("_ids")
        if got is None:
            got = self.__dict__["_ids"] = {id(r): i for i, r in enumerate(self.records)}
        return got

    def _ensure(self, need: set[int]) -> None:
        """The lock and sleep facts of `need` (closed under calls) computed."""
        if self._solved is None:
            return
        todo = need - self._solved
        if todo:
            self._worklist(self._lock_facts, todo, todo)
            self._worklist(self._sleep_fact, todo, todo)
            self._solved |= todo

    def derive(self, changed: list[FileFacts], removed: Iterable[str] = ()) -> CallGraph:
        """This graph with some files replaced (or added, or removed by path)."""
        paths = {ff.path for ff in changed} | set(removed)
        facts = [ff for ff in self.facts if ff.path not in paths] + list(changed)
        return CallGraph(sorted(facts, key=lambda ff: ff.path), self.ctx, self.leaf_only,
                         base=self)

    # -- lookup
    def resolve(self, name: str, path: str) -> FunctionRecord | None:
        """The record a call from `path` reaches: the file's own, else a global function, a
        header's inline or a macro; a static function of another file is not seen."""
        k = (name, path)
        if k in self._resolved:
            return self._resolved[k]
        got = self._resolved[k] = self._resolve(name, path)
        return got

    def _resolve(self, name: str, path: str) -> FunctionRecord | None:
        cands = self.by_name.get(name)
        if not cands:
            return None
        for r in cands:
            if r.path == path and r.body.kind != "macro":
                return r
        for r in cands:
            if r.body.kind == "function" and not r.body.static:
                return r
        for r in cands:
            if r.body.kind == "inline":
                return r
        for r in cands:
            if r.body.kind == "macro" and (r.path == path or r.path.endswith(".h")):
                return r
        return None

    def record(self, name: str, path: str) -> FunctionRecord | None:
        """The record of a function of `path`, its facts (and its callees') computed."""
        for r in self.by_name.get(name, ()):
            if r.path == path and r.body.kind != "macro":
                if self._solved is not None:
                    self._ensure(self._down([self._index()[id(r)]]))
                return r
        return None

    def _entry_points(self, facts: list[FileFacts]) -> None:
        ctx = self.ctx
        members = ctx.members
        bare = {m for _s, m in members}
        for ff in facts:
            for e in ff.entries:
                if (e.struct, e.member) in members or (not e.struct and e.member in bare):
                    r = self.resolve(e.function, ff.path)
                    if r is not None and r.body.kind == "function":
                        what = f"{e.struct}.{e.member}" if e.struct else e.member
                        self.entries.setdefault(id(r), f".{e.member} of struct "
                                                f"{e.struct or '?'}" if e.struct else what)
        for name in ctx.reclaim_functions:
            for r in self.by_name.get(name, ()):
                if r.body.kind == "function":
                    self.entries.setdefault(id(r), "a reclaim entry point the pack names")

    # -- what a call is
    def primitive(self, ev: CallEv) -> str:
        """What the packs say of a call: "spin", "mutex", "unlock", "try", "hold", "put",
        "safe", "cluster", "sleeps", "nofs", "endnofs", or ""."""
        got = self._kinds.get(ev.name)
        if got is None:
            got = self._kinds[ev.name] = self._kind(ev.name)
        return got

    def _kind(self, n: str) -> str:
        c = self.ctx
        if n in c.spin_on:
            return "spin"
        if n in c.spin_off or n in c.mutex_off:
            return "unlock"
        if n in c.spin_trying:
            return "try"
        if n in c.safe:
            return "safe"
        if n in c.holds:
            return "hold"
        if n in c.puts:
            return "put"
        if n in c.cluster:
            return "cluster"
        if n in c.mutex_on:
            return "mutex"
        if n in c.sleeping:
            return "sleeps"
        if n in c.nofs_on:
            return "nofs"
        if n in c.nofs_off:
            return "endnofs"
        return ""

    def gfp(self, ev: CallEv) -> tuple[bool, bool]:
        """(may sleep, may recurse into reclaim) for an allocation's flags."""
        flags: set[str] = set()
        for a in ev.args:
            if "GFP" in a and not _CALLED.match(a):  # kfree(kmalloc(n, GFP_KERNEL)) is kfree
                flags.update(_GFP.findall(a))
        if not flags:
            return False, False
        joined = " ".join(ev.args)
        sleeps = bool(flags & set(self.ctx.sleeping_gfp))
        unsafe = bool(flags & set(self.ctx.reclaim_unsafe_gfp)) and "~__GFP_FS" not in joined \
            and "~__GFP_DIRECT_RECLAIM" not in joined
        return sleeps, unsafe

    def sleeping(self, ev: CallEv, path: str) -> Witness | None:
        """Why a call may sleep, or None."""
        kind = self.primitive(ev)
        if kind in ("sleeps", "mutex", "cluster"):
            return Witness(ev.line, ev.name, True, "sleeps")
        if kind in ("spin", "unlock", "try", "safe", "hold"):
            return None
        if self.gfp(ev)[0]:
            return Witness(ev.line, ev.name, True, "alloc")
        if kind == "put":
            return None  # a put sleeps only when final: the reclaim rule's business
        r = self.resolve(ev.name, path)
        if r is not None and r.sleeps is not None:
            return Witness(ev.line, ev.name, False, "sleeps")
        return None

    # -- the fixed points
    def _solve(self, seed: set[int] | None) -> None:
        self._worklist(self._lock_facts, seed)
        self._worklist(self._sleep_fact, seed)

    def _ensure_reclaim(self) -> None:
        """The reclaim facts of the functions the entry points may reach (ignoring
        conditions: a superset of what the facts then say they reach), and the reach."""
        if self._reclaim_done:
            return
        self._reclaim_done = True
        index = self._index()
        near = self._down(index[k] for k in self.entries)
        self._ensure(near)
        keys = {i: (self.records[i].path, self.records[i].name, self.records[i].body.line)
                for i in near}
        self._reclaim_near = set(keys.values())
        seed = near if self._reclaim_seed is None else \
            (self._reclaim_seed | {i for i in near if keys[i] not in self._reclaim_known}) & near
        self._worklist(self._reclaim_facts, seed, near)
        self._reach()
        self._entry_puts()

    def _callees_first(self) -> list[int]:
        """The records in post-order of the calls (a callee before its callers, cycles cut):
        a worklist taken in this order recomputes a caller once its callees are settled."""
        got = getattr(self, "_order", None)
        if got is not None and len(got) == len(self.records):
            return got
        index: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            index.setdefault(r.name, []).append(i)
        callees = [sorted({j for st in r.body.steps for ev in st.calls
                           for j in index.get(ev.name, ())}) for r in self.records]
        order: list[int] = []
        seen: set[int] = set()
        for root in range(len(self.records)):
            if root in seen:
                continue
            seen.add(root)
            stack = [(root, iter(callees[root]))]
            while stack:
                node, it = stack[-1]
                nxt = next((j for j in it if j not in seen), None)
                if nxt is None:
                    stack.pop()
                    order.append(node)
                else:
                    seen.add(nxt)
                    stack.append((nxt, iter(callees[nxt])))
        self._order = order
        return order

    def _worklist(self, update, seed: set[int] | None, within: set[int] | None = None
                  ) -> None:
        order = self._callees_first()
        todo = deque(order if seed is None else [i for i in order if i in seed])
        queued = set(todo)
        rounds = 0
        limit = 20 * len(self.records) + 100
        while todo and rounds < limit:
            rounds += 1
            i = todo.popleft()
            queued.discard(i)
            if update(self.records[i]):
                for j in self._callers.get(self.records[i].name, ()):
                    if j not in queued and (within is None or j in within):
                        queued.add(j)
                        todo.append(j)

    def _sleep_fact(self, r: FunctionRecord) -> bool:
        """The first call that may sleep, one made with none of the caller's locks let go
        first if there is one (the chain a report shows is then the one that matters)."""
        before = (r.sleeps, r.sleep_drops)
        dropped = {id(ev) for ev, _d in r.more.get("dropped_at", [])}
        first = plain = None
        for st in r.body.steps:
            for ev in st.calls:
                w = self.sleeping(ev, r.path)
                if w is not None:
                    first = first or w
                    if id(ev) not in dropped:
                        plain = plain or w
        r.sleeps = plain or first
        r.sleep_drops = self._drops(r) if first is not None else frozenset()
        return before != (r.sleeps, r.sleep_drops)

    def _drops(self, r: FunctionRecord) -> frozenset[str]:
        """The caller's locks `r` has let go at every call of it that may sleep
        (`spin_unlock(&res->spinlock); schedule(); spin_lock(...)`)."""
        dropped = {id(ev): d for ev, d in r.more.get("dropped_at", [])}
        out: frozenset[str] | None = None
        for st in r.body.steps:
            for ev in st.calls:
                w = self.sleeping(ev, r.path)
                if w is not None:
                    d = dropped.get(id(ev), frozenset())
                    lock = self.ctx.dropped_while_sleeping(ev.name, ev.args) \
                        if w.primitive else None
                    if lock is not None:  # wait_event_lock_irq(wq, cond, lock)
                        d = d | {_key(lock, r.body.params)}
                    c = self.resolve(ev.name, r.path)
                    if c is not None and c is not r and not self.primitive(ev):
                        d = d | {k for k in (_rekey(x, ev.args, r.body.params)
                                             for x in c.sleep_drops) if k is not None}
                    out = d if out is None else out & d
        return out or frozenset()

    def _lock_facts(self, r: FunctionRecord) -> bool:
        flow = _Flow(self, r, reclaim=False)
        flow.run()
        acq = flow.held_on_return()
        ps = r.body.params
        ret = _returned(r.body)
        facts = tuple(sorted({LockFact(_returned_template(_template(h.expr, ps), ret), h.cls,
                                       h.spin,
                                       tuple((_template(c, ps), v) for c, v in h.when
                                             if templatable(c, r.body)))
                              for h in acq}, key=lambda f: f.cls))
        # `__releases(x)` without `__acquires(x)`: it returns with its caller's x let go,
        # even where the unlock is made through a function pointer (fiq->ops->..._unlock)
        released = flow.released | {_key(e, r.body.params) for e in r.body.ann_releases
                                     if e not in r.body.ann_acquires}
        changed = facts != r.acquires or released != r.releases
        r.acquires, r.releases = facts, frozenset(released)
        r.locked_calls = flow.locked_calls
        r.more["dropped_at"] = flow.dropped_at
        return changed

    def _reclaim_facts(self, r: FunctionRecord) -> bool:
        flow = _Flow(self, r, reclaim=True)
        flow.run()
        before = (r.blocks, r.allocs, r.param_puts, r.returns)
        r.sites, r.reclaim_calls = flow.sites, flow.calls
        r.blocks = next((s.witness for s in flow.sites if s.kind != "alloc"), None)
        r.allocs = next((s.witness for s in flow.sites if s.kind == "alloc"), None)
        r.param_puts = tuple(dict.fromkeys(flow.param_puts))
        r.returns = flow.constants()
        return before != (r.blocks, r.allocs, r.param_puts, r.returns)

    # -- reclaim reachability
    def _reach(self) -> None:
        todo: deque[FunctionRecord] = deque()
        for r in self.records:
            if id(r) in self.entries:
                self.parent[id(r)] = None
                todo.append(r)
        while todo:
            r = todo.popleft()
            for ev in r.reclaim_calls:
                if self.primitive(ev):
                    continue
                c = self.resolve(ev.name, r.path)
                if c is not None and id(c) not in self.parent:
                    self.parent[id(c)] = (r, ev)
                    todo.append(c)

    def _entry_puts(self) -> None:
        """An entry point's final puts of its own objects (nobody above holds a reference):
        a site in the function that writes the put, followed down the callees' puts."""
        for r in self.records:
            if id(r) not in self.entries:
                continue
            for p in r.param_puts:
                rec, seen = r, set()
                while not p.primitive and id(rec) not in seen:
                    seen.add(id(rec))
                    c = self.resolve(p.callee, rec.path)
                    if c is None or not c.param_puts:
                        break
                    rec, p = c, c.param_puts[0]
                if p.primitive:
                    site = Site(CallEv(p.callee, p.line, ()), "put",
                                Witness(p.line, p.callee, True, "put"))
                    got = self.put_sites.setdefault(id(rec), [])
                    if site not in got:
                        got.append(site)

    def in_reclaim(self, r: FunctionRecord) -> bool:
        self._ensure_reclaim()
        return id(r) in self.parent

    def entry_chain(self, r: FunctionRecord) -> list[tuple[FunctionRecord, CallEv]]:
        """The calls from an entry point down to `r` (empty: `r` is one)."""
        out = []
        seen = set()
        cur = self.parent.get(id(r))
        while cur is not None and id(cur[0]) not in seen:
            seen.add(id(cur[0]))
            out.append(cur)
            cur = self.parent.get(id(cur[0]))
        out.reverse()
        return out

    def entry_of(self, r: FunctionRecord) -> tuple[FunctionRecord, str]:
        chain = self.entry_chain(r)
        top = chain[0][0] if chain else r
        return top, self.entries.get(id(top), "")

    def reclaim_sites(self, r: FunctionRecord) -> list[Site]:
        """The calls of `r`, reached in reclaim context, that may block; an entry point's
        final puts of its own parameters included (nobody above holds a reference)."""
        if not self.in_reclaim(r):
            return []
        self._ensure_reclaim()
        out = list(r.sites)
        out += self.put_sites.get(id(r), [])
        if self.leaf_only:
            out = [s for s in out if s.leaf]
        return out

    def chain(self, w: Witness, path: str, attr: str, depth: int = 12
              ) -> Iterator[tuple[FunctionRecord, Witness]]:
        """The calls a witness stands for, down to the primitive: (record, its witness)."""
        seen: set[int] = set()
        while not w.primitive and depth > 0:
            r = self.resolve(w.callee, path)
            if r is None or id(r) in seen:
                return
            seen.add(id(r))
            nxt = getattr(r, attr)
            if nxt is None and attr == "blocks":
                nxt = next((Witness(p.line, p.callee, p.primitive, "put")
                            for p in r.param_puts), None)
            if nxt is None:
                return
            yield r, nxt
            w, path, depth = nxt, r.path, depth - 1


class _Flow:
    """The forward flow of one function; state (locks held, extra references, in a NOFS
    scope). With `reclaim`, branches on a reclaim test take only their true side."""

    def __init__(self, g: CallGraph, r: FunctionRecord, reclaim: bool):
        self.g, self.r, self.reclaim = g, r, reclaim
        self.body = r.body
        self.locked_calls: list[tuple[CallEv, tuple[Held, ...]]] = []
        self.released: set[str] = set()
        self.returns: list[frozenset[Held]] = []
        self.sites: list[Site] = []
        self.param_puts: list[ParamPut] = []
        self.calls: list[CallEv] = []
        self.values: list[str] = []  # what the reachable returns return
        self.dropped_at: list[tuple[CallEv, frozenset[str]]] = []  # caller's locks let go
        self._last_released: set[str] = set()
        self._at = 0  # the step whose calls are being made
        self._assign = ""  # and the variable it assigns the call's result to
        self._line = 0  # and its line

    def _simple(self) -> bool:
        """Whether no state can change along a path (no lock taken or dropped, no extra
        reference, no NOFS scope, no condition reclaim decides): then every call is reached,
        with nothing held, and one pass over the steps is the whole flow."""
        g = self.g
        assigned = set()
        for st in self.body.steps:
            for ev in st.calls:
                kind = g.primitive(ev)
                if kind in ("spin", "mutex", "unlock", "try", "hold", "nofs", "endnofs"):
                    return False
                if not kind:
                    c = g.resolve(ev.name, self.r.path)
                    if c is not None and (c.acquires or c.releases):
                        return False
            if st.assign[0]:
                assigned.add(st.assign[0])
        if self.reclaim:
            ctx = g.ctx
            for st in self.body.steps:
                if st.cond and (st.cond in ctx.tests or st.cond in ctx.false_tests):
                    return False
                m = _EQ.match(st.cond) if st.cond else None
                if m is not None and (m.group(1) in assigned or m.group(3) in assigned):
                    return False
        return True

    def run(self) -> None:
        steps = self.body.steps
        start = (frozenset(), frozenset(), False, frozenset(), frozenset())
        if self._simple():
            self._collect({i: self._transfer(i, st, start)[1] for i, st in enumerate(steps)})
            return
        into: dict[int, tuple] = {self.body.entry: start}
        todo = deque([self.body.entry])
        visits = 0
        final: dict[int, tuple] = {}
        while todo and visits < 40 * len(steps) + 50:
            visits += 1
            i = todo.popleft()
            state = into[i]
            st = steps[i]
            out_true, out = self._transfer(i, st, state)
            final[i] = out
            if any(ev.name in KNOWN_NORETURN for ev in st.calls):
                continue  # BUG(): the path ends here
            for k, s in enumerate(st.succ):
                if self.reclaim and st.cond and not self._feasible(st.cond, k == 0, out[3]):
                    continue
                o = out_true if k == 0 and st.cond else out
                old = into.get(s)
                new = o if old is None else _join(old, o)
                if new != old:
                    into[s] = new
                    todo.append(s)
        self._collect(final)

    def _feasible(self, cond: str, side: bool, vals: frozenset) -> bool:
        """Whether a side of a condition can be taken in reclaim context: a reclaim test is
        true, a condition the packs say is false there is false, and `x == K` on the result
        of a call is decided by the constants the callee returns there."""
        ctx = self.g.ctx
        if cond in ctx.tests:
            return side
        if cond in ctx.false_tests:
            return not side
        m = _EQ.match(cond)
        if m is None or not vals:
            return True
        a, op, b = m.groups()
        known = dict(vals)
        if a not in known:
            a, b = b, a
        if a not in known:
            return True
        can = known[a]
        equal_possible, other_possible = b in can, bool(can - {b})
        if op == "!=":
            side = not side
        return equal_possible if side else other_possible

    def _transfer(self, i: int, st, state) -> tuple[tuple, tuple]:
        locks, refs, nofs, vals, dropped = state
        try_lock = None
        self._at = i
        self._assign = st.assign[0]
        self._line = st.line
        for ev in st.calls:
            if dropped and not self.reclaim:
                self.dropped_at.append((ev, dropped))
            before = locks
            locks, refs, nofs, got = self._call(ev, locks, refs, nofs)
            if got is not None:
                try_lock = got
            back = {h.cls for h in locks} - {h.cls for h in before}
            if self._last_released or back:
                ps = self.body.params
                dropped = frozenset(k for k in dropped | self._last_released
                                    if key_class(k, ps) not in back)
        var, fn = st.assign
        if var and self.reclaim:
            vals = frozenset((k, v) for k, v in vals if k != var)
            c = self.g.resolve(fn, self.r.path)
            if c is not None and c is not self.r and c.returns is not None:
                vals = vals | {(var, c.returns)}
        out = (locks, refs, nofs, vals, dropped)
        if st.ret and self.reclaim:
            self.values.append(st.value)
        if try_lock is not None and st.cond:
            return (locks | {try_lock}, refs, nofs, vals, dropped), out
        if st.cond and any(h.when for h in locks):
            # a lock held under this very test: not held on its other side
            out_true = (frozenset(h for h in locks if (st.cond, False) not in h.when), *out[1:])
            out = (frozenset(h for h in locks if (st.cond, True) not in h.when), *out[1:])
            return _non_null(st.cond, out_true, out)
        return _non_null(st.cond, out, out) if st.cond else (out, out)

    def _guards(self) -> tuple[Atom, ...]:
        return guards(self.body, self._at, self.g.cond_cache)

    def constants(self) -> frozenset[str] | None:
        """The constants this function returns in reclaim context, or None if it may
        return anything else."""
        if not all(_CONST.match(v) for v in self.values):
            return None
        return frozenset(self.values)

    def _call(self, ev: CallEv, locks, refs, nofs):
        g = self.g
        self._last_released = set()
        kind = g.primitive(ev)
        arg0 = ev.args[0] if ev.args else ""
        if kind in ("spin", "mutex", "unlock", "try"):
            arg0 = g.ctx.lock_arg(ev.name, ev.args)  # pte_unmap_unlock(pte, ptl): {1}
            arg0 = self.body.call_aliases.get(arg0, arg0)  # lock = ext4_group_lock_ptr(..)
        held = locks
        if kind in ("spin", "mutex") and arg0:
            locks = locks | {Held(lock_class(arg0), arg0, ev.line, ev.name, kind == "spin",
                                  self._guards())}
        elif kind == "unlock" and arg0:
            cls = lock_class(arg0)
            if not any(h.cls == cls for h in locks):
                k = _key(arg0, self.body.params)
                self.released.add(k)
                self._last_released.add(k)
            locks = frozenset(h for h in locks if h.cls != cls)
        elif kind == "try" and arg0:
            return locks, refs, nofs, Held(lock_class(arg0), arg0, ev.line, ev.name, True,
                                           self._guards())
        elif kind == "hold" and arg0:
            refs = refs | {_canon(arg0, self.body.aliases)}
        elif kind == "nofs":
            nofs = True
        elif kind == "endnofs":
            nofs = False
        elif not kind:
            c = g.resolve(ev.name, self.r.path)
            if c is not None and c is not self.r:
                for f in c.acquires:
                    e = _fill(f.template, ev.args)
                    if e is not None and "{R}" in e:
                        # a lock of the object it returns: named by what holds the result
                        e = _tidy(e.replace("{R}", f"({self._assign})")) if self._assign \
                            else None
                    if e is not None and e.strip("()&* ") in ("NULL", "0"):
                        continue  # add_to_chunk(.., NULL, ..): no lock passed, none taken
                    if e is not None:  # a lock a call names is named with the caller's args
                        # (the class as this function names its own locks: `&timer.it_lock`
                        # taken here and by a callee given `&timer` is one lock)
                        cls = lock_class(e) if _CALLED.match(e.lstrip("&*(")) or \
                            "{" in f.template else f.cls
                        given = self._given(f, ev.args)
                        if given is None:
                            continue  # held only under a test this call's constants fail
                        locks = locks | {Held(cls, e, ev.line, ev.name, f.spin,
                                              tuple(dict.fromkeys(self._guards() + given)),
                                              given)}
                for k in c.releases:
                    cls = key_class(k, ev.args)
                    if cls is None:
                        continue
                    if not any(h.cls == cls for h in locks):
                        mine = _rekey(k, ev.args, self.body.params)
                        if mine is not None:
                            self.released.add(mine)
                            self._last_released.add(mine)
                    locks = frozenset(h for h in locks if h.cls != cls)
            elif c is None and _UNLOCKING.search(ev.name.rsplit("->", 1)[-1]):
                # fiq->ops->wake_forget_and_unlock(fiq): a call through a pointer whose name
                # says it unlocks lets go of the locks of what it is given
                roots = {m.group(2) for m in map(_ROOT.match, ev.args) if m}
                locks = frozenset(h for h in locks
                                  if (m := _ROOT.match(h.expr)) is None or m.group(2) not in roots)
        if self.reclaim:
            refs = self._reclaim_call(ev, kind, locks, refs, nofs)
        elif any(h.spin for h in held) and kind not in ("spin", "unlock", "try"):
            self.locked_calls.append((ev, tuple(sorted(held, key=lambda h: (h.line, h.cls, h.expr)))))
        return locks, refs, nofs, None

    def _given(self, f: LockFact, args: tuple[str, ...]) -> tuple[Atom, ...] | None:
        """The tests a callee's lock is held under, as this function writes them (those it
        may change on the way are left out: the lock is then taken as held); None when a
        constant argument fails one (`unlist(dev, false)`: not taken)."""
        out = []
        for c, v in f.when:
            e = _fill(c, args)
            if e is None:
                continue
            known = truth(e)
            if known is not None:
                if known != v:
                    return None
            elif stable(e, self.body, self._line):
                out.append((e, v))
        return tuple(out)

    def _reclaim_call(self, ev: CallEv, kind: str, locks, refs, nofs):
        g, body = self.g, self.body
        held = tuple(sorted(locks, key=lambda h: h.line))
        self.calls.append(ev)
        if kind == "safe":
            return refs
        if kind == "cluster":
            self._site(ev, "cluster", Witness(ev.line, ev.name, True, "cluster"), held)
            return refs
        if kind == "put" and ev.args:
            return self._put(_canon(ev.args[0], body.aliases), ev, True, held, refs)
        if kind:
            return refs
        _sleeps, unsafe = g.gfp(ev)
        if unsafe and not nofs:
            self._site(ev, "alloc", Witness(ev.line, ev.name, True, "alloc"), held)
            return refs
        c = g.resolve(ev.name, self.r.path)
        if c is None or c is self.r:
            return refs
        if c.blocks is not None:
            self._site(ev, "cluster", Witness(ev.line, ev.name, False, c.blocks.what), held,
                       leaf=False)
        elif c.allocs is not None and not nofs:
            self._site(ev, "alloc", Witness(ev.line, ev.name, False, "alloc"), held, leaf=False)
        for p in c.param_puts:
            key = _fill(p.template, ev.args)
            if key is not None:
                refs = self._put(_canon(key, body.aliases), ev, False, held, refs)
        return refs

    def _put(self, key: str, ev: CallEv, primitive: bool, held, refs):
        if key in refs:
            return refs - {key}  # the caller holds another reference: not the last
        if _root_param(key, self.body.params) >= 0:
            # an object the caller passes (`gl`, `ip->i_gl`): whether this put is the last
            # is the caller's to say (6.1's evict holds another reference first)
            self.param_puts.append(ParamPut(_template(key, self.body.params), ev.line, ev.name,
                                            primitive))
        elif primitive:  # a put written here of an object of this function's own
            self._site(ev, "put", Witness(ev.line, ev.name, primitive, "put"), held)
        # else a callee's put of a local holder's glock: the holder was initialised on a
        # glock its owner references, so that put is taken as not the last
        return refs

    def _site(self, ev: CallEv, kind: str, w: Witness, held, leaf: bool = True) -> None:
        if not any(s.ev == ev and s.kind == kind for s in self.sites):
            self.sites.append(Site(ev, kind, w, held, leaf))

    def _collect(self, final: dict[int, tuple]) -> None:
        rets = [final[i][0] for i, st in enumerate(self.body.steps)
                if i in final and st.ret]
        self.returns = rets

    def held_on_return(self) -> frozenset[Held]:
        """Locks held on every return (by class), taken in this function; held under the
        tests all of its ways of being held share."""
        if not self.returns:
            return frozenset()
        common = set.intersection(*({h.cls for h in s} for s in self.returns))
        out = set()
        for h in self.returns[0]:
            if h.cls not in common:
                continue
            ways = [x for s in self.returns for x in s if x.cls == h.cls]
            when = tuple(a for a in h.when if all(a in x.when for x in ways))
            out.add(replace(h, when=when, given=()))
        return frozenset(out)


# ------------------------------------------------------------------ building


def _with_headers(sources: dict[str, str | bytes], read_header) -> dict[str, str | bytes]:
    """The sources plus the local headers they include (recursively), read by
    `read_header(path) -> text | None`."""
    out = dict(sources)
    todo = list(sources)
    while todo:
        p = todo.pop()
        ff = file_facts(out[p], p)
        for inc in ff.includes:
            h = os.path.normpath(os.path.join(os.path.dirname(p), inc))
            if h in out:
                continue
            t = read_header(h)
            if t is not None:
                out[h] = t
                todo.append(h)
    return out


def _read_disk(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def build_callgraph(sources: dict[str, str | bytes], ctx: ContextKnowledge,
                    read_header=_read_disk, leaf_only: bool = True,
                    lazy: bool = False) -> CallGraph:
    """The graph of `sources` (path -> text) and the headers they include."""
    files = _with_headers(sources, read_header)
    return CallGraph([file_facts(t, p) for p, t in sorted(files.items())], ctx, leaf_only,
                     lazy=lazy)


def _key_of(r: FunctionRecord) -> tuple[str, str, int, str]:
    return r.path, r.name, r.body.line, r.body.kind


def describe(g: CallGraph, r: FunctionRecord, w: Witness, attr: str) -> list[str]:
    """The chain of a witness as lines `f() at file:line calls g()`."""
    out = [f"{r.name}() line {w.line}: {w.callee}()"]
    for rec, nxt in g.chain(w, r.path, attr):
        out.append(f"{rec.name}() ({os.path.basename(rec.path)}:{nxt.line}): {nxt.callee}()")
    return out


def names(records: Iterable[FunctionRecord]) -> list[str]:
    return [r.name for r in records]


class LazyGraph:
    """The graph a file's functions are checked against, built on first use (most
    functions never ask: see the checkers' filters); `path` names the file in it."""

    def __init__(self, path: str, make, reach: frozenset[str] | None = None) -> None:
        self.path = path
        self.reach = reach  # the functions reclaim may reach (None: do not know, ask)
        self._make = make
        self._graph: CallGraph | None = None
        self._made = False

    def get(self) -> CallGraph | None:
        if not self._made:
            self._made = True
            self._graph = self._make()
        return self._graph


def file_graph(source: bytes | str, path: str, ctx: ContextKnowledge,
               leaf_only: bool = True) -> LazyGraph:
    """The graph of one file alone (and the headers next to it): what a function shows
    without a tree."""
    return LazyGraph(path, lambda: build_callgraph({path: source}, ctx, _no_header,
                                                   leaf_only) if ctx else None)


def reclaim_reach(texts: dict[str, str | bytes], ctx: ContextKnowledge) -> frozenset[str]:
    """The names reclaim may reach, over-approximated from the texts alone (no parsing: a
    review asks the parsed graph only for a touched function in this set, or one that
    takes a lock)."""
    calls: dict[str, set[str]] = {}
    starts: set[str] = set(ctx.reclaim_functions)
    bare = {m for _s, m in ctx.members}
    for path, t in texts.items():
        ng = name_graph(t, path)
        for name, callees in ng.calls.items():
            calls.setdefault(name, set()).update(callees)
        for e in ng.entries:
            if (e.struct, e.member) in ctx.members or (not e.struct and e.member in bare):
                starts.add(e.function)
    seen = {n for n in starts if n in calls}
    todo = list(seen)
    while todo:
        for c in calls.get(todo.pop(), ()):
            if c in calls and c not in seen:
                seen.add(c)
                todo.append(c)
    return frozenset(seen)


def relevant_files(texts: dict[str, str | bytes], touched: set[str],
                   reach: frozenset[str]) -> set[str]:
    """The files whose functions a review of `touched` may need, read from the texts alone:
    those defining what the touched functions call, transitively (their facts), and, of
    the functions reclaim may reach, those that lead to a touched one (the chain from an
    entry point)."""
    defs: dict[str, set[str]] = {}
    calls: dict[str, frozenset[str]] = {}
    for path, t in texts.items():
        for name, callees in name_graph(t, path).calls.items():
            defs.setdefault(name, set()).add(path)
            calls[name] = calls.get(name, frozenset()) | callees
    need = {n for n in touched if n in defs}
    todo = list(need)
    while todo:
        for c in calls.get(todo.pop(), ()):
            if c in defs and c not in need:
                need.add(c)
                todo.append(c)
    callers: dict[str, set[str]] = {}
    for name, callees in calls.items():
        if name in reach:
            for c in callees:
                callers.setdefault(c, set()).add(name)
    up = set(touched) & reach
    todo = list(up)
    while todo:
        for c in callers.get(todo.pop(), ()):
            if c not in up:
                up.add(c)
                todo.append(c)
    return {p for n in need | up for p in defs.get(n, ())}


def _no_header(_path: str) -> None:
    return None  # without a tree, nothing beyond the text given is read
