"""get-put.double-lock and get-put.lock-order across functions (the `function` event of
reviewbot/checks/lock_state.py's checker): a lock the function holds
taken again by a callee of its directory (directly or deeper), and two locks taken in one
order here and in the other order by another function of the directory (or by this one
through a callee). The facts come from reviewbot/knowledge/lock_summaries.py; the rules
and their documentation are reviewbot/checks/lock_state.py's (the path walk of one
function reports the forms without a callee).
"""

from __future__ import annotations

import os
import re

from reviewbot.checks.lock_state import DOUBLE_LOCK, LOCK_ORDER, lock_class
from reviewbot.engine import FunctionContext, Raw
from reviewbot.knowledge.callgraph import FunctionRecord
from reviewbot.knowledge.lock_summaries import (
    LockSummaries,
    Order,
    Via,
    fill,
    function_in,
    root_of,
    shown,
    summaries,
    tidy,
)

_LOCKISH = re.compile(r"(?:^|_)(?:try)?lock(?:_|$)|^down_")


def _chain(v: Via, here: str) -> str:
    """`f() -> g() (file.c:12) -> mutex_lock()`."""
    out = []
    for x in v.chain():
        where = f" ({os.path.basename(x.path)})" if x.path and x.path != here else ""
        out.append(f"{x.callee}(){where}")
    return " -> ".join(out)


def _one_class(o: Order) -> bool:
    """Two instances of one class (hand-over-hand, parent and child): their order is
    chosen at run time (by address, by the tree's shape), not by the code's text."""
    if o.outer_cls and o.inner_cls:
        return o.outer_cls == o.inner_cls
    return lock_class(shown(o.outer)) == lock_class(shown(o.inner))


def _order_key(o: Order) -> tuple[str, str] | None:
    """What names an order across functions: the classes of its two locks (a global is
    its own class, `struct inode.i_rwsem` is every inode's), when both are known."""
    if not o.outer_cls or not o.inner_cls or _one_class(o):
        return None
    return (o.outer_cls, o.inner_cls)


_CAST = re.compile(r"\((?:const)?(?:struct|union)?\w+\*+\)")
_CMP = re.compile(r"(?<![-<>])([<>])=?(?![<>=])")


def _by_address(r: FunctionRecord, o: Order) -> bool:
    """The function compares the two locks' objects (`if (a < b)`): it orders them by
    address, the deliberate way to take two locks in either order."""
    objs = {x for e in (shown(o.outer), shown(o.inner))
            for x in (root_of(e), re.split(r"->|\.(?=[A-Za-z_])", e)[0])}
    for st in r.body.steps:
        if not st.cond or not _CMP.search(st.cond):
            continue
        cond = _CAST.sub("", st.cond)  # `(void *)a < (void *)b`
        sides = [tidy(x).strip("()&") for x in _CMP.split(cond)[::2]]
        if sum(1 for x in sides if x in objs or root_of(x) in objs) >= 2:
            return True
    return False


def _both(s: LockSummaries, r: FunctionRecord, key: tuple[str, str]) -> bool:
    """`r` takes the two classes in both orders itself: the cycle is reported there, in
    its own terms (the path walk, or the reversal through a callee above), not again
    from every other function that takes one of the two orders."""
    ks = {_order_key(o) for o in s.of(r).orders}
    return key in ks and key[::-1] in ks


def _where(r: FunctionRecord, o: Order) -> tuple[str, int, str]:
    return (r.path, o.inner_via.line, r.name)


def _spelling(s: LockSummaries, r: FunctionRecord, line: int, call: str, lock: str) -> str:
    """The lock as the function writes it where it takes it (`dlm->spinlock`, where the
    summaries name it through `dlm = data`: `data->spinlock`)."""
    for st in r.body.steps:
        for ev in st.calls:
            what, tgt, _read = s.kind(ev.name)
            if ev.line == line and ev.name == call and what == "take" and ev.args:
                own = fill(tgt, ev.args, {})
                if own:
                    return own
    return shown(lock)


def _spelled(s: LockSummaries, r: FunctionRecord, o: Order) -> tuple[str, str]:
    """(inner, outer) of an order as the function writes them where it takes them (a
    lock a callee takes: as the summaries name it)."""
    inner = _spelling(s, r, o.inner_via.line, o.inner_via.callee, o.inner) \
        if o.inner_via.inner is None else shown(o.inner)
    return inner, _spelling(s, r, o.outer_line, o.outer_call, o.outer)


