"""The conditions a lock is held under (context.sleep-in-atomic's conditional locking).

A lock taken on one side of a test is held only when the test went that way:
`if (lock) write_lock(&dev_base_lock); ... if (lock) write_unlock(&dev_base_lock);`, or a
wrapper that takes a spinlock for some clients and a mutex for the others
(`if (c->no_sleep) spin_lock_bh(&c->spinlock); else mutex_lock(&c->lock);`). Each lock the
call graph's flow holds carries its `when`: the atoms of the conditions its taking is
control dependent on, each with the side taken (`(("lock", True),)`). A later test of the
same atom lets the lock go on the other side (the flow then sees `unlist_netdevice()`
return with nothing held), a lock returned held under atoms of its parameters is held in
the caller under the same atoms written with the caller's arguments, and a sleep on a path
that does not itself show the lock's condition is weak evidence (the design may be that
the clients of one kind never reach it).

Only atoms that mean the same wherever they are tested are kept: not a loop's condition,
and none of whose variables (or field paths) the function changes at or below the test
(Body.written: the last line that changes each).
"""

from __future__ import annotations

import re

from reviewbot.knowledge.ctxfacts import Body, CallEv

__all__ = ["Atom", "guards", "step_of", "stable", "shown", "templatable", "truth"]

Atom = tuple[str, bool]  # a condition's text and the side taken (True: the condition held)

# a variable of an atom: a word not called and not a field (`->f`, `.f`)
_ROOTS = re.compile(r"(?<![\w.>])([A-Za-z_]\w*)\b(?!\s*\()")
_KEYWORDS = frozenset({"NULL", "true", "false", "sizeof"})


def _roots(cond: str) -> set[str]:
    return {w for w in _ROOTS.findall(cond) if w not in _KEYWORDS and not w.isupper()}


def truth(cond: str) -> bool | None:
    """The value of a condition that is a literal (`true`, `0`, `NULL`), else None."""
    c = cond.strip("()")
    if c in ("true", "false", "NULL"):
        return c == "true"
    try:
        return int(c.rstrip("uUlL"), 0) != 0
    except ValueError:
        return None


def shown(lock_given: tuple[Atom, ...], body: Body, i: int, cache: dict) -> bool:
    """Whether step `i` of `body` runs only under the tests a callee's lock was held under
    (`if (c->no_sleep)` around the sleep after `dm_bufio_lock(c)`)."""
    if not lock_given:
        return True
    return set(lock_given) <= set(guards(body, i, cache))


def stable(cond: str, body: Body, line: int) -> bool:
    """Whether the condition `cond` (of `body`'s code) means the same wherever `body` tests
    it from `line` on: none of its variables, nor a field path it reads, is changed at or
    after that line (`exists = err;` above both `if (exists)` tests is fine)."""
    w = body.written
    if not cond or any(w.get(r, 0) >= line for r in _roots(cond)):
        return False
    return not any(n >= line and t in cond for t, n in w.items() if "->" in t or "." in t)


def templatable(cond: str, body: Body) -> bool:
    """Whether a caller can say the condition: its variables are the parameters (or
    globals), none a local of the body."""
    return not (_roots(cond) & body.local_names)


def guards(body: Body, i: int, cache: dict) -> tuple[Atom, ...]:
    """The stable atoms step `i` of `body` is control dependent on: every path from the
    entry to `i` takes that side of that test. Cached in `cache` per body."""
    per = cache.get(id(body))
    if per is None:
        per = cache[id(body)] = (body, {})
    got = per[1].get(i)
    if got is None:
        got = per[1][i] = _guards(body, i)
    return got


def _guards(body: Body, i: int) -> tuple[Atom, ...]:
    steps = body.steps
    out = []
    for c, st in enumerate(steps):
        if not st.cond or len(st.succ) != 2 or st.loop or c == i or \
                not stable(st.cond, body, st.line):
            continue
        for k in (0, 1):
            if not _reaches(steps, body.entry, i, (c, k)):
                out.append((st.cond, k == 0))
                break
    return tuple(out)


def _reaches(steps, entry: int, target: int, cut: tuple[int, int]) -> bool:
    """Whether `target` is reached from `entry` without the edge `cut`."""
    seen = {entry}
    todo = [entry]
    while todo:
        n = todo.pop()
        if n == target:
            return True
        for k, s in enumerate(steps[n].succ):
            if (n, k) != cut and s not in seen:
                seen.add(s)
                todo.append(s)
    return False


def step_of(body: Body, ev: CallEv, cache: dict) -> int:
    """The index of the step that makes the call `ev` (-1 if none)."""
    key = ("steps", id(body))
    got = cache.get(key)
    if got is None:
        got = cache[key] = (body, {id(e): n for n, st in enumerate(body.steps)
                                   for e in st.calls})
    return got[1].get(id(ev), -1)
