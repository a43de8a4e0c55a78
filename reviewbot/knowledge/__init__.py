"""Knowledge computed from code: inferred and learned API pairs.

- knowledge/infer.py: pairs inferred inside one function from its own unwind code
- `reviewbot learn` (docs/learning.md), over a whole tree:
  - knowledge/learn.py: the facts of one C file (unwind ladders, call sites, ...)
  - knowledge/summary.py: what each function is (wrapper, release, noreturn), callbacks
  - knowledge/facts.py: the fact records and the syntax helpers
  - knowledge/tree.py: the pass over a tree, in parallel, with the per-blob cache
  - knowledge/blobs.py: the git blob id every per-file cache is keyed by
  - knowledge/aggregate.py: agreement across functions, thresholds, fixed points
  - knowledge/learned.py: the records, the pack file and `load_learned`
  - knowledge/names.py: the name vocabulary (verbs, symmetry) and the few known facts

`from reviewbot.knowledge import load_learned` works; the learned-pack modules are imported
only when one of their names is asked for (the review path does not pay for them).
"""

from __future__ import annotations

_LEARNED = ("Acquirer", "Callback", "LearnedFormatError", "LearnedKnowledge", "Managed",
            "MustCheck", "Noreturn", "Pair", "Release", "load_learned", "shipped_path")


def __getattr__(name: str):
    if name in _LEARNED:
        from . import learned

        return getattr(learned, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
