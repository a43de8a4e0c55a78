"""error-path: what an error exit leaves held, releases twice, or returns as success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from reviewbot.checks import register, rule
from reviewbot.cmodel import Node, norm, text
from reviewbot.engine import (
    ABSENT,
    FAILED,
    HELD,
    RELEASED,
    Checker,
    Cond,
    Exit,
    PathState,
    Res,
    Walker,
)

MISSING_RELEASE = rule(
    "error-path.missing-release", "warning", "high",
    "an error exit leaves a resource held that was acquired on that path",
    """
What it finds: an exit that returns an error (a negative errno, ERR_PTR(), or an error
variable known to be non-zero) while a lock, reference, holder or allocation taken earlier
on the same path is still held, and nothing has handed it over (stored in a longer-lived
object, returned, passed to a consuming call). The failure branch right after an
acquisition holds nothing (`error = gfs2_glock_nq_init(...); if (error) goto out;`). A
result that nothing in the function tests is held wherever the call worked
(`a = kmalloc(..); b = kmalloc(..); if (!b) return -ENOMEM;` leaks `a`).

Why it matters: error paths run rarely and are tested less; a leaked glock holder or
reference pins the object forever (unmount hangs), a leaked lock deadlocks the next caller.

Example:
    error = gfs2_glock_nq_init(io_gl, LM_ST_SHARED, GL_EXACT, &ip->i_iopen_gh);
    ...
    if (error)
        goto fail_gunlock3;    /* fail_gunlock3 never dequeues ip->i_iopen_gh */

Known false positives: a resource released by a helper no pack describes
(`foo_cleanup(ctx)` that drops ctx->lock); an acquisition whose success the code records
in a flag the walker does not relate to the resource.

Reported only when the function itself releases that resource somewhere, or when the exit
unwinds other resources taken before it (so the unwind ladder skipped this one).
Confidence: high (path-sensitive). A finding on a pair learned from the
kernel (docs/learning.md) is high only when the function itself, or its pre-image,
releases that resource; else medium for a well-supported pair, low for a weak one.
""")

DIRECT_RETURN = rule(
    "error-path.direct-return", "warning", "high",
    "a return of an error bypasses the unwind ladder after resources were acquired",
    """
What it finds: a plain `return err;` on a failure path, taken after resources were acquired,
in a function whose goto labels release those resources. The return skips the ladder.

Why it matters: the early return is the most common way a patch breaks an unwind ladder:
it looks harmless in the hunk and leaks everything acquired above it.

Example:
    gfs2_holder_init(ip->i_gl, LM_ST_SHARED, 0, &gh);
    error = gfs2_glock_nq(&gh);
    if (error)
        return error;          /* skips gfs2_holder_uninit(&gh) under out_uninit */

Known false positives: an early return before the resource is really held, when the
acquisition's success is tested indirectly (through a flag or a helper); a function whose
labels are meant to release only on some paths.

Confidence: high.
""")

EXTRA_RELEASE = rule(
    "error-path.extra-release", "warning", "high",
    "an error exit releases something not held on that path",
    """
What it finds: unwind code that releases a resource which, on the path that reached it, was
already released (a double release through fall-through into a later label), whose
acquisition failed (a goto to a label too deep in the ladder), or which was never acquired.

Why it matters: a double put frees an object someone else still uses; unlocking or
dequeuing what is not held corrupts the lock state. Both show up as rare, hard crashes.

Example:
    posix_acl_release(default_acl);       /* released here ...            */
    if (error)
        goto fail_gunlock3;               /* ... falls through fail_free_acls, */
    ...
fail_free_acls:
    if (default_acl)
        posix_acl_release(default_acl);   /* ... released again          */

Known false positives: unwind code guarded by a test the walker cannot relate to the
acquisition (`if (ctx->locked) unlock(...)` with `locked` set elsewhere); a release helper
that tolerates a resource that was never acquired.

Confidence: high.
""")

DISORDERED = rule(
    "error-path.disordered", "warning", "medium",
    "the unwind releases in an order other than the reverse of acquisition",
    """
What it finds: unwind code (after a goto) that drops a lock or a queued glock holder while a
transaction begun after it (gfs2_trans_begin) is still open: the transaction must end first.

Why it matters: nested holders and transactions must be undone innermost first; ending a
transaction after dropping the glock that protects it, or dequeuing the outer holder
first, opens a window in which the inner state is unprotected.

Example:
    error = gfs2_glock_nq_init(ip->i_gl, LM_ST_EXCLUSIVE, 0, &gh);
    ...
    error = gfs2_trans_begin(sdp, RES_DINODE, 0);
    ...
