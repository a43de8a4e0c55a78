"""Whether a call may sleep given what its caller passes it, and how strong the evidence is
(context.sleep-in-atomic through callees).

The call graph's `sleeps` fact (callgraph.py) says a function may sleep if any call in its
code may: a superset, computed once. Here one call is evaluated with the constants it
passes (literals, `true`/`false`, `NULL`, enum constants, `GFP_*` masks; also a constant
its caller got as a parameter, so one passed on through a macro argument): in the callee, a
condition on a bound parameter takes only the side the constant decides (`if (wait)`,
`if (!on)`, `gfpflags_allow_blocking(mask)`, `mode == K`, also a field the body sets only
from such a parameter and tests below: `ctrl->state = new_state; ... if (ctrl->state ==
NVME_CTRL_LIVE)`, where two names of one enumeration differ; a field of an object a callee
makes from such a constant, `req = alloc_request(cqp, wait)` setting `req->waiting`, or of a
local's designated initializer `.flags = flags`, goes with the object into the functions it
is handed to; a bit a constant holds stays set after `|= K`; `n > 0` of numbers is
decided), and an allocation gets its flags from the binding. A parameter the body assigns keeps its binding only if every value given
is that same constant (gfs2_assert_withdraw_i()'s `delayed = false`).

What is left is strong evidence when its primitive sleeps whenever it runs (not one the
packs say sleeps rarely, such as `cond_resched()`, nor an allocation) and no condition on
the chain makes it depend on what the caller cannot see: a put that may be the last
(`refcount_dec_and_test()`, `kref_put()`), a `WARN_ON()` branch (a bug path), a test of a
flag parameter no constant decides. Each (function, bindings) is evaluated once per graph,
to a bounded depth (below it the graph's own fact stands, as weak evidence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewbot.knowledge.callgraph import CallGraph, FunctionRecord, Witness, _key, _rekey
from reviewbot.knowledge.ctxfacts import CallEv
from reviewbot.packs.learned_layer import KNOWN_NORETURN

__all__ = ["Sleep", "sleeps_at"]

MAX_DEPTH = 10

_ATOM = r"(?:-?\d\w*|true|false|NULL|[A-Z_][A-Z0-9_]*)"
_CONSTANT = re.compile(rf"^\(*{_ATOM}(?:\|{_ATOM})*\)*$")
_GFP = re.compile(r"\b(__GFP_\w+|GFP_\w+)\b")
_EQ = re.compile(r"^(.+?)(==|!=)(.+)$")
_ORDER = re.compile(r"^([^<>=!]+?)(<=|>=|<|>)([^<>=]+)$")
_BLOCKING = re.compile(r"^gfpflags_allow_blocking\((.+)\)$|^\(*(.+?)\)*&__GFP_DIRECT_RECLAIM$")
_PUT = re.compile(r"^(?:\w*_(?:dec|sub)_and_(?:test|lock)\w*|kref_put\w*|\w*put_testzero)$")
# a count decremented in the condition, or a decrement's result tested (either side)
_DECREMENT = re.compile(r"--|\b\w*_(?:dec|sub)_return\w*\(")
# a condition that tests a parameter's own value (a flag): `wait`, `mode==K`, `gfp&F`
_FLAG = re.compile(r"^(\w+)$|^(\w+)(?:==|!=|&)-?\w+$|^gfpflags_allow_blocking\((\w+)\)$")


@dataclass(frozen=True, slots=True, eq=False)
class Sleep:
    """One way a call may sleep: the chain below it (each callee and the call it makes,
    down to the primitive; empty when the call is the primitive), why it is weak evidence
    ("" when it is not: "rarely", "alloc", "put", "warn", "flag", "deep"), and the locks
    of the calling function let go before that sleep (keys, as callgraph._key names them)."""

    chain: tuple[tuple[FunctionRecord, Witness], ...]
    weak: str
    drops: frozenset[str]


Binds = tuple[tuple[str, str], ...]  # (parameter, constant), sorted


def sleeps_at(g: CallGraph, ev: CallEv, caller: FunctionRecord, binds: Binds = (),
              depth: int = 0) -> tuple[Sleep, ...]:
    """The ways the call `ev` of `caller` may sleep (none: it does not), the best first;
    `binds` are the constants `caller`'s own parameters are known to hold."""
    if depth == 0:
        _memo(g).scratch.clear()
    env = dict(binds)
    args = tuple(_subst(a, env) for a in ev.args) if env else ev.args
    kind = g.primitive(ev)
    if kind in ("sleeps", "mutex", "cluster"):
        lock = g.ctx.dropped_while_sleeping(ev.name, ev.args)
        drops = frozenset({_key(lock, caller.body.params)}) if lock is not None else frozenset()
        return (Sleep((), "rarely" if ev.name in g.ctx.rarely else "", drops),)
    if kind in ("spin", "unlock", "try", "safe", "hold", "put"):
        return ()  # a put sleeps only when final: the reclaim rule's business
    if g.gfp(CallEv(ev.name, ev.line, args))[0]:
        return (Sleep((), "alloc", frozenset()),)
    c = g.resolve(ev.name, caller.path)
    if c is None or c is caller or c.sleeps is None:
        return ()
    binds_c = _bind(c, args)
    fields = _passed_fields(c, ev.args, env)
    if fields:
        binds_c = tuple(sorted({**dict(binds_c), **fields}.items()))
    got = _evaluate(g, c, binds_c, depth + 1)
    ps = caller.body.params
    return tuple(Sleep(s.chain, s.weak, frozenset(k for k in (_rekey(x, ev.args, ps)
                                                             for x in s.drops) if k))
                 for s in got)


