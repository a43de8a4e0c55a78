"""get-put, lock state: a lock taken twice or dropped twice on one path, dropped where the
path does not hold it, returned held by some exits and not others, and two locks taken in
both orders. After smatch's check_locking.c and the Clang Static Analyzer's
alpha.unix.PthreadLock.

The locks are the pack resources of kind "lock" marked `ordered` (mutexes, spinlocks,
rwlocks and rw_semaphores): exclusive locks a second acquisition deadlocks on. RCU read
sections and counting semaphores nest or count, and learned lock pairs say too little of
what a wrapper does: they are left out, except from the lock-imbalance rule, which covers
every lock as it did before this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewbot.checks import register, rule
from reviewbot.checks.get_put import DOUBLE_RELEASE, LOCK_IMBALANCE
from reviewbot.checks.lock_guards import (
    compared,
    helper_lets_go,
    helper_takes,
    lock_names,
    other_guard,
    relocked_between,
    under_if,
    unguarded_release,
    unknown_calls_between,
)
from reviewbot.engine import (
    ABSENT,
    FAILED,
    HELD,
    RELEASED,
    Checker,
    Exit,
    FunctionContext,
    PathState,
    Raw,
    Res,
    Walker,
)
from reviewbot.packs.lookup import LEARNED

DOUBLE_LOCK = rule(
    "get-put.double-lock", "error", "high",
    "a lock taken again on a path that already holds it",
    """
What it finds: an acquisition of a mutex, spinlock, rwlock or rw_semaphore (a pack call, or
a wrapper the pack describes, such as inode_lock()) on a path where the function already
holds that same lock and has not dropped it since.

Why it matters: the second acquisition never returns: a spinlock spins on itself, a mutex
sleeps forever (lockdep: "possible recursive locking detected").

Example:
    mutex_lock(&dev->lock);
    if (dev->busy)
        goto out;              /* out: unlocks, then takes the lock again below */
    ...
    mutex_lock(&dev->lock);    /* still held on this path */

Read sides: rwlock_t read locks may nest (read_lock() twice is allowed and not reported);
a rw_semaphore read lock may not (down_read() twice deadlocks as soon as a writer waits
between the two), so it is reported, at medium confidence. A read and a write acquisition
of the same lock, in either order, deadlock: reported. Trylocks never block: not reported.

Across functions (reviewbot/checks/lock_calls.py, with the directory's lock summaries of
reviewbot/knowledge/lock_summaries.py): a call, made while every path to it holds the
lock, to a function of the directory that takes the same lock on every one of its paths
before dropping it (directly or deeper; the callee's parameters replaced by the call's
arguments, so `&d->lock` in the callee is the caller's lock only for `f(d)`). Reported at
the call, with the chain down to the acquisition, at medium confidence. A trylock (in the
caller or the callee) never counts, nor a callee that takes the lock only on some paths
or lets go of the caller's lock first.

Known false positives: a lock whose key names a different object on the second
acquisition although the expression is the same (a pointer reassigned through an
out-argument of a call no pack describes); loops whose iterations the walker cannot tell
apart (cursors of list and array walks are left out); across functions, a callee outside
the directory (or called through a pointer) that drops the lock between the two.

Similar public checks: smatch check_locking.c ("double lock"), Clang Static Analyzer
alpha.unix.PthreadLock ("This lock has already been acquired").

Confidence: high (medium for two read acquisitions of a rw_semaphore). Nothing is reported
when a function of the directory called between the two lets go of the lock, as its lock
summary says (finish_permission_event() and udf_expand_file_adinicb() do); low when another
call no pack describes lies between them (a helper outside the directory, or one reached
under another name, may drop it: xlog_wait_on_iclog(ctx->commit_iclog->ic_prev)), when the
first one is taken inside an if branch (a test the walker may not relate to the second),
or when the lock's object is compared with another pointer (two names for one lock). The
six-directory audit of linux-source-6.1 had 11 findings, all low and all false for those
reasons; 5 remain now that the directory's summaries say which helpers drop the lock
(docs/triage-6.1.md). Across functions: medium.
""")

UNLOCK_UNHELD = rule(
    "get-put.unlock-unheld", "error", "high",
    "an unlock on a path where the lock is not held",
    """
What it finds: an unlock of a lock that the path does not hold, either
- after the path's trylock or interruptible lock of it failed (mutex_trylock(),
  spin_trylock(), down_*_trylock() returned 0; mutex_lock_interruptible() returned an
  error), or
