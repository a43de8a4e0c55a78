"""Cron mode: mirror watched lists, assemble series, review each new revision once, draft.

One run (``run_poll``), for each list in the configuration:

1. ``cron/ingest.py``: read the inbox's manifest; for each epoch whose fingerprint changed,
   clone/fetch it with pygit2 and record the messages after the last one processed (HTTP
   fallback: new.atom and thread mboxes), in the same transactions as the position reached.
2. ``cron/series.py``: group the patches not yet reviewed into series (across runs); a
   complete series is due, an incomplete one once it has waited ``wait_incomplete_hours``.
3. ``cron/review.py``: review the series due, draft each finding once (fingerprints; "still
   present since vN" once), write the drafts to the outbox Maildir and record them.

This module holds what the steps share: the options, the lock that keeps two runs apart,
the summary line, and the run over the lists. Test hooks (environment):
REVIEWBOT_TEST_CRASH_AFTER=N exits abruptly after N messages,
REVIEWBOT_TEST_CRASH_AFTER_DRAFTS=N after N draft files, REVIEWBOT_TEST_PAUSE_AFTER=N writes
$REVIEWBOT_TEST_PAUSE_FILE after N messages and sleeps (for a real SIGKILL from outside),
REVIEWBOT_TEST_FAIL_REVIEW=TEXT makes the review of a series with TEXT in its subject raise.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewbot.config import section
from reviewbot.cron.ingest import Ingester
from reviewbot.cron.mirror import Limits, MirrorError, inbox_url
from reviewbot.cron.review import review_pending
from reviewbot.cron.series import due
from reviewbot.cron.store import FailedItem, StateError, StateStore
from reviewbot.model import InputError

if TYPE_CHECKING:
    from reviewbot.packs import Packs

DEFAULT_LORE = "https://lore.kernel.org"
log = logging.getLogger("reviewbot.cron.poll")


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")) / "reviewbot"


@dataclass
class ListConfig:
    """One watched list, its settings resolved."""

    name: str
    url: str  # the inbox's base URL
    tree: str | None = None
    base: str = "HEAD"
    transport: str = "auto"  # auto | git | http
    wait_incomplete: float = 24 * 3600.0  # seconds


@dataclass
class PollOptions:
    """A run's settings: configuration file and flags resolved."""

    state: Path
    outbox: Path
    lock: Path
    mirrors: Path
    lists: list[ListConfig]
    limits: Limits
    cfg: dict[str, Any]
    forget_incomplete: float = 30 * 86400.0
    progress: bool = False
    packs: Packs | None = None  # the shipped packs and the user's; None: the shipped ones
    since: float | None = None  # --since: messages dated before this are skipped (epoch s)


