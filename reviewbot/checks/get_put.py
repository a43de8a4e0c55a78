"""get-put: references taken and dropped in pairs, on every path."""

from __future__ import annotations

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import (
    HELD,
    RELEASED,
    Call,
    ChangeContext,
    Checker,
    Exit,
    PathState,
    Raw,
    Res,
    Walker,
    ptr_key,
    static_key,
)
from reviewbot.engine.evidence import unchecked_evidence
from reviewbot.engine.keys import base_of_field, mentions, target_keys
from reviewbot.packs import CallSpec, Packs
from reviewbot.packs.lookup import LEARNED

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

Known false positives: ownership handed over by a call no pack describes (a helper that
adds the object to a list or table); a reference kept on purpose in a static cache.

Confidence: medium (the function releases the reference on other paths: local evidence
even for a pair learned from the kernel). Double release, use after release and wrong
release resting on learned pairs are low (docs/learning.md).
""")

DOUBLE_RELEASE = rule(
    "get-put.double-release", "error", "high",
    "a reference dropped twice on one path, including through a call that consumes it",
    """
What it finds: a release of a reference that this path already dropped, either explicitly or
through a call the pack says consumes it (iget_failed() drops the inode glock via evict;
kobject_put() runs the release function). Also a mutex, spinlock, rwlock or rw_semaphore
unlocked twice on one path (reported by reviewbot/checks/lock_state.py, which knows that
rwlock_t read locks nest; RCU read sections and counting semaphores are left out), unless
a call between the two whose name says it locks is given the lock or its object (a helper
that takes it again), or the path looped through a retry label. A result nothing tested
counts too (`x = kmalloc(..); kfree(x); kfree(x);` frees twice wherever kmalloc() worked).

Why it matters: the second put drops someone else's reference; the object is freed while
still in use.

Example:
fail_put:
    gfs2_glock_put(ip->i_gl);
fail:
    iget_failed(inode);        /* evict puts ip->i_gl again */

Known false positives: a call the pack marks as consuming that drops the reference only on
some of its paths (where the first release is under a flag, `if (free_vfs_inode)
gfs2_glock_put(ip->i_gl)`, and a call between the two is given that flag, `set_bit(
free_vfs_inode ? GIF_FREE_VFS_INODE : GIF_ALLOC_FAILED, &ip->i_flags)`, the flag decides
who puts: the finding is low); an expression reassigned through an out-argument of a call no pack
describes, so that the two releases name different objects; a lock taken again by a
helper no pack describes and whose name does not say so.

Similar public checks: smatch check_locking.c ("double unlocked"), Clang Static Analyzer
alpha.unix.PthreadLock ("This lock has already been unlocked").

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

Known false positives: an object kept alive by another reference the walker does not see
(a second get elsewhere, RCU); a released pointer used only for a comparison or a trace.

Confidence: high.
""")

LOCK_IMBALANCE = rule(
    "get-put.lock-imbalance", "warning", "medium",
    "a path returns with a lock held that other paths of the function release",
    """
What it finds: a return with a lock (mutex, spinlock, rwsem, RCU read section, a learned
lock pair) still held, in a function that releases that lock on its other paths, unless
the function is annotated as returning locked (__acquires / __releases / __must_hold) or
drops the lock before it first takes it (the caller holds it). Decided when every path is
walked (reviewbot/checks/lock_state.py), from what all the returns hold:
- a function whose success returns all keep the lock and whose error returns all drop it
  may return locked on purpose (a lookup that hands back its object locked): low; but an
  error return of such a function that keeps the lock while its other error returns drop
  it is medium (error-path.missing-release does not report those, since the lock is
  handed to the caller on success);
- a return that keeps the lock while another path ending in the same return value (the
  same `return 0;`, both `return;`, a variable the path knows is 0) drops it: medium, the
  two cannot both be right — unless what the walker cannot see may explain it (low): a
  call no pack describes between the acquisition and the return given the lock or its
  object, a lock taken inside an if branch or only released inside one, a lock whose
  object is compared with another pointer, a lock that is not an exclusive lock of a
  hand-written pack (semaphores, RCU, learned pairs);
- any other normal return that keeps it: low (`return 1` locked and `return 0` unlocked
  may be a conditional-lock function's contract).
Error returns that keep a lock in a function that never returns it locked are
error-path.missing-release's (and .direct-return's).

Why it matters: the next caller deadlocks, or lockdep reports a lock held on return to
user space.

Example:
    mutex_lock(&sdp->sd_lock);
    if (!ok)
        return 0;              /* sd_lock still held */
    mutex_unlock(&sdp->sd_lock);
    return 0;

