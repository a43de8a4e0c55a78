"""context.sleep-in-atomic: a call that may sleep, made while a spinlock is held.

Reported in the function that holds the lock, at the call, with the chain down to the
sleeping primitive: public checkers (smatch's check_sleep_info, sparse's context checks)
report the sleeping callee, far from the cause. The lock may be taken by a spin_lock*
primitive or by a callee that returns holding it (6.1's `gfs2_log_lock()`, an inline of
fs/gfs2/log.h); "may sleep" comes from the call graph's facts
(reviewbot/knowledge/callgraph.py), so a chain through helpers and macros needs no pack
entry per helper.
"""

from __future__ import annotations

import re

from reviewbot.checks import register, rule
from reviewbot.checks.context_common import record_of, spell, trace_of
from reviewbot.engine import Checker, FunctionContext, Raw
from reviewbot.knowledge.callgraph import Witness, key_class
from reviewbot.knowledge.lockconds import shown, step_of
from reviewbot.knowledge.sleeps import Sleep, sleeps_at

SLEEP_IN_ATOMIC = rule(
    "context.sleep-in-atomic", "error", "high",
    "a call that may sleep is made while a spinlock is held",
    """
What it finds: a call that may sleep — a sleeping primitive the packs name
(`wait_event*`, `wait_for_completion*`, `msleep`, `mutex_lock*`, `kthread_stop`, ...), an
allocation whose flags may sleep (`GFP_KERNEL`, `GFP_NOFS`), or a function whose code
reaches one of those — made on a path where a spinlock (or rwlock) taken in this function
is still held: taken by `spin_lock*()` itself or by a callee that returns holding it
(`gfs2_log_lock()`). It is reported at the call, in the function that holds the lock,
with the chain down to the sleeping primitive.

Why it matters: a task that sleeps holding a spinlock can be scheduled out while other
CPUs spin on the lock, or deadlock if the lock's other users run in interrupt context;
with preemption disabled the scheduler complains ("BUG: sleeping function called from
invalid context"). Such calls hide on error paths — a consistency check that withdraws
the filesystem, called under the log lock — because the normal path never reaches them.

Example:
    spin_lock(&sdp->sd_log_lock);
    ...
    if (unlikely(state == SFS_FROZEN))
        gfs2_assert_withdraw(sdp, 0);   /* -> gfs2_withdraw() -> wait_on_bit() */

Safe alternative: move the sleeping call out of the locked region (drop the lock first,
or record the error and act on it after the unlock), use the non-sleeping variant
(`GFP_ATOMIC`/`GFP_NOWAIT`, a delayed withdraw such as `gfs2_withdraw_delayed()`), or make
the lock a mutex if everything under it may sleep.

Known false positives: a callee that sleeps only on a path the caller's arguments exclude
where the argument is not a constant at the call, or where the exclusion rests on what the
graph does not model (that a checked allocation is not NULL and `kzalloc()` zeroes: tipc's
`tipc_crypto_start()`; a flag passed through a global or a list) (a constant is carried into the callee:
`gfs2_recover_journal(jd, false)`, `fasync_helper(0, filp, 0, fapp)`, a `GFP_NOWAIT` mask
tested by `gfpflags_allow_blocking()`, the `false` a macro such as `gfs2_io_error_bh()`
passes); a sleep behind a put that cannot be the last or a `WARN_ON()` that cannot fire
(kept at low confidence); a lock released on every path before the call where the release
is made through a function pointer or a callee outside the graph; a wrapper that takes a
spinlock for some clients and a mutex for the others (dm-bufio's `dm_bufio_lock()`: `if
(c->no_sleep) spin_lock_bh(); else mutex_lock();`) where the sleeping path does not test
the client's kind — the sleep is then reported one step lower (a direct sleep medium, a
chain low), as the clients that reach it may all be the mutex's; an invariant of the data
(a state that cannot hold while the lock is held). Conditional locking is followed
(reviewbot/knowledge/lockconds.py): a lock taken under a test is let go on the other side
of a later test of the same condition (`if (lock) write_lock(); ... if (lock)
write_unlock();`, also in a caller of the wrapper, and with a constant argument such as
`unlist_netdevice(dev, true)`), when nothing in the function changes what the test reads.
Waits that drop a lock to sleep (`wait_event_interruptible_locked()`,
`wait_event_lock_irq()`: the pack's `sleeps_dropping`) are not reported for the lock they
drop, at the call or through a helper that makes it; locking calls whose lock is not the
first argument say which (the pack's `lock_args`: `pte_offset_map_lock(mm, pmd, addr,
&ptl)` takes `ptl`, `pte_unmap_unlock(pte, ptl)` drops it, so mm's helpers that drop the
page-table lock before they sleep are seen to).
Confidence: high when this function calls the sleeping primitive itself; through callees,
medium when the chain is strong evidence, low otherwise (shown by `review`, by `audit
--min-confidence low`). The evidence of the chain (reviewbot/knowledge/sleeps.py) is said
in the message: a chain is strong when its primitive always sleeps (not one the pack's
`sleeping_rarely` names, such as `cond_resched()`, nor an allocation), no condition on it
hides the sleep from the call (a put that may be the last, `refcount_dec_and_test()`,
`kref_put()`, a decremented count; a `WARN_ON()` branch; a test of a flag parameter that
no constant decides; code built only for debugging), it is at most four functions deep,
and the lock is not one a wrapper takes only under a test the path does not show. History
of that rule: session 5 sampled 20 through-callee findings outside fs/gfs2 and fs/ocfs2
(19 false); session 6 read the 12 strong ones of its pool (2 real, 10 false: conditional
locking, waits that drop the page-table lock in a callee), so strong chains stayed low;
session 7 followed those classes and the ones its wider pool showed (a lock held when the
returned object is not NULL, flags stored in fields, enumerations) and re-sampled 20 of the
21 strong chains of a pool of some 130 directories: 18 real, 1 defensible, 1 false
(docs/triage-6.1.md, last section), so strong chains are medium.
""")