def parse_since(value: str) -> float:
    """--since DATE: an ISO 8601 date or time (2024-05-07, 2024-05-07T14:00, with a
    zone or UTC), as seconds since the epoch."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"--since: not a date (YYYY-MM-DD or an ISO 8601 time): "
                         f"{value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


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
    since = parse_since(flag("since")) if flag("since") else None
    return PollOptions(state=state, outbox=outbox, lock=lock, mirrors=mirrors, lists=lists,
                       limits=limits, cfg=cfg, forget_incomplete=forget, progress=progress,
                       since=since)


# ----------------------------------------------------------------------------- report


@dataclass
class Report:
    """What a run did: its summary line."""

    lists: int = 0
    new: int = 0
    skipped: int = 0
    reviewed: int = 0
    partial: int = 0
    waiting: int = 0
    drafts: int = 0
    errors: list[str] = field(default_factory=list)  # lists that could not be polled
    review_errors: int = 0
    failed: list[str] = field(default_factory=list)  # items that failed this run
    parked: list[str] = field(default_factory=list)  # ... and were parked by it
    gaps: list[str] = field(default_factory=list)  # what the HTTP fallback could not list
    deadline: bool = False  # the run's network deadline passed before it was done
    deadline_s: float = 0.0
    elapsed: float = 0.0
    outbox: str = ""

    @property
    def incomplete(self) -> bool:
        """Did something fail, or was something left out? (exit status 3)"""
        return bool(self.errors or self.failed or self.gaps or self.deadline)

    def problems(self) -> list[str]:
        """One line each, for stderr: what failed and what was left out."""
        out = list(self.errors)
        out += [f"failed, tried again later: {f}" for f in self.failed
                if f not in self.parked]
        out += [f"parked after its last try (reviewbot poll --status): {p}"
                for p in self.parked]
        out += [f"gap: {g}" for g in self.gaps]
        if self.deadline:
            out.append(f"the run's deadline of {self.deadline_s:g}s passed: the rest waits"
                       " for the next run ([poll] deadline)")
        return out

    def summary(self) -> str:
        s = (f"reviewbot poll: {self.lists} list{'s' if self.lists != 1 else ''},"
             f" {self.new} new message{'s' if self.new != 1 else ''}"
             f" ({self.skipped} skipped), {self.reviewed} series reviewed"
             f" ({self.partial} incomplete), {self.waiting} waiting,"
             f" {self.drafts} draft{'s' if self.drafts != 1 else ''} in {self.outbox}")
        if self.review_errors:
            s += f", {self.review_errors} review error{'s' if self.review_errors != 1 else ''}"
        if self.failed:
            s += f", {len(self.failed)} item{'s' if len(self.failed) != 1 else ''} failed"
            if self.parked:
                s += f" ({len(self.parked)} parked)"
        if self.errors:
            s += f", {len(self.errors)} list{'s' if len(self.errors) != 1 else ''} failed"
        if self.deadline:
            s += ", deadline reached"
        return s + f" ({self.elapsed:.2f}s)"


class Hooks:
    """Crash points for the kill tests (environment variables, off by default)."""

    def __init__(self) -> None:
        env = os.environ
        self.crash_msgs = int(env.get("REVIEWBOT_TEST_CRASH_AFTER", "0") or 0)
        self.crash_drafts = int(env.get("REVIEWBOT_TEST_CRASH_AFTER_DRAFTS", "0") or 0)
        self.pause_msgs = int(env.get("REVIEWBOT_TEST_PAUSE_AFTER", "0") or 0)
        self.pause_file = env.get("REVIEWBOT_TEST_PAUSE_FILE", "")
        self.fail_review = env.get("REVIEWBOT_TEST_FAIL_REVIEW", "")
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

    def review(self, subject: str) -> None:
        """REVIEWBOT_TEST_FAIL_REVIEW=TEXT: the review of a series whose subject holds
        TEXT raises (the failure isolation tests)."""
        if self.fail_review and self.fail_review in subject:
            raise RuntimeError(f"test hook: review of {subject!r} fails")

    def draft(self) -> None:
        self.drafts += 1
        if self.crash_drafts and self.drafts >= self.crash_drafts:
            os._exit(137)


class Progress:
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
            from rich.progress import Progress as Bar

            self.bar = Bar(console=Console(stderr=True), transient=True)
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


def _lock(path: Path) -> int:
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


# -------------------------------------------------------------------------------- run


@dataclass
class PollRun:
    """What the steps of one run share."""

    opts: PollOptions
    store: StateStore
    report: Report
    hooks: Hooks
    progress: Progress
    now: float  # when the run started (time.time())
    until: float  # when its network operations must be done (time.monotonic())

    @classmethod
    def start(cls, opts: PollOptions, store: StateStore) -> PollRun:
        return cls(opts=opts, store=store,
                   report=Report(lists=len(opts.lists), outbox=str(opts.outbox),
                                 deadline_s=opts.limits.deadline),
                   hooks=Hooks(), progress=Progress(opts.progress), now=time.time(),
                   until=time.monotonic() + opts.limits.deadline)

    def fail(self, lc: ListConfig, kind: str, item: str, reason: str) -> FailedItem:
        """Record that an item failed (inside the caller's transaction) and report it."""
        lim = self.opts.limits
        f = self.store.fail(lc.name, kind, item, reason, lim.max_tries, lim.retry_after,
                            self.now)
        what = f"{lc.name}: {kind} {item}: {reason} (try {f.tries} of {lim.max_tries})"
        self.report.failed.append(what)
        if f.parked:
            self.report.parked.append(what)
        return f


def run_poll(opts: PollOptions) -> Report:
    """One run over the watched lists, under the lock: ingest, then review what is due."""
    t0 = time.monotonic()
    try:
        lockfd = _lock(opts.lock)
        _HELD["fd"] = lockfd
    except Locked:
        raise InputError(f"another poll is running (lock {opts.lock} is held)") from None
    store = None
    progress = None
    try:
        try:
            store = StateStore(opts.state)
        except StateError as e:
            raise InputError(str(e)) from None
        run = PollRun.start(opts, store)
        progress, report = run.progress, run.report
        from reviewbot.mail.outbox import clean_tmp

        for f in clean_tmp(opts.outbox):  # what a killed run was writing
            log.info("removed %s, left by a run that was killed", f)
        ingester = Ingester(run)
        if opts.since is not None:
            log.info("skipping messages dated before %s (--since)",
                     time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(opts.since)))
        for lc in opts.lists:
            before = report.new
            if time.monotonic() >= run.until:
                report.deadline = True
                log.info("%s: the run's deadline has passed: not polled", lc.name)
            else:
                try:
                    ingester.ingest(lc)
                except MirrorError as e:
                    report.errors.append(f"{lc.name}: {e}")
                    continue
            if report.new > before or due(run, lc):
                review_pending(run, lc)
            else:
                log.info("%s: nothing new and nothing due: no review", lc.name)
        progress.close()
        report.elapsed = time.monotonic() - t0
        if len(report.errors) < len(opts.lists):
            store.add_run(run.now, report.summary())
        return report
    finally:
        if progress is not None:
            progress.close()
        if store is not None:
            store.close()
        _HELD.pop("fd", None)
        os.close(lockfd)


def print_status(opts: PollOptions, out: Any) -> int:
    """``poll --status``: the failed items waiting for a retry, and the parked ones."""
    if not opts.state.exists():
        out.write(f"no state yet at {opts.state}\n")
        return 0
    try:
        store = StateStore(opts.state)
    except StateError as e:
        raise InputError(str(e)) from None
    try:
        items = store.failures()
    finally:
        store.close()
    if not items:
        out.write("no failed or parked items\n")
        return 0
    for f in items:
        when = ("parked" if f.parked else "next try "
                + time.strftime("%Y-%m-%d %H:%M", time.localtime(f.next_at)))
        out.write(f"{f.list}: {f.kind} {f.item}: {f.tries} tr{'y' if f.tries == 1 else 'ies'},"
                  f" {when}: {f.reason}\n")
    return 0
