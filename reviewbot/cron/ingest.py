"""Step 1 of a poll: record each new message of a list, once.

Git epochs are read commit by commit after the last one processed (HTTP fallback: new.atom,
paged back to the last run's mark, and thread mboxes; a thread that cannot be fetched is
recorded as a failure, tried again by later runs and parked after ``max_tries``, and the
others go on). Each message is recorded (patches and covers with their bytes) in the
same transaction as the epoch position, so a killed run neither loses nor repeats one. A
message that cannot be parsed is logged and recorded as skipped. Each message is parsed
once, here: what grouping needs (subject, author, In-Reply-To, References) goes into
columns and a patch's or cover's parsed fields are kept as JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.cron.mirror import GitMirror, HttpSource, MirrorError, fetch_manifest
from reviewbot.cron.net import DeadlineExceeded, NetError

if TYPE_CHECKING:
    import email.message
    from multiprocessing.pool import Pool

    from reviewbot.cron.poll import ListConfig, PollRun
    from reviewbot.model import Patch

log = logging.getLogger("reviewbot.cron.ingest")

BATCH = 200  # messages per ingest transaction
MARK = "new.atom"  # the HTTP fallback's position: the newest new.atom time fully read
_B64_DEFECTS = ("InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect",
                "InvalidBase64LengthDefect")


# --------------------------------------------------------------------------- messages


def parse_message(raw: bytes, compat: bool = False):
    """A message (policy.default; compat32 if asked). ``email`` is imported here, not at
    module level: a poll with nothing new never needs it."""
    import email
    import email.policy

    from reviewbot.input.mail import without_lone_cr

    return email.message_from_bytes(without_lone_cr(raw), policy=email.policy.compat32
                                    if compat else email.policy.default)


def check_message(msg: email.message.Message) -> None:
    """Raise ValueError for a message the bot cannot trust: no Message-ID, an unknown
    charset or broken base64 in a text part."""
    import codecs

    mid = None
    for k, v in msg.raw_items():  # plain value: no header class needed to look at it
        if k.lower() == "message-id":
            mid = v if isinstance(v, str) and v.isascii() and "=?" not in v else None
            break
    if mid is None:
        mid = msg.get("Message-ID")
    if not mid or "<" not in str(mid) and "@" not in str(mid):
        raise ValueError("no Message-ID")
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        cs = part.get_content_charset()
        if cs:
            try:
                codecs.lookup(cs)
            except LookupError:
                raise ValueError(f"unknown charset {cs!r}") from None
        part.get_payload(decode=True)
        bad = [type(d).__name__ for d in part.defects if type(d).__name__ in _B64_DEFECTS]
        if bad:
            raise ValueError(f"undecodable body ({bad[0]})")


def classify(raw: bytes):
    """(Patch, kind) for a raw message, parsed in full (``patch_from_message``: what the
    review needs, recorded with patches and covers); raises ValueError when malformed."""
    from reviewbot.input.classify import message_kind
    from reviewbot.input.mail import patch_from_message

    msg = parse_message(raw)
    check_message(msg)
    p = patch_from_message(msg)
    if not p.message_id:
        raise ValueError("no Message-ID")
    return p, message_kind(p)


_NOT_STORED = ("message", "source")


def patch_json(p: Patch) -> str:
    """A parsed Patch's fields (all but the message object) as JSON."""
    import dataclasses

    return json.dumps({f.name: getattr(p, f.name) for f in dataclasses.fields(p)
                       if f.name not in _NOT_STORED}, ensure_ascii=False,
                      separators=(",", ":"))


def patch_from_json(text: str) -> Patch:
    from reviewbot.model import Patch

    return Patch(**json.loads(text))


@dataclass(slots=True)
class Classified:
    """A message parsed: its Patch (without the message object, so that a worker can
    send it back) and its kind."""

    patch: Patch
    kind: str  # patch | cover | reply | other


@dataclass(slots=True)
class Failure:
    """A message that could not be parsed, and why."""

    reason: str  # "ValueError: no Message-ID"
    message: str


def classify_safe(raw: bytes | None) -> Classified | Failure | None:
    """classify(raw) as a picklable record (a worker's answer); None for a deletion."""
    if raw is None:
        return None
    try:
        p, kind = classify(raw)
    except Exception as e:  # noqa: BLE001 - any parse failure means: skip this one
        return Failure(f"{type(e).__name__}: {e}", str(e))
    p.message = None
    return Classified(p, kind)


# ----------------------------------------------------------------------------- ingest


