"""What a message is, from its subject line and whether it carries a diff.

``parse_subject`` reads the tags of a subject (``[RFC PATCH v2 3/5]``) and its reply prefix;
``message_kind`` says what the message is, in one place for series grouping (input/series.py)
and for the poll's records (cron/ingest.py, which stores the kind).
"""

from __future__ import annotations

import re
from typing import Literal

from reviewbot.model import Patch

__all__ = ["MessageKind", "message_kind", "parse_subject"]

_REPLY_PREFIX_RE = re.compile(r"^\s*((re|aw|sv|fwd?|antw)\s*(\[\d+\])?\s*:\s*)+", re.I)
_TAG_RE = re.compile(r"^\s*\[([^\]]*)\]\s*")
_TAGGY_RE = re.compile(r"\b(PATCH|RFC|RESEND|v\d+|\d+/\d+)\b", re.I)
_REV_RE = re.compile(r"(?:^|[\s,])v(\d+)(?:$|[\s,])", re.I)
_NUM_RE = re.compile(r"(?:^|[\s,])(\d+)\s*/\s*(\d+)(?:$|[\s,])")

# patch: carries a diff; cover: a tagged number 0 (``[PATCH 0/3]``); reply: a Re:/Aw:/...
# subject; other: none of these (a note, a pull request). Grouping files "other" as it does
# a reply: under the series it answers.
MessageKind = Literal["patch", "cover", "reply", "other"]


def parse_subject(raw: str) -> dict:
    """Split a subject into its tags and the rest.

    Returns {"subject", "is_reply", "tags", "revision", "number", "total", "has_tags"}.
    """
    s = " ".join(raw.split())
    is_reply = False
    m = _REPLY_PREFIX_RE.match(s)
    if m:
        is_reply = True
        s = s[m.end():]
    tags: list[str] = []
    first = True
    while True:
        m = _TAG_RE.match(s)
        if not m:
            break
        content = m.group(1)
        if not first and not _TAGGY_RE.search(content):
            break
        tags.append(content)
        s = s[m.end():]
        first = False
    revision, number, total = 1, 1, 1
    for t in tags:
        mr = _REV_RE.search(t)
        if mr:
            revision = int(mr.group(1))
        mn = _NUM_RE.search(t)
        if mn:
            number, total = int(mn.group(1)), int(mn.group(2))
    if not s.strip() and tags:  # subject that is only a tag
        s = tags[-1]
    return {
        "subject": s.strip(),
        "is_reply": is_reply,
        "tags": tags,
        "revision": revision,
        "number": number,
        "total": max(total, 1),
        "has_tags": bool(tags),
    }


def message_kind(p: Patch, info: dict | None = None) -> MessageKind:
    """The kind of the message `p` was read from (`info`: its parsed subject, if at hand)."""
    if info is None:
        info = parse_subject(p.raw_subject)
    if info["is_reply"]:
        return "reply"
    if info["has_tags"] and p.number == 0:
        return "cover"
    if p.diff.strip():
        return "patch"
    return "other"