Known false positives: a function whose job is to return with the lock held on some
values of its result and not others, with the same value on both (rare); a lock dropped
by a helper no pack describes and outside the directory (a function of the directory that
lets go of it, as its lock summary says, is followed: no finding); two paths the walker cannot tell apart (a lock taken under
a condition that a later, differently written test repeats).

Similar public checks: smatch check_locking.c ("inconsistent returns"), Clang Static
Analyzer alpha.unix.PthreadLock (no return check).

Confidence: medium for the two disagreements above, low otherwise; a finding on a learned
lock pair is low (reviewbot/engine/evidence.py).
""")

UNCHECKED = rule(
    "get-put.unchecked", "warning", "medium",
    "the result of a call that can fail (must_check in the pack) is ignored",
    """
What it finds: a call statement whose return value is discarded although the pack marks the
call must-check: it can fail, and the caller then has to unwind what it set up. Besides the
hand-written entries, the must-check results learned from linux-source-6.1 (docs/learning.md):
calls whose result at least 90 % of the tree's 20 or more call sites test or return, and
setup calls (`misc_register`, `device_add`, `*_init`, a status result) with 8 or more sites
of which 75 % test it.

Why it matters: the code goes on as if the resource were held, or the setup done: a failed
`device_add()` or `misc_register()` leaves earlier setup in place and a later teardown
undoes what never happened.

Example:
    gfs2_glock_nq(&gh);        /* if this fails, the later dq is wrong */

    misc_register(&ud->misc);  /* learned: 197 of 231 callers test it */
    ret = us_hw_start(ud);
    if (ret)
        goto err_misc;         /* ... and this function unwinds its setup */

Known false positives: a call that cannot fail in the caller's context (the object is
known to be set up), where kernel code conventionally ignores the result; a module init
that registers optional parts on a best-effort basis.

Confidence: medium for a hand-written entry. A learned must-check result alone is low
(reviewbot/engine/evidence.py); medium when the function itself says the call can fail:
it tests the same call elsewhere, or a failure exit after it jumps to unwind code. Similar
public checks: smatch check_unchecked_return / __must_check with gcc's -Wunused-result,
Coccinelle's unchecked-return scripts.
""")


WRONG_RELEASE = rule(
    "get-put.wrong-release", "error", "high",
    "a resource released with a function the pack does not list for it",
    """
What it finds: a release call meant for one kind of resource applied to another (kfree() of a
buffer_head from sb_bread(), brelse() of kmalloc() memory), or kfree() of an object whose
embedded reference-counted member (a kobject after kobject_init*()) is live: only
kobject_put() may free it, even when kobject_init_and_add() failed.

Why it matters: the right release also drops what the object holds and runs its release
callback; freeing it by hand leaks, or frees memory the refcount still points to.

Example:
    err = kobject_init_and_add(&obj->kobj, &ktype, parent, "x");
    if (err) {
        kfree(obj);            /* must be kobject_put(&obj->kobj) */
        return err;
    }

Known false positives: a wrapper that releases either kind correctly while the pack lists
only one kind for it.

Confidence: high.
""")

UNBALANCED_CHANGE = rule(
    "get-put.unbalanced-change", "warning", "medium",
    "the patch removes a release but keeps its acquisition, or adds an acquisition with no release",
    """
What it finds: comparing the function before and after the patch, a release of a resource is
removed while the acquisition stays, or a new acquisition is added that nothing releases,
in a function that otherwise pairs them.

Why it matters: a deleted put is the smallest possible leak; it is easy to miss in a
refactoring that moves code around.

Example:
    -    gfs2_glock_put(gl);
         return 0;

Known false positives: a release moved into a helper the patch adds, or to the caller (the
function now hands the reference out); a refactoring that changes how the resource is
spelled (ip->i_gl, GFS2_I(inode)->i_gl), so that the counts before and after do not meet.

