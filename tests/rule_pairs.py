"""Before/after fixture pairs for rules about a patch rather than a function.

tests/fixtures/rules/RULE_ID/CASE.before.c and CASE.after.c: the function before and after
a patch. The after file carries the annotations of the single-file fixtures
(tests/test_rules_fixtures.py): `/* ruleid: RULE */` on the line before the line the
finding must have (optionally followed by `/* resource: NAME */`, the resource it must
name), or `/* ok: RULE */` anywhere in a case where the rule must not report at all.
Each pair is reviewed as a one-patch series over a plain-directory tree holding the
'before' file.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from reviewbot.model import Finding, Patch, Series
from reviewbot.review.pipeline import Reviewer

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
PATH = "fs/demo/demo.c"
_RULEID = re.compile(r"/\*\s*ruleid:\s*([\w.\-]+)\s*\*/(?:\s*/\*\s*resource:\s*(\S+)\s*\*/)?")
_OK = re.compile(r"/\*\s*ok:\s*([\w.\-]+)\s*\*/")


@dataclass(frozen=True)
class Expected:
    rule: str
    line: int  # in the after file
    resource: str  # "" when the annotation names none


@dataclass(frozen=True)
class Pair:
    rule: str  # the directory: the rule id
    name: str
    before: str
    after: str

    @property
    def fires(self) -> list[Expected]:
        out = []
        lines = self.after.splitlines()
        for i, ln in enumerate(lines, start=1):
            m = _RULEID.search(ln)
            if m:
                out.append(Expected(m.group(1), i + 1, m.group(2) or ""))
        return out

    @property
    def ok(self) -> list[str]:
        return _OK.findall(self.after)


def pair_dirs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir())


def pairs(rule: str) -> list[Pair]:
    d = FIXTURES / rule
    out = []
    for b in sorted(d.glob("*.before.c")):
        name = b.name[: -len(".before.c")]
        a = d / f"{name}.after.c"
        out.append(Pair(rule, name, b.read_text(), a.read_text()))
    return out


def pair(rule: str, name: str) -> Pair:
    (got,) = [p for p in pairs(rule) if p.name == name]
    return got


def review(tmp_path: Path, pre: str, post: str, path: str = PATH) -> list[Finding]:
    """All findings of the one-patch series that turns `pre` into `post`."""
    assert pre != post, "the case does not change anything"
    tree = tmp_path / "tree"
    f = tree / path
    f.parent.mkdir(parents=True)
    f.write_text(pre)
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{path}", f"b/{path}"))
    patch = Patch(subject="demo: change", raw_subject="[PATCH] demo: change", message_id="",
                  diff=diff)
    return Reviewer(str(tree)).review_series(Series("t", 1, "", [patch])).findings()
