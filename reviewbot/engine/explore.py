"""A plain walk of a function's flow graph for checkers that keep one small state per path
and need none of the walker's resource tracking (use-after-unlock, double-free-field).

Depth first, each (node, state) pair once, at most `max_steps` pairs: `edges(node, state)`
applies the node and says which successors get which state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from reviewbot.cmodel import Node

S = TypeVar("S", bound=Hashable)


def explore(entry: Node, start: S, edges: Callable[[Node, S], Iterable[tuple[Node, S]]],
            max_steps: int) -> None:
    seen: set[tuple[int, S]] = set()
    work: list[tuple[Node, S]] = [(entry, start)]
    steps = 0
    while work and steps < max_steps:
        node, st = work.pop()
        steps += 1
        if (node.idx, st) in seen:
            continue
        seen.add((node.idx, st))
        work.extend(edges(node, st))
