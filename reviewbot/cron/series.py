"""Step 2 of a poll: group the pending patches into series, across runs, and decide what
to review now.

The patches and covers not yet reviewed are grouped from the fields recorded at ingest (no
message is parsed for that). A complete series is reviewed; an incomplete one waits up to
``wait_incomplete_hours`` from its first message, then is reviewed as far as it goes (and
says what was missing). A patch that arrives after that is reviewed on its own (with the
earlier patches applied).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.cron.ingest import parse_message, patch_from_json
from reviewbot.cron.store import PendingMessage, Revision, series_key

if TYPE_CHECKING:
    from reviewbot.cron.poll import ListConfig, PollRun
    from reviewbot.model import Patch, Series

log = logging.getLogger("reviewbot.cron.series")


@dataclass
class ReviewJob:
    """A series to review now, and what recording its review needs."""

    series: Series
    series_id: int
    revision: Revision
    todo: list[int]  # patch numbers to review now
    done: set[int]  # patch numbers reviewed by earlier runs
    status: str  # what the revision becomes once recorded: reviewed | partial
    message_ids: list[str]  # the series' messages, assigned to the revision when recorded


def due(run: PollRun, lc: ListConfig) -> bool:
    """With no new mail, is there anything to do? Only if a waiting series has waited
    long enough, something was left unassigned by a run killed half-way, or a failed review
    is due to be tried again."""
    st = run.store
    waiting = st.waiting(lc.name)
    if st.has_unassigned(lc.name):
        return True
    if any(not f.parked and f.next_at <= run.now for f in st.failures(lc.name, "review")):
        return True  # a review that failed is due to be tried again
    if waiting.count and run.now - waiting.since >= lc.wait_incomplete:
        return True
    run.report.waiting += waiting.count
    return False


def pending_series(run: PollRun, lc: ListConfig) -> Iterator[Series]:
    """The series of the pending patches and covers, in a stable order, each with its
    Patches in full; one at a time, so memory does not grow with the backlog."""
    rows = run.store.pending_messages(lc.name)
    if not rows:
        return
    from reviewbot.input.series import series_from_patches

    stubs = [_stub(run, lc, r) for r in rows]
    del rows
    series = series_from_patches(stubs, all_revisions=True)
    del stubs
    series.sort(key=lambda s: (s.revision, s.subject.lower(), s.message_id))
    for i, s in enumerate(series):
        series[i] = None  # type: ignore[call-overload]  # released once handled
        full = _full_series(run, lc, s)
        if full is not None:
            yield full


def _stub(run: PollRun, lc: ListConfig, row: PendingMessage) -> Patch:
    """A Patch with the grouping fields of a pending message (``diff`` only says whether
    it has one). Messages recorded without those fields (by an older version) get them
    from the raw message, once."""
    from reviewbot.input.classify import parse_subject
    from reviewbot.model import Patch

    subject, email_, irt, refs = row.subject, row.author_email, row.in_reply_to, row.references
    if email_ is None or irt is None or refs is None:
        st = run.store
        raw = st.raw_messages(lc.name, [row.message_id]).get(row.message_id)
        if raw is not None:
            from reviewbot.input.mail import patch_headers

            p, _d = patch_headers(parse_message(raw))
            subject, email_, irt, refs = (p.raw_subject, p.author_email, p.in_reply_to,
                                          p.references)
            with st.transaction():
                st.set_grouping(lc.name, row.message_id, subject, email_, irt, refs)
    info = parse_subject(subject)
    return Patch(subject=info["subject"], raw_subject=subject, message_id=row.message_id,
                 number=info["number"], total=info["total"], revision=info["revision"],
                 author_email=email_ or "", in_reply_to=irt or "", references=list(refs or []),
                 diff="+\n" if row.kind == "patch" else "")


def _full_series(run: PollRun, lc: ListConfig, s: Series) -> Series | None:
    """The series with its Patches in full (as recorded at ingest, else parsed from
    the raw message), grouped as ``s`` was. The messages themselves are parsed only
    if a draft needs them (``attach_messages``)."""
    from reviewbot.input.mail import patch_from_message
    from reviewbot.model import Series

    st = run.store
    members = ([s.cover] if s.cover else []) + s.patches
    ids = [p.message_id for p in members]
    stored = st.stored_patches(lc.name, ids)
    raws = st.raw_messages(lc.name, [m for m in ids if m not in stored])

    def full(p: Patch) -> Patch:
        if p.message_id in stored:
            q = patch_from_json(stored[p.message_id])
        elif p.message_id in raws:
            q = patch_from_message(parse_message(raws[p.message_id]))
        else:
            return p
        q.message_id = p.message_id
        return q

    cover = full(s.cover) if s.cover else None
    patches = [full(p) for p in s.patches]
    head = cover or (patches[0] if patches else None)
    if head is None:
        return None
    return Series(subject=head.subject, revision=s.revision, message_id=s.message_id,
                  patches=patches, cover=cover, expected=s.expected,
                  missing=list(s.missing))


def attach_messages(run: PollRun, lc: ListConfig, s: Series) -> None:
    """Parse the series' messages for the drafts (headers of the original mail)."""
    members = [p for p in ([s.cover] if s.cover else []) + s.patches
               if p.message is None and p.message_id]
    raws = run.store.raw_messages(lc.name, [p.message_id for p in members])
    for p in members:
        if p.message_id in raws:
            p.message = parse_message(raws[p.message_id])


