"""Semgrep-style rule tests over the C fixtures in tests/fixtures/rules/.

A fixture annotates the line *before* a line where a rule must or must not report:

    /* ruleid: error-path.missing-release */
            goto out;                 <- a finding of that rule must have this `line`
    /* ok: get-put.leak */
            return 0;                 <- no finding of that rule may have this `line`

Several rules may be listed, separated by commas; stacked annotation lines all apply to
the first line below them that is not an annotation. Besides checking every annotation, each
file is checked for false positives: every finding of a rule the file mentions must sit on a
line annotated `ruleid` for that rule.

Every registered rule has fixtures named by its id: `RULE_ID.c` (and variants
`RULE_ID.SOMETHING.c`) with at least six lines where it must report and six where it must
not; a rule about a patch rather than a function (get-put.unbalanced-change) has a
directory `RULE_ID/` of before/after pairs instead (tests/rule_pairs.py), at least six
that fire and six that must not. engine_regressions.c holds cases of no one rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from rule_pairs import Pair, pair_dirs, pairs, review

from reviewbot.model import Finding
from reviewbot.review.analysis import analyze_source

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
ANNOT = re.compile(r"/\*\s*(ruleid|ok)\s*:\s*([\w.\-,\s]+?)\s*\*/")


@dataclass(frozen=True)
class Annotation:
    kind: str  # "ruleid" | "ok"
    rule: str
    line: int  # the annotated line (the one after the comment), 1-based
    text: str  # that line, for readable failures


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.c"))


@cache
def annotations(path: Path) -> tuple[Annotation, ...]:
    lines = path.read_text().splitlines()

    def only_annotation(ln: str) -> bool:
        return bool(ANNOT.search(ln)) and not ANNOT.sub("", ln).strip()

    out = []
    for i, ln in enumerate(lines, start=1):
        for m in ANNOT.finditer(ln):
            t = i + 1  # 1-based number of the annotated line
            while t <= len(lines) and only_annotation(lines[t - 1]):
                t += 1
            target = lines[t - 1].strip() if t <= len(lines) else ""
            for rule in m.group(2).split(","):
                if rule.strip():
                    out.append(Annotation(m.group(1), rule.strip(), t, target))
    return tuple(out)


@cache
def findings(path: Path) -> tuple[Finding, ...]:
    return tuple(analyze_source(path.read_text(), path.name))


def _show(fs) -> str:
    return "\n".join(f"  {f.line}: {f.rule} in {f.function}: {f.message}" for f in fs) or "  none"


def _cases():
    for p in fixture_files():
        for a in annotations(p):
            yield pytest.param(p, a, id=f"{p.stem}:{a.line}:{a.kind}:{a.rule}")


def test_fixtures_exist():
    files = fixture_files()
    assert files, f"no fixtures in {FIXTURES}"
    for p in files:
        assert annotations(p), f"{p.name} has no annotations"


def _rule_files(rule: str) -> list[Path]:
    return [p for p in fixture_files() if p.stem == rule or p.stem.startswith(rule + ".")]


MIN_CASES = 6  # where a rule must report, and where it must not


def test_every_rule_has_fixtures():
    from reviewbot.checks import all_rules

    missing, thin = [], []
    for rule in sorted(all_rules()):
        files = _rule_files(rule)
        if (FIXTURES / rule).is_dir():
            cases = pairs(rule)
            fire = sum(1 for c in cases if any(e.rule == rule for e in c.fires))
            quiet = sum(1 for c in cases if rule in c.ok)
        elif files:
            anns = [a for p in files for a in annotations(p) if a.rule == rule]
            fire = sum(1 for a in anns if a.kind == "ruleid")
            quiet = sum(1 for a in anns if a.kind == "ok")
        else:
            missing.append(rule)
            continue
        if fire < MIN_CASES or quiet < MIN_CASES:
            thin.append(f"{rule}: {fire} that report, {quiet} that must not")
    assert not missing, f"rules without a fixture in {FIXTURES} (RULE_ID.c or RULE_ID/): {missing}"
    assert not thin, f"fixtures with fewer than {MIN_CASES} cases of a kind: {thin}"


def test_fixture_names_are_rule_ids():
    from reviewbot.checks import all_rules

    known = set(all_rules())
    for p in fixture_files():
        if p.name != "engine_regressions.c":
            assert any(p.stem == r or p.stem.startswith(r + ".") for r in known), p.name
    for d in pair_dirs():
        assert d.name in known, d.name
        for c in pairs(d.name):
            assert c.fires or c.ok, f"{d.name}/{c.name}: no annotation"
            assert (d / f"{c.name}.after.c").exists()


def _pair_cases():
    for d in pair_dirs():
        for c in pairs(d.name):
            yield pytest.param(c, id=f"{d.name}/{c.name}")


@pytest.mark.parametrize("case", list(_pair_cases()))
def test_pair(tmp_path, case: Pair):
    found = [f for f in review(tmp_path, case.before, case.after)
             if f.rule == case.rule and f.status == "introduced"]
    want = sorted((e.line, e.resource) for e in case.fires if e.rule == case.rule)
    got = sorted((f.line, f.resource if any(e.resource for e in case.fires) else "")
                 for f in found)
    assert got == want, f"{case.rule}/{case.name}: expected {want}, found:\n" + _show(found)


def test_annotated_rules_exist():
    from reviewbot.checks import all_rules

    known = set(all_rules())
    for p in fixture_files():
        for a in annotations(p):
            assert a.rule in known, f"{p.name}:{a.line}: unknown rule {a.rule!r}"


@pytest.mark.parametrize("path,ann", list(_cases()))
def test_annotation(path: Path, ann: Annotation):
    fs = findings(path)
    at_line = [f for f in fs if f.rule == ann.rule and f.line == ann.line]
    if ann.kind == "ruleid":
        assert at_line, (
            f"{path.name}:{ann.line}: expected {ann.rule} at `{ann.text}`; findings of the file:\n"
            + _show(fs)
        )
    else:
        assert not at_line, (
            f"{path.name}:{ann.line}: unexpected {ann.rule} at `{ann.text}`:\n" + _show(at_line)
        )


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_no_unannotated_findings(path: Path):
    anns = annotations(path)
    rules = {a.rule for a in anns}
    expected = {(a.rule, a.line) for a in anns if a.kind == "ruleid"}
    stray = [f for f in findings(path) if f.rule in rules and (f.rule, f.line) not in expected]
    assert not stray, f"{path.name}: findings at lines not annotated ruleid:\n" + _show(stray)


def test_every_rule_doc_says_its_known_false_positives():
    from reviewbot.checks import all_rules

    for r in all_rules().values():
        assert "\nKnown false positives: " in "\n" + r.doc, r.id