# the functions a strong chain may pass through, the callee included: each one more is one
# more condition the chain does not show (ext4's ext4_get_group_desc() -> ext4_error() ->
# ... -> ext4_commit_super() reports an invariant that cannot break there, 5 and more deep)
STRONG_HOPS = 4


def _confidence(s: Sleep, cond: bool = False) -> str:
    """high: the sleeping primitive is called here; medium: through at most STRONG_HOPS
    callees, a primitive that always sleeps, reached with no condition the call cannot see
    (strong evidence); low: anything weaker (see the rule's doc). A lock held only under a
    test the path does not show takes one step off (high to medium; a chain is low)."""
    if not s.chain:
        return "medium" if cond else "high"
    return "low" if cond or not strong(s) else STRONG


# what a strong chain through callees is reported at: medium since session 7's re-sample of
# them outside fs/gfs2 and fs/ocfs2 (docs/triage-6.1.md, last section: >= 4 real per false
# positive once conditional locking, page-table locks and flags stored in fields were
# followed; session 6: 2 real of 12, kept low); the message says that the chain is strong
STRONG = "medium"


def strong(s: Sleep) -> bool:
    return bool(s.chain) and not s.weak and len(s.chain) <= STRONG_HOPS


def _family(cls: str | None) -> str | None:
    """A lock a call names (`ext4_group_lock_ptr(sb,group)`) by the call alone: a callee
    that lets go of one names it through its own parameters (`e4b->bd_sb`), as loosely as
    a lock of a field is named by the field."""
    return cls.split("(", 1)[0] + "()" if cls and "(" in cls else cls


_LOCKISH = re.compile(r"(?:^|_)(?:try)?lock(?:_|$)")


@register
class SleepInAtomicChecker(Checker):
    name = "sleep-in-atomic"
    rules = (SLEEP_IN_ATOMIC,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        if not any(_LOCKISH.search(c) for c in ctx.fn.callees()):
            return []  # nothing here takes a lock (a lock taker's name says so)
        got = record_of(ctx)
        if got is None:
            return []
        g, r = got
        here = ctx.callgraph.path
        out = []
        for ev, held in r.locked_calls:
            spins = [h for h in held if h.spin]
            found = None
            for s in sleeps_at(g, ev, r):  # the best evidence first
                # a callee (or wait) that lets go of the lock to sleep (unlock; schedule();
                # lock) is fine for that lock
                let_go = {_family(key_class(k, r.body.params)) for k in s.drops}
                left = [h for h in spins if _family(h.cls) not in let_go]
                if left:
                    found = (s, left)
                    break
            if found is None:
                continue
            s, left = found
            # a lock a wrapper takes only under a test (a spinlock for some clients, a mutex
            # for the others) that this path does not show
            at = step_of(r.body, ev, g.cond_cache) if any(h.given for h in left) else -1
            plain = [h for h in left if shown(h.given, r.body, at, g.cond_cache)]
            lock = (plain or left)[-1]
            cond = not plain
            w = Witness(ev.line, ev.name, not s.chain, "sleeps")
            steps = [(r, w), *s.chain]
            msg = (f"{ev.name}() may sleep, and {lock.expr} is held (taken by {lock.via}() at "
                   f"line {lock.line}); chain: {spell(steps, here)}. Move the call out of the "
                   f"locked region, or use a variant that does not sleep?")
            if cond:
                tests = " and ".join(c if v else f"!({c})" for c, v in lock.given)
                msg += (f" ({lock.via}() takes {lock.expr} only when {tests}, which this path "
                        f"does not test: the callers that reach the sleep may be the others.)")
            elif strong(s):
                msg += " (The chain is strong evidence: a sleep that always happens, on no "\
                       "condition this call cannot see.)"
            trace = [(lock.line, f"{lock.via}() takes {lock.expr}")]
            trace += trace_of(steps, here, ev.line)
            out.append(Raw(SLEEP_IN_ATOMIC.id, ev.line, lock.expr, msg, trace,
                           [ev.line, lock.line], confidence=_confidence(s, cond)))
        return out
