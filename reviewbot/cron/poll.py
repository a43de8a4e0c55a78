"""Cron mode: mirror watched lists, assemble series, review each new revision once, draft.

One run, for each list in the configuration:

1. read the inbox's manifest; for each epoch whose fingerprint changed, clone/fetch it with
   pygit2 and walk the commits after the last one processed (HTTP fallback: new.atom and
   thread mboxes). Each message is recorded (patches and covers with their bytes) in the
   same transaction as the epoch position, so a killed run neither loses nor repeats one.
   A message that cannot be parsed is logged and recorded as skipped. Each message is
   parsed once, here: what grouping needs (subject, author, In-Reply-To, References)
   goes into columns and a patch's or cover's parsed fields are kept as JSON.
2. group the patches not yet reviewed into series (across runs) from those columns, then
   take the series one at a time (memory does not grow with the backlog). A complete series is
   reviewed; an incomplete one waits up to ``wait_incomplete_hours`` from its first
   message, then is reviewed as far as it goes (and says what was missing). A patch that
   arrives after that is reviewed on its own (with the earlier patches applied).
3. findings are fingerprinted (series subject, rule, file, function, resource): one drafted
   for an earlier revision is not drafted again, except once, in the next revision that
   still has it, as "still present since vN".
4. drafts go to the outbox Maildir under names derived from the fingerprints, written
   (tmp/ + rename) before the transaction that records them; a run killed in between
   finds the file on the next run and records it without writing it twice.

A lock file keeps two runs apart. Test hooks (environment): REVIEWBOT_TEST_CRASH_AFTER=N
exits abruptly after N messages, REVIEWBOT_TEST_CRASH_AFTER_DRAFTS=N after N draft files,
REVIEWBOT_TEST_PAUSE_AFTER=N writes $REVIEWBOT_TEST_PAUSE_FILE after N messages and sleeps
(for a real SIGKILL from outside).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from reviewbot.config import section
from reviewbot.cron.mirror import (
    GitMirror,
    HttpSource,
    Limits,
    MirrorError,
    fetch_manifest,
    inbox_url,
)
from reviewbot.cron.store import State, fingerprint, series_key
from reviewbot.model import InputError

if TYPE_CHECKING:
    import email.message

log = logging.getLogger("reviewbot.cron.poll")

DEFAULT_LORE = "https://lore.kernel.org"
BATCH = 200  # messages per ingest transaction
REVIEW_BATCH = 100  # series reviewed together (worker processes), then recorded in order
_B64_DEFECTS = ("InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect",
                "InvalidBase64LengthDefect")


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")) / "reviewbot"


@dataclass
class ListConfig:
    name: str
    url: str  # the inbox's base URL
    tree: str | None = None
    base: str = "HEAD"
    transport: str = "auto"  # auto | git | http
    wait_incomplete: float = 24 * 3600.0  # seconds


@dataclass
class PollOptions:
    state: Path
    outbox: Path
    lock: Path
    mirrors: Path
    lists: list[ListConfig]
    limits: Limits
    cfg: dict[str, Any]
    forget_incomplete: float = 30 * 86400.0
    progress: bool = False


def _hours(v: Any, what: str) -> float:
    try:
        h = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{what}: not a number of hours: {v!r}") from None
    if h < 0:
        raise InputError(f"{what}: must not be negative")
    return h * 3600.0


def options(cfg: dict[str, Any], args: Any = None) -> PollOptions:
    """PollOptions from the configuration, flags (args attributes, None = not given) winning."""
    poll = section(cfg, "poll")

    def flag(name: str) -> Any:
        return getattr(args, name, None) if args is not None else None

    def path(v: Any) -> Path:
        return Path(os.path.expanduser(str(v)))

    state = path(flag("state") or poll.get("state") or _state_home() / "state.sqlite")
    outbox = path(flag("outbox") or poll.get("outbox") or _state_home() / "outbox")
    lock = path(flag("lock") or poll.get("lock") or str(state) + ".lock")
    mirrors = path(poll.get("mirrors") or state.parent / "mirrors")
    wait = flag("wait_incomplete_hours")
    wait = _hours(wait if wait is not None else poll.get("wait_incomplete_hours", 24),
                  "wait_incomplete_hours")
    try:
        forget = _hours(float(poll.get("forget_incomplete_days", 30)) * 24,
                        "forget_incomplete_days")
    except (TypeError, ValueError):
        raise InputError("forget_incomplete_days: not a number") from None
    lore = flag("lore") or poll.get("lore") or DEFAULT_LORE
    tree = flag("tree") or poll.get("tree")
    transport = flag("transport") or poll.get("transport", "auto")

    entries = cfg.get("lists", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError("[[lists]] must be an array of tables")
    want = flag("list")
    if want:
        chosen = [e for e in entries if e.get("name") == want] or [{"name": want}]
    else:
        chosen = entries
    if not chosen:
        raise InputError("no list to watch: add [[lists]] to the configuration or give --list")
    lists = []
    for e in chosen:
        name = e.get("name")
        if not name or not isinstance(name, str) or "/" in name:
            raise InputError(f"[[lists]] entry without a valid name: {e!r}")
        lore_e = flag("lore") or e.get("lore") or lore
        t = e.get("transport", transport)
        if t not in ("auto", "git", "http"):
            raise InputError(f"list {name}: transport must be auto, git or http")
        w = e.get("wait_incomplete_hours")
        lists.append(ListConfig(
            name=name, url=inbox_url(str(lore_e), name),
            tree=os.path.expanduser(str(flag("tree") or e.get("tree") or tree)) if (
                flag("tree") or e.get("tree") or tree) else None,
            base=str(e.get("base", poll.get("base", "HEAD"))),
            transport=t,
            wait_incomplete=_hours(w, "wait_incomplete_hours") if w is not None else wait))
    try:
        limits = Limits.from_config(poll)
    except (TypeError, ValueError) as e:
        raise InputError(f"[poll] limits: {e}") from None
    quiet = bool(flag("quiet"))
    progress = not quiet and sys.stderr.isatty()
    return PollOptions(state=state, outbox=outbox, lock=lock, mirrors=mirrors, lists=lists,
                       limits=limits, cfg=cfg, forget_incomplete=forget, progress=progress)


# ----------------------------------------------------------------------------- report


@dataclass
class Report:
    lists: int = 0
    new: int = 0
    skipped: int = 0
    reviewed: int = 0
    partial: int = 0
    waiting: int = 0
    drafts: int = 0
    errors: list[str] = field(default_factory=list)
    review_errors: int = 0
    elapsed: float = 0.0
    outbox: str = ""

    def summary(self) -> str:
        s = (f"reviewbot poll: {self.lists} list{'s' if self.lists != 1 else ''},"
             f" {self.new} new message{'s' if self.new != 1 else ''}"
             f" ({self.skipped} skipped), {self.reviewed} series reviewed"
             f" ({self.partial} incomplete), {self.waiting} waiting,"
             f" {self.drafts} draft{'s' if self.drafts != 1 else ''} in {self.outbox}")
        if self.review_errors:
            s += f", {self.review_errors} review error{'s' if self.review_errors != 1 else ''}"
        if self.errors:
            s += f", {len(self.errors)} list{'s' if len(self.errors) != 1 else ''} failed"
        return s + f" ({self.elapsed:.2f}s)"


class _Hooks:
    """Crash points for the kill tests (environment variables, off by default)."""

    def __init__(self) -> None:
        env = os.environ
        self.crash_msgs = int(env.get("REVIEWBOT_TEST_CRASH_AFTER", "0") or 0)
        self.crash_drafts = int(env.get("REVIEWBOT_TEST_CRASH_AFTER_DRAFTS", "0") or 0)
        self.pause_msgs = int(env.get("REVIEWBOT_TEST_PAUSE_AFTER", "0") or 0)
        self.pause_file = env.get("REVIEWBOT_TEST_PAUSE_FILE", "")
        self.msgs = 0
        self.drafts = 0

    def message(self) -> None:
        self.msgs += 1
        if self.crash_msgs and self.msgs >= self.crash_msgs:
            os._exit(137)
        if self.pause_msgs and self.msgs == self.pause_msgs:
            if self.pause_file:
                Path(self.pause_file).write_text(str(os.getpid()))
            time.sleep(120)

    def draft(self) -> None:
        self.drafts += 1
        if self.crash_drafts and self.drafts >= self.crash_drafts:
            os._exit(137)


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise (cron)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.tasks: dict[str, Any] = {}

    def update(self, label: str, done: int, total: int) -> None:
        if not self.enabled or total < 50:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[label], completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Locked(Exception):
    pass


_HELD: dict[str, int] = {}  # the lock fd of this process's run, for forked children


def _in_forked_child() -> None:
    """Worker processes (``pipeline.review_all`` forks them) must not keep the run's lock
    once the run is gone: close their copy of the lock fd (the parent's still holds the
    lock), and ask to be killed with the parent, so a poll killed with -9 mid-review
    leaves neither a held lock nor idle workers behind."""
    fd = _HELD.pop("fd", None)
    if fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        import ctypes
        import signal

        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)


def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise Locked(str(path)) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


# --------------------------------------------------------------------------- messages


def _parse(raw: bytes, compat: bool = False):
    """A message (policy.default; compat32 if asked). ``email`` is imported here, not at
    module level: a poll with nothing new never needs it."""
    import email
    import email.policy

    return email.message_from_bytes(raw, policy=email.policy.compat32 if compat
                                    else email.policy.default)


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
    from reviewbot.input.sources import parse_subject, patch_from_message

    msg = _parse(raw)
    check_message(msg)
    p = patch_from_message(msg)
    has_diff = bool(p.diff.strip())
    if not p.message_id:
        raise ValueError("no Message-ID")
    info = parse_subject(p.raw_subject)
    if info["is_reply"]:
        kind = "reply"
    elif info["has_tags"] and p.number == 0:
        kind = "cover"
    elif has_diff:
        kind = "patch"
    else:
        kind = "other"
    return p, kind


_NOT_STORED = ("message", "source")


def patch_json(p) -> str:
    """A parsed Patch's fields (all but the message object) as JSON."""
    import dataclasses

    return json.dumps({f.name: getattr(p, f.name) for f in dataclasses.fields(p)
                       if f.name not in _NOT_STORED}, ensure_ascii=False,
                      separators=(",", ":"))


