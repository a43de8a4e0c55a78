"""How sure a finding is, by the evidence under its pair (issue 11, part 5).

A finding whose resource was acquired by a hand-written pack entry keeps its rule's
confidence. One that rests on learned knowledge (the acquiring call, or the resource, is
from the learned layer):
- a leak (error-path.missing-release, error-path.direct-return, get-put.leak) of a learned
  reference is high only with local evidence: the function itself (or its pre-image, so
  also a release the patch removed) releases that resource somewhere. Without it, a
  well-supported learned pair gives medium and a weakly supported one low;
- anything else is low: a learned lock or state (page, buffer and inode locks, enables,
  registrations) is often handed to or taken from the caller on purpose, and a pair learned
  from unwind ladders says what the ladder undoes, not that the release frees (double
  release, use after release, extra release rest on more than the pair).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reviewbot.engine.state import RELEASED
from reviewbot.packs.lookup import LEARNED, CallSpec

if TYPE_CHECKING:
    from reviewbot.engine.state import PathState
    from reviewbot.engine.walker import Walker

# A learned pair is well supported when this many functions release it on their error
# path and at most half as many again had that exit and released nothing.
WELL_SUPPORTED = 8
RANK = {"low": 0, "medium": 1, "high": 2}


def well_supported(spec: CallSpec) -> bool:
    return spec.support >= WELL_SUPPORTED and 2 * spec.contradictions <= spec.support


def by_support(spec: CallSpec | None) -> str:
    """The confidence a learned entry alone gives."""
    return "medium" if spec is not None and well_supported(spec) else "low"


LEAKS = frozenset({"error-path.missing-release", "error-path.direct-return", "get-put.leak"})


def _learned(w: Walker, name: str) -> CallSpec | None:
    spec = w.packs.calls.get(name)
    return spec if spec is not None and spec.pack == LEARNED else None


def weigh(w: Walker, st: PathState, rule: str, resource: str, confidence: str) -> str:
    """`confidence`, lowered when the finding of `rule` on `resource` rests on learned
    knowledge without local evidence. Of the resources the path tracks under that name,
    those the rule is about count (held ones for a leak, released ones otherwise); if any
    of them comes from hand-written packs alone, the finding does not rest on learning."""
    leak = rule in LEAKS
    cands = [r for r in st.res.values() if r.key == resource]
    cands = [r for r in cands if (r.held_untested if leak else r.status == RELEASED)] or cands
    best = None
    for r in cands:
        spec = _learned(w, r.acq_call)
        kind = w.packs.resources.get(r.rid)
        learned_kind = kind is not None and kind.pack == LEARNED
        if spec is None and not learned_kind and (leak or _learned(w, r.rel_call) is None):
            return confidence  # a hand-written pair
        if not leak or kind is None or kind.kind not in ("ref", "memory"):
            got = "low"
        elif w.facts.releases_anywhere(r.rid, r.key):
            got = confidence  # the function (or its pre-image) releases it itself
        else:
            got = by_support(spec)
        best = got if best is None or RANK[got] > RANK[best] else best
    if best is None:
        return confidence
    return best if RANK[best] < RANK[confidence] else confidence
