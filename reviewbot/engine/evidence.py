"""How sure a finding is, by the evidence under its pair (issue 11, part 5).

A finding whose resource was acquired by a hand-written pack entry keeps its rule's
confidence. One that rests on learned knowledge (the acquiring call, or the resource, is
from the learned layer):
- a leak (error-path.missing-release, error-path.direct-return, get-put.leak) of a learned
  reference keeps the rule's confidence only with the patch's own evidence: the patch
  removed a release of that resource from the function. Otherwise it is low, however well
  the pair is supported: a sibling exit that releases the resource was not evidence enough
  in the audit of linux-source-6.1 (docs/triage-6.1.md), where callees that consume the
  object on failure and ownership moved out of sight made most such findings false;
- a must-check result learned from the tree's callers is low too, unless it is a setup
  call and the function itself says it can fail (unchecked_evidence): it tests the same
  call elsewhere, or it unwinds after it (a later failure exit jumps to its unwind ladder);
- anything else is low: a learned lock or state (page, buffer and inode locks, enables,
  registrations) is often handed to or taken from the caller on purpose, and a pair learned
  from unwind ladders says what the ladder undoes, not that the release frees (double
  release, use after release, extra release rest on more than the pair).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reviewbot.cmodel import callee, line_of, text
from reviewbot.engine.state import RELEASED
from reviewbot.knowledge.names import is_setup_name
from reviewbot.packs.lookup import LEARNED, CallSpec

if TYPE_CHECKING:
    from reviewbot.engine.state import PathState, Res
    from reviewbot.engine.walker import Walker

RANK = {"low": 0, "medium": 1, "high": 2}


LEAKS = frozenset({"error-path.missing-release", "error-path.direct-return", "get-put.leak"})


def _learned(w: Walker, name: str) -> CallSpec | None:
    spec = w.packs.calls.get(name)
    return spec if spec is not None and spec.pack == LEARNED else None


def _is_learned(w: Walker, r: Res) -> bool:
    kind = w.packs.resources.get(r.rid)
    return (kind is not None and kind.pack == LEARNED) or _learned(w, r.rel_call) is not None


def _hand_unwound(w: Walker, st: PathState, r: Res) -> bool:
    """The path released, by hand-written pack calls, something acquired after `r`."""
    return any(x.status == RELEASED and x.rel_seq > r.seq and not _is_learned(w, x)
               for x in st.res.values())


def weigh(w: Walker, st: PathState, rule: str, resource: str, confidence: str) -> str:
    """`confidence`, lowered when the finding of `rule` on `resource` rests on learned
    knowledge without the patch's evidence. Of the resources the path tracks under that
    name, those the rule is about count (held ones for a leak, released ones otherwise); a
    finding rests on learning when the acquisition or the resource kind is learned, or,
    for a leak, when what makes the exit look like it skipped a release is learned: the
    function releases the resource elsewhere by learned calls alone, and the path's own
    unwinding (releases after the acquisition) is by learned calls alone; otherwise, when
    the release involved is learned. A finding on what the function stored in a
    longer-lived place (while releasing it on other paths itself) is low too: the store may
    have handed it over, or made another name for it; so is a leak of a reference stored in
    a member of a local struct then passed to a call no pack or summary describes
    (`oip.upperdentry = dget(upper); ovl_get_inode(sb, &oip)`): the callee may take it over
    or take its own (i2c_new_client_device() and info.of_node), the code cannot tell."""
    leak = rule in LEAKS
    cands = [r for r in st.res.values() if r.key == resource]
    cands = [r for r in cands if (r.held_untested if leak else r.status == RELEASED)] or cands
    best = None
    for r in cands:
        kind = w.packs.resources.get(r.rid)
        acq_learned = _learned(w, r.acq_call) is not None or (
            kind is not None and kind.pack == LEARNED)
        if r.published:
            got = "low"  # stored where another owner (or alias) may free it
        elif leak and r.lent:
            got = "low"  # in a struct passed to a call no pack describes: it may own it now
        elif leak:
            learned = acq_learned or not (w.facts.hand_releases_anywhere(r.rid, r.key)
                                          or _hand_unwound(w, st, r))
            got = "low" if learned and not w.facts.removed_release(r.rid, r.key) else confidence
        else:
            got = "low" if acq_learned or _learned(w, r.rel_call) is not None else confidence
        best = got if best is None or RANK[got] > RANK[best] else best
    if best is None:
        return confidence
    return best if RANK[best] < RANK[confidence] else confidence


def unchecked_evidence(w: Walker, name: str, line: int) -> bool:
    """Local evidence that an ignored result of the setup call `name` (at `line`) should
    be tested: the function tests the same call elsewhere (its result assigned, tested or
    returned), or a failure exit after it leaves by a goto into unwind code (the function
    undoes its setup when a later step fails, so a failure here would leave it half
    done). Only setup calls (`misc_register`, `device_add`): in the audit of six
    directories, the other learned must-check calls found so were a decoder skipping a
    field on purpose, a helper that cannot fail, an error logger whose verdict the code
    did not need (docs/triage-6.1.md)."""
    if not is_setup_name(name):
        return False
    for c in w.fn.of_type("call_expression"):
        if callee(c) != name or line_of(c) == line:
            continue
        p = c.parent
        while p is not None and p.type == "parenthesized_expression":
            p = p.parent
        if p is not None and p.type != "expression_statement":
            return True
    for ifs in w.fn.of_type("if_statement"):
        if line_of(ifs) <= line:
            continue
        c = ifs.child_by_field_name("consequence")
        kids = [k for k in c.named_children if k.type != "comment"] \
            if c is not None and c.type == "compound_statement" else [c]
        if kids and kids[-1] is not None and kids[-1].type == "goto_statement":
            label = kids[-1].child_by_field_name("label")
            target = w.fn.labels.get(text(label)) if label is not None else None
            if target is not None and target.line > line_of(ifs):
                return True
    return False