def patch_from_json(text: str):
    from reviewbot.model import Patch

    return Patch(**json.loads(text))


class _Failure(NamedTuple):
    reason: str  # "ValueError: no Message-ID"
    message: str


def _classify_safe(raw: bytes | None):
    """classify(raw) without the message object (picklable: a worker's answer), or
    _Failure; None for a deletion."""
    if raw is None:
        return None
    try:
        p, kind = classify(raw)
    except Exception as e:  # noqa: BLE001 - any parse failure means: skip this one
        return _Failure(f"{type(e).__name__}: {e}", str(e))
    p.message = None
    return p, kind


# ------------------------------------------------------------------------------ poller


class Poller:
    def __init__(self, opts: PollOptions) -> None:
        self.o = opts
        self.report = Report(lists=len(opts.lists), outbox=str(opts.outbox))
        self.hooks = _Hooks()
        self.progress = _Progress(opts.progress)
        self.state: State | None = None
        self.now = time.time()
        self._pool = None  # classify workers during a git ingest

    # -- the run ------------------------------------------------------------------
    def run(self) -> Report:
        t0 = time.monotonic()
        try:
            lockfd = _lock(self.o.lock)
            _HELD["fd"] = lockfd
        except Locked:
            raise InputError(f"another poll is running (lock {self.o.lock} is held)") from None
        try:
            from reviewbot.cron.store import StateError

            try:
                self.state = State(self.o.state)
            except StateError as e:
                raise InputError(str(e)) from None
            for lc in self.o.lists:
                before = self.report.new
                try:
                    self.ingest(lc)
                except MirrorError as e:
                    self.report.errors.append(f"{lc.name}: {e}")
                    continue
                if self.report.new > before or self.due(lc):
                    self.review_pending(lc)
            self.progress.close()
            self.report.elapsed = time.monotonic() - t0
            if len(self.report.errors) < len(self.o.lists):
                self.state.add_run(self.now, self.report.summary())
            return self.report
        finally:
            self.progress.close()
            if self.state is not None:
                self.state.close()
            _HELD.pop("fd", None)
            os.close(lockfd)

    # -- 1. ingest -------------------------------------------------------------------
    def ingest(self, lc: ListConfig) -> None:
        manifest = None
        if lc.transport in ("auto", "git"):
            manifest = fetch_manifest(lc.url, self.o.limits)
            if manifest is None and lc.transport == "git":
                raise MirrorError(f"{lc.url} offers no git epochs (no manifest.js.gz)")
        if manifest is None:
            self.ingest_http(lc)
        else:
            self.ingest_git(lc, manifest)

    def ingest_git(self, lc: ListConfig, manifest: dict[int, dict]) -> None:
        st = self.state
        assert st is not None
        gm = GitMirror(self.o.mirrors / lc.name, progress=self.progress.update)
        for epoch in sorted(manifest):
            url, fp = manifest[epoch]["url"], manifest[epoch]["fingerprint"]
            row = st.epoch(lc.name, epoch)
            if (row is not None and fp and row["fingerprint"] == fp
                    and gm.path(epoch).is_dir()):
                continue  # unchanged since the last run: no git traffic at all
            repo = gm.sync(epoch, url)
            last = row["last_commit"] if row is not None else None
            total = GitMirror.count_new(repo, last) if self.progress.enabled else 0
            tip = last
            n = 0
            st.db.execute("BEGIN IMMEDIATE")
            try:
                for cid, raw, parsed in self._classified(GitMirror.new_messages(repo, last)):
                    self._ingest_one(lc.name, f"{epoch}:{cid}", raw, parsed)
                    tip = cid
                    n += 1
                    if total:
                        self.progress.update(f"{lc.name} epoch {epoch}", n, total)
                    if n % BATCH == 0:
                        # fingerprint None: the epoch is not finished, fetch it next time
                        st.set_epoch(lc.name, epoch, url, None, tip)
                        st.db.execute("COMMIT")
                        st.db.execute("BEGIN IMMEDIATE")
                    self.hooks.message()
                st.set_epoch(lc.name, epoch, url, fp, tip)
                st.db.execute("COMMIT")
            except BaseException:
                st.db.execute("ROLLBACK")
                raise
            finally:
                self._stop_pool()

    def _classified(self, messages):
        """(commit id, raw, classify result) in order; messages are parsed BATCH at a
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
                results = self._pool.map(_classify_safe, raws, chunksize=8)
            else:
                results = [_classify_safe(raw) for raw in raws]
            for (cid, raw), res in zip(chunk, results, strict=True):
                yield cid, raw, res

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def ingest_http(self, lc: ListConfig) -> None:
        st = self.state
        assert st is not None
        src = HttpSource(lc.url, self.o.limits)
        mids = src.new_message_ids()
        fetched = 0
        for mid in mids:
            if st.known(lc.name, mid) or st.db.execute(
                    "SELECT 1 FROM skipped WHERE list=? AND message_id=?",
                    (lc.name, mid)).fetchone():
                continue
            if fetched >= self.o.limits.max_threads:
                log.warning("%s: more than %d new threads; the rest waits for the next run",
                            lc.name, fetched)
                break
            raws = src.thread(mid)
            fetched += 1
            with st.transaction():
                for raw in raws:
                    self._ingest_one(lc.name, "http:" + hashlib.sha1(raw).hexdigest()[:16], raw)
                    self.hooks.message()
                if not st.known(lc.name, mid):
                    st.add_skipped(lc.name, f"http:{mid}", mid, "not found in its thread")

    def _ingest_one(self, lst: str, origin: str, raw: bytes | None, parsed=None) -> None:
        st = self.state
        assert st is not None
        if raw is None:
            return  # a deletion commit
        res = parsed if parsed is not None else _classify_safe(raw)
        if isinstance(res, _Failure):  # any parse failure means: skip this one
            mid = ""
            try:
                hdr = _parse(raw[:65536], compat=True)
                mid = str(hdr.get("Message-ID", "")).strip().strip("<>")[:300]
            except Exception:  # noqa: BLE001
                pass
            log.warning("%s: skipping malformed message %s (%s): %s", lst, origin,
                        mid or "no Message-ID", res.message)
            st.add_skipped(lst, origin, mid, res.reason[:500])
            self.report.skipped += 1
            self.report.new += 1
            return
        p, kind = res
        author = f"{p.author_name} <{p.author_email}>" if p.author_name else p.author_email
        keep_raw = raw if kind in ("patch", "cover") else None
        if st.add_message(lst, p.message_id, origin, kind, p.raw_subject, author, p.date,
                          keep_raw, p.author_email, p.in_reply_to, p.references,
                          patch_json(p) if keep_raw is not None else None):
            self.report.new += 1

    # -- 2. series -------------------------------------------------------------------
    def due(self, lc: ListConfig) -> bool:
        """With no new mail, is there anything to do? Only if a waiting series has waited
        long enough, or something was left unassigned by a run killed half-way."""
        st = self.state
        assert st is not None
        waiting = st.db.execute(
            "SELECT COUNT(DISTINCT r.id), MIN(m.seen_at) FROM messages m JOIN revisions r"
            " ON m.revision_id = r.id WHERE m.list=? AND r.status='waiting'",
            (lc.name,)).fetchone()
        unassigned = st.db.execute(
            "SELECT 1 FROM messages WHERE list=? AND kind IN ('patch','cover')"
            " AND revision_id IS NULL LIMIT 1", (lc.name,)).fetchone()
        if unassigned:
            return True
        if waiting[0] and self.now - waiting[1] >= lc.wait_incomplete:
            return True
        self.report.waiting += waiting[0] or 0
        return False

    def review_pending(self, lc: ListConfig) -> None:
        """Group the pending patches and covers into series from the fields recorded at
        ingest (no message is parsed for that), then take the series one at a time:
        parse its messages, review, draft, and let them go before the next one, so memory
        does not grow with the backlog."""
        st = self.state
        assert st is not None
        rows = st.pending_messages(lc.name)
        if not rows:
            return
        from reviewbot.input.sources import series_from_patches

        stubs = [self._stub(lc, r) for r in rows]
        del rows
        series = series_from_patches(stubs, all_revisions=True)
        del stubs
        series.sort(key=lambda s: (s.revision, s.subject.lower(), s.message_id))
        batch: list[tuple] = []
        claimed: set[tuple[str, int]] = set()
        for i, s in enumerate(series):
            series[i] = None  # type: ignore[call-overload]  # released once handled
            full = self._full_series(lc, s)
            if full is None:
                continue
            head = full.cover or full.patches[0]
            key = (series_key(full.subject, head.author_email), full.revision)
            if key in claimed or len(batch) >= REVIEW_BATCH:
                # a second thread of the same revision waits until the first is recorded
                self.review_batch(lc, batch)
                batch, claimed = [], set()
            job = self.prepare(lc, full)
            if job is not None:
                batch.append(job)
                claimed.add(key)
        self.review_batch(lc, batch)

    def _stub(self, lc: ListConfig, row):
        """A Patch with the grouping fields of a pending message row (``diff`` only says
        whether it has one). Rows recorded without those fields (by an older version)
        get them from the raw message, once."""
        from reviewbot.input.sources import parse_subject
        from reviewbot.model import Patch

        subject, email_, irt, refs = (row["subject"] or "", row["author_email"],
                                      row["in_reply_to"], row["refs"])
        if email_ is None or irt is None or refs is None:
            st = self.state
            assert st is not None
            raw = st.raw_messages(lc.name, [row["message_id"]]).get(row["message_id"])
            if raw is not None:
                from reviewbot.input.sources import patch_headers

                p, _d = patch_headers(_parse(raw))
                subject, email_, irt, refs = (p.raw_subject, p.author_email, p.in_reply_to,
                                              p.references)
                with st.transaction():
                    st.set_grouping(lc.name, row["message_id"], subject, email_, irt, refs)
            refs = refs or []
        else:
            refs = refs.split()
        info = parse_subject(subject)
        return Patch(subject=info["subject"], raw_subject=subject, message_id=row["message_id"],
                     number=info["number"], total=info["total"], revision=info["revision"],
                     author_email=email_ or "", in_reply_to=irt or "", references=list(refs),
                     diff="+\n" if row["kind"] == "patch" else "")

    def _full_series(self, lc: ListConfig, s):
        """The series with its Patches in full (as recorded at ingest, else parsed from
        the raw message), grouped as ``s`` was. The messages themselves are parsed only
        if a draft needs them (``_attach_messages``)."""
        from reviewbot.input.sources import patch_from_message
        from reviewbot.model import Series

        st = self.state
        assert st is not None
        members = ([s.cover] if s.cover else []) + s.patches
        ids = [p.message_id for p in members]
        stored = st.stored_patches(lc.name, ids)
        raws = st.raw_messages(lc.name, [m for m in ids if m not in stored])

        def full(p):
            if p.message_id in stored:
                q = patch_from_json(stored[p.message_id])
            elif p.message_id in raws:
                q = patch_from_message(_parse(raws[p.message_id]))
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

    def _attach_messages(self, lc: ListConfig, s) -> None:
        """Parse the series' messages for the drafts (headers of the original mail)."""
        st = self.state
        assert st is not None
        members = [p for p in ([s.cover] if s.cover else []) + s.patches
                   if p.message is None and p.message_id]
        raws = st.raw_messages(lc.name, [p.message_id for p in members])
        for p in members:
            if p.message_id in raws:
                p.message = _parse(raws[p.message_id])

    def handle_series(self, lc: ListConfig, s) -> None:
        job = self.prepare(lc, s)
        if job is not None:
            self.review_batch(lc, [job])

    def prepare(self, lc: ListConfig, s) -> tuple | None:
        """Record the series and its revision; the review to do, as (series, series id,
        revision row, patch numbers to review, done, status, message ids), or None
        (reviewed already, waiting, nothing left). The messages are assigned to the
        revision now when there is nothing to review, else in the transaction that
        records the review: a run killed in between leaves them unassigned, and the next
        run (``due``) takes the series up again."""
        st = self.state
        assert st is not None
        head = s.cover or (s.patches[0] if s.patches else None)
        if head is None:
            return None
        ids = [p.message_id for p in ([s.cover] if s.cover else []) + s.patches if p.message_id]
        key = series_key(s.subject, head.author_email)
        author = f"{head.author_name} <{head.author_email}>"
        with st.transaction():
            sid = st.series_id(lc.name, key, s.subject, author)
            rev = st.ensure_revision(sid, s.revision, s.message_id, s.expected)
            job = self._decide(lc, s, sid, rev, ids)
            if job is None:
                st.assign_messages(lc.name, ids, rev["id"])
        return job

    def _decide(self, lc: ListConfig, s, sid: int, rev, ids: list[str]) -> tuple | None:
        st = self.state
        assert st is not None
        if rev["status"] not in ("waiting", "partial"):
            return None  # reviewed already (a resend of the same revision)
        done = set(json.loads(rev["reviewed"]))
        todo = sorted({p.number for p in s.patches} - done)
        first = st.first_seen(lc.name, ids) or self.now
        if s.complete:
            status = "reviewed"
        else:
            age = self.now - first
            if age < lc.wait_incomplete:
                if rev["status"] == "waiting":
                    self.report.waiting += 1
                return None
            status = "partial"
            if not todo:
                if age > max(self.o.forget_incomplete, lc.wait_incomplete):
                    st.update_revision(rev["id"], "closed", done, s.missing)
                return None
        if not todo:
            st.update_revision(rev["id"], status, done, s.missing)
            return None
        return (s, sid, rev, todo, done, status, ids)

    def review_batch(self, lc: ListConfig, jobs: list[tuple]) -> None:
        """Review the prepared series together (``pipeline.review_all``: one worker process
        per core), then record and draft each in order. Should the batch fail, each series
        is reviewed on its own, so one bad series marks only itself as an error."""
        if not jobs:
            return
        results = None
        if len(jobs) > 1:
            from reviewbot.review.pipeline import review_all

            try:
                results = review_all([j[0] for j in jobs], tree=lc.tree, base=lc.base)
            except Exception as e:  # noqa: BLE001 - retried one by one below
                log.info("%s: reviewing %d series together failed (%s); one at a time",
                         lc.name, len(jobs), e)
                results = None
        for n, job in enumerate(jobs):
            self.review(lc, *job, result=results[n] if results is not None else None)

    # -- 3./4. review and draft -----------------------------------------------------------
    def review(self, lc: ListConfig, s, sid: int, rev, todo: list[int], done: set[int],
               status: str, ids: list[str], result=None) -> None:
        """Record and draft the review of one series (``result``: reviewed already)."""
        st = self.state
        assert st is not None
        from reviewbot.review.pipeline import review_series

        if s.missing:
            log.info("%s: reviewing incomplete series %r v%d (missing %s)", lc.name, s.subject,
                     s.revision, ", ".join(f"{n}/{s.expected}" for n in s.missing))
        try:
            if result is None:
                result = review_series(s, tree=lc.tree, base=lc.base)
        except Exception as e:  # noqa: BLE001 - one bad series must not stop the run
            log.error("%s: review of %r v%d failed: %s", lc.name, s.subject, s.revision, e)
            with st.transaction():
                st.assign_messages(lc.name, ids, rev["id"])
                st.update_revision(rev["id"], "error", done, s.missing,
                                   f"{type(e).__name__}: {e}"[:500])
            self.report.review_errors += 1
            return
        from reviewbot.model import SeriesResult

        keep = [pr for pr in result.patches if pr.patch.number in set(todo)]
        records: list[tuple[str, str, Any, str]] = []  # fp, kind, finding, patch msgid
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
                prior = st.drafted(sid, fp)
                if any(r["revision"] == s.revision or r["kind"] == "still" for r in prior):
                    continue
                earlier = [r["revision"] for r in prior if r["revision"] < s.revision]
                if earlier:
                    f.still_present_since = min(earlier)
                seen.add(fp)
                out.append(f)
                records.append((fp, "still" if earlier else "new", f, pr.patch.message_id))
            pr.findings = out
        sub = SeriesResult(series=s, patches=keep)
        if sub.findings():
            self._attach_messages(lc, s)
        drafts = self.make_drafts(lc, s, sub, records)
        written = []
        for mid, name, msg, _irt in drafts:
            if not st.draft_known(mid):
                self.write_draft(name, msg)
                written.append(mid)
                self.hooks.draft()
        with st.transaction():
            by_patch = {irt: mid for mid, _n, _m, irt in drafts}
            for fp, kind, f, pmid in records:
                st.add_finding(sid, fp, s.revision, kind, f, pmid, by_patch.get(pmid, ""))
            for mid, name, _msg, irt in drafts:
                st.add_draft(mid, lc.name, rev["id"], irt, name)
            st.assign_messages(lc.name, ids, rev["id"])
            st.update_revision(rev["id"], status, done | set(todo), s.missing)
        self.report.reviewed += 1
        if status == "partial":
            self.report.partial += 1
        self.report.drafts += len(written)

    def make_drafts(self, lc: ListConfig, s, result, records) -> list[tuple[str, str, Any, str]]:
        """(Message-ID, Maildir file name, message, In-Reply-To) for each draft; the ids
        derive from the series, revision, patch and fingerprints, so a re-run after a
        crash produces the same names."""
        if not result.findings():
            return []
        from reviewbot.mail.draft import build_drafts, sender_address

        msgs = build_drafts(result, self.o.cfg)
        try:
            domain = sender_address(self.o.cfg).domain or "reviewbot.invalid"
        except Exception:  # noqa: BLE001
            domain = "reviewbot.invalid"
        out = []
        for msg in msgs:
            irt = str(msg.get("In-Reply-To", "")).strip().strip("<>")
            fps = sorted(fp for fp, _k, _f, pmid in records if pmid == irt or not irt
                         or irt == s.message_id)
            h = hashlib.sha1("\0".join([lc.name, s.subject.lower(), str(s.revision), irt,
                                        ",".join(fps)]).encode()).hexdigest()[:24]
            mid = f"<reviewbot-{h}@{domain}>"
            del msg["Message-ID"]
            msg["Message-ID"] = mid
            out.append((mid, f"reviewbot-{h}.eml", msg, irt))
        return out

    def write_draft(self, name: str, msg) -> None:
        """Maildir delivery (tmp/ then rename into new/) unless the file is there already
        (written by a run that was killed before it could record it)."""
        from reviewbot.mail.outbox import as_bytes

        md = self.o.outbox
        for d in ("tmp", "new", "cur"):
            (md / d).mkdir(parents=True, exist_ok=True)
        if (md / "new" / name).exists() or any((md / "cur").glob(name + "*")):
            return
        tmp = md / "tmp" / f"{name}.{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(as_bytes(msg))
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, md / "new" / name)
        try:
            dfd = os.open(md / "new", os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def run_poll(opts: PollOptions) -> Report:
    return Poller(opts).run()