Reported only when no path finding already names the same resource. Confidence: medium.
""")


@register
class GetPutChecker(Checker):
    name = "get-put"
    rules = (LEAK, DOUBLE_RELEASE, USE_AFTER_RELEASE, LOCK_IMBALANCE, UNCHECKED, WRONG_RELEASE)
    events = frozenset({"call", "release", "store", "use", "exit"})

    def on_call(self, w: Walker, st: PathState, call: Call) -> None:
        spec = call.spec
        if spec.must_check and call.statement:
            self._unchecked(w, st, spec, call.line)
        for key in call.releases:
            self._wrong_release(w, st, spec, key, call.line)

    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str, consume: bool) -> None:
        if r.status != RELEASED or r.inferred:
            return
        kind = w.packs.resources.get(r.rid)
        if kind is not None and kind.kind == "lock":
            return  # double unlocks: reviewbot/checks/lock_state.py (it knows nested locks)
        if len(set(st.labels)) != len(st.labels):
            return  # retry labels: too easy to get wrong
        how = (f"{call}() drops it again" if not consume
               else f"{call}() drops it again implicitly (the pack says it consumes '{r.key}')")
        w.report(
            DOUBLE_RELEASE.id, line, r.key,
            f"'{r.key}' is dropped twice on this path: {r.rel_call}() at line {r.rel_line} "
            f"already dropped it and {how}. Is one of the two releases redundant?",
            st, [(line, f"{call}() releases '{r.key}' again")], [r.rel_line, line],
            confidence="low" if consume and _flag_passed_on(w, r, line) else "high",
        )

    def on_store(self, w: Walker, st: PathState, r: Res, line: int, lhs: str) -> None:
        if r.inferred:
            return
        where = "returned" if lhs == "return" else f"stored in {lhs}"
        w.report(
            USE_AFTER_RELEASE.id, line, r.key,
            f"'{r.key}' is {where} after {r.rel_call}() at line {r.rel_line} dropped the "
            f"reference, so whoever receives it will use (and may release) a dropped "
            f"reference. Should it only be handed over on the success path?",
            st, [(line, f"'{r.key}' {where}")], [r.rel_line, line],
        )

    def on_use(self, w: Walker, st: PathState, r: Res, line: int, how: str) -> None:
        if r.inferred:
            return  # an inferred pair says what unwinds, not what frees
        kind = w.packs.resources.get(r.rid)
        if how == "deref" and kind is not None and kind.kind not in ("memory", "ref"):
            return
        if how != "deref" and kind is not None and kind.kind not in ("memory", "ref"):
            return
        if how != "deref" and r.key not in w.facts.locals:
            return  # a field may be kept alive by its owner
        spec = w.packs.calls.get(r.acq_call)
        if spec is not None and spec.returns_arg is not None and _from_caller(w, r.key):
            # dget(new_dentry) of an object the caller passed in: the put drops only the
            # extra reference taken here; the caller's keeps the object alive (vfs_rename)
            return
        w.report(
            USE_AFTER_RELEASE.id, line, r.key,
            f"'{r.key}' is used ({how}) after {r.rel_call}() at line {r.rel_line} released "
            f"it on this path. Could the release move after this use?",
            st, [(line, f"'{r.key}' used")], [r.rel_line, line],
        )

    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None:
        if ex.kind == "error":
            return
        for r in st.res.values():
            if r.inferred:
                continue  # an inferred pair says what the unwind code drops, not what leaks
            if not r.held_untested or r.acq_after_label or r.handed or \
                    w.facts.released_by_loop(r.rid, r.key):
                continue
            kind = w.packs.resources.get(r.rid)
            if kind is None or not w.facts.releases_anywhere(r.rid, r.key):
                continue
            if kind.kind == "lock":
                continue  # get-put.lock-imbalance: reviewbot/checks/lock_state.py
            if r.nonlocal_:
                continue
            if kind.kind not in ("memory", "ref", "holder"):
                continue  # a transaction or published state may be meant to outlive the call
            root = r.key.split("->")[0].split(".")[0].split("+")[0]
            if r.key != root and kind.kind != "holder":
                continue
            if kind.kind == "holder" and root not in w.facts.local_objects:
                continue  # a holder that belongs to someone else
            if kind.kind != "holder" and (root not in w.facts.locals or root in w.facts.local_objects
                                          or root in w.facts.borrowed):
                continue  # kobj = &queue->kobj: the object belongs to the caller
            w.report(
                LEAK.id, ex.node.line, r.key,
                f"this return leaves '{r.key}' held ({r.acq_call}() at line {r.acq_line}); it "
                f"is not stored or returned, and other paths release it. Is a release missing?",
                st, [(ex.node.line, f"return with '{r.key}' held")], [ex.node.line, r.acq_line],
                confidence="medium",
            )

    def _wrong_release(self, w: Walker, st: PathState, spec: CallSpec, key: str, line: int) -> None:
        """A release call for one kind of resource applied to another kind (kfree of a
        buffer_head from sb_bread), or freeing an object whose embedded reference-counted
        member is still live (kfree of an object with an initialised kobject)."""
        kinds = w.packs.resources
        mine = {r.rid for r in st.res.values() if r.key == key}
        same_kind = bool(mine & set(spec.releases))
        for r in list(st.res.values()):
            if r.status != HELD:
                continue
            other = kinds.get(r.rid)
            if other is None:
                continue
            if r.key == key and not same_kind:
                rel_kinds = {kinds[x].kind for x in spec.releases if x in kinds}
                if "memory" in rel_kinds | {other.kind} and other.kind not in rel_kinds:
                    self._report_wrong_release(w, st, r, line, spec)
            elif other.embedded and (r.key == key or r.key.startswith(key + "->")
                                     or r.key.startswith(key + ".")):
                if any(kinds[x].kind == "memory" for x in spec.releases if x in kinds):
                    self._report_wrong_release(w, st, r, line, spec)

    def _report_wrong_release(self, w: Walker, st: PathState, r: Res, line: int,
                              spec: CallSpec) -> None:
        if r.inferred or spec.inferred:
            return
        rels = ", ".join(f"{n}()" for n in w.packs.releasers_of(r.rid)[:2]) or "its own release"
        if r.key.startswith(tuple(f"{k}->" for k in [r.key.split("->")[0]])) and "->" in r.key:
            what = (f"{spec.name}() frees the object that contains '{r.key}', which "
                    f"{r.acq_call}() at line {r.acq_line} initialised; only {rels} may release it")
        else:
            what = (f"'{r.key}' comes from {r.acq_call}() at line {r.acq_line} but is released "
                    f"with {spec.name}(); {rels} is what releases it")
        w.report(WRONG_RELEASE.id, line, r.key, what + ". Should it be released that way?",
                 st, [(line, f"{spec.name}({r.key})")], [line, r.acq_line],
                 confidence="low" if spec.pack == LEARNED else "high")

    def _unchecked(self, w: Walker, st: PathState, spec: CallSpec, line: int) -> None:
        learned_only = spec.pack == LEARNED and not unchecked_evidence(w, spec.name, line)
        w.report(
            UNCHECKED.id, line, spec.name,
            f"the result of {spec.name}() is ignored, but it can fail; should the caller test it "
            f"and unwind?", st, [], [line], confidence="low" if learned_only
            else "medium",  # learned alone is low (reviewbot/engine/evidence.py)
        )


def _static_calls(fn: Function, packs: Packs) -> dict[tuple[str, str, str], list[int]]:
    """(acq|rel, resource id, key) -> lines, for the pack calls in a function."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for c in fn.of_type("call_expression"):
        spec = packs.calls.get(callee(c))
        if spec is None or spec.acquires_nothing:
            continue
        a = c.child_by_field_name("arguments")
        argv = [x for x in (a.named_children if a is not None else []) if x.type != "comment"]
        keys = []
        for t in spec.targets:
            if t.how == "return":
                p = c.parent
                if p is not None and p.type == "assignment_expression":
                    keys.append(static_key(text(p.child_by_field_name("left"))))
            elif 0 <= t.index < len(argv):
                keys.append(static_key(text(argv[t.index])))
        for key in keys:
            for rid in spec.acquires:
                out.setdefault(("acq", rid, key), []).append(line_of(c))
            for rid in spec.releases:
                out.setdefault(("rel", rid, key), []).append(line_of(c))
        for rid, fmt in spec.consumes:  # implicit drops count as releases
            try:
                key = ptr_key(norm(fmt.format(*[norm(text(x)) for x in argv])))
            except (IndexError, KeyError):
                continue
            out.setdefault(("rel", rid, "*" + key.split(")", 1)[-1]), []).append(line_of(c))
    return out


