"""Garbage-collector settings for runs that analyse many functions.

The path walker allocates states by the hundred thousand and the syntax views and control
flow graphs it reads are cyclic (parents, loops), so Python's cyclic collector runs often
and, with the default thresholds, takes about a third of a batch review scanning objects
that are still alive. Objects made before the work starts (modules, packs, the input) are
frozen out of its scans, and the young generation is collected less often; cyclic garbage is
still collected, so memory stays bounded (bench/batch.py prints the peak).
"""

from __future__ import annotations

import gc
import os

YOUNG = 50_000  # allocations between collections of the youngest generation (default 700)


_done = False


def tune() -> None:
    """Call once the long-lived objects exist, before the analysis starts. Only the first
    call in a process acts: a later freeze would make whatever garbage then exists immortal
    (the poll makes a reviewer per run)."""
    global _done
    how = os.environ.get("REVIEWBOT_GC", "")  # "default", or a young threshold: to measure
    if _done or how == "default":
        return
    _done = True
    gc.set_threshold(int(how) if how.isdigit() else YOUNG, 20, 20)
    gc.freeze()
