"""Scoring findings against corpus labels (GUIDE section 3)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reviewbot.model import Finding, InputError

if TYPE_CHECKING:
    from reviewbot.packs import Packs

NEAR = 6  # lines: "near" a labelled line


def _case_dirs(corpus: str) -> list[Path]:
    root = Path(corpus)
    cases = root / "cases" if (root / "cases").is_dir() else root
    if not cases.is_dir():
        raise InputError(f"eval: {corpus}: not a corpus directory (no cases/)")
    out = sorted(p for p in cases.iterdir() if (p / "label.toml").is_file())
    if not out:
        raise InputError(f"eval: {corpus}: no cases with a label.toml")
    return out


def _classes(entry: dict[str, Any]) -> set[str]:
    return {entry.get("class", "")} | set(entry.get("also_classes", []))


def _functions(entry: dict[str, Any]) -> set[str]:
    return {f.strip() for f in str(entry.get("function", "")).split(",") if f.strip()}


def _lines(entry: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for s in entry.get("lines", []):
        path, _, n = s.rpartition(":")
        if n.isdigit():
            out.append((path, int(n)))
    return out


def _matches(f: Finding, entry: dict[str, Any], files: set[str], near: bool) -> bool:
    if f.category not in _classes(entry):
        return False
    if files and f.file not in files:
        return False
    funcs = _functions(entry)
    if funcs and f.function not in funcs:
        return False
    if near:
        want = _lines(entry)
        got = set(f.lines or [f.line]) | {f.line}
        if want and not any(p == f.file and abs(g - n) <= NEAR for p, n in want for g in got):
            return False
    return True


def review_case(case: Path, packs: Packs | None = None) -> list[Finding]:
    from reviewbot.input.mbox import load_paths
    from reviewbot.review.pipeline import Reviewer

    patch = next((case / n for n in ("patch.mbox", "patch.patch") if (case / n).is_file()), None)
    if patch is None:
        raise InputError(f"eval: {case.name}: no patch.mbox or patch.patch")
    reviewer = Reviewer(str(case / "base") if (case / "base").is_dir() else None, packs=packs)
    findings: list[Finding] = []
    for s in load_paths([str(patch)]):
        findings += reviewer.review_series(s).findings()
    return findings


def score_case(label: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    direction = label.get("direction", "")
    files = set(label.get("files", []))
    introduced = [f for f in findings if f.status == "introduced" and f.severity in ("warning", "error")]
    fixed = [f for f in findings if f.status == "fixed"]
    res: dict[str, Any] = {"id": label.get("id", ""), "direction": direction,
                           "class": label.get("class", ""), "ok": True, "problems": []}
    expected_intro = list(label.get("introduces", []))
    if direction == "bug-introducing":
        expected_intro = [label] + expected_intro
    matched: set[int] = set()
    for entry in expected_intro:
        near = entry is not label
        hits = [j for j, f in enumerate(introduced) if _matches(f, entry, files, near)]
        matched.update(hits)
        if not hits:
            res["ok"] = False
            what = "the bug" if entry is label else f"introduced defect '{entry.get('note', '')[:60]}...'"
            res["problems"].append(f"missed {what} ({entry.get('class')} in {entry.get('function')})")
    res["expected"] = len(expected_intro)
    res["found"] = len(expected_intro) - sum(1 for p in res["problems"] if p.startswith("missed"))
    if direction == "fix":
        res["expected_fixed"] = 1
        if any(_matches(f, label, files, False) for f in fixed):
            res["fixed_found"] = 1
        else:
            res["fixed_found"] = 0
            res["ok"] = False
            res["problems"].append(f"fixed bug not reported as fixed ({label.get('class')})")
    extra = [f for j, f in enumerate(introduced) if j not in matched]
    res["false_positives"] = [f"{f.file}:{f.line} {f.rule} {f.function} {f.resource}" for f in extra]
    res["introduced"] = len(introduced)
    res["true_positives"] = len(matched)
    if extra:
        res["ok"] = False
    return res


def evaluate_corpus(corpus: str, only: list[str] | None = None, packs: Packs | None = None
                    ) -> dict[str, Any]:
    cases = []
    for d in _case_dirs(corpus):
        if only and not any(o in d.name for o in only):
            continue
        try:
            label = tomllib.loads((d / "label.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"eval: {d.name}/label.toml: {e}") from None
        label.setdefault("id", d.name)
        try:
            findings = review_case(d, packs)
        except InputError as e:
            cases.append({"id": d.name, "direction": label.get("direction"), "ok": False,
                          "problems": [f"could not review: {e}"], "class": label.get("class"),
                          "expected": 1, "found": 0, "false_positives": [], "introduced": 0,
                          "true_positives": 0})
            continue
        cases.append(score_case(label, findings))
    per_class: dict[str, dict[str, int]] = {}
    for c in cases:
        if c["direction"] in ("bug-introducing", "fix"):
            pc = per_class.setdefault(c["class"], {"cases": 0, "found": 0})
            pc["cases"] += 1
            ok = c.get("found", 0) >= 1 if c["direction"] == "bug-introducing" else c.get("fixed_found", 0) == 1
            pc["found"] += 1 if ok else 0
    tp = sum(c.get("true_positives", 0) for c in cases)
    intro = sum(c.get("introduced", 0) for c in cases)
    clean_fp = sum(len(c["false_positives"]) for c in cases if c["direction"] == "clean")
    return {
        "cases": cases,
        "per_class": {k: {**v, "recall": round(v["found"] / v["cases"], 3)} for k, v in per_class.items()},
        "precision": round(tp / intro, 3) if intro else 1.0,
        "introduced": intro,
        "true_positives": tp,
        "clean_false_positives": clean_fp,
        "missed": [c["id"] for c in cases if not c["ok"]],
    }


def render_text(rep: dict[str, Any], out: TextIO) -> None:
    for c in rep["cases"]:
        mark = "ok  " if c["ok"] else "MISS"
        out.write(f"{mark} {c['id']:<45} {c['direction']:<16} {c.get('class', '')}\n")
        for p in c["problems"]:
            out.write(f"       {p}\n")
        for fp in c["false_positives"]:
            out.write(f"       false positive: {fp}\n")
    out.write("\nrecall by class (bug-introducing found + fixes recognised):\n")
    for k, v in sorted(rep["per_class"].items()):
        out.write(f"  {k:<14} {v['found']}/{v['cases']}  ({v['recall']:.0%})\n")
    out.write(f"precision: {rep['true_positives']}/{rep['introduced']} introduced findings "
              f"match a label ({rep['precision']:.0%})\n")
    out.write(f"false positives on clean cases: {rep['clean_false_positives']}\n")
    out.write(f"cases not fully right: {', '.join(rep['missed']) or 'none'}\n")
