"""The review comment on one finding, or on one exit, as a maintainer would write it.

What is wrong and why (the rule engine's message), where when the line is outside the
hunks, a short path when the message names no lines, then a question; wrapped at 72 columns.
An exit that leaves several things held gets one comment (``exit_comment``) naming each in
words that fit its kind and the label to jump to instead.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from reviewbot.mail.exits import Advice, Exit, Held, group_exits
from reviewbot.mail.headers import one_line
from reviewbot.model import Finding

if TYPE_CHECKING:
    from reviewbot.packs import Packs

WIDTH = 72


def wrap(text: str, width: int = WIDTH, indent: str = "", subsequent: str | None = None) -> str:
    """Wrap prose at `width` columns, keeping paragraphs (blank-line separated)."""
    sub = indent if subsequent is None else subsequent
    paras = re.split(r"\n\s*\n", str(text).strip())
    out = []
    for p in paras:
        p = " ".join(p.split())
        out.append(
            textwrap.fill(
                p,
                width=width,
                initial_indent=indent,
                subsequent_indent=sub,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(out)


def _lower_first(s: str) -> str:
    # "Error exit ..." -> "error exit ...", but keep identifiers like "IS_ERR" or "Foo()".
    m = re.match(r"([A-Z][a-z]+)(\b)", s)
    if m and not s[m.end() :].startswith(("(", "_", "->", ".")):
        return s[0].lower() + s[1:]
    return s


def sentence(s: str) -> str:
    """``s`` on one line, ending with a full stop unless it ends with . ? or !"""
    s = " ".join(str(s).split())
    if s and s[-1] not in ".?!":
        s += "."
    return s


def _question(f: Finding) -> str:
    r = f.rule.lower()
    if "double" in r or "twice" in r or "extra" in r:
        return "Is the second release intended, or should one of them go?"
    if "errno" in r:
        return "Should the error variable be set to a negative errno before this exit?"
    if "order" in r:
        return "Is that order intended, or should the unwinding be the reverse of the setup?"
    if "release-unheld" in r or "unheld" in r or "not-held" in r:
        return "Is it held on every path that reaches this release?"
    if f.category == "ops-mismatch" or "ops" in r:
        return "Is that intended, or should it use the ops table the other places use?"
    if "undo" in r:
        return "Could this path undo it as well, or does a helper I missed undo it?"
    if "leak" in r or "missing" in r:
        return "Could this path release it as well, or is it handed over somewhere I missed?"
    return "Is that intended?"


def _path(f: Finding, limit: int = 4) -> str:
    """A short account of the path, unless the message already names the lines: the steps
    that mention the resource, and the last step."""
    if re.search(r"\bline \d+", f.message):
        return ""
    steps = [t for t in f.trace if t.note]
    if len(steps) < 2:
        return ""
    token = re.split(r"->|\.", f.resource or "")[-1]
    token = re.sub(r"\W", "", token)
    if token:
        keep = [t for t in steps if re.search(rf"\b{re.escape(token)}\b", t.note)]
        if steps[-1] not in keep:
            keep.append(steps[-1])
        if len(keep) >= 2:
            steps = keep
    if len(steps) > limit:
        steps = steps[: limit - 1] + steps[-1:]
    return ", then ".join(f"line {t.line} ({one_line(t.note)})" for t in steps)


def _opening(f: Finding, in_hunk: bool, code: str, low: bool) -> str:
    """"It looks like", hedged for a low-confidence finding, placed at the line when the
    patch does not show it."""
    hedge = "I may be misreading this, but it" if low else "it"
    if in_hunk:
        return f"{upper_first(hedge)} looks like"
    where = f"line {f.line}" + (f" ('{code}')" if code else "")
    func = f" of {f.function}()" if f.function else ""
    return f"At {where}{func}, outside the lines this patch touches, {hedge} looks like"


def revision_note(findings: list[Finding]) -> str:
    """Said once in the next revision that still has a finding drafted before."""
    since = min((int(f.still_present_since) for f in findings if f.still_present_since),
                default=0)
    return f"This was already pointed out in the review of v{since}." if since else ""


_DEEPER = re.compile(r"[;.] (?:i|I)s the goto meant for (?:a label further down the ladder"
                     r"|a later label)\?$")


def comment_for(f: Finding, in_hunk: bool, code: str, label: str | None = None) -> str:
    """The review comment for one finding: what is wrong and why, then a question.
    `label`: for a release of what a goto's path never acquired, the label it should
    have jumped to."""
    msg = sentence(f.message)
    if label and _DEEPER.search(msg):
        msg = _DEEPER.sub(f"; should the goto jump to {label} instead?", msg)
    parts = [f"{_opening(f, in_hunk, code, f.confidence == 'low')} {_lower_first(msg)}"]
    path = _path(f)
    if path:
        parts.append(f"The path I followed: {path}.")
    if not msg.endswith("?"):
        parts.append(_question(f))
    note = revision_note([f])
    if note:
        parts.append(note)
    return wrap(" ".join(parts))


def held_clause(h: Held) -> str:
    """What happens to one resource an exit leaves held, in the words of its kind."""
    at = f"({h.by} at line {h.line})"
    if h.kind == "memory":
        return f"'{h.key}' {at} leaks"
    if h.kind == "ref":
        return f"the reference to '{h.key}' {at} is not dropped"
    if h.kind == "lock":
        return f"'{h.key}' {at} stays held"
    if h.kind == "state":
        return f"'{h.key}' {at} is not undone"
    if h.kind == "holder":
        return f"the holder '{h.key}' {at} is not released"
    return f"'{h.key}' {at} is not released"


def join_and(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def exit_text(ex: Exit) -> str:
    """What an exit does wrong, without a final stop: "this 'return err' skips the unwind
    code: 'priv' (kzalloc() at line 25) leaks"."""
    if ex.labels:
        where = f"the error exit through {'/'.join(ex.labels)}"
    elif ex.ret:
        where = f"this '{ex.ret}'"
    else:
        where = "this return"
    if any(x.rule == "error-path.direct-return" for x in ex.findings):
        what = f"{where} skips the unwind code"
    else:
        what = f"{where} does not release everything it should"
    return f"{what}: {join_and([held_clause(h) for h in ex.held])}"