def _passed_fields(c: FunctionRecord, args: tuple[str, ...], env: dict[str, str]
                   ) -> dict[str, str]:
    """The fields of what the call passes that the caller knows to hold a constant
    (`cqp_request->waiting`), as the callee names them (`p->waiting`), unless it changes
    them."""
    out = {}
    for k, v in env.items():
        m = re.match(r"^(\w+)(->|\.)(\w+)$", k)
        if m is None:
            continue
        root, how, rest = m.groups()
        passed = root if how == "->" else "&" + root  # `p->f`, or `&cmd` of `cmd.f`
        for p, a in zip(c.body.params, args, strict=False):
            if a == passed and f"{p}->{rest}" not in c.body.written:
                out[f"{p}->{rest}"] = v
    return out


def _made_fields(g: CallGraph, c: FunctionRecord, env: dict[str, str]
                 ) -> list[tuple[str, str, int]]:
    """Fields of objects `c` gets from a call that sets them from a constant it is passed
    (`cqp_request = alloc_request(cqp, wait)`, whose returned object's `->waiting` is
    `wait`): (`cqp_request->waiting`, the constant, the line of the call)."""
    out = []
    for st in c.body.steps:
        x, fn = st.assign
        if not x or x in c.body.params:
            continue
        ev = next((e for e in st.calls if e.name == fn), None)
        r = g.resolve(fn, c.path) if ev is not None else None
        if r is None or r is c:
            continue
        rf = _memo(g).fields
        got = rf.get(id(r))
        if got is None:
            got = rf[id(r)] = _returned_fields(r.body)
        for f, p in got.items():
            n = r.body.params.index(p)
            a = _subst(ev.args[n], env) if n < len(ev.args) else ""
            if _CONSTANT.match(a):
                out.append((f"{x}->{f}", a.strip("()"), ev.line))
    return out


def _returned_fields(body) -> dict[str, str]:
    """The fields of the object `body` returns (its one local returned, NULL aside) that it
    sets only from a parameter: field -> parameter."""
    vals = {st.value.strip("() ") for st in body.steps if st.ret and st.value}
    vals -= {"NULL", "0"}
    ret = next(iter(vals)) if len(vals) == 1 else ""
    if not re.fullmatch(r"[A-Za-z_]\w*", ret) or ret in body.params:
        return {}
    pre = ret + "->"
    return {f[len(pre):]: p for f, (p, _line) in body.copies.items()
            if f.startswith(pre) and re.fullmatch(r"\w+", f[len(pre):])}


