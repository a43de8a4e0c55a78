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


def weigh(w: Walker, st: PathState, rule: str, resource: str, confidence: str) -> str:
    """`confidence`, lowered when the finding of `rule` on `resource` rests on learned
    knowledge without local evidence."""
    for r in st.res.values():
        if r.key != resource:
            continue
        spec = w.packs.calls.get(r.acq_call)
        kind = w.packs.resources.get(r.rid)
        learned_call = spec is not None and spec.pack == LEARNED
        if not learned_call and not (kind is not None and kind.pack == LEARNED):
            return confidence  # a hand-written pair
        if rule not in LEAKS or kind is None or kind.kind not in ("ref", "memory"):
            return "low"
        if w.facts.releases_anywhere(r.rid, r.key):
            return confidence  # the function (or its pre-image) releases it itself
        got = by_support(spec if learned_call else None)
        return got if RANK[got] < RANK[confidence] else confidence
    return confidence
