"""Text, terse and JSON renderings of results (JSON version 2: docs/json.md)."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from reviewbot.model import Finding, SeriesResult

JSON_VERSION = 2  # of every JSON document reviewbot prints (docs/json.md)


def finding_line(f: Finding, with_status: bool = True) -> str:
    st = f" [{f.status}]" if with_status and f.status else ""
    return (f"{f.file}:{f.line}: {f.severity}: {f.rule}{st} in {f.function}(): {f.message}"
            f" (confidence: {f.confidence})")


def terse_line(f: Finding) -> str:
    """`file:line: rule: message` on one line, as `checkpatch.pl --terse` prints."""
    return f"{f.file}:{f.line}: {f.rule}: {' '.join(f.message.split())}"


def rule_counts(findings: list[Finding]) -> str:
    """`rule N, rule N` by count, then name: the per-rule part of a summary."""
    counts = Counter(f.rule for f in findings)
    return ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))


def write_terse(results: list[SeriesResult], out: TextIO, show_all: bool = False) -> None:
    for sr in results:
        for pr in sr.patches:
            for f in pr.findings:
                if f.status == "introduced" or (show_all and f.status == "preexisting"):
                    out.write(terse_line(f) + "\n")


def write_summary(results: list[SeriesResult], out: TextIO) -> None:
    """The closing line of text output: new findings in how many patches, per rule."""
    new = [f for sr in results for f in sr.findings("introduced")]
    patches = sum(len(sr.patches) for sr in results)
    line = f"summary: {len(new)} new finding(s) in {patches} patch(es)"
    out.write(line + (f": {rule_counts(new)}" if new else "") + "\n")


def write_text(results: list[SeriesResult], out: TextIO, show_all: bool = False) -> None:
    for sr in results:
        s = sr.series
        head = f"Series v{s.revision}: {s.subject}"
        if s.missing:
            head += f" (missing patches: {', '.join(map(str, s.missing))})"
        out.write(head + "\n")
        for pr in sr.patches:
            p = pr.patch
            out.write(f"  [{p.number}/{p.total}] {p.subject}  (context: {pr.context})\n")
            for u in pr.unresolved:
                out.write(f"    unresolved: {u} (analysed from the hunks only)\n")
            for n in pr.notes:
                out.write(f"    note: {n}\n")
            for f in pr.findings:
                if f.status == "introduced" or (show_all and f.status == "preexisting"):
                    out.write("    " + finding_line(f) + "\n")
                    for t in f.trace:
                        out.write(f"        {t.line:>5}: {t.note}\n")
            for f in pr.findings:
                if f.status == "fixed":
                    out.write(f"    fixed: {f.file}:{f.line}: {f.rule} in {f.function}(): "
                              f"{f.resource}\n")
            if not pr.patch.unreviewable and not any(f.status == "introduced"
                                                     for f in pr.findings):
                out.write("    no new findings\n")


def series_json(results: list[SeriesResult], show_all: bool = False) -> dict:
    series = []
    for sr in results:
        s = sr.series
        patches = []
        for pr in sr.patches:
            p = pr.patch
            fs = [f.to_json() for f in pr.findings
                  if f.status in ("introduced", "fixed") or show_all]
            patches.append({
                "subject": p.subject, "message_id": p.message_id, "number": p.number,
                "total": p.total, "context": pr.context, "unresolved": pr.unresolved,
                "notes": pr.notes, "findings": fs,
            })
        series.append({
            "subject": s.subject, "revision": s.revision, "message_id": s.message_id,
            "missing": s.missing, "patches": patches,
        })
    return {"version": JSON_VERSION, "series": series}


def write_json(results: list[SeriesResult], out: TextIO, show_all: bool = False) -> None:
    import json  # only here: text output is the common case and need not load it

    json.dump(series_json(results, show_all), out, indent=2)
    out.write("\n")


def audit_json(findings: list[Finding]) -> dict:
    return {"version": JSON_VERSION, "findings": [f.to_json(with_status=False) for f in findings]}
