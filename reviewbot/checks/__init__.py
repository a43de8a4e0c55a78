"""Rule families. Each module holds its rules' documentation next to the checker that
finds them.

A rule is declared with ``rule(...)`` (``RULES`` maps rule ids to the ``Rule`` objects that
`reviewbot rules RULE` prints); a checker (reviewbot/engine/checker.py) is made known with
``@register``. reviewbot/checks/registry.py finds them all by importing every module of
this package, and holds the merge policy for rules that report the same defect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from reviewbot.engine import Checker

    C = TypeVar("C", bound=type[Checker])


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    severity: str
    confidence: str
    summary: str
    doc: str


RULES: dict[str, Rule] = {}
REGISTERED: list[type[Checker]] = []


def rule(id: str, severity: str, confidence: str, summary: str, doc: str) -> Rule:
    r = Rule(id, id.split(".")[0], severity, confidence, summary, doc.strip("\n"))
    RULES[id] = r
    return r


def register(cls: C) -> C:
    """Class decorator: a checker the registry runs."""
    REGISTERED.append(cls)
    return cls


def all_rules() -> dict[str, Rule]:
    from reviewbot.checks.registry import load

    load()
    return RULES