fail:
    gfs2_glock_dq_uninit(&gh);       /* the glock is dropped first ... */
    gfs2_trans_end(sdp);             /* ... while the transaction is still open */

Known false positives: a transaction whose protection does not depend on the lock dropped
first, so that the order is harmless.

Confidence: medium.
""")

MISSING_ERRNO = rule(
    "error-path.missing-errno", "warning", "medium",
    "a goto to an error label with the error variable still 0 from an earlier success",
    """
What it finds: a failure test (a NULL or IS_ERR() result of a call, a non-zero status from a
call) followed by a goto to a label whose code returns the error variable, while that
variable is known to be 0 on this path (set by an earlier successful call).

Why it matters: the function reports success after failing; callers go on to use what was
never set up.

Example:
    error = gfs2_rindex_update(sdp);   /* error == 0 */
    ...
    inode = new_inode(sb);
    if (!inode)
        goto fail;                     /* returns 0 */

Known false positives: an error variable set through a pointer by a helper
(`get_status(&err)`); a deliberate success return after an optional step whose test looks
like a failure test. Where the function itself sets the variable to 0 right before
another goto to the same label after a failure (`if (ret) { ret = 0; goto out; }`), it
skips failures on purpose there: the finding is low.

Not reported for a goto whose condition is not a failure test (`if (undo) goto out;` with
the error deliberately 0 is a cleanup path that returns success).

