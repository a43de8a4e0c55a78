"""get-put: references taken and dropped in pairs, on every path."""

from __future__ import annotations

from ..engine import HELD, RELEASED, Checker, Exit, Res, State, Walker
from ..packs import CallSpec
from . import rule

LEAK = rule(
    "get-put.leak", "warning", "medium",
    "a reference taken in the function is neither dropped nor handed over on a normal return",
    """
What it finds: a path that returns normally while a reference or allocation held in a local
variable is still held, has not escaped (stored in a longer-lived object, returned, passed
to a consuming call), and the function drops that same reference on other paths.

Why it matters: a leaked reference pins the object (a glock never freed, an inode never
evicted); a leaked allocation is lost memory on every call.

Example:
    error = gfs2_glock_get(sdp, no, &gfs2_iopen_glops, CREATE, &gl);
    if (error)
        return error;
    if (skip)
        return 0;              /* gl is never put */
    ...
    gfs2_glock_put(gl);

Confidence: medium.
""")

DOUBLE_RELEASE = rule(
    "get-put.double-release", "error", "high",
    "a reference dropped twice on one path, including through a call that consumes it",
    """
What it finds: a release of a reference that this path already dropped, either explicitly or
through a call the pack says consumes it (iget_failed() drops the inode glock via evict;
kobject_put() runs the release function).

Why it matters: the second put drops someone else's reference; the object is freed while
still in use.

Example:
fail_put:
    gfs2_glock_put(ip->i_gl);
fail:
    iget_failed(inode);        /* evict puts ip->i_gl again */

Confidence: high.
""")

USE_AFTER_RELEASE = rule(
    "get-put.use-after-release", "error", "high",
    "an object used or handed on after the reference that kept it alive was dropped",
    """
What it finds: after a path drops a reference (brelse, kfree, *_put), the pointer is
dereferenced, passed to a call, stored where the caller will find it, or returned.

Why it matters: the object may already be freed or reused; a released buffer handed back
through `*bhp` is released a second time by the caller.

Example:
    if (ret == 0 && gfs2_metatype_check(sdp, bh, mtype)) {
        brelse(bh);
        ret = -EIO;
    }
    *bhp = bh;                 /* the caller brelse()s it again */

Confidence: high.
""")

LOCK_IMBALANCE = rule(
    "get-put.lock-imbalance", "warning", "medium",
    "a path returns with a lock held that other paths of the function release",
    """
What it finds: a normal return with a lock (mutex, spinlock, rwsem, queued glock holder)
still held, in a function that releases that lock on its other paths, unless the function
is annotated as returning locked (__acquires / __releases / __must_hold).

Why it matters: the next caller deadlocks, or lockdep reports a lock held on return to
user space.

Example:
    mutex_lock(&sdp->sd_lock);
    if (!ok)
        return 0;              /* sd_lock still held */
    mutex_unlock(&sdp->sd_lock);

Confidence: medium.
""")

UNCHECKED = rule(
    "get-put.unchecked", "warning", "medium",
    "the result of a call that can fail (must_check in the pack) is ignored",
    """
What it finds: a call statement whose return value is discarded although the pack marks the
call must-check: it can fail, and the caller then has to unwind what it set up.

Why it matters: the code goes on as if the resource were held.

Example:
    gfs2_glock_nq(&gh);        /* if this fails, the later dq is wrong */

Confidence: medium.
""")


class GetPutChecker(Checker):
    def on_release(self, w: Walker, st: State, r: Res, line: int, call: str, consume: bool) -> None:
        if r.status != RELEASED:
            return
        if not consume and st.after_label and r.rel_line:
            return  # error-path.extra-release reports fall-through double releases
        how = (f"{call}() drops it again" if not consume
               else f"{call}() drops it again implicitly (the pack says it consumes '{r.key}')")
        w.report(
            DOUBLE_RELEASE.id, line, r.key,
            f"'{r.key}' is dropped twice on this path: {r.rel_call}() at line {r.rel_line} "
            f"already dropped it and {how}. Is one of the two releases redundant?",
            st, [(line, f"{call}() releases '{r.key}' again")], [r.rel_line, line],
        )

    def on_store(self, w: Walker, st: State, r: Res, line: int, lhs: str) -> None:
        where = "returned" if lhs == "return" else f"stored in {lhs}"
        w.report(
            USE_AFTER_RELEASE.id, line, r.key,
            f"'{r.key}' is {where} after {r.rel_call}() at line {r.rel_line} dropped the "
            f"reference, so whoever receives it will use (and may release) a dropped "
            f"reference. Should it only be handed over on the success path?",
            st, [(line, f"'{r.key}' {where}")], [r.rel_line, line],
        )

    def on_use(self, w: Walker, st: State, r: Res, line: int, how: str) -> None:
        kind = w.packs.resources.get(r.rid)
        if how == "deref" and kind is not None and kind.kind not in ("memory", "ref"):
            return
        if how != "deref" and kind is not None and kind.kind != "memory":
            return  # passing a dropped ref on: often a second ref is held; stay quiet
        w.report(
            USE_AFTER_RELEASE.id, line, r.key,
            f"'{r.key}' is used ({how}) after {r.rel_call}() at line {r.rel_line} released "
            f"it on this path. Could the release move after this use?",
            st, [(line, f"'{r.key}' used")], [r.rel_line, line],
        )

    def on_exit(self, w: Walker, st: State, ex: Exit) -> None:
        if ex.kind == "error":
            return
        for r in st.res.values():
            if r.status != HELD or r.nonlocal_ or r.acq_after_label:
                continue
            if w.released_by_loop(r.rid, r.key):
                continue
            kind = w.packs.resources.get(r.rid)
            if kind is None or not w.releases_anywhere(r.rid, r.key):
                continue
            if kind.kind == "lock":
                if r.key in w.annotated_locks:
                    continue
                w.report(
                    LOCK_IMBALANCE.id, ex.node.line, r.key,
                    f"this return leaves '{r.key}' locked ({r.acq_call}() at line "
                    f"{r.acq_line}), while the function's other paths unlock it. Is an "
                    f"unlock missing here?",
                    st, [(ex.node.line, f"return with '{r.key}' held")], [ex.node.line, r.acq_line],
                    confidence="medium",
                )
                continue
            if kind.kind not in ("memory", "ref", "holder"):
                continue  # a transaction or published state may be meant to outlive the call
            root = r.key.split("->")[0].split(".")[0].split("+")[0]
            if r.key != root and kind.kind != "holder":
                continue
            if kind.kind == "holder" and root not in w.local_objects:
                continue  # a holder that belongs to someone else
            if kind.kind != "holder" and (root not in w.locals or root in w.local_objects):
                continue
            w.report(
                LEAK.id, ex.node.line, r.key,
                f"this return leaves '{r.key}' held ({r.acq_call}() at line {r.acq_line}); it "
                f"is not stored or returned, and other paths release it. Is a release missing?",
                st, [(ex.node.line, f"return with '{r.key}' held")], [ex.node.line, r.acq_line],
                confidence="medium",
            )

    def on_unchecked(self, w: Walker, st: State, spec: CallSpec, line: int) -> None:
        w.report(
            UNCHECKED.id, line, spec.name,
            f"the result of {spec.name}() is ignored, but it can fail; should the caller test it "
            f"and unwind?", st, [], [line], confidence="medium",
        )