class Ingester:
    """Records the new messages of one run's lists (parsing them with worker processes
    during a large git ingest)."""

    def __init__(self, run: PollRun) -> None:
        self.run = run
        self._pool: Pool | None = None

    def ingest(self, lc: ListConfig) -> None:
        limits = self.run.opts.limits
        manifest = None
        if lc.transport in ("auto", "git"):
            log.info("%s: fetching %s/manifest.js.gz", lc.name, lc.url.rstrip("/"))
            manifest = fetch_manifest(lc.url, limits, self.run.until)
            if manifest is None and lc.transport == "git":
                raise MirrorError(f"{lc.url} offers no git epochs (no manifest.js.gz)")
        if manifest is None:
            log.info("%s: no git epochs offered: reading new.atom over HTTP", lc.name)
            self.ingest_http(lc)
        else:
            log.info("%s: %d git epoch(s) offered", lc.name, len(manifest))
            self.ingest_git(lc, manifest)

    def _too_old(self, when: float | None) -> bool:
        """Is a message of this time (seconds since the epoch) before --since?"""
        since = self.run.opts.since
        return since is not None and when is not None and when < since

    def ingest_git(self, lc: ListConfig, manifest: dict[int, dict]) -> None:
        run = self.run
        st = run.store
        gm = GitMirror(run.opts.mirrors / lc.name, progress=run.progress.update)
        for epoch in sorted(manifest):
            url, fp = manifest[epoch]["url"], manifest[epoch]["fingerprint"]
            pos = st.epoch(lc.name, epoch)
            if (pos is not None and fp and pos.fingerprint == fp
                    and gm.path(epoch).is_dir()):
                log.info("%s: epoch %d unchanged since the last run: not fetched", lc.name,
                         epoch)
                continue  # unchanged since the last run: no git traffic at all
            left = self.run.until - time.monotonic()
            if left <= 0:
                self.run.report.deadline = True
                return
            log.info("%s: fetching epoch %d from %s", lc.name, epoch, url)
            repo = gm.sync(epoch, url, min(run.opts.limits.git_timeout, left))
            last = pos.last_commit if pos is not None else None
            total = GitMirror.count_new(repo, last) if run.progress.enabled else 0
            tip = last
            n = 0
            new_before = run.report.new
            try:
                with st.transaction():
                    for cid, raw, parsed in self._classified(
                            self._recent(lc.name, repo, GitMirror.new_messages(repo, last))):
                        self._ingest_one(lc.name, f"{epoch}:{cid}", raw, parsed)
                        tip = cid
                        n += 1
                        if total:
                            run.progress.update(f"{lc.name} epoch {epoch}", n, total)
                        if n % BATCH == 0:
                            # fingerprint None: the epoch is not finished, fetch it next time
                            st.set_epoch(lc.name, epoch, url, None, tip)
                            st.checkpoint()
                        run.hooks.message()
                    st.set_epoch(lc.name, epoch, url, fp, tip)
            finally:
                self._stop_pool()
            log.info("%s: epoch %d: %d commit(s) read, %d new message(s)", lc.name, epoch, n,
                     run.report.new - new_before)

    def _recent(self, lst: str, repo, messages: Iterable[tuple[str, bytes | None]]
                ) -> Iterator[tuple[str, bytes | None]]:
        """The messages of an epoch, those committed before --since as deletions (None):
        public-inbox commits a message with its Date as the commit time, so an old one is
        passed over without being parsed."""
        if self.run.opts.since is None:
            yield from messages
            return
        for cid, raw in messages:
            if raw is not None:
                c = repo[cid]
                if self._too_old(c.commit_time):
                    self.run.report.skipped += 1
                    self.run.report.new += 1
                    log.info("%s: skipped %s %r: dated %s, before --since", lst, cid[:12],
                             c.message.strip()[:80], _stamp(c.commit_time))
                    raw = None
            yield cid, raw

    def _classified(self, messages: Iterable[tuple[str, bytes | None]]
                    ) -> Iterator[tuple[str, bytes | None, Classified | Failure | None]]:
        """(commit id, raw, classify_safe result) in order; messages are parsed BATCH at a
        time, by one worker process per core when there are many (the parent records
        them in order, so transactions and crash points are as in a serial run)."""
        import itertools

        it = iter(messages)
        while True:
            chunk = list(itertools.islice(it, BATCH))
            if not chunk:
                return
            raws = [raw for _cid, raw in chunk]
            jobs = os.cpu_count() or 1
            if len(chunk) >= 50 and jobs > 1:
                if self._pool is None:
                    import multiprocessing

                    self._pool = multiprocessing.get_context("fork").Pool(jobs)
                results = self._pool.map(classify_safe, raws, chunksize=8)
            else:
                results = [classify_safe(raw) for raw in raws]
            for (cid, raw), res in zip(chunk, results, strict=True):
                yield cid, raw, res

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def ingest_http(self, lc: ListConfig) -> None:
        """The threads of the messages listed since the last run's mark (and the failed
        ones whose retry is due), oldest first; the mark advances with them."""
        run = self.run
        st, lim = run.store, run.opts.limits
        src = HttpSource(lc.url, lim, run.until)
        mark = st.cursor(lc.name, MARK)
        since = run.opts.since
        # a first poll with --since lists new.atom back to that time only
        first = mark or (time.strftime("%Y%m%d%H%M%S", time.gmtime(since)) if since else None)
        listing = src.listing(first)
        log.info("%s: new.atom lists %d message(s) since %s", lc.name, len(listing.entries),
                 mark or (f"--since ({first})" if first else "ever"))
        if listing.gap:
            log.warning("%s: GAP in the HTTP fallback: %s", lc.name, listing.gap)
            run.report.gaps.append(f"{lc.name}: {listing.gap}")
        failed = {f.item: f for f in st.failures(lc.name, "thread")}
        retry = [f.item for f in failed.values() if not f.parked and f.next_at <= run.now]
        todo: list[tuple[str, str | None]] = [(m, None) for m in retry]
        todo += [(e.message_id, e.updated) for e in listing.entries
                 if e.message_id not in failed]
        fetched = 0
        for mid, updated in todo:
            if st.known(lc.name, mid) or st.skipped_message(lc.name, mid):
                log.info("%s: <%s> is recorded already: its thread is not fetched", lc.name,
                         mid)
                mark = updated or mark
                if mid in failed:  # came with another thread meanwhile
                    with st.transaction():
                        st.clear_failure(lc.name, "thread", mid)
                continue
            if fetched >= lim.max_threads:
                log.warning("%s: more than %d new threads; the rest waits for the next run",
                            lc.name, fetched)
                break
            if time.monotonic() >= run.until:
                run.report.deadline = True
                break
            try:
                raws = src.thread(mid)
            except NetError as e:
                if isinstance(e, DeadlineExceeded) and time.monotonic() >= run.until:
                    run.report.deadline = True  # the run's time is up, not the thread's fault
                    break
                with st.transaction():
                    run.fail(lc, "thread", mid, str(e))
                    if updated:
                        st.set_cursor(lc.name, MARK, mark := updated)
                continue
            fetched += 1
            log.info("%s: fetched the thread of <%s>: %d message(s)", lc.name, mid, len(raws))
            with st.transaction():
                for raw in raws:
                    self._ingest_one(lc.name, "http:" + hashlib.sha1(raw).hexdigest()[:16], raw)
                    run.hooks.message()
                if not st.known(lc.name, mid):
                    st.add_skipped(lc.name, f"http:{mid}", mid, "not found in its thread")
                st.clear_failure(lc.name, "thread", mid)
                if updated:
                    st.set_cursor(lc.name, MARK, mark := updated)
        if mark and mark != st.cursor(lc.name, MARK):
            with st.transaction():
                st.set_cursor(lc.name, MARK, mark)

    def _ingest_one(self, lst: str, origin: str, raw: bytes | None,
                    parsed: Classified | Failure | None = None) -> None:
        st, report = self.run.store, self.run.report
        if raw is None:
            return  # a deletion commit
        res = parsed if parsed is not None else classify_safe(raw)
        if isinstance(res, Failure):  # any parse failure means: skip this one
            mid = ""
            try:
                hdr = parse_message(raw[:65536], compat=True)
                mid = str(hdr.get("Message-ID", "")).strip().strip("<>")[:300]
            except Exception:  # noqa: BLE001
                pass
            log.warning("%s: skipping malformed message %s (%s): %s", lst, origin,
                        mid or "no Message-ID", res.message)
            st.add_skipped(lst, origin, mid, res.reason[:500])
            report.skipped += 1
            report.new += 1
            return
        assert res is not None  # None only for a deletion
        p, kind = res.patch, res.kind
        if self._too_old(_date_of(p.date)):
            log.info("%s: skipped <%s> %r: dated %s, before --since", lst, p.message_id,
                     p.raw_subject[:80], p.date)
            st.add_skipped(lst, origin, p.message_id, "dated before --since")
            report.skipped += 1
            report.new += 1
            return
        author = f"{p.author_name} <{p.author_email}>" if p.author_name else p.author_email
        keep_raw = raw if kind in ("patch", "cover") else None
        if st.add_message(lst, p.message_id, origin, kind, p.raw_subject, author, p.date,
                          keep_raw, p.author_email, p.in_reply_to, p.references,
                          patch_json(p) if keep_raw is not None else None):
            report.new += 1
            log.info("%s: ingested %s <%s> %r", lst, kind, p.message_id, p.raw_subject[:80])
        else:
            log.info("%s: skipped <%s>: recorded already (a duplicate)", lst, p.message_id)


def _date_of(value: str) -> float | None:
    """A Date header as seconds since the epoch; None when it does not parse."""
    import email.utils

    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
