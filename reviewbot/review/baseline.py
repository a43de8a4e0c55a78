"""Audit baselines: the findings a maintainer has already seen, as stable fingerprints.

A fingerprint is (rule, file, function, resource, message) with the message normalised as
smatch's `new_bugs.pl` does for its stored lists: no line numbers (a `file:NNN` or `line
NNN` reference, any run of digits becomes `N`), whitespace collapsed. Moving code up or
down a file changes no fingerprint; a new finding in a function, or the same defect on
another resource, does. The file is JSON (version 1, sorted, one count per fingerprint:
two identical findings in one function are two).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reviewbot.model import Finding, InputError

VERSION = 1
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, order=True)
class Fingerprint:
    rule: str
    file: str
    function: str
    resource: str
    message: str


def normalise(message: str) -> str:
    return " ".join(_DIGITS.sub("N", message).split())


def fingerprint(f: Finding) -> Fingerprint:
    return Fingerprint(f.rule, os.path.normpath(f.file), f.function, f.resource,
                       normalise(f.message))


def write(path: Path, findings: list[Finding]) -> None:
    counts = Counter(fingerprint(f) for f in findings)
    doc = {"version": VERSION, "tool": "reviewbot", "fingerprints": [
        {**fp.__dict__, "count": n} for fp, n in sorted(counts.items())]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def read(path: Path) -> Counter[Fingerprint]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"--baseline {path}: cannot read: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or \
            not isinstance(doc.get("fingerprints"), list):
        raise InputError(f"--baseline {path}: not a reviewbot baseline (version {VERSION})")
    out: Counter[Fingerprint] = Counter()
    try:
        for e in doc["fingerprints"]:
            out[Fingerprint(*(str(e[k]) for k in Fingerprint.__dataclass_fields__))] += \
                int(e.get("count", 1))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"--baseline {path}: malformed fingerprint entry") from None
    return out


def new_findings(findings: list[Finding], known: Counter[Fingerprint]) -> list[Finding]:
    """The findings beyond the baseline's count of their fingerprint, in their order."""
    left = Counter(known)
    out = []
    for f in findings:
        fp = fingerprint(f)
        if left[fp] > 0:
            left[fp] -= 1
        else:
            out.append(f)
    return out
