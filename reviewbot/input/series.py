"""Patches, covers and replies -> series: by thread, then by subject tags.

``series_from_patches`` runs named phases over the messages, in this order: drop second
copies, join the members of a series (patches and covers) along their threads, join the
unthreaded ones by their tags, build one Series per group, file each reply under the series
it answers, and keep the newest revision of each family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reviewbot.input.classify import MessageKind, message_kind, parse_subject
from reviewbot.model import Patch, Series

if TYPE_CHECKING:
    import email.message

__all__ = ["series_from_messages", "series_from_patches"]

_MEMBER_KINDS = ("patch", "cover")  # what a series is made of; the rest are replies to it


class _UnionFind:
    """Disjoint sets of indices; a set's representative is its smallest index."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Messages:
    """The messages being grouped, by index: each Patch, its parsed subject and its kind;
    `groups` joins the indices of the members of one series."""

    patches: list[Patch]
    infos: list[dict]
    kinds: list[MessageKind]
    groups: _UnionFind
    members: list[int] = field(init=False)  # indices of the patches and covers

    def __post_init__(self) -> None:
        self.members = [i for i, k in enumerate(self.kinds) if k in _MEMBER_KINDS]

    @classmethod
    def of(cls, patches: list[Patch]) -> _Messages:
        infos = [parse_subject(p.raw_subject) for p in patches]
        kinds = [message_kind(p, info) for p, info in zip(patches, infos, strict=True)]
        return cls(patches, infos, kinds, _UnionFind(len(patches)))


@dataclass
class _Built:
    """The series built from the groups, and which one each Message-ID belongs to."""

    series: list[Series]
    owner: dict[str, int]  # Message-ID -> index into `series`


def series_from_messages(
    msgs: list[email.message.EmailMessage], all_revisions: bool = False
) -> list[Series]:
    """Group messages into series (thread and subject tags), newest revision only."""
    from reviewbot.input.mail import patch_from_message

    patches = [patch_from_message(m) for m in msgs]
    return series_from_patches(patches, all_revisions=all_revisions)


def series_from_patches(patches: list[Patch], all_revisions: bool = False) -> list[Series]:
    """Group Patch objects (patches, covers, replies) into Series; with `all_revisions`,
    every revision of a series, else the newest only."""
    m = _Messages.of(_drop_duplicates(patches))
    threaded = _join_threads(m)
    _join_by_tags(m, threaded)
    built = _build_series(m)
    _attach_replies(m, built)
    return built.series if all_revisions else _newest_revisions(built)


def _drop_duplicates(patches: list[Patch]) -> list[Patch]:
    """The patches without second copies of a Message-ID (a message seen twice)."""
    seen: set[str] = set()
    out: list[Patch] = []
    for p in patches:
        if p.message_id:
            if p.message_id in seen:
                continue
            seen.add(p.message_id)
        out.append(p)
    return out


def _ancestors(p: Patch) -> list[str]:
    """The Message-IDs `p` answers, nearest first: In-Reply-To, then References backwards."""
    out = [p.in_reply_to] if p.in_reply_to else []
    out.extend(reversed(p.references))
    return out


def _compatible(m: _Messages, i: int, j: int) -> bool:
    """Whether two members can be parts of one posting: other numbers of the same revision
    and length, not two covers."""
    a, b = m.patches[i], m.patches[j]
    if a.number == b.number or a.revision != b.revision:
        return False
    if a.total != b.total and max(a.total, b.total) > 1:
        return False
    return m.kinds[i] != "cover" or m.kinds[j] != "cover"


def _join_threads(m: _Messages) -> set[int]:
    """Join each member to the nearest member it answers, if they can be parts of one
    posting. Returns the members threaded with another member (joined or not)."""
    by_id = {m.patches[i].message_id: i for i in m.members if m.patches[i].message_id}
    threaded: set[int] = set()
    for i in m.members:
        for mid in _ancestors(m.patches[i]):
            j = by_id.get(mid)
            if j is None or j == i:
                continue
            threaded.add(i)
            threaded.add(j)
            if _compatible(m, i, j):
                m.groups.union(i, j)
                break
    return threaded


