"""Findings a maintainer has chosen not to see: ignore rules (--ignore, the configuration's
[[ignore]], git config reviewbot.ignore) and inline markers in the code.

A marker is a comment `reviewbot: ignore RULE[, RULE...]` (RULE a full id, a short name
or a category). On the finding's line it silences that finding; in the comment above a
function, on its header or anywhere in its body, every finding of that rule in the
function. Functions are found kernel style (a `{` in column 0 opens a body, a `}` in
column 0 closes it), so no parsing is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reviewbot.config import IgnoreRule
from reviewbot.model import Finding

MARK = "reviewbot: ignore"
_MARK_RE = re.compile(r"reviewbot:\s*ignore\s+([\w.,\s-]+?)\s*(?:\*/|$)")


def rule_matches(pattern: str, rule: str) -> bool:
    """A full id (error-path.direct-return), a short name (direct-return) or a category
    (error-path); fnmatch wildcards allowed."""
    short = rule.split(".", 1)[-1]
    cat = rule.split(".", 1)[0]
    return any(fnmatchcase(x, pattern) for x in (rule, short, cat))


def ignored(f: Finding, rules: list[IgnoreRule]) -> bool:
    return any(rule_matches(r.rule, f.rule) and fnmatchcase(f.file, r.path)
               and fnmatchcase(f.function, r.function) for r in rules)


@dataclass(frozen=True)
class Marker:
    """Rules silenced on one line, or over a span of lines (a function)."""

    first: int
    last: int
    rules: tuple[str, ...]


def _rules_at(line: str) -> tuple[str, ...]:
    m = _MARK_RE.search(line)
    if not m:
        return ()
    return tuple(r for r in re.split(r"[\s,]+", m.group(1)) if r)


def markers(text: str) -> list[Marker]:
    """The markers of one file: each on its own line, and each inside a function (or in
    the comment block right above it) widened to the whole function."""
    if MARK not in text:
        return []  # the common case: no scan at all
    lines = text.split("\n")
    out: list[Marker] = []
    start = 0  # first line (1-based) of the current function's header block
    body = False
    pending: list[tuple[str, ...]] = []
    for n, line in enumerate(lines, 1):
        rules = _rules_at(line)
        if rules:
            out.append(Marker(n, n, rules))
            pending.append(rules)
        if not body:
            if line.startswith("{"):
                body = True
            elif not line.strip() or line.startswith("}") or line.rstrip().endswith(";"):
                start, pending = n + 1, []  # a declaration or a gap: not this function's
        elif line.startswith("}"):
            out += [Marker(start, n, r) for r in pending]
            start, pending, body = n + 1, [], False
    return out


def marked(f: Finding, marks: list[Marker]) -> bool:
    return any(m.first <= f.line <= m.last and any(rule_matches(r, f.rule) for r in m.rules)
               for m in marks)


def keep(findings: list[Finding], rules: list[IgnoreRule], text_of) -> list[Finding]:
    """`findings` less those ignored by a rule or marked in their file's text
    (`text_of(path)`: the text the finding's lines are in, or None)."""
    if not findings:
        return findings
    cache: dict[str, list[Marker]] = {}
    out = []
    for f in findings:
        if rules and ignored(f, rules):
            continue
        if f.file not in cache:
            cache[f.file] = markers(text_of(f.file) or "")
        if cache[f.file] and marked(f, cache[f.file]):
            continue
        out.append(f)
    return out


def drop_ignored(results, ignores: list[IgnoreRule]) -> None:
    """Leave out of reviewed series (SeriesResults) the findings ignore rules or markers
    in the post-image name; fixed ones are about the pre-image and stay."""
    for sr in results:
        for pr in sr.patches:
            texts = {i.path: i.post for i in pr.files}
            if not ignores and not any(t and MARK in t for t in texts.values()):
                continue
            live = [f for f in pr.findings if f.status != "fixed"]
            kept = {id(f) for f in keep(live, ignores, texts.get)}
            pr.findings = [f for f in pr.findings if f.status == "fixed" or id(f) in kept]