def _bind(c: FunctionRecord, args: tuple[str, ...]) -> Binds:
    out = {}
    for p, a in zip(c.body.params, args, strict=False):
        if p == "..." or not _CONSTANT.match(a):
            continue
        a = a.strip("()")
        if p in c.body.assigned and c.body.assigned[p] != frozenset({a}):
            continue  # the body gives it another value (or an unknown one)
        out[p] = a
    return tuple(sorted(out.items()))


@dataclass
class _Memo:
    """The evaluations of one graph. A call back into a function being evaluated adds
    nothing (what it may do, its own walk finds); a result that rested on such a call of
    a function further up is kept only for the current question (`scratch`)."""

    done: dict = field(default_factory=dict)
    scratch: dict = field(default_factory=dict)
    stack: dict = field(default_factory=dict)  # in progress -> its position
    low: int = 1 << 30  # the highest position a call back reached, in this subtree
    fields: dict = field(default_factory=dict)  # per callee: _returned_fields


def _evaluate(g: CallGraph, c: FunctionRecord, binds: Binds, depth: int
              ) -> tuple[Sleep, ...]:
    m = _memo(g)
    k = (id(c), binds)
    got = m.done.get(k)
    if got is None:
        got = m.scratch.get(k)
    if got is not None:
        return got
    if k in m.stack:
        m.low = min(m.low, m.stack[k])
        return ()
    if depth > MAX_DEPTH:
        return _fallback(g, c)
    pos = len(m.stack)
    m.stack[k] = pos
    saved, m.low = m.low, 1 << 30
    got = _walk(g, c, binds, depth)
    del m.stack[k]
    (m.done if m.low >= pos else m.scratch)[k] = got
    m.low = min(saved, m.low)
    return got


def _memo(g: CallGraph) -> _Memo:
    got = g.__dict__.get("_sleep_memo")
    if got is None:
        got = g.__dict__["_sleep_memo"] = _Memo()
    return got


def _fallback(g: CallGraph, c: FunctionRecord) -> tuple[Sleep, ...]:
    """The graph's own fact, as weak evidence (a cycle, or too deep to follow)."""
    assert c.sleeps is not None
    chain = ((c, c.sleeps), *g.chain(c.sleeps, c.path, "sleeps"))
    return (Sleep(tuple(chain), "deep", c.sleep_drops),)