In loops: the same failure test followed by a `break` out of the loop (not out of a
switch) while an error variable the function returns (assigned an errno somewhere, or
returned by some failure test: `if (ret) return ret;`) is 0 from an earlier success, and
the path reaches `return ret;` with nothing tested on the way (code after the loop that
tests something, `if (i < n) return -ENOMEM;`, may be the failure's own test). A NULL
that breaks out is a failure only from an allocation a pack knows: from a lookup it ends
the walk. A goto out of a loop is the goto form (the 0 may come from the previous round).

Confidence: medium.
Similar public check: smatch check_missing_error_code.c ("missing error code").
""")


def _what(r: Res) -> str:
    return f"'{r.key}'"


def _zeroed_before_goto(w: Walker, var: str, label: str) -> bool:
    """The function itself sets `var = 0` right before another `goto label` (`if (ret) {
    ret = 0; goto out; }`): it skips failures there on purpose, and a 0 on the way to that
    label may be meant too (ext4_fc_replay_create(): a missing parent directory)."""
    for g in w.fn.of_type("goto_statement"):
        if text(g.child_by_field_name("label")) != label:
            continue
        prev = g.prev_named_sibling
        while prev is not None and prev.type == "comment":
            prev = prev.prev_named_sibling
        e = prev.named_children[0] if prev is not None and prev.type == "expression_statement" \
            and prev.named_child_count else None
        if e is not None and e.type == "assignment_expression" and \
                norm(text(e.child_by_field_name("left"))) == var and \
                norm(text(e.child_by_field_name("right"))) == "0":
            return True
    return False


@dataclass(frozen=True)
class ErrnoCheck:
    """A goto to an error label with the error variable 0: decided at the exit, since the
    unwind code may still set the error (`if (!err) err = -E;`)."""

    line: int
    var: str
    subject: str  # what failed
    label: str  # "": a break out of a loop


class Unwind(NamedTuple):
    """error-path's slot: how this path entered the unwind code. (A named tuple: it is
    replaced at every branch of every path, and tuples are made fastest.)"""

    entry_goto: int = 0  # the goto that entered the unwind code
    cond_after_label: bool = False  # a branch was taken inside the unwind code
    last_cond: Cond | None = None  # what the last branch on the path decided
    errno_check: ErrnoCheck | None = None


_START = Unwind()
_NO_LABELS = frozenset({"release", "exit"})
_NO_ERRNO = frozenset({"release", "branch", "label", "goto", "exit"})
_BREAKS = frozenset({"branch", "assume", "stmt", "exit"})  # missing-errno on a loop's break
_LOOPS = frozenset({"for_statement", "while_statement", "do_statement"})


def _leaves_loop(node: Node) -> bool:
    """A break that leaves a loop (not a switch)."""
    # the syntax view keeps no parent link: the tree-sitter node under it does
    a = getattr(node.ast, "_ts", node.ast)
    a = a.parent if a is not None else None
    while a is not None and a.type not in _LOOPS and a.type != "switch_statement":
        a = a.parent
    return a is not None and a.type in _LOOPS


@register
class ErrorPathChecker(Checker):
    name = "error-path"
    rules = (MISSING_RELEASE, DIRECT_RETURN, EXTRA_RELEASE, DISORDERED, MISSING_ERRNO)
    events = frozenset({"release", "branch", "assume", "label", "goto", "stmt", "exit"})

    def events_for(self, w: Walker) -> frozenset[str]:
        # a break out of a loop in a function that returns an error variable
        breaks = _BREAKS if any(n.kind == "break" and _leaves_loop(n) for n in w.fn.nodes) \
            and self._break_vars(w) else frozenset()
        if not w.fn.labels and not any(n.kind == "goto" for n in w.fn.nodes):
            return _NO_LABELS | breaks  # the slot only records how a path reached unwind code
        if not any(r in w.facts.errno_vars for r in w.facts.label_returns.values()):
            return _NO_ERRNO | breaks  # no label returns an error variable
        return self.events - {"stmt"} | breaks

    def initial(self) -> Unwind:
        return _START

    def slot_key(self, slot: Unwind) -> tuple:
        # the entering goto and a pending errno check make paths differ; the rest does not
        ec = slot.errno_check
        return slot.entry_goto, ((ec.line, ec.var) if ec else ())

    def widen(self, slot: Unwind) -> Unwind:
        return slot._replace(errno_check=None) if slot.errno_check else slot

    def on_branch(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        if slot.errno_check is not None and not slot.errno_check.label:
            # code after the loop tests something (`if (i < n) return -ENOMEM;`): it may
            # be the failure's own test, which the walk cannot relate to the break
            slot = slot._replace(errno_check=None)
            st.set_slot(self.name, slot)
        if st.after_label and not slot.cond_after_label:
            st.set_slot(self.name, Unwind(slot.entry_goto, True, slot.last_cond, slot.errno_check))

    def on_stmt(self, w: Walker, st: PathState, node: Node) -> None:
        if node.kind != "break" or not _leaves_loop(node):
            return
        slot = st.slots[self.name]
        check = self._break_check(w, st, node, slot.last_cond)
        if check is not None:
            st.set_slot(self.name, slot._replace(errno_check=check))

    @staticmethod
    def _break_vars(w: Walker) -> list[str]:
        """Error variables the function returns: assigned an errno somewhere, or handed
        to the caller by a failure test (`if (ret) return ret;`)."""
        return sorted((w.facts.errno_vars | w.facts.propagated) & w.facts.returned_vars)

    def _break_check(self, w: Walker, st: PathState, node: Node,
                     cond: Cond | None) -> ErrnoCheck | None:
        """A break out of a loop after a failure test while an error variable the function
        returns is 0 from an earlier success (decided at the exit, like a goto's)."""
        if cond is None or not cond.from_call or not cond.fresh:
            return None
        subject, taken = cond.subject, cond.taken
        if not subject or subject.startswith("#"):
            return None
        if taken <= frozenset("Z") and not any(k == subject for _rid, k in w.facts.static_acquires):
            return None  # NULL from a lookup ends a walk (not so from an allocation)
        pointer_fail = taken <= frozenset("ZE")
        status_fail = "Z" not in taken and "N" in taken and subject not in w.facts.local_pointers
        if not (pointer_fail or status_fail):
            return None
        for var in self._break_vars(w):
            if var != subject and var in w.facts.locals and var in st.from_call and \
                    st.value(var) == frozenset("Z"):
                return ErrnoCheck(node.line, var, subject, "")
        return None

    def on_assume(self, w: Walker, st: PathState, cond: Cond | None) -> None:
        # only a failure test of a call's result can start an errno check (_errno_check)
        if cond is not None and (not cond.from_call or cond.subject[:1] in ("", "#")):
            cond = None
        slot = st.slots[self.name]
        if slot.last_cond is not cond:
            st.set_slot(self.name, Unwind(slot.entry_goto, slot.cond_after_label, cond,
                                          slot.errno_check))

    def on_label(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        if slot.cond_after_label:
            st.set_slot(self.name, slot._replace(cond_after_label=False))

    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str, consume: bool) -> None:
        if r.inferred or len(set(st.labels)) != len(st.labels):
            return  # an inferred pair, or a path looping through a label (retry:)
        res_kind = w.packs.resources.get(r.rid)
        if r.status == RELEASED:
            if consume or not st.after_label or not r.rel_line:
                return  # an implicit drop, or not in unwind code: not this rule's case
            w.report(
                EXTRA_RELEASE.id, line, r.key,
                f"{_what(r)} is released twice on this error path: {r.rel_call}() at line "
                f"{r.rel_line} already released it, and the unwind code reached through "
                f"{'/'.join(st.labels) or 'the labels'} releases it again with {call}().",
                st, [(line, f"{call}({r.key}) again")], [r.rel_line, line],
            )
        elif consume:
            return  # an implicit drop takes whatever is there; nothing to say
        elif r.status == FAILED and st.after_label:
            tested = st.value(r.key) != frozenset("ZNPE")
            if (res_kind and res_kind.null_ok and "E" not in st.value(r.key)) or tested:
                return
            if res_kind and res_kind.null_ok and r.acq_call and r.acq_call in w.packs.calls:
                spec = w.packs.calls[r.acq_call]
                if all(t.how != "return" for t in spec.targets):
                    return  # a failed out-argument call leaves the pointer as it was (NULL)
            w.report(
                EXTRA_RELEASE.id, line, r.key,
                f"{_what(r)} is released by {call}() on a path where {r.acq_call}() at line "
                f"{r.acq_line} failed, so it was never acquired; is the goto meant for a "
                f"label further down the ladder?",
                st, [(line, f"{call}({r.key})")], [r.acq_line, line],
            )
        elif r.status == ABSENT and st.after_label and res_kind and res_kind.kind == "lock":
            if (r.rid, r.key) not in w.facts.static_acquires or r.key in w.facts.annotated_locks:
                return
            acq_lines = w.facts.acquire_lines.get((r.rid, r.key), [])
            slot = st.slots[self.name]
            entry = slot.entry_goto
            if not acq_lines or not entry or entry > min(acq_lines):
                return  # the goto must jump from before the lock is taken
            if slot.cond_after_label or w.facts.entered_locked(r.rid, r.key):
                return  # a guarded unlock, or the caller holds the lock
            w.report(
                EXTRA_RELEASE.id, line, r.key,
                f"{call}({r.key}) runs on a path where {r.key} was never locked: the goto at "
                f"line {entry} jumps here before the lock is taken at line "
                f"{min(acq_lines)}. Is the goto meant for a later label?",
                st, [(line, f"{call}({r.key})")], [entry, line],
            )
        elif r.status == ABSENT and st.after_label and res_kind and res_kind.kind == "holder":
            if (r.rid, r.key) not in w.facts.static_acquires or r.key in w.facts.reinit:
                return
            root = r.key.split("+")[0].split("[")[0]
            if root not in w.facts.locals:
                return
            w.report(
                EXTRA_RELEASE.id, line, r.key,
                f"{call}({r.key}) runs on a path where {r.key} was never acquired "
                f"(reached through {'/'.join(st.labels)}); is the goto meant for a later label?",
                st, [(line, f"{call}({r.key})")], [line],
            )

    def on_goto(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        new = slot
        if not st.after_label:
            new = new._replace(entry_goto=node.line)
        check = self._errno_check(w, st, node, slot.last_cond)
        if check is not None:
            new = new._replace(errno_check=check)
        if new is not slot:
            st.set_slot(self.name, new)

    def _errno_check(self, w: Walker, st: PathState, node: Node,
                     cond: Cond | None) -> ErrnoCheck | None:
        """A goto after a failure test while the returned error variable is 0."""
        if node.succ and node.succ[0].line < node.line:
            return None  # a backward goto retries (`goto again` after -EAGAIN): not an exit
        ret = w.facts.label_returns.get(node.label, "")
        if not ret or not ret.isidentifier() or ret not in w.facts.locals:
            return None
        if st.value(ret) != frozenset("Z") or ret not in st.from_call:
            return None  # the error variable must be 0 from an earlier success, not its initializer
        if cond is None:
            return None
        subject, taken = cond.subject, cond.taken
        if not subject or subject == ret or not cond.from_call:
            return None
        if not cond.fresh:
            return None  # not the test right after the call: a state, not its failure

        if ret not in w.facts.errno_vars or subject.startswith("#"):
            return None
        pointer_fail = taken <= frozenset("ZE")
        # `if (ret)` fails for a status; `if (prev)` on a pointer is its success
        status_fail = "Z" not in taken and "N" in taken and not subject.startswith("#") \
            and subject not in w.facts.local_pointers
        if not (pointer_fail or status_fail):
            return None
        if taken <= frozenset("Z") and node.label not in w.facts.error_labels and \
                not any(k == subject for _rid, k in w.facts.static_acquires):
            # `if (!vma) goto empty_set`: NULL from a lookup may mean "none" (not so from
            # an allocation a pack knows), and no goto brings an error to that label
            return None
        return ErrnoCheck(node.line, ret, subject, node.label)

    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None:
        ec = st.slots[self.name].errno_check
        if ec is not None:
            line, ret, subject, label = ec.line, ec.var, ec.subject, ec.label
            if ex.expr == ret and st.value(ret) == frozenset("Z"):
                jump = f"goto {label}" if label else "break"
                w.report(
                    MISSING_ERRNO.id, line, ret,
                    f"'{jump}' follows a failure of {subject} but '{ret}' is still 0 "
                    f"when the function returns, so it reports success; should '{ret}' be set "
                    f"to an error code first?",
                    st, [(line, f"{jump} with {ret} == 0"), (ex.node.line, f"return {ret}")],
                    [line], confidence="low" if label and _zeroed_before_goto(w, ret, label)
                    else "high",
                )
        if ex.kind != "error":
            return
        # an untested result is held wherever the call worked: counted when nothing in the
        # function tests it (a test the walker did not follow would make this exit its
        # failure branch) and it is a plain local the path kept to itself
        held = [r for r in st.res.values() if r.status == HELD or (
            r.held_untested and r.key.isidentifier() and r.key not in w.facts.tested
            and not r.handed)]
        # what the path unwound says what else it should have (a published object freed
        # at the end is not that evidence: its fields may be freed by another name)
        released_seqs = [r.rel_seq for r in st.res.values()
                         if r.status == RELEASED and not r.published]
        for r in held:
            kind = w.packs.resources.get(r.rid)
            if kind is None:
                continue
            if kind.kind == "lock" and (r.key in w.facts.annotated_locks
                                        or w.facts.entered_locked(r.rid, r.key)):
                continue  # the caller holds it: the function drops and retakes it
            if r.key.startswith("#") or r.acq_after_label:
                continue
            if r.caller_owned and kind.kind in ("memory", "ref"):
                continue  # allocated into the caller's object: it stays there on purpose
            if r.key.split("->")[0].split(".")[0] in w.facts.cursors or w.facts.released_by_loop(r.rid, r.key):
                continue
            anywhere = w.facts.releases_anywhere(r.rid, r.key)
            unwound = any(s > r.seq for s in released_seqs)
            if not (anywhere or unwound):
                continue
            line = ex.node.line
            gotos = [ln for ln, what in st.trail if what.startswith("goto ")]
            after = [ln for ln, what in st.trail if what.startswith("goto ") and ln > r.acq_line]
            if not st.after_label and w.fn.labels:
                if not anywhere:
                    continue
                w.report(
                    DIRECT_RETURN.id, line, r.key,
                    f"this 'return {ex.expr}' leaves {_what(r)} held: it was acquired by "
                    f"{r.acq_call}() at line {r.acq_line}, and the function's unwind code "
                    f"releases it, but this early return skips it. Should it go through the "
                    f"error labels instead?",
                    st, [(line, f"return {ex.expr}")], [line, r.acq_line],
                )
                continue
            at = after[0] if after else (gotos[0] if gotos else line)
            where = (f"the error exit through {'/'.join(st.labels)}" if st.labels
                     else f"this 'return {ex.expr}'")
            w.report(
                MISSING_RELEASE.id, at, r.key,
                f"{where} leaves {_what(r)} "
                f"held: it was acquired by {r.acq_call}() at line {r.acq_line} and nothing on "
                f"this path releases it. Is a release missing from the unwind code?",
                st, [(line, f"return {ex.expr}")], [at, r.acq_line],
            )
        self._disordered(w, st)

    def _disordered(self, w: Walker, st: PathState) -> None:
        rel = [
            r for r in st.res.values()
            if r.status == RELEASED and r.rel_after_label
            and (k := w.packs.resources.get(r.rid)) is not None and k.ordered
        ]
        for a in rel:
            for b in rel:
                if a is b or a.key == b.key:
                    continue
                kb = w.packs.resources[b.rid]
                ka = w.packs.resources[a.rid]
                if kb.kind != "state" or ka.kind == "state":
                    continue  # order matters for what protects an open transaction
                # a acquired first, but released first too
                if a.seq < b.seq and a.rel_seq < b.rel_seq:
                    w.report(
                        DISORDERED.id, a.rel_line, a.key,
                        f"the unwind releases {_what(a)} (line {a.rel_line}) before {_what(b)} "
                        f"(line {b.rel_line}), although {_what(b)} was acquired after it "
                        f"(line {b.acq_line}); should the release order be reversed?",
                        st, [(a.rel_line, f"{a.rel_call}({a.key})"), (b.rel_line, f"{b.rel_call}({b.key})")],
                        [a.rel_line, b.rel_line], confidence="medium",
                    )
