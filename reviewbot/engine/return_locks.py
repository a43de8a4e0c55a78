"""The locks a function of the directory returns holding, return by return: on every
return, or on every return that is not an error (add_block_entry() returns
`ERR_PTR(-ENOMEM)` before it takes ref_verify_lock and holds it on its other returns), so
that its caller acquires the lock by the call, on the call's success
(reviewbot/engine/callee_locks.py). The flow is the lock summaries' must-flow
(reviewbot/knowledge/lock_summaries.py) with each return kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.engine.callee_locks import Kept, lock_rid
from reviewbot.engine.values import ERRNO
from reviewbot.knowledge.lock_summaries import LockSummaries, _Flow, template

if TYPE_CHECKING:
    from reviewbot.engine.walker import Walker
    from reviewbot.knowledge.callgraph import FunctionRecord


@dataclass(frozen=True)
class ReturnLocks:
    """What a function's returns say about locks: those it returns holding (`keeps`), and
    the caller's locks it drops only on its error returns (`fail_drops`: held again
    where the call worked, as `success` says)."""

    keeps: tuple[Kept, ...] = ()
    fail_drops: tuple[Kept, ...] = ()


_NONE = ReturnLocks()


def return_locks(w: Walker, s: LockSummaries, c: FunctionRecord) -> ReturnLocks:
    """(cached per summaries object)"""
    memo = s.__dict__.setdefault("_return_locks", {})
    got = memo.get(id(c))
    if got is None:
        got = memo[id(c)] = _return_locks(w, s, c)
    return got


def _return_locks(w: Walker, s: LockSummaries, c: FunctionRecord) -> ReturnLocks:
    ends = ReturnsFlow(s, c, 0).ends()
    if not ends:
        return _NONE
    b = c.body
    errs = [e for e in ends if _error_value(e.value)]
    oks = [e for e in ends if not _error_value(e.value)]
    if not oks:
        return _NONE
    success = _success([e.value for e in errs]) if errs else ""
    keeps: list[Kept] = []
    for lock, call in sorted(set.intersection(*(set(e.held) for e in oks))):
        tm = template(lock, b.params, b.aliases)
        rid = lock_rid(w, call) or _kept_rid(w, s, c, tm)
        if tm is None or not rid:
            continue
        may_fail = _may_fail(w, s, c, call)
        if may_fail:
            # mutex_lock_interruptible(): held where it worked, which the flow does not
            # tell apart; the function's error returns (or, with none, its result passed
            # on) say where
            keeps.append(Kept(rid, tm, success or may_fail))
            continue
        on_errors = [lock in dict(e.held) for e in errs]
        if any(on_errors) and not all(on_errors):
            continue  # some error returns keep it, some do not: no contract to follow
        keeps.append(Kept(rid, tm, "" if all(on_errors) else success))
    fail_drops: list[Kept] = []
    if errs:
        def seen(e: End) -> set[str]:
            return {t for x in e.seen if (t := template(x, b.params, b.aliases)) is not None}
        for tm in sorted(s.of(c).drops):
            if not any(tm in seen(e) for e in oks) and any(tm in seen(e) for e in errs):
                fail_drops.append(Kept("", tm, success))
    return ReturnLocks(tuple(keeps), tuple(fail_drops))


def _error_value(v: str) -> bool:
    v = v.replace(" ", "")
    return v.startswith("ERR_PTR(") or v == "NULL" or ERRNO.match(v) is not None


def _success(errors: list[str]) -> str:
    """How a caller tells the success of a call from the error returns' values."""
    e = any(v.replace(" ", "").startswith("ERR_PTR(") for v in errors)
    z = "NULL" in errors
    return "nonnull_not_err" if e and z else "not_err" if e else "nonnull" if z else "nonneg"


def _may_fail(w: Walker, s: LockSummaries, c: FunctionRecord, call: str) -> str:
    """How the take by `call` (a primitive, or a helper of the graph) tells its success,
    when it may fail: a key of SUCCESS_SETS, or ""."""
    spec = w.packs.calls.get(call)
    if spec is not None:
        return spec.success if spec.success != "always" else ""
    ev = next((e for st in c.body.steps for e in st.calls if e.name == call), None)
    inner = s.callee(ev, c) if ev is not None else None
    if inner is None:
        return ""
    return next((k.success for k in return_locks(w, s, inner).keeps if k.success), "")


def _kept_rid(w: Walker, s: LockSummaries, c: FunctionRecord, tm: str | None) -> str:
    """The resource kind of a lock a callee of `c` returns holding (the primitive at the
    end of its summary's chain)."""
    t = s.of(c).keeps.get(tm) if tm else None
    return lock_rid(w, t.via.chain()[-1].callee) if t is not None else ""




@dataclass(frozen=True)
class End:
    """One return of a function: what it returns and the locks held there (with the call
    that took each)."""

    value: str
    held: tuple[tuple[str, str], ...]
    seen: frozenset[str]  # the locks operated on by the path (taken or dropped)


class ReturnsFlow(_Flow):
    """The lock summaries' must-flow, keeping each return apart (with its value)."""

    def ends(self) -> list[End]:
        got = self.returns()
        if got is None:
            return []
        last: dict[int, End] = {}
        for i, now in got:  # the last visit of a return is its fixed point
            last[i] = End(self.body.steps[i].value,
                          tuple(sorted({(h[0], h[2]) for h in now.held})), now.seen)
        return list(last.values())


