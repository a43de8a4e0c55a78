"""Steps 3 and 4 of a poll: review each series due, draft once per finding, record.

Findings are fingerprinted (series subject, rule, file, function, resource): one drafted
for an earlier revision is not drafted again, except once, in the next revision that still
has it, saying the review of vN pointed it out already. Drafts go to the outbox Maildir under names derived
from the fingerprints, written (tmp/ + rename) before the transaction that records them; a
run killed in between finds the file on the next run and records it without writing it
twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.cron.series import ReviewJob, attach_messages, pending_series, prepare
from reviewbot.cron.store import fingerprint, series_key

if TYPE_CHECKING:
    from email.message import EmailMessage

    from reviewbot.cron.poll import ListConfig, PollRun
    from reviewbot.model import Finding, Series, SeriesResult

log = logging.getLogger("reviewbot.cron.review")

REVIEW_BATCH = 100  # series reviewed together (worker processes), then recorded in order


@dataclass
class FindingToDraft:
    """An introduced finding that goes into a draft of this revision."""

    fingerprint: str
    kind: str  # new | still (drafted for an earlier revision: said once)
    finding: Finding
    patch_message_id: str


@dataclass
class Draft:
    """A drafted reply and where it goes."""

    message_id: str  # derived from the series, revision, patch and fingerprints
    filename: str  # in the outbox Maildir
    message: EmailMessage
    in_reply_to: str  # the Message-ID it answers, without <>


def review_pending(run: PollRun, lc: ListConfig) -> None:
    """Take the pending series one at a time: parse its messages, review (REVIEW_BATCH
    together), draft, and let them go before the next ones, so memory does not grow with
    the backlog."""
    batch: list[ReviewJob] = []
    claimed: set[tuple[str, int]] = set()
    for s in pending_series(run, lc):
        head = s.cover or s.patches[0]
        key = (series_key(s.subject, head.author_email), s.revision)
        if key in claimed or len(batch) >= REVIEW_BATCH:
            # a second thread of the same revision waits until the first is recorded
            review_batch(run, lc, batch)
            batch, claimed = [], set()
        job = prepare(run, lc, s)
        if job is not None:
            batch.append(job)
            claimed.add(key)
    review_batch(run, lc, batch)


def review_batch(run: PollRun, lc: ListConfig, jobs: list[ReviewJob]) -> None:
    """Review the prepared series together (``pipeline.review_all``: one worker process
    per core), then record and draft each in order. Should the batch fail, each series
    is reviewed on its own, so one bad series marks only itself as an error."""
    if not jobs:
        return
    results = None
    if len(jobs) > 1:
        from reviewbot.review.pipeline import review_all

        try:
            results = review_all([j.series for j in jobs], tree=lc.tree, base=lc.base,
                                 packs=run.opts.packs)
        except Exception as e:  # noqa: BLE001 - retried one by one below
            log.info("%s: reviewing %d series together failed (%s); one at a time",
                     lc.name, len(jobs), e)
            results = None
    for n, job in enumerate(jobs):
        review_one(run, lc, job, result=results[n] if results is not None else None)


def review_one(run: PollRun, lc: ListConfig, job: ReviewJob,
               result: SeriesResult | None = None) -> None:
    """Record and draft the review of one series (``result``: reviewed already)."""
    st, s, rev = run.store, job.series, job.revision
    from reviewbot.review.pipeline import review_series

    if s.missing:
        log.info("%s: reviewing incomplete series %r v%d (missing %s)", lc.name, s.subject,
                 s.revision, ", ".join(f"{n}/{s.expected}" for n in s.missing))
    try:
        run.hooks.review(s.subject)
        if result is None:
            result = review_series(s, tree=lc.tree, base=lc.base, packs=run.opts.packs)
    except Exception as e:  # noqa: BLE001 - one bad series must not stop the run
        reason = f"{type(e).__name__}: {e}"[:500]
        log.error("%s: review of %r v%d failed: %s", lc.name, s.subject, s.revision, reason)
        with st.transaction():
            st.assign_messages(lc.name, job.message_ids, rev.id)
            f = run.fail(lc, "review", str(rev.id), f"{s.subject!r} v{s.revision}: {reason}")
            # until parked the revision keeps its status: a later run reviews it again
            st.update_revision(rev.id, "error" if f.parked else rev.status, job.done,
                               s.missing, reason)
        run.report.review_errors += 1
        return
    from reviewbot.model import SeriesResult

    todo = set(job.todo)
    keep = [pr for pr in result.patches if pr.patch.number in todo]
    records: list[FindingToDraft] = []
    seen: set[str] = set()
    for pr in keep:
        out = []
        for f in pr.findings:
            if f.status != "introduced":
                out.append(f)
                continue
            fp = fingerprint(s.subject, f)
            if fp in seen:
                continue
            prior = st.drafted(job.series_id, fp)
            if any(r.revision == s.revision or r.kind == "still" for r in prior):
                continue
            earlier = [r.revision for r in prior if r.revision < s.revision]
            if earlier:
                f.still_present_since = min(earlier)
            seen.add(fp)
            out.append(f)
            records.append(FindingToDraft(fp, "still" if earlier else "new", f,
                                          pr.patch.message_id))
        pr.findings = out
    sub = SeriesResult(series=s, patches=keep)
    if sub.findings():
        attach_messages(run, lc, s)
    drafts = make_drafts(run, lc, s, sub, records)
    log.info("%s: reviewed %r v%d (patches %s): %d finding(s) to draft", lc.name, s.subject,
             s.revision, ", ".join(map(str, sorted(todo))), len(records))
    written = []
    for d in drafts:
        if not st.draft_known(d.message_id):
            write_draft(run, d)
            written.append(d.message_id)
            log.info("%s: wrote draft %s (reply to <%s>)", lc.name,
                     run.opts.outbox / "new" / d.filename, d.in_reply_to)
            run.hooks.draft()
        else:
            log.info("%s: draft %s was written by an earlier run", lc.name, d.filename)
    with st.transaction():
        st.clear_failure(lc.name, "review", str(rev.id))
        by_patch = {d.in_reply_to: d.message_id for d in drafts}
        for r in records:
            st.add_finding(job.series_id, r.fingerprint, s.revision, r.kind, r.finding,
                           r.patch_message_id, by_patch.get(r.patch_message_id, ""))
        for d in drafts:
            st.add_draft(d.message_id, lc.name, rev.id, d.in_reply_to, d.filename)
        st.assign_messages(lc.name, job.message_ids, rev.id)
        st.update_revision(rev.id, job.status, job.done | todo, s.missing)
    run.report.reviewed += 1
    if job.status == "partial":
        run.report.partial += 1
    run.report.drafts += len(written)


def make_drafts(run: PollRun, lc: ListConfig, s: Series, result: SeriesResult,
                records: list[FindingToDraft]) -> list[Draft]:
    """The drafts of one series' review; their ids derive from the series, revision,
    patch and fingerprints, so a re-run after a crash produces the same names."""
    if not result.findings():
        return []
    from reviewbot.mail.draft import build_drafts
    from reviewbot.mail.headers import sender_address

    cfg = run.opts.cfg
    msgs = build_drafts(result, cfg, packs=run.opts.packs,
                        warn=lambda line: log.warning("%s: %s", lc.name, line))
    try:
        domain = sender_address(cfg).domain or "reviewbot.invalid"
    except Exception:  # noqa: BLE001
        domain = "reviewbot.invalid"
    out = []
    for msg in msgs:
        irt = str(msg.get("In-Reply-To", "")).strip().strip("<>")
        fps = sorted(r.fingerprint for r in records if r.patch_message_id == irt or not irt
                     or irt == s.message_id)
        h = hashlib.sha1("\0".join([lc.name, s.subject.lower(), str(s.revision), irt,
                                    ",".join(fps)]).encode()).hexdigest()[:24]
        mid = f"<reviewbot-{h}@{domain}>"
        del msg["Message-ID"]
        msg["Message-ID"] = mid
        out.append(Draft(mid, f"reviewbot-{h}.eml", msg, irt))
    return out


def write_draft(run: PollRun, d: Draft) -> None:
    """Into the outbox under its own name, unless a run killed before it could record
    the draft has delivered it already."""
    from reviewbot.mail.outbox import write_maildir

    write_maildir([d.message], run.opts.outbox, names=[d.filename])