def _join_by_tags(m: _Messages, threaded: set[int]) -> None:
    """Join the members threaded with no other (format-patch files in a directory) by
    author, revision, length and tag words, one message per number in each group."""
    buckets: dict[tuple, list[set[int]]] = {}
    for i in m.members:
        if i in threaded:
            continue
        p, info = m.patches[i], m.infos[i]
        if not info["has_tags"] or (p.total <= 1 and p.number <= 1):
            continue
        tagkind = " ".join(
            w for w in " ".join(info["tags"]).upper().split()
            if not re.fullmatch(r"V\d+|\d+/\d+", w)
        )
        key = (p.author_email.lower(), p.revision, p.total, tagkind)
        groups = buckets.setdefault(key, [])
        for g in groups:
            if all(m.patches[j].number != p.number for j in g):
                m.groups.union(i, next(iter(g)))
                g.add(i)
                break
        else:
            groups.append({i})


def _build_series(m: _Messages) -> _Built:
    """One Series per group of members, in the order of their first message: the first
    cover, one patch per number (of a resend in the same thread, the last), how many were
    expected and which numbers are missing."""
    groups: dict[int, list[int]] = {}
    for i in m.members:
        groups.setdefault(m.groups.find(i), []).append(i)
    built = _Built([], {})
    for root in sorted(groups):
        members = groups[root]
        cover = None
        by_num: dict[int, Patch] = {}
        for i in members:
            if m.kinds[i] == "cover":
                if cover is None:
                    cover = m.patches[i]
            else:
                by_num[m.patches[i].number] = m.patches[i]
        plist = sorted(by_num.values(), key=lambda p: p.number)
        head = cover or plist[0]
        expected = max([p.total for p in plist] + ([cover.total] if cover else [1]))
        if not cover and len(plist) == 1 and plist[0].total <= 1:
            expected = 1
        have = {p.number for p in plist}
        for i in members:
            if m.patches[i].message_id:
                built.owner[m.patches[i].message_id] = len(built.series)
        built.series.append(Series(
            subject=head.subject,
            revision=head.revision,
            message_id=head.message_id,
            patches=plist,
            cover=cover,
            expected=expected,
            missing=[n for n in range(1, expected + 1) if n not in have],
        ))
    return built


def _attach_replies(m: _Messages, built: _Built) -> None:
    """File each reply (and other message) under the series of the nearest message it
    answers; replies to a filed reply land in the same series."""
    for i, kind in enumerate(m.kinds):
        if kind in _MEMBER_KINDS:
            continue
        for mid in _ancestors(m.patches[i]):
            if mid in built.owner:
                built.series[built.owner[mid]].replies.append(m.patches[i])
                if m.patches[i].message_id:
                    built.owner.setdefault(m.patches[i].message_id, built.owner[mid])
                break


def _base_subject(subject: str) -> str:
    return " ".join(subject.lower().split())


def _newest_revisions(built: _Built) -> list[Series]:
    """The newest revision of each family of series: the same subject, or one revision
    threaded under another (v2 sent in reply to v1)."""
    result, owner = built.series, built.owner
    families = _UnionFind(len(result))
    by_subject: dict[str, int] = {}
    for n, s in enumerate(result):
        key = _base_subject(s.subject)
        if key in by_subject:
            families.union(n, by_subject[key])
        else:
            by_subject[key] = n
        head = s.cover or (s.patches[0] if s.patches else None)
        if head is not None:
            for mid in [head.in_reply_to, *head.references]:
                if mid in owner and owner[mid] != n and result[owner[mid]].revision != s.revision:
                    families.union(n, owner[mid])
    # of one revision, a posting with patches wins over one without (a cover letter
    # resent alone, with a new Message-ID, must not displace its series)
    best: dict[int, int] = {}
    for n, s in enumerate(result):
        r = families.find(n)
        if r not in best or (s.revision, bool(s.patches)) >= (
                result[best[r]].revision, bool(result[best[r]].patches)):
            best[r] = n
    keep = set(best.values())
    return [s for n, s in enumerate(result) if n in keep]
