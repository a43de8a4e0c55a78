"""Arrays allocated with a count, and a loop over that count that does not run: the
allocation is then empty (kcalloc(0, ..) gives ZERO_SIZE_PTR, which owns nothing), so a
path that stores the array's elements only in the loop leaks nothing when the loop runs
zero times (it87_gpio_init(): `labels = kcalloc(ngpio, ..); for (i = 0; i < ngpio; i++)
labels_table[i] = &labels[..]`)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from reviewbot.cmodel import args, callee, line_of, norm, text
from reviewbot.engine.state import HELD, PENDING, UNKNOWN, PathState

if TYPE_CHECKING:
    from reviewbot.engine.walker import Walker

EMPTY = "?count0:"  # the fact key of a loop test `i < n` made with i still 0
_COUNTED = re.compile(r"calloc$|_array$")  # kcalloc, kvcalloc, kmalloc_array, ..


def count_of(w: Walker, line: int, name: str, st: PathState) -> str:
    """The element count of the counted allocation `name()` at `line` ("" if none)."""
    if not _COUNTED.search(name):
        return ""
    for c in w.fn.of_type("call_expression"):
        if line_of(c) == line and callee(c) == name:
            a = args(c)
            i = 1 if name.startswith("devm_") else 0
            return w.canon(norm(text(a[i])), st) if len(a) > i else ""
    return ""


def empty_when_zero(w: Walker, st: PathState, n: str) -> None:
    """The loop over `n` elements did not run: `n` is 0, and what was allocated with `n`
    elements holds nothing."""
    for k, r in list(st.res.items()):
        if r.status in (HELD, PENDING) and count_of(w, r.acq_line, r.acq_call, st) == n:
            st.res[k] = replace(r, status=UNKNOWN)
            st.note(r.acq_line, f"{r.key} has no elements when {n} is 0")