def prepare(run: PollRun, lc: ListConfig, s: Series) -> ReviewJob | None:
    """Record the series and its revision; the review to do, or None (reviewed already,
    waiting, nothing left). The messages are assigned to the revision now when there is
    nothing to review, else in the transaction that records the review: a run killed in
    between leaves them unassigned, and the next run (``due``) takes the series up again."""
    st = run.store
    head = s.cover or (s.patches[0] if s.patches else None)
    if head is None:
        return None
    ids = [p.message_id for p in ([s.cover] if s.cover else []) + s.patches if p.message_id]
    key = series_key(s.subject, head.author_email)
    author = f"{head.author_name} <{head.author_email}>"
    with st.transaction():
        sid = st.series_id(lc.name, key, s.subject, author)
        rev = st.ensure_revision(sid, s.revision, s.message_id, s.expected)
        job = _decide(run, lc, s, sid, rev, ids)
        if job is None:
            st.assign_messages(lc.name, ids, rev.id)
    return job


def _decide(run: PollRun, lc: ListConfig, s: Series, sid: int, rev: Revision,
            ids: list[str]) -> ReviewJob | None:
    st = run.store
    if rev.status not in ("waiting", "partial"):
        return None  # reviewed already (a resend of the same revision)
    failed = st.failure(lc.name, "review", str(rev.id))
    if failed is not None and failed.next_at > run.now:
        return None  # its review failed: tried again once the backoff has passed
    done = set(rev.reviewed)
    todo = sorted({p.number for p in s.patches} - done)
    first = st.first_seen(lc.name, ids) or run.now
    if s.complete:
        status = "reviewed"
    else:
        age = run.now - first
        if age < lc.wait_incomplete:
            if rev.status == "waiting":
                run.report.waiting += 1
            log.info("%s: %r v%d waits for patch(es) %s", lc.name, s.subject, s.revision,
                     ", ".join(f"{n}/{s.expected}" for n in s.missing))
            return None
        status = "partial"
        if not todo:
            if age > max(run.opts.forget_incomplete, lc.wait_incomplete):
                st.update_revision(rev.id, "closed", done, s.missing)
            return None
    if not todo:
        st.update_revision(rev.id, status, done, s.missing)
        return None
    return ReviewJob(series=s, series_id=sid, revision=rev, todo=todo, done=done,
                     status=status, message_ids=ids)
