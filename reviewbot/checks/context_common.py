"""What the two context rules share: the graph record of the checked function, and chains
written for a reader (the message says them; the trace keeps the lines of this file)."""

from __future__ import annotations

import os

from reviewbot.engine import FunctionContext
from reviewbot.knowledge.callgraph import CallGraph, FunctionRecord, Witness


def record_of(ctx: FunctionContext) -> tuple[CallGraph, FunctionRecord] | None:
    lazy = ctx.callgraph
    if lazy is None or not ctx.packs.context:
        return None
    g = lazy.get()
    if g is None:
        return None
    r = g.record(ctx.fn.name, lazy.path)
    return (g, r) if r is not None else None


def down(g: CallGraph, r: FunctionRecord, w: Witness, attr: str
         ) -> list[tuple[FunctionRecord, Witness]]:
    """From the call `w` of `r` to the primitive: [(record, witness)], `r`'s first."""
    return [(r, w), *g.chain(w, r.path, attr)]


def spell(steps: list[tuple[FunctionRecord, Witness]], here: str) -> str:
    """`f() -> g() (file.c:12) -> h()`: each function and the call it makes."""
    out = []
    for rec, w in steps:
        where = "" if rec.path == here else f" ({os.path.basename(rec.path)}:{w.line})"
        out.append(f"{rec.name}(){where}")
    out.append(f"{steps[-1][1].callee}()")
    return " -> ".join(out)


def trace_of(steps: list[tuple[FunctionRecord, Witness]], here: str, at: int
             ) -> list[tuple[int, str]]:
    """Trace steps: lines of this file as they are, a step elsewhere at the finding's line
    with its file and line in the note."""
    out = []
    for rec, w in steps:
        if rec.path == here:
            out.append((w.line, f"{rec.name}() calls {w.callee}()"))
        else:
            out.append((at, f"{rec.name}() at {os.path.basename(rec.path)}:{w.line} calls "
                            f"{w.callee}()"))
    return out
