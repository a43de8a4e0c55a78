"""A call of a function of the same directory, applied through its lock summary
(reviewbot/knowledge/lock_summaries.py), as pack entries and tree summaries are applied:
the caller's locks the callee may drop are no longer known to be held after the call
(udf_expand_file_adinicb() drops i_data_sem; validate_request() drops wq_mutex on
-EINTR), and the locks it returns holding on every path are acquired by the call
(add_block_entry() returns with ref_verify_lock held). Locks are named through the call's
arguments (`{0}->lock` of `f(dev)` is `dev->lock`); a global only in the file that names it.

Asked only in functions that operate on a lock themselves (a pack call that takes or
drops one): the directory's graph is not built for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reviewbot.cmodel import args, callee, line_of, norm, text
from reviewbot.engine.state import HELD, PENDING, UNKNOWN, PathState
from reviewbot.engine.values import ALL, SUCCESS_SETS

if TYPE_CHECKING:
    from tree_sitter import Node as TSNode

    from reviewbot.engine.walker import Walker


@dataclass(frozen=True)
class Kept:
    """A lock the callee returns holding: the resource kind of the primitive that takes
    it, its template (`{0}->lock`, or a global with its file), and `success` (a key of
    values.SUCCESS_SETS) when it is held only on the returns that are not errors
    (`return ERR_PTR(-ENOMEM)` before the lock, `return be` after it); "" on every return."""

    rid: str
    template: str
    success: str = ""


@dataclass(frozen=True)
class CalleeLocks:
    """What one call of a directory function does to its caller's locks, in template
    form, with the aliases of the caller's body (`iinfo = UDF_I(inode)`)."""

    drops: frozenset[str]  # may be dropped (on some path)
    keeps: tuple[Kept, ...]
    fail_drops: tuple[Kept, ...]  # dropped on the error returns only
    args: tuple[str, ...]  # the call's argument texts as the graph reads them
    aliases: dict[str, str]


def _lock_kinds(w: Walker) -> frozenset[str]:
    return frozenset(rid for rid, k in w.packs.resources.items() if k.kind == "lock")


def operates_on_locks(w: Walker) -> bool:
    """The function calls a primitive the packs say takes or drops a lock (once per
    function)."""
    got = w.facts.__dict__.get("_callee_locks_any")
    if got is None:
        locks = _lock_kinds(w)
        got = False
        for c in w.fn.of_type("call_expression"):
            spec = w.packs.calls.get(callee(c))
            if spec is not None and any(r in locks for r in (*spec.acquires, *spec.releases)):
                got = True
                break
        w.facts.__dict__["_callee_locks_any"] = got
    return got


def _by_site(w: Walker) -> dict[tuple[int, str], CalleeLocks]:
    """The calls of this function whose callee has a lock summary with an effect on the
    caller, by (line, callee name); computed once per walk."""
    got = w.__dict__.get("_callee_lock_sites")
    if got is not None:
        return got
    got = w.__dict__["_callee_lock_sites"] = {}
    if w.callgraph is None or not operates_on_locks(w):
        return got
    from reviewbot.engine.return_locks import return_locks
    from reviewbot.knowledge.lock_summaries import function_in, summaries

    found = function_in(w.callgraph, w.fn.name)
    if found is None:
        return got
    g, r = found
    s = summaries(g, w.packs)
    for step in r.body.steps:
        for ev in step.calls:
            c = s.callee(ev, r)
            if c is None:
                continue
            cs = s.of(c)
            rl = return_locks(w, s, c)
            drops = frozenset(cs.drops - set(cs.keeps) - {k.template for k in rl.keeps}
                              - {k.template for k in rl.fail_drops})
            if drops or rl.keeps or rl.fail_drops:
                got[(ev.line, ev.name)] = CalleeLocks(drops, rl.keeps, rl.fail_drops, ev.args,
                                                      r.body.aliases)
    return got


def lock_rid(w: Walker, primitive: str) -> str:
    spec = w.packs.calls.get(primitive)
    if spec is None:
        return ""
    return next((rid for rid in spec.acquires if (k := w.packs.resources.get(rid)) is not None
                 and k.kind == "lock"), "")


def at(w: Walker, c: TSNode) -> CalleeLocks | None:
    """The lock effects of the call `c`, or None."""
    sites = _by_site(w)
    return sites.get((line_of(c), callee(c))) if sites else None


def caller_names(w: Walker, tm: str, c: TSNode, st: PathState, eff: CalleeLocks) -> set[str]:
    """A template as the caller may name the lock: filled with the walker's keys of the
    call's arguments, and with the graph's argument texts through the body's aliases."""
    from reviewbot.knowledge.lock_summaries import canon, fill, shown

    out: set[str] = set()
    argv = tuple(w.canon(norm(text(x)), st) for x in args(c))
    for filled in (fill(tm, argv, {}), fill(tm, eff.args, eff.aliases)):
        if filled:
            out.add(w.canon(shown(filled), st))
            out.add(canon(shown(filled), eff.aliases))
    return out


def same_lock(w: Walker, key: str, names: set[str], st: PathState, eff: CalleeLocks) -> bool:
    """The walker's key of a held lock is one of the names the callee's template gives."""
    from reviewbot.knowledge.lock_summaries import canon

    return key in names or canon(key, eff.aliases) in names


def held_name(w: Walker, tm: str, c: TSNode, st: PathState) -> str:
    """The walker's key of a lock the callee returns holding (its template filled with
    the walker's keys of the call's arguments), or "" when it cannot be named."""
    from reviewbot.knowledge.lock_summaries import fill, shown

    filled = fill(tm, tuple(w.canon(norm(text(x)), st) for x in args(c)), {})
    return w.canon(shown(filled), st) if filled else ""



def apply(w: Walker, name: str, c: TSNode, st: PathState, line: int,
          result: str | None) -> None:
    """The call `c` of a function of the directory: a caller's lock its summary says it
    may drop is no longer known to be held (held again where the call worked, when it
    drops it on its error returns only); a lock it returns holding is acquired by the
    call (where the call worked, when it holds it only on its returns that are not
    errors)."""
    eff = at(w, c)
    if eff is None:
        return
    for tm, success in [(tm, "") for tm in eff.drops] + \
            [(k.template, k.success) for k in eff.fail_drops]:
        names = caller_names(w, tm, c, st, eff)
        for k, r in list(st.res.items()):
            kind = w.packs.resources.get(r.rid)
            if r.status not in (HELD, PENDING) or kind is None or kind.kind != "lock" \
                    or not same_lock(w, r.key, names, st, eff):
                continue
            if success and result:
                possible, ok = SUCCESS_SETS[success]
                st.res[k] = replace(r, status=PENDING, pending_var=result, pending_ok=ok)
                if st.value(result) == ALL or result.startswith("#"):
                    w.set_fact(st, result, possible)
            else:
                st.res[k] = replace(r, status=UNKNOWN)
            st.note(line, f"{r.key} may be dropped by {name}()")
    for kept in eff.keeps:
        key = held_name(w, kept.template, c, st)
        if not key:
            continue
        pending = None
        if kept.success and result:
            possible, ok = SUCCESS_SETS[kept.success]
            pending = (result, ok)
            if st.value(result) == ALL or result.startswith("#"):
                w.set_fact(st, result, possible)
        w.acquire(kept.rid, key, st, line, name, w.is_nonlocal(key, None), pending)