def _flag_passed_on(w: Walker, r: Res, line: int) -> bool:
    """The release of `r` is under a test of a plain variable (`if (free_vfs_inode)`), and
    a call between it and `line` is given that variable: the object records the flag, and
    the consuming call's own release may follow it (evict skips the put it was told the
    caller did)."""
    flag = ""
    for c in w.fn.of_type("call_expression"):
        if line_of(c) != r.rel_line or callee(c) != r.rel_call:
            continue
        p = c.parent
        while p is not None and p.type in ("expression_statement", "compound_statement"):
            p = p.parent
        cond = strip_parens(p.child_by_field_name("condition")) if p is not None \
            and p.type == "if_statement" else None
        if cond is not None and cond.type == "unary_expression":
            cond = strip_parens(cond.child_by_field_name("argument"))
        if cond is not None and cond.type == "identifier" and text(cond) in w.facts.locals:
            flag = text(cond)
    if not flag:
        return False
    return any(r.rel_line < line_of(c) < line and any(mentions(norm(text(a)), flag) for a in args(c))
               for c in w.fn.of_type("call_expression"))


def _handed_over(fn: Function, packs: Packs) -> set[str]:
    """What the function gives to calls that release or keep it by other means than a
    pack pair: a tree function whose summary releases or stores the argument (or the
    object it is a member of), with an acquisition written inside the call naming what it
    acquires (`add_dependency(job, dma_fence_get(fence))`); a put of the address of an
    embedded member (`put_device(&mc_dev->dev)`: the release callback frees the object)."""
    out: set[str] = set()
    summaries = packs.summaries or {}
    for c in fn.of_type("call_expression"):
        a = args(c)
        spec = packs.calls.get(callee(c))
        if spec is not None and spec.releases:
            for t in spec.targets:
                if t.how == "arg" and 0 <= t.index < len(a) and \
                        norm(text(a[t.index])).startswith("&"):
                    member = static_key(norm(text(a[t.index]))[1:])
                    if base_of_field(member) != member:
                        out.add(base_of_field(member))
        summ = summaries.get(callee(c))
        if summ is None:
            continue
        for i in sorted(summ.hands_over | summ.releases_container):
            if i >= len(a):
                continue
            x = strip_parens(a[i]) or a[i]
            inner = packs.calls.get(callee(x)) if x.type == "call_expression" else None
            if inner is not None and inner.acquires:
                out |= set(target_keys(inner, x, static_key))  # no lhs: the targets it is given
                continue
            key = static_key(norm(text(x)).lstrip("&"))
            out.add(base_of_field(key) if i in summ.releases_container else key)
    # `mc_dev = &mc_bus->mc_dev`: what is handed over as mc_dev is inside mc_bus
    for a in fn.of_type("assignment_expression"):
        rhs = norm(text(a.child_by_field_name("right")))
        if rhs.startswith("&") and "->" in rhs:
            lhs = static_key(norm(text(a.child_by_field_name("left"))))
            if lhs in out:
                out.add(base_of_field(static_key(rhs[1:])))
    return out