def _walk(g: CallGraph, c: FunctionRecord, binds: Binds, depth: int) -> tuple[Sleep, ...]:
    body = c.body
    env = dict(binds)
    steps = body.steps
    taken: dict[int, int] = {}  # a condition the bindings decide: the successor taken
    made = _made_fields(g, c, env)
    # fields set from a bound parameter (`ctrl->state = new_state`, `.flags = flags`); one
    # bits were added to is `(K|more)`: only a test of a bit it holds is decided
    made += [(f, env[p.rstrip("|")] if not p.endswith("|") else f"({env[p[:-1]]}|more)", line)
             for f, (p, line) in body.copies.items() if p.rstrip("|") in env]
    if env or made:
        copies = list(made)
        # fields the caller passed known (`p->waiting`): all along, if this body keeps them
        copies += [(k, v, -1) for k, v in env.items() if "->" in k]
        for i, st in enumerate(steps):
            if st.cond and len(st.succ) == 2:
                cond = st.cond
                for f, k, line in copies:  # `ctrl->state = new_state;` above the test
                    if line < st.line:
                        cond = _field(cond, f, k)
                v = _decide(_subst(cond, env), g)
                if v is not None:
                    taken[i] = 0 if v else 1
    every = _reach(steps, body.entry, taken, None)
    tags = _tags(steps, body, every, taken, env)
    dropped = {id(ev): d for ev, d in c.more.get("dropped_at", [])}
    # sparse's `__releases(x)`: the function lets go of its caller's x (before it sleeps)
    annotated = frozenset(_key(e, body.params) for e in body.ann_releases)
    best: dict[frozenset[str], tuple[int, Sleep]] = {}  # per set of locks let go: the best
    order = 0
    unlocked: frozenset[str] = frozenset()  # a macro's unlocks so far (no flow of its own)
    for i in sorted(every):
        st = steps[i]
        for n, ev in enumerate(st.calls):
            call = CallEv(ev.name, ev.line, body.margs[n]) if body.margs else ev
            if body.margs and call.args and g.primitive(call) == "unlock":
                unlocked = unlocked | {_key(g.ctx.lock_arg(call.name, call.args), body.params)}
            here = binds
            known = {f: k for f, k, line in made if line < ev.line}
            if known:
                here = tuple(sorted({**dict(binds), **known}.items()))
            for s in sleeps_at(g, call, c, here, depth):
                order += 1
                weak = s.weak or tags.get(i, "")
                drops = dropped.get(id(ev), frozenset()) | s.drops | annotated | unlocked
                mine = Sleep(((c, Witness(ev.line, ev.name, not s.chain,
                                          "alloc" if s.weak == "alloc" else "sleeps")),
                              *s.chain), weak, drops)
                rank = (1 if weak else 0, order)
                old = best.get(drops)
                if old is None or rank < old[0]:
                    best[drops] = (rank, mine)
    return tuple(s for _r, s in sorted(best.values(), key=lambda x: x[0]))


def _reach(steps, entry: int, taken: dict[int, int], avoid: tuple[int, int] | None
           ) -> set[int]:
    seen = {entry}
    todo = [entry]
    while todo:
        i = todo.pop()
        st = steps[i]
        if any(ev.name in KNOWN_NORETURN for ev in st.calls):
            continue  # BUG(): the path ends here
        for k, s in enumerate(st.succ):
            if (i in taken and k != taken[i]) or (i, k) == avoid or s in seen:
                continue
            seen.add(s)
            todo.append(s)
    return seen


_RANK = {"debug": 0, "put": 1, "warn": 2, "flag": 3}


def _tags(steps, body, every: set[int], taken: dict[int, int], env: dict[str, str]
          ) -> dict[int, str]:
    """The steps reached only through a put that may be the last, a WARN_ON() branch or a
    test of an unbound flag parameter (the edge is cut: what is no longer reached)."""
    putvars = {st.assign[0] for st in steps if st.assign[0] and _PUT.match(st.assign[1])}
    flags = _flags(steps, body.params)
    edges: list[tuple[int, int, str]] = []
    for i in every:
        st = steps[i]
        if not st.cond or len(st.succ) != 2 or i in taken:
            continue
        if st.warn >= 0:
            edges.append((i, st.warn, "warn"))
        head = st.cond.split("(", 1)[0]
        if (st.cond.endswith(")") and _PUT.match(head)) or st.cond in putvars:
            edges.append((i, 0, "put"))
        elif _DECREMENT.search(st.cond):  # `if (--server->srv_count > 0) return;`
            edges += [(i, 0, "put"), (i, 1, "put")]
        m = _FLAG.match(st.cond)
        p = next((x for x in m.groups() if x), None) if m else None
        if p is not None and p in flags and p not in env:
            edges += [(i, 0, "flag"), (i, 1, "flag")]
    out: dict[int, str] = {i: "debug" for i in every if steps[i].debug}
    for i, k, tag in edges:
        for n in every - _reach(steps, body.entry, taken, (i, k)):
            if n not in out or _RANK[tag] < _RANK[out[n]]:
                out[n] = tag
    return out