- in a function that takes the lock itself, by an unlock written above every acquisition
  of the lock, on a path that returns without taking it, while other paths of the
  function take it without holding it first (so the caller does not hold it either).
An unlock reached through a goto before the lock is taken is error-path.extra-release's;
an unlock of what the path already unlocked is get-put.double-release's.

Why it matters: unlocking a mutex one does not own corrupts its owner and wait list
(DEBUG_MUTEXES warns); unlocking a spinlock someone else holds lets two CPUs into the
critical section.

Example:
    if (!mutex_trylock(&dev->lock)) {
        dev_warn(dev->dev, "busy\\n");
        mutex_unlock(&dev->lock);      /* the trylock failed: not held */
        return -EBUSY;
    }

Known false positives: a lock the caller holds on some calls only (a `locked` argument),
when the function's own acquisition is written above the unlock (then not reported); a
trylock result recorded in a variable the walker does not relate to it (an unlock under a
test other than the trylock's own or its result's is low: spi_write_then_read() unlocks
when `x[0].tx_buf == buf`); a lock taken by a call no pack describes (down_read_nested()
is not in the pack: an unlock after such a call given the lock is not reported).

Similar public checks: smatch check_locking.c (unlock of an unheld lock after a failed
trylock), Clang Static Analyzer alpha.unix.PthreadLock ("This lock has already been
unlocked" covers the double unlock).

Confidence: high after a failed trylock (low under another test); medium for the unlock
written above the acquisitions. In the six-directory audit of linux-source-6.1 it reports
nothing at default confidence (docs/triage-6.1.md).
""")

LOCK_ORDER = rule(
    "get-put.lock-order", "warning", "medium",
    "two locks taken in both orders (in one function, or across a directory's functions)",
    """
What it finds: a function that on one path takes lock B while holding lock A, and on
another path (or later on the same one) takes A while holding B. Reported at the
second order, with the first in the trace. Locks of the same class (the same field of two
objects, `a->lock` and `b->lock`) are left out: their order is usually decided at run time
(by address); so are acquisitions by a trylock (it does not wait) and *_nested ones (a
lockdep subclass says the order is deliberate).

Why it matters: two threads running the two paths at once deadlock, each holding the lock
the other waits for (lockdep: "possible circular locking dependency").

Example:
    spin_lock(&d->state_lock);
    spin_lock(&d->queue_lock);      /* state_lock, then queue_lock */
    ...
    spin_lock(&d->queue_lock);
    spin_lock(&d->state_lock);      /* queue_lock, then state_lock */

Across functions (reviewbot/checks/lock_calls.py, the directory's lock summaries of
reviewbot/knowledge/lock_summaries.py): the inner lock taken by a callee of the directory
on all its paths (`a` held, `f()` takes `b`, while another path of the function holds `b`
and takes `a`); and two lock *classes* taken in one order by one function of the
directory and in the other by another (either side possibly through callees: an edge
A->B is a take of B on a step where every path holds A). A lock's class is the struct type
of its object and the field chain (reviewbot/knowledge/lock_classes.py: `struct
lc_dev.a_lock` for `p->a_lock` with `struct lc_dev *p`, through the declared types of
parameters and locals, `container_of()` and casts; a global lock is its own class, in its
file), so `p->a_lock` in one function and `q->a_lock` in another are one class. Reported
once per function and pair of classes, in each of the two functions (a patch's review reads
only the functions it touches), with the other function's order in the trace.

Example across functions:
    static void lc_ab(struct lc_dev *p)
    {
        mutex_lock(&p->a_lock);
        mutex_lock(&p->b_lock);     /* struct lc_dev.a_lock, then .b_lock */
        ...
    static void lc_ba(struct lc_dev *q)
    {
        mutex_lock(&q->b_lock);
        mutex_lock(&q->a_lock);     /* .b_lock, then .a_lock: reported in both */

Not reported (the known false-positive classes of an order check): two instances of one
class (hand over hand, parent and child: the order is the data's); a `*_nested`
acquisition (a lockdep subclass, `SINGLE_DEPTH_NESTING`, declares the nesting); a
trylock (the reverse order by trylock, backing off when it fails, is the standard way to
avoid the deadlock); a function that compares the two objects (`if (a < b)`: ordered by
address); two orders both taken under a common third lock (it serialises them); a lock
whose object's type the function does not declare (no class); a function that takes both
orders itself (the cycle is reported there, by the path walk, not again from every
function with one of the two orders).

Known false positives: two paths that can never run at the same time on the same object
(one runs before the object is published, or both run in one single-threaded phase:
probe and remove, suspend and resume); locks named alike that are in fact different (two
pointers to different objects spelled the same way on two paths); across functions, two
objects of one type that are never the same pair (a parent's lock then a child's of one
struct type is left out, but two struct types used in two roles are not told apart).

Similar public checks: lockdep at run time (one class per lock declaration, the order
graph of every acquisition: "possible circular locking dependency"); Clang's
thread-safety analysis (`ACQUIRED_BEFORE`/`ACQUIRED_AFTER` annotations, checked at compile
time) and the Clang Static Analyzer's alpha.unix.PthreadLock ("lock order reversal");
smatch's check_locking.c tracks held locks but not order.

Confidence: medium when both orders are taken by each function's own lock calls, in one
file; low when one of them is through a callee's summary (a cycle through summaries only),
when the two functions are in two files (two files of a directory are often two back-ends,
one per hardware generation, that never share an object: amdgpu's gfx_v7_0.c and
amdgpu_amdkfd_gfx_v9.c), when one lock is a reader on both sides, when a
function of the directory lets go of the outer lock before the inner one is taken
(nothing is reported then: its lock summary; inode_sleep_on_writeback() drops i_lock),
when another call no pack describes lies between an outer acquisition and the inner one,
or when a lock's object is compared with another pointer.
""")

_READ = re.compile(r"(^|_)read(_|$)|_shared$")
_RWSEM = ("down_", "up_", "inode_lock", "inode_unlock")


def _side(call: str) -> str:
    """Which side of a read/write lock a call takes: "read" or "write"."""
    return "read" if _READ.search(call) else "write"


def lock_class(key: str) -> str:
    """What names a lock's class in one function: the last field (`queue_lock` of
    `d->queue_lock`), else the variable."""
    return re.split(r"->|\.", key)[-1]


@dataclass(frozen=True)
class _Unheld:
    """A release on a path that never took the lock (the slot's `unheld` entries)."""

    rid: str
    key: str
    line: int
    call: str


@dataclass(frozen=True)
class Slot:
    """lock-state's per-path data."""

    nest: tuple[tuple[str, int], ...] = ()  # key -> acquisitions beyond the walker's one
    unheld: frozenset[_Unheld] = frozenset()


@dataclass(frozen=True)
class _Order:
    """`inner` taken at inner_line while `outer` (taken at outer_line) was held."""

    outer: str
    inner: str
    outer_line: int
    inner_line: int
    st: PathState


@dataclass
class _ExitSeen:
    line: int
    kind: str
    expr: str
    st: PathState
    r: Res


_CONST = re.compile(r"^(-?\w*\d\w*|-?E[A-Z0-9]+|NULL|true|false|[A-Z][A-Z0-9_]*)$")


def _value(s: _ExitSeen) -> str | None:
    """What an exit returns, when two exits can be told to return the same: nothing, a
    constant, or a variable the path knows is 0; None otherwise (`return ret` with ret
    unknown may be 0 on one path and an error on the other)."""
    if not s.expr or _CONST.match(s.expr):
        return s.expr
    if re.fullmatch(r"[A-Za-z_]\w*", s.expr) and s.st.value(s.expr) == frozenset("Z"):
        return "0"
    return None


@dataclass
class _Fn:
    """What one walk has seen, for the decisions made when it is over."""

    first_lock: set[tuple[str, str]] = field(default_factory=set)
    unheld: dict[tuple[str, str, int], tuple[_Unheld, PathState]] = field(default_factory=dict)
    orders: dict[tuple[str, str], _Order] = field(default_factory=dict)
    # (key, line, exit kind): one return may be reached as an error and as a success
    held: dict[tuple[str, int, str], _ExitSeen] = field(default_factory=dict)
    released: dict[tuple[str, int, str], _ExitSeen] = field(default_factory=dict)


_START = Slot()


@register
class LockStateChecker(Checker):
    name = "lock-state"
    rules = (DOUBLE_LOCK, UNLOCK_UNHELD, LOCK_ORDER)
    events = frozenset({"acquire", "release", "exit", "end", "function"})

    def __init__(self) -> None:
        self._fns: dict[int, _Fn] = {}

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        """The forms across functions (reviewbot/checks/lock_calls.py)."""
        from reviewbot.checks.lock_calls import AcrossFunctions

        return AcrossFunctions().check_function(ctx)

    def events_for(self, w: Walker) -> frozenset[str]:
        kinds = w.packs.resources
        if not any((k := kinds.get(rid)) is not None and k.kind == "lock"
                   for rid, _ in w.facts.static_acquires | w.facts.static_releases):
            return frozenset()
        self._fns[id(w)] = _Fn()
        return self.events - {"function"}

    def initial(self) -> Slot:
        return _START

    # ------------------------------------------------------------------ helpers
    def _exclusive(self, w: Walker, r: Res) -> bool:
        kind = w.packs.resources.get(r.rid)
        if kind is None or kind.kind != "lock" or not kind.ordered or kind.pack == LEARNED:
            return False
        if r.inferred or r.key.startswith("#"):
            return False
        root = re.match(r"[A-Za-z_]\w*", r.key)
        return root is None or root.group(0) not in w.facts.cursors

    @staticmethod
    def _trylock(w: Walker, call: str) -> bool:
        spec = w.packs.calls.get(call)
        return spec is not None and spec.success == "true"

    @staticmethod
    def _hand(w: Walker, *calls: str) -> bool:
        """The calls are hand-written pack entries (a learned wrapper says too little of
        what it does to the lock)."""
        return all((spec := w.packs.calls.get(c)) is not None and spec.pack != LEARNED
                   for c in calls)

    # ------------------------------------------------------------------ acquire
    def on_acquire(self, w: Walker, st: PathState, r: Res, prev: Res | None) -> None:
        if not self._exclusive(w, r) or not self._hand(w, r.acq_call):
            return
        d = self._fns[id(w)]
        slot: Slot = st.slots[self.name]
        k = (r.rid, r.key)
        if prev is None and not any(u.rid == r.rid and u.key == r.key for u in slot.unheld):
            d.first_lock.add(k)  # this path takes the lock without holding it first
        trying = self._trylock(w, r.acq_call)
        if prev is not None and prev.status == HELD and not trying:
            self._double_lock(w, st, r, prev)
            nest = dict(slot.nest)
            nest[r.key] = nest.get(r.key, 0) + 1
            st.set_slot(self.name, Slot(tuple(sorted(nest.items())), slot.unheld))
        if not trying and not r.acq_call.endswith("_nested"):
            self._order(w, st, r, d)

    def _double_lock(self, w: Walker, st: PathState, r: Res, prev: Res) -> None:
        if len(set(st.labels)) != len(st.labels):
            return  # a retry label looped back: which round holds what is too easy to confuse
        a, b = _side(prev.acq_call), _side(r.acq_call)
        if r.rid == "rwlock" or a == "read" or b == "read":
            sleeping = r.acq_call.startswith(_RWSEM)
            if a == b == "read" and not sleeping:
                return  # rwlock_t read locks nest
            confidence = "medium" if a == b == "read" else "high"
        else:
            confidence = "high"
        if helper_lets_go(w, r.key, prev.acq_line, r.acq_line):
            return  # a function of the directory drops it in between (its summary says so)
        if unknown_calls_between(w, prev.acq_line, r.acq_line) or compared(w, r.key) or \
                under_if(w, prev.acq_line, prev.acq_call):
            confidence = "low"  # a helper may have dropped it, two names for one lock, or
            # a test the walker does not relate to the first acquisition
        what = ("a rw_semaphore read lock is not recursive: a writer queued between the two "
                "blocks the second one for ever" if a == b == "read"
                else "the second acquisition waits for the path itself and never returns")
        w.report(
            DOUBLE_LOCK.id, r.acq_line, r.key,
            f"'{r.key}' is locked again by {r.acq_call}() while this path still holds it "
            f"({prev.acq_call}() at line {prev.acq_line}): {what}. Is an unlock missing, or "
            f"is one of the two acquisitions redundant?",
            st, [(r.acq_line, f"{r.acq_call}({r.key}) again")], [prev.acq_line, r.acq_line],
            confidence=confidence,
        )

    def _order(self, w: Walker, st: PathState, r: Res, d: _Fn) -> None:
        if len(set(st.labels)) != len(st.labels):
            return  # a retry label looped back: which round holds what is too easy to confuse
        for o in st.res.values():
            if o is r or o.status != HELD or o.key == r.key or not self._exclusive(w, o):
                continue
            if lock_class(o.key) == lock_class(r.key):
                continue  # one class: the order is usually chosen at run time
            first = d.orders.get((r.key, o.key))
            if first is None:
                if (o.key, r.key) not in d.orders:  # (the state is kept for the trace)
                    d.orders[(o.key, r.key)] = _Order(o.key, r.key, o.acq_line, r.acq_line,
                                                      st.copy())
                continue
            here = _Order(o.key, r.key, o.acq_line, r.acq_line, st)
            if any(helper_lets_go(w, x.outer, x.outer_line, x.inner_line) for x in (here, first)):
                continue  # the outer lock is let go of by a callee before the inner one
            # reported at the later of the two inner acquisitions, whichever the walk met first
            late, early = (here, first) if here.inner_line >= first.inner_line else (first, here)
            # a call no pack describes while the outer lock is held may drop it (a helper
            # documented to release it); a lock with two names
            unsure = any(unknown_calls_between(w, x.outer_line, x.inner_line)
                         for x in (late, early)) \
                or compared(w, late.inner) or compared(w, late.outer)
            w.report(
                LOCK_ORDER.id, late.inner_line, late.inner,
                f"'{late.inner}' is taken here while '{late.outer}' is held (line "
                f"{late.outer_line}), but line {early.inner_line} takes '{late.outer}' while "
                f"'{late.inner}' is held (line {early.outer_line}): two threads on the two "
                f"paths can deadlock. Should both take them in one order?",
                late.st, [(early.outer_line, f"'{early.outer}' held"),
                          (early.inner_line, f"'{early.inner}' taken while '{early.outer}' is held"),
                          (late.inner_line, f"'{late.inner}' taken while '{late.outer}' is held")],
                [late.inner_line, early.inner_line], confidence="low" if unsure else "medium",
            )

    # ------------------------------------------------------------------ release
    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str,
                   consume: bool) -> None:
        if consume or not self._exclusive(w, r) or not self._hand(w, call):
            return
        slot: Slot = st.slots[self.name]
        if r.status == RELEASED:
            nest = dict(slot.nest)
            if nest.get(r.key):
                nest[r.key] -= 1  # the inner one of two nested acquisitions
                nest = {k: v for k, v in nest.items() if v}
                st.set_slot(self.name, Slot(tuple(sorted(nest.items())), slot.unheld))
                return
            self._double_unlock(w, st, r, line, call)
        elif r.status == FAILED:
            if not self._hand(w, r.acq_call) or \
                    unknown_calls_between(w, r.acq_line, line,
                                          given=lock_names(r.key, w, whole=False)):
                return  # a call no pack describes is given the lock: it may take it
            # an unlock under a test other than the failed acquisition's (`if (x.tx_buf ==
            # buf) mutex_unlock(..)`) may be the function's own record of the lock
            other = other_guard(w, line, call, r.acq_line, r.acq_call)
            w.report(
                UNLOCK_UNHELD.id, line, r.key,
                f"{call}({r.key}) runs on a path where {r.acq_call}() at line {r.acq_line} "
                f"failed, so the lock is not held here. Should this path return without "
                f"unlocking?",
                st, [(line, f"{call}({r.key}) without the lock")], [r.acq_line, line],
                confidence="low" if other else "high",
            )
        elif r.status == ABSENT and not st.after_label:  # never taken on this path
            if (r.rid, r.key) not in w.facts.static_acquires or \
                    r.key in w.facts.annotated_locks:
                return
            acq = w.facts.acquire_lines.get((r.rid, r.key), [])
            if not acq or line >= min(acq):
                return  # written below an acquisition: a lock the caller may hold
            u = _Unheld(r.rid, r.key, line, call)
            st.set_slot(self.name, Slot(slot.nest, slot.unheld | {u}))

    def _double_unlock(self, w: Walker, st: PathState, r: Res, line: int, call: str) -> None:
        if len(set(st.labels)) != len(st.labels):
            return  # unlock/relock through a retry label: too easy to get wrong
        if not self._hand(w, r.rel_call) or relocked_between(w, r.key, r.rel_line, line) or \
                helper_takes(w, r.key, r.rel_line, line):
            return  # a helper whose name says it locks is given the lock or its object, or
            # a function of the directory returns holding it (its summary)
        # a helper no pack describes may take the lock again; two names for one lock
        sure = not (unknown_calls_between(w, r.rel_line, line) or compared(w, r.key))
        w.report(
            DOUBLE_RELEASE.id, line, r.key,
            f"'{r.key}' is unlocked twice on this path: {r.rel_call}() at line {r.rel_line} "
            f"already unlocked it and {call}() unlocks it again. Is one of the two unlocks "
            f"redundant, or is a lock missing between them?",
            st, [(line, f"{call}() unlocks '{r.key}' again")], [r.rel_line, line],
            confidence="high" if sure else "low",
        )

    # ------------------------------------------------------------------ exits
    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None:
        d = self._fns[id(w)]
        slot: Slot = st.slots[self.name]
        for u in slot.unheld:
            # an error exit that unlocks what it never took: the early exit of a copied
            # error branch (a normal return may hand back a lock a callee took)
            if ex.kind == "error" and not any(x.rid == u.rid and x.key == u.key
                                              for x in st.res.values()):
                d.unheld.setdefault((u.rid, u.key, u.line), (u, st))
        kinds = w.packs.resources
        for r in st.res.values():
            kind = kinds.get(r.rid)
            if kind is None or kind.kind != "lock" or r.inferred:
                continue
            seen = _ExitSeen(ex.node.line, ex.kind, ex.expr, st, r)
            if r.status == RELEASED:
                d.released.setdefault((r.key, ex.node.line, ex.kind), seen)
                continue
            if not r.held_untested or r.acq_after_label or r.handed or \
                    w.facts.released_by_loop(r.rid, r.key):
                continue
            if not w.facts.releases_anywhere(r.rid, r.key):
                continue
            if r.key in w.facts.annotated_locks or w.facts.entered_locked(r.rid, r.key):
                continue
            if self._exclusive(w, r) and helper_lets_go(w, r.key, r.acq_line, ex.node.line):
                continue  # a function of the directory let go of it (its summary)
            d.held.setdefault((r.key, ex.node.line, ex.kind), seen)

    def on_end(self, w: Walker) -> None:
        d = self._fns.pop(id(w), None)
        if d is None:
            return
        for (rid, key, line), (u, st) in sorted(d.unheld.items(), key=lambda kv: kv[0][2]):
            if (rid, key) not in d.first_lock:
                continue  # every path enters with the lock held: the caller holds it
            acq = min(w.facts.acquire_lines.get((rid, key), [0]))
            w.report(
                UNLOCK_UNHELD.id, line, key,
                f"{u.call}({key}) runs on a path that never took '{key}': the function "
                f"takes it itself further down (line {acq}), and its other paths take it "
                f"without holding it first, so the caller does not hold it either. Is this "
                f"unlock meant for a later point?",
                st, [(line, f"{u.call}({key}) without the lock")], [line, acq],
                confidence="medium",
            )
        self._imbalance(w, d)

    def _imbalance(self, w: Walker, d: _Fn) -> None:
        """get-put.lock-imbalance: returns that hold a lock other returns drop."""
        keys = {k for k, _, _ in d.held}
        for key in sorted(keys):
            held = sorted((s for (k, _, _), s in d.held.items() if k == key),
                          key=lambda s: s.line)
            released = [s for (k, _, _), s in d.released.items() if k == key]
            normal_held = [s for s in held if s.kind != "error"]
            if not normal_held:
                continue  # error exits: error-path.missing-release's
            if released and all(s.kind == "error" for s in released):
                # the success returns keep it, the error returns drop it: a function that
                # returns locked on purpose, or a success path that lost its unlock (low);
                # an error exit of it that keeps the lock is told apart
                for s in held:
                    if s.kind == "error":
                        self._report_imbalance(w, s, "low" if self._helped(w, s) else "medium",
                                               "the function's other error "
                                               "returns unlock it (its success returns keep it "
                                               "locked on purpose)")
                    else:
                        self._report_imbalance(w, s, "low", "")
                continue
            same = {_value(s) for s in released if s.kind != "error"} - {None}
            root = re.match(r"[A-Za-z_]\w*", key)
            cursor = root is not None and root.group(0) in w.facts.cursors
            for s in normal_held:
                if _value(s) in same and not cursor and not self._helped(w, s) and \
                        unguarded_release(w, s.r.rid, key):
                    ret = f"return {s.expr}" if s.expr else "return"
                    self._report_imbalance(w, s, "medium",
                                           f"another path that ends in '{ret}' unlocks it")
                else:
                    self._report_imbalance(w, s, "low", "")

    def _helped(self, w: Walker, s: _ExitSeen) -> bool:
        """A medium finding would rest on what the walker cannot see: a call no pack
        describes, between the acquisition and the exit, is given the lock or the object
        it belongs to (it may drop it: do_dup2(files, ..) drops files->file_lock); the
        lock has two names (`if (a != b)`); it is taken under a test the walker may not
        relate to a later one; or it is not an exclusive lock of a hand-written pack (a
        semaphore is often upped by another context, an RCU section ended by a helper)."""
        r = s.r
        return not (self._exclusive(w, r) and self._hand(w, r.acq_call)) or \
            unknown_calls_between(w, r.acq_line, s.line, given=lock_names(r.key, w)) or \
            compared(w, r.key) or under_if(w, r.acq_line, r.acq_call)

    def _report_imbalance(self, w: Walker, s: _ExitSeen, confidence: str, why: str) -> None:
        r = s.r
        if why:
            msg = (f"this return leaves '{r.key}' locked ({r.acq_call}() at line "
                   f"{r.acq_line}), while {why}. Is an unlock missing here?")
        else:
            msg = (f"this return leaves '{r.key}' locked ({r.acq_call}() at line "
                   f"{r.acq_line}), while the function's other paths unlock it. Is an "
                   f"unlock missing here?")
        w.report(LOCK_IMBALANCE.id, s.line, r.key, msg, s.st,
                 [(s.line, f"return with '{r.key}' held")], [s.line, r.acq_line],
                 confidence=confidence)
