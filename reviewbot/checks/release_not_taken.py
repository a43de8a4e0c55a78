"""get-put.release-not-taken: a put of a reference the function never took and was not
given (what counts as borrowed: reviewbot/checks/borrowed.py)."""

from __future__ import annotations

import re

from reviewbot.checks import register, rule
from reviewbot.checks.borrowed import (
    BORROWED,
    combine,
    definitions,
    field_facts,
    field_name,
    origin,
)
from reviewbot.cmodel import args, callee, norm, text
from reviewbot.engine import ABSENT, Checker, PathState, Res, Walker
from reviewbot.packs.lookup import LEARNED

RELEASE_NOT_TAKEN = rule(
    "get-put.release-not-taken", "error", "high",
    "a reference is put that the function never took and was not given",
    """
What it finds: a put (of_node_put, fwnode_handle_put, put_device, ...: a pack release of a
reference) of a pointer that holds no reference on the path that reaches it: a local
whose every value is borrowed — a read of a field the device model owns (`np =
dev->of_node`), the result of a call the packs say returns no reference (`dev_of_node()`,
`of_fwnode_handle()` of such a pointer) — or a field that the file only ever fills with
pointers it drops itself right after storing them (`leaf->fw_token = np; ..
of_node_put(np);` in the setup function, `of_node_put(leaf->fw_token)` in the teardown).
Nothing in the function takes a reference on it (no of_node_get/get_device on any path).

Why it matters: the put drops a reference that belongs to someone else (the device core,
the node's parent); the count underflows, the node or device is freed while still
linked, and a later user crashes far from the bug (the classic `np = dev->of_node; ..
of_node_put(np);`, fixed again and again in drivers).

Example:
    struct device_node *np = pdev->dev.of_node;
    ...
    of_node_put(np);           /* pdev->dev.of_node was never got */

Known false positives: a function that is handed a reference in a field the device
model owns by a convention of its subsystem (a node stored with of_node_get() in another
file, then put here as its release); a field filled in another file with a reference.
Parameters, globals, out-arguments, iterator cursors and results of calls no pack
describes are never reported (the caller may hand over a reference).

error-path.extra-release wins where both report the same put (a goto that reaches an
unwind put before the acquisition).
Smatch has no such check; Coccinelle's scripts/coccinelle/free/put_device.cocci and the
of_node_put scripts look for the opposite (a missing put).
Confidence: high.
""")


@register
class ReleaseNotTakenChecker(Checker):
    name = "release-not-taken"
    rules = (RELEASE_NOT_TAKEN,)
    events = frozenset({"release"})

    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str,
                   consume: bool) -> None:
        if r.status != ABSENT or consume:
            return
        kind = w.packs.resources.get(r.rid)
        spec = w.packs.calls.get(call)
        if kind is None or kind.kind != "ref" or spec is None or spec.pack == LEARNED:
            return
        key = r.key
        if any(rid == r.rid and k == key for rid, k in w.facts.static_acquires):
            return  # taken on another path: the other rules' business
        body = w.fn.body
        if body is None:
            return
        facts = field_facts(w.fn, w.packs)
        if key.isidentifier():
            if key in w.fn.params or key not in w.facts.locals:
                return  # given by the caller, or a global: in doubt, quiet
            got = combine([origin(d, body, w.fn.params, w.facts.locals, w.packs, facts)
                           for d in definitions(body, key)])
            if got.kind != BORROWED or _torn_down(w, got.owner, r.rid):
                return
            why = f"'{key}' holds {got.how} (line {got.line})"
            step = (got.line, f"'{key}' = {got.how.split(' (')[0]}")
        else:
            name = field_name(key)
            root = re.match(r"[A-Za-z_]\w*", key)
            owner = root.group(0) if root else ""
            if not name or not facts.stores_borrowed(name) or owner in w.facts.local_objects \
                    or _embedded(w, line, key) or _torn_down(w, owner, r.rid):
                return
            stored, storer = facts.borrowing[name]
            why = (f"the file stores in ->{name} only pointers that the storing function "
                   f"drops itself afterwards ({storer}(), line {stored}), so '{key}' holds "
                   f"no reference")
            step = (stored, f"->{name} stored without a reference in {storer}()")
        w.report(
            RELEASE_NOT_TAKEN.id, line, key,
            f"{call}({key}) drops a reference this function never took: {why}, and nothing "
            f"on this path takes one. Is the put meant for a pointer that was got "
            f"(of_node_get() and the like), or should it go?",
            st, [step, (line, f"{call}({key})")], [line, step[0]],
        )


def _torn_down(w: Walker, owner: str, rid: str) -> bool:
    """The function releases or tears down the object whose field it puts (a release
    callback: `kfree(to_foo(dev))`, `platform_device_unregister(pdev)`): whoever made that
    object may have parked a reference in it for this moment."""
    if not owner:
        return False
    release_re = w.packs.idioms.release_re
    for c in w.fn.of_type("call_expression"):
        name = callee(c)
        spec = w.packs.calls.get(name)
        if spec is not None and rid in spec.releases:
            continue  # the puts themselves
        if (spec is not None and spec.releases) or \
                (release_re is not None and release_re.search(name)):
            # the object itself (`pdev`, `to_foo(dev)`), not one of its members
            whole = re.compile(rf"(?<![\w>.]){re.escape(owner)}(?!\w|->|\.)")
            if any(whole.search(norm(text(x))) for x in args(c)):
                return True
    return False


def _embedded(w: Walker, line: int, key: str) -> bool:
    """The put names an embedded object (`put_device(&x->dev)`), not a stored pointer."""
    lines = w.fn.source.splitlines()
    if not 0 < line <= len(lines):
        return False
    return f"&{key}" in norm(lines[line - 1].decode("utf-8", "replace"))