def defect_text(f: Finding, packs: Packs | None) -> str:
    """One finding as one sentence, as a list of them says it (a cover letter's summary,
    an acknowledgement of what a patch fixes)."""
    items = group_exits([f], packs)
    if isinstance(items[0], Exit):
        return exit_text(items[0]) + "."
    return sentence(f.message)


def upper_first(s: str) -> str:
    """"this return ..." -> "This return ...", but never an identifier ("mutex_unlock()")."""
    m = re.match(r"[a-z]+\b", s)
    if m and not s[m.end():].startswith(("(", "_", "->", ".", "[")):
        return s[0].upper() + s[1:]
    return s


def exit_comment(ex: Exit, in_hunk: bool, code: str, advice: Advice) -> str:
    """One comment for an exit: all it leaves held, then where it should go instead."""
    f = ex.lead
    rules = {x.rule for x in ex.findings}
    low = all(x.confidence == "low" for x in ex.findings)
    parts = [f"{_opening(f, in_hunk, code, low)} {exit_text(ex)}."]
    if advice.label:
        parts.append(f"Should this be goto {advice.label}?")
    elif advice.searched and advice.labels and ex.labels:
        parts.append("None of the labels releases exactly that: is a release missing from "
                     "the unwind code?")
    elif advice.searched and advice.labels:
        parts.append("None of the labels below releases exactly that: does the unwind code "
                     "need a label for it?")
    elif "error-path.direct-return" in rules:
        parts.append("Should it go through the error labels instead?")
    elif "get-put.lock-imbalance" in rules and len(ex.held) == 1:
        parts.append("Is an unlock missing here?")
    elif ex.labels:
        parts.append("Is a release missing from the unwind code?")
    elif rules & {"get-put.leak", "get-put.lock-imbalance"}:
        parts.append("Is a release missing here, as on the function's other paths?")
    else:
        parts.append("Is a release missing here?")
    note = revision_note(ex.findings)
    if note:
        parts.append(note)
    return wrap(" ".join(parts))