def _flags(steps, params: tuple[str, ...]) -> set[str]:
    """The parameters the body never dereferences (`p->`, `p[`, `*p`): flags and values,
    not objects whose NULL test is only a guard."""
    texts = " ".join(" ".join((st.cond, *(a for ev in st.calls for a in ev.args)))
                     for st in steps)
    return {p for p in params if p != "..." and not re.search(
        rf"(?<![\w.>]){re.escape(p)}\s*(?:->|\[|\.)|\*\(*{re.escape(p)}\b", texts)}


def _subst(text: str, env: dict[str, str]) -> str:
    """`text` with the bound parameters replaced by their constants (not a field or a
    callee of the same name)."""
    if not env:
        return text
    return re.sub(r"(?<![\w.>])([A-Za-z_]\w*)\b(?!\()",
                  lambda m: env.get(m.group(1), m.group(1)), text)


def _field(text: str, f: str, value: str) -> str:
    """`text` with the field path `f` (not a longer path it starts) replaced by `value`."""
    value = f"({value})" if "|" in value and not value.startswith("(") else value
    return re.sub(rf"(?<![\w.>]){re.escape(f)}(?![\w.\[(]|->)", value, text)


_BIT = re.compile(r"^\(?([\w|]+)\)?&(\w+)$")


def _decide(cond: str, g: CallGraph) -> bool | None:
    """The value of a condition atom made of constants, or None."""
    m = _BIT.match(cond)
    if m is not None and (_CONSTANT.match(m.group(1)) or "more" in m.group(1).split("|")):
        bits = m.group(1).split("|")
        if m.group(2) in bits and _CONSTANT.match(m.group(2)):
            return True  # `(CMD_ASYNC|more) & CMD_ASYNC`: that bit is set
        if bits == ["0"]:
            return False
    m = _BLOCKING.match(cond)
    if m is not None:
        return _blocking(m.group(1) or m.group(2), g)
    if _CONSTANT.match(cond):
        return _truth(cond.strip("()"))
    m = _ORDER.match(cond)
    if m is not None:  # `wait_ms > 0` with wait_ms = 0
        x, op, y = m.group(1).strip("()"), m.group(2), m.group(3).strip("()")
        a, b = _number(x), _number(y)
        if a is None or b is None or {x, y} & {"true", "false", "NULL"}:
            return None
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    m = _EQ.match(cond)
    if m is not None:
        a, op, b = (x.strip("()") for x in m.groups())
        if not (_CONSTANT.match(a) and _CONSTANT.match(b)):
            return None
        same = a == b or (_number(a) is not None and _number(a) == _number(b))
        if not same and (_number(a) is None or _number(b) is None) and not _members(a, b):
            return None  # two names: they may be equal
        return same if op == "==" else not same
    return None


def _members(a: str, b: str) -> bool:
    """Two names of one enumeration (`NVME_CTRL_DELETING`, `NVME_CTRL_LIVE`;
    `WLAN_TDLS_SETUP_CONFIRM`, `WLAN_TDLS_DISCOVERY_REQUEST`: two first words or more in
    common): different names, different values."""
    wa, wb = a.split("_"), b.split("_")
    return a.isupper() and b.isupper() and len(wa) > 2 and len(wb) > 2 and wa[:2] == wb[:2]


def _number(s: str) -> int | None:
    if s in ("true", "false", "NULL"):
        return int(s == "true")
    try:
        return int(s.rstrip("uUlL"), 0)
    except ValueError:
        return None


def _truth(s: str) -> bool | None:
    n = _number(s)
    if n is not None:
        return n != 0
    return True if _GFP.fullmatch(s) else None


def _blocking(mask: str, g: CallGraph) -> bool | None:
    """gfpflags_allow_blocking() of a constant mask."""
    mask = mask.strip("()")
    if not _CONSTANT.match(mask):
        return None
    if mask == "0":
        return False
    flags = set(_GFP.findall(mask))
    if not flags:
        return None
    return bool(flags & (set(g.ctx.sleeping_gfp) | {"__GFP_DIRECT_RECLAIM"}))