@register
class UnbalancedChangeChecker(Checker):
    name = "get-put.change"
    rules = (UNBALANCED_CHANGE,)
    events = frozenset({"change"})

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        return check_change(ctx.before, ctx.after, ctx.packs)


def check_change(pre_fn: Function | None, post_fn: Function, packs: Packs) -> list[Raw]:
    """get-put.unbalanced-change: compare the pack calls of a function before and after."""
    before = _static_calls(pre_fn, packs) if pre_fn is not None else {}
    after = _static_calls(post_fn, packs)
    handed = _handed_over(post_fn, packs)
    raws = []
    for (what, rid, key), lines in after.items():
        if what != "acq" or key in handed:
            continue
        n_acq_before = len(before.get(("acq", rid, key), []))
        n_rel_before = len(before.get(("rel", rid, key), []))
        n_rel_after = len(after.get(("rel", rid, key), []))
        if "->" in key and ("rel", rid, "*->" + key.split("->", 1)[1]) in after:
            continue  # a consuming call (iget_failed) drops it
        pairs_elsewhere = any(k[0] == "rel" and k[1] == rid for k in after)
        if n_rel_before and n_rel_after < n_rel_before and len(lines) >= n_acq_before:
            if n_rel_after == 0 or len(lines) > n_rel_after:
                raws.append(Raw(
                    UNBALANCED_CHANGE.id, lines[0], key,
                    f"the patch removes a release of '{key}' ({n_rel_before} before, "
                    f"{n_rel_after} after) but keeps its acquisition at line {lines[0]}. "
                    f"Is the reference dropped somewhere else now?",
                    [(lines[0], f"'{key}' acquired")], [lines[0]], "medium"))
        elif len(lines) > n_acq_before and n_rel_after == 0 and pairs_elsewhere:
            new_line = lines[-1]
            raws.append(Raw(
                UNBALANCED_CHANGE.id, new_line, key,
                f"the patch adds an acquisition of '{key}' at line {new_line} and nothing in "
                f"the function releases it, while it releases its other resources of this "
                f"kind. Is a release missing?",
                [(new_line, f"'{key}' acquired")], [new_line], "medium"))
    return raws


def _from_caller(w: Walker, key: str) -> bool:
    """`key` names an object the caller gave the function: a parameter, or a local
    initialised from one (`new_dentry = rd->new_dentry`)."""
    root = key.split("->")[0].split(".")[0]
    return root in w.fn.params or root in w.facts.borrowed
