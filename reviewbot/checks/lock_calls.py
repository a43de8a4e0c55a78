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
    GLOBAL_AT,
    LockSummaries,
    Order,
    Via,
    fill,
    function_in,
    shown,
    summaries,
)

_LOCKISH = re.compile(r"(?:^|_)(?:try)?lock(?:_|$)|^down_")


def _chain(v: Via, here: str) -> str:
    """`f() -> g() (file.c:12) -> mutex_lock()`."""
    out = []
    for x in v.chain():
        where = f" ({os.path.basename(x.path)})" if x.path and x.path != here else ""
        out.append(f"{x.callee}(){where}")
    return " -> ".join(out)


def _order_key(o: Order, params: tuple[str, ...]) -> tuple[str, str] | None:
    """What names an order across functions: two globals, as they are. Two locks of one
    object (`p->a_lock`, `p->b_lock`) are the same expression in two functions only when
    one is the other's caller (mapped through the call): those are this function's own."""
    if lock_class(shown(o.outer)) == lock_class(shown(o.inner)):
        return None  # one class: the order is chosen at run time (by address)
    if GLOBAL_AT in o.outer and GLOBAL_AT in o.inner:
        return (o.outer, o.inner)
    return None


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
        params = r.body.params
        out: list[Raw] = []
        done: set[tuple[str, str]] = set()
        for o in mine:
            if lock_class(shown(o.outer)) == lock_class(shown(o.inner)):
                continue  # one class: the order is chosen at run time (by address)
            # the reverse in this function, with a callee on one side (the walk of one
            # function reports the reversals it sees itself)
            for p in mine:
                if (p.outer, p.inner) == (o.inner, o.outer) and \
                        (o.inner_via.inner is not None or p.inner_via.inner is not None) and \
                        o.inner_via.line >= p.inner_via.line and (o.outer, o.inner) not in done:
                    done.add((o.outer, o.inner))
                    out.append(self._raw(o, p, r, r, here))
            key = _order_key(o, params)
            if key is None or (o.outer, o.inner) in done:
                continue
            for r2, p in s.all_orders():
                if r2 is not r and _order_key(p, r2.body.params) == (key[1], key[0]) and \
                        not (o.held & p.held) - {o.outer, o.inner}:  # no common outer lock
                    done.add((o.outer, o.inner))
                    out.append(self._raw(o, p, r, r2, here))
                    break
        return out

    @staticmethod
    def _raw(o: Order, p: Order, r: FunctionRecord, r2: FunctionRecord, here: str) -> Raw:
        inner, outer = shown(o.inner), shown(o.outer)
        other = "this function" if r2 is r else \
            f"{r2.name}() ({os.path.basename(r2.path)}:{p.inner_via.line})"
        msg = (f"'{inner}' is taken here ({_chain(o.inner_via, here)}) while '{outer}' "
               f"is held (line {o.outer_line}), but {other} takes '{outer}' while "
               f"'{inner}' is held: two threads on the two paths can deadlock. Should both "
               f"take them in one order?")
        trace = [(o.outer_line, f"'{outer}' held"),
                 (o.inner_via.line, f"'{inner}' taken: {_chain(o.inner_via, here)}")]
        if r2 is r:
            trace.insert(0, (p.inner_via.line, f"'{outer}' taken while '{inner}' is held"))
        lines = [o.inner_via.line, o.outer_line]
        return Raw(LOCK_ORDER.id, o.inner_via.line, inner, msg, trace, lines,
                   confidence="medium")
