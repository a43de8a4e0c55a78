"""context.blocking-in-reclaim: work that may block on the cluster, reached from a reclaim
entry point (the seed thread's deadlock: the shrinker evicts an inode, the final glock put
calls into DLM, DLM needs memory or waits for fencing, fencing waits for the shrinker).

The call graph (reviewbot/knowledge/callgraph.py) says which functions reclaim reaches and
which of their calls may block there; this checker reports them. In a whole-file audit a
blocking chain is reported once, where the blocking is decided (the primitive, or the put
that is the last); reviewing a patch, a call into a blocking callee is reported too, so
that a patch that moves existing blocking code into reach is told in the function it touched.
"""

from __future__ import annotations

from reviewbot.checks import register, rule
from reviewbot.checks.context_common import down, record_of, spell, trace_of
from reviewbot.engine import Checker, FunctionContext, Raw

BLOCKING_IN_RECLAIM = rule(
    "context.blocking-in-reclaim", "warning", "medium",
    "a call that may block on the cluster is reached from a memory-reclaim entry point",
    """
What it finds: a call that may block on the cluster — a glock put that may be the final
one, a synchronous cluster-lock enqueue, a DLM call, or an allocation whose flags let it
recurse into filesystem reclaim — on a path from a reclaim entry point: an ops member the
packs name (`super_operations.evict_inode`, `.destroy_inode`, `.free_inode`, a shrinker's
`.scan_objects`/`.count_objects`) or a function they name (`gfs2_clear_inode`). The
packs' reclaim tests (`current->flags & PF_MEMALLOC`, `current_is_kswapd()`) are taken as
true on those paths, so work deferred under such a test is not reported. The trace and the
message give the chain from the entry point to the call.

Why it matters: reclaim runs in whatever task ran out of memory, and it waits for the
filesystem to let go of an inode. If that inode's teardown waits for the cluster (DLM
messaging needs memory, or waits for fencing, and fencing waits for memory), the task that
has to free memory waits for itself: the node deadlocks. Lockdep's `fs_reclaim` annotation
sees this only at run time, on the path a test happened to take.

Example (the seed's gfs2_clear_inode, 2015):
    static void gfs2_clear_inode(struct inode *inode)
    {
        ...
        gfs2_glock_put(ip->i_gl);   /* may be the last: calls into DLM */
    }

Safe alternative: queue the final put (`gfs2_glock_queue_put()`, what 6.1's
gfs2_evict_inode does under `current->flags & PF_MEMALLOC`), hold another reference so
that this put is not the last, defer the work to a work item, and allocate with `GFP_NOFS`
or inside `memalloc_nofs_save()`/`memalloc_nofs_restore()`
(Documentation/core-api/gfp_mask-from-fs-io.rst).

Known false positives: a path that cannot run in reclaim for a reason the code does not
test with a reclaim test (a flag set only by the task that created the inode, such as
GFS2's GIF_ALLOC_FAILED); a put the caller knows is not the last without a visible
`gfs2_glock_hold()` on the same expression; calls through function pointers are not
followed (false negatives, not positives).
Confidence: medium for cluster calls and final puts; low for an allocation that may
recurse into reclaim, medium when the chain holds a lock reclaim itself takes.
""")

KIND = {"cluster": "may block on the cluster", "put": "may be the final put (and then "
        "call into the cluster)", "alloc": "allocates with flags that may recurse into "
        "filesystem reclaim"}


@register
class BlockingInReclaimChecker(Checker):
    name = "blocking-in-reclaim"
    rules = (BLOCKING_IN_RECLAIM,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        lazy = ctx.callgraph
        if lazy is None or (getattr(lazy, "reach", None) is not None and
                            ctx.fn.name not in lazy.reach):
            return []  # not even the text of the subsystem's files leads here from reclaim
        got = record_of(ctx)
        if got is None:
            return []
        g, r = got
        sites = g.reclaim_sites(r)
        if not sites:
            return []
        here = ctx.callgraph.path
        top, why = g.entry_of(r)
        above = g.entry_chain(r)
        head = " -> ".join(f"{rec.name}()" for rec, _ev in above)
        out = []
        for s in sites:
            attr = "allocs" if s.kind == "alloc" else "blocks"
            steps = down(g, r, s.witness, attr)
            chain = (head + " -> " if head else "") + spell(steps, here)
            last = steps[-1][1].callee
            remedy = g.ctx.remedy.get(last) or g.ctx.remedy.get(s.ev.name)
            locks = [h for h in s.held if h.cls in g.ctx.reclaim_locks]
            confidence = "high"  # the rule's own (medium)
            if s.kind == "alloc" and not locks:
                confidence = "low"
            msg = (f"{s.ev.name}() {KIND[s.kind]}, and it is reached in reclaim context: "
                   f"{top.name}() is {why}; chain: {chain}.")
            if locks:
                msg += f" {locks[0].expr} is held here, and reclaim takes it too."
            msg += (f" Use {remedy} here, or defer the work out of reclaim?" if remedy else
                    " Can this be deferred out of reclaim (a work item, a queued put, "
                    "GFP_NOFS or memalloc_nofs_save())?")
            trace = [(ev.line if rec.path == here else s.ev.line,
                      f"{rec.name}() calls {ev.name}()" +
                      ("" if rec.path == here else f" ({rec.path}:{ev.line})"))
                     for rec, ev in above]
            trace += trace_of(steps, here, s.ev.line)
            out.append(Raw(BLOCKING_IN_RECLAIM.id, s.ev.line, last, msg, trace,
                           [s.ev.line], confidence=confidence))
        return out