class AcrossFunctions:
    """The findings across functions of one function (a part of lock-state, not a
    checker of its own)."""

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        if not any(_LOCKISH.search(c) for c in ctx.fn.callees()):
            return []  # nothing here takes a lock (a lock taker's name says so)
        got = function_in(ctx.callgraph, ctx.fn.name)
        if got is None:
            return []
        return self.raws(summaries(got[0], ctx.packs), got[1])

    def raws(self, s: LockSummaries, r: FunctionRecord) -> list[Raw]:
        """The findings of one function of the graph (bench/lock_calls.py asks directly)."""
        if not s.of(r).takes_any:
            return []
        return [self._nest(n, r, _spelling(s, r, n.held_line, n.held_call, n.lock))
                for n in s.of(r).nests] + self._orders(s, r, r.path)

    @staticmethod
    def _nest(n, r: FunctionRecord, lock: str) -> Raw:
        here = r.path
        callee = n.via.callee
        msg = (f"'{lock}' is held here ({n.held_call}() at line {n.held_line}) and "
               f"{callee}() takes it again ({_chain(n.via, here)}): the second acquisition "
               f"waits for this path itself and never returns. Should the lock be dropped "
               f"before the call, or the callee be given a variant that expects it held?")
        trace = [(n.held_line, f"{n.held_call}() takes '{lock}'"),
                 (n.via.line, f"{callee}() takes '{lock}' again: {_chain(n.via, here)}")]
        return Raw(DOUBLE_LOCK.id, n.via.line, lock, msg, trace, [n.via.line, n.held_line],
                   confidence="medium")

    def _orders(self, s: LockSummaries, r: FunctionRecord, here: str) -> list[Raw]:
        mine = s.of(r).orders
        if not mine:
            return []
        out: list[Raw] = []
        done: set[tuple[str, str]] = set()
        for o in mine:
            if _one_class(o):
                continue
            # the reverse in this function, with a callee on one side (the walk of one
            # function reports the reversals it sees itself)
            for p in mine:
                if (p.outer, p.inner) == (o.inner, o.outer) and \
                        (o.inner_via.inner is not None or p.inner_via.inner is not None) and \
                        o.inner_via.line >= p.inner_via.line and (o.outer, o.inner) not in done \
                        and not _by_address(r, o):
                    done.add((o.outer, o.inner))
                    out.append(self._raw(s, o, p, r, r, here))
            key = _order_key(o)
            if key is None or (o.outer, o.inner) in done or key in done:
                continue
            raw = self._cycle(s, r, o, key, here)
            if raw is not None:
                done.add(key)
                out.append(raw)
        return out

    def _cycle(self, s: LockSummaries, r: FunctionRecord, o: Order, key: tuple[str, str],
               here: str) -> Raw | None:
        """The two classes of `o` taken in the other order by another function of the
        directory: one finding per function and pair of classes, at its first
        acquisition that closes the cycle, with the first of the other order (by file and
        line) in the trace. Each of the two functions gets its own (a patch's review
        reads only the functions it touches)."""
        if _by_address(r, o) or _both(s, r, key):
            return None
        others = sorted(((r2, p) for r2, p in s.all_orders() if r2 is not r and
                         _order_key(p) == key[::-1] and not _by_address(r2, p) and
                         not (o.held_cls & p.held_cls) - set(key)  # a common outer lock
                         and not _both(s, r2, key)),  # serialises the two
                        key=lambda y: _where(*y))
        if not others:
            return None
        r2, p = others[0]
        return self._raw(s, o, p, r, r2, here)

    @staticmethod
    def _raw(s: LockSummaries, o: Order, p: Order, r: FunctionRecord, r2: FunctionRecord,
             here: str) -> Raw:
        inner, outer = _spelled(s, r, o)
        other = "this function" if r2 is r else \
            f"{r2.name}() ({os.path.basename(r2.path)}:{p.inner_via.line})"
        p_inner, p_outer = _spelled(s, r2, p)
        spelled = ""
        if r2 is not r and (p_inner, p_outer) != (outer, inner):
            spelled = (f" (there '{p_inner}' while '{p_outer}' is held: the "
                       f"classes {shown(o.outer_cls)} and {shown(o.inner_cls)})")
        msg = (f"'{inner}' is taken here ({_chain(o.inner_via, here)}) while '{outer}' "
               f"is held (line {o.outer_line}), but {other} takes '{outer}' while "
               f"'{inner}' is held{spelled}: two threads on the two paths can deadlock. "
               f"Should both take them in one order?")
        trace = [(o.outer_line, f"'{outer}' held"),
                 (o.inner_via.line, f"'{inner}' taken: {_chain(o.inner_via, here)}")]
        if r2 is r:
            trace.insert(0, (p.inner_via.line, f"'{outer}' taken while '{inner}' is held"))
        else:
            trace.append((o.inner_via.line, f"the other order, in {r2.name}() "
                          f"({os.path.basename(r2.path)}): '{p_outer}' held (line "
                          f"{p.outer_line}), '{p_inner}' taken at line "
                          f"{p.inner_via.line}: {_chain(p.inner_via, r2.path)}"))
        lines = [o.inner_via.line, o.outer_line]
        # both orders taken by the functions' own lock calls, or one through summaries;
        # a lock held on one side and waited for on the other as a reader both times
        # closes the cycle only with a writer queued in between; two files of a directory
        # are often two back-ends (one per hardware generation: amdgpu's gfx_v7_0.c and
        # amdgpu_amdkfd_gfx_v9.c) that never share an object
        direct = o.direct and p.direct and r.path == r2.path
        readers = (o.outer_read and p.inner_read) or (o.inner_read and p.outer_read)
        return Raw(LOCK_ORDER.id, o.inner_via.line, inner, msg, trace, lines,
                   confidence="medium" if direct and not readers else "low")
