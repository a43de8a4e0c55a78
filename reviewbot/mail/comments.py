"""The review comment on one finding, as a maintainer would write it.

What is wrong and why (the rule engine's message), where when the line is outside the
hunks, a short path when the message names no lines, then a question; wrapped at 72 columns.
"""

from __future__ import annotations

import re
import textwrap

from reviewbot.mail.headers import one_line
from reviewbot.model import Finding

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


def comment_for(f: Finding, in_hunk: bool, code: str) -> str:
    """The review comment for one finding: what is wrong and why, then a question."""
    msg = sentence(f.message)
    hedge = "I may be misreading this, but it" if f.confidence == "low" else "It"
    parts = []
    if in_hunk:
        parts.append(f"{hedge} looks like {_lower_first(msg)}")
    else:
        where = f"line {f.line}" + (f" ('{code}')" if code else "")
        func = f" of {f.function}()" if f.function else ""
        parts.append(
            f"At {where}{func}, outside the lines this patch touches, "
            f"{hedge.lower()} looks like {_lower_first(msg)}"
        )
    path = _path(f)
    if path:
        parts.append(f"The path I followed: {path}.")
    if not msg.endswith("?"):
        parts.append(_question(f))
    if f.still_present_since:
        parts.append(f"This is still present since v{int(f.still_present_since)}.")
    return wrap(" ".join(parts))
