"""Rule families. Each module holds its rules' documentation next to the code that finds them.

A rule is registered with ``rule(...)``; ``RULES`` maps rule ids to ``Rule`` objects that
`reviewbot rules RULE` prints. Path rules are ``engine.Checker`` subclasses; the ops rules
run over a whole function at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    severity: str
    confidence: str
    summary: str
    doc: str


RULES: dict[str, Rule] = {}


def rule(id: str, severity: str, confidence: str, summary: str, doc: str) -> Rule:
    r = Rule(id, id.split(".")[0], severity, confidence, summary, doc.strip("\n"))
    RULES[id] = r
    return r


def all_rules() -> dict[str, Rule]:
    from reviewbot.checks import error_path, get_put, ops_mismatch  # noqa: F401  (registers the rules)

    return RULES
