"""The checker registry and its merge policy.

Checkers are found by importing every module of reviewbot/checks/ (each registers its
classes with ``@register``); they run in the order of their module names, and within a
module in the order they are defined. Adding a rule family is adding a module.

Merge policy — where two rules report the same defect, which one is kept. It is applied
here and nowhere else (no checker looks at what another reports):

1. ``SUPERSEDES``: on one event of the walk, when both rules of a pair report the same
   resource at the same line, the first of the pair is kept.
2. In one function, one finding per rule and resource: the earliest line is the finding,
   the other lines where it was reported become its extra ``lines``, and the reports
   themselves its ``merged`` ones (the differential review counts them: a patch that
   adds one more exit with a defect the function already has introduces it there).
3. In one function, one finding per resource and line across rule families: the one the
   walk reported first is kept (an error exit and a lock imbalance on the same return).
4. A patch-level (``change``) finding is dropped when a finding of the patch introduced
   or fixed names the same resource (or the same field spelled through another pointer):
   the path rule has said it, or the removal fixes it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import reviewbot.checks as _package
from reviewbot.checks import REGISTERED
from reviewbot.engine import PATH_EVENTS, Checker, Raw
from reviewbot.model import Finding

SUPERSEDES: tuple[tuple[str, str], ...] = (
    # a fall-through into a label that releases again: an unwind-ladder bug, told as such
    ("error-path.extra-release", "get-put.double-release"),
    # an unwind put reached before the acquisition is the ladder's bug, not a borrowed put
    ("error-path.extra-release", "get-put.release-not-taken"),
)


@cache
def load() -> None:
    """Import every checker module (each registers its rules and checkers)."""
    for m in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        if m.name != "registry":
            importlib.import_module(f"{_package.__name__}.{m.name}")


@cache
def checkers() -> tuple[Checker, ...]:
    """One instance of each registered checker, in module order."""
    load()
    order = {cls: i for i, cls in enumerate(REGISTERED)}
    classes = sorted(REGISTERED, key=lambda c: (c.__module__, order[c]))
    return tuple(cls() for cls in classes)


def path_checkers() -> list[Checker]:
    return [c for c in checkers() if c.events & set(PATH_EVENTS)]


def checkers_for(event: str) -> list[Checker]:
    return [c for c in checkers() if event in c.events]


# ---------------------------------------------------------------------- merge policy


def same_event(raws: list[Raw]) -> list[Raw]:
    """Policy 1, for the reports made during one event of the walk."""
    if len(raws) < 2:
        return raws
    reported = {(r.rule, r.resource, r.line) for r in raws}
    return [r for r in raws
            if not any((win, r.resource, r.line) in reported
                       for win, lose in SUPERSEDES if lose == r.rule)]


def merge_function(raws: list[Raw]) -> list[Raw]:
    """Policies 2 and 3, for everything reported on one function."""
    out: dict[tuple[str, str], Raw] = {}
    for r in sorted(raws, key=lambda r: r.line):
        k = (r.rule, r.resource)
        if k in out:
            first = out[k]
            if r.line not in first.lines:
                first.lines.append(r.line)
            if r.line != first.line and all(m.line != r.line for m in first.merged):
                first.merged.append(r)
            continue
        out[k] = r
    by_line: dict[tuple[int, str], Raw] = {}
    result = []
    for r in out.values():
        k2 = (r.line, r.resource)
        if k2 in by_line and r.rule.split(".")[0] != by_line[k2].rule.split(".")[0]:
            continue
        by_line[k2] = r
        result.append(r)
    return result


def merge_change(raws: list[Raw], function: str, found: list[Finding]) -> list[Raw]:
    """Policy 4: the change findings of one function worth reporting, given the
    differential findings of the patch (`found`); one per resource."""
    named = {f.resource for f in found if f.function == function
             and f.status in ("introduced", "fixed")}
    seen: set[str] = set()
    out = []
    for raw in raws:
        tail = raw.resource.split("->", 1)[-1]
        if raw.resource in seen or any(
                raw.resource == r or r.split("->", 1)[-1] == tail for r in named):
            continue
        seen.add(raw.resource)
        out.append(raw)
    return out
