"""What cron mode remembers between runs, in one SQLite file.

Tables (all keyed by list name, so one database serves many lists):

- ``epochs``    per public-inbox git epoch: clone URL, manifest fingerprint, last commit
                processed. Updated in the same transaction as the messages it covers.
- ``messages``  every message seen (Message-ID, kind: patch | cover | reply | other),
                the raw bytes of patches and covers (series are assembled across runs),
                what grouping them into series needs (subject, author address,
                In-Reply-To, References; taken at ingest, so grouping parses nothing)
                and, for patches and covers, the parsed Patch fields as JSON (so the
                review does not parse the message again),
                and the revision that consumed it.
- ``skipped``   messages that could not be parsed: where they were and why.
- ``series``    one row per series (list, author, base subject); revisions link v1 to v2.
- ``revisions`` one row per revision of a series: waiting | partial | reviewed | error,
                the patch numbers already reviewed and those that were missing.
- ``findings``  each finding drafted, by a fingerprint that does not depend on line
                numbers: (series base subject, rule, file, function, resource); kind
                ``new`` (first drafted) or ``still`` (said once: still present since vN).
- ``drafts``    each draft written to the outbox (deterministic Message-ID, file name).
- ``runs``      one row per completed run with its summary line.
- ``failures``  items that failed (a thread that cannot be fetched, a series whose review
                raised): why, how often, when to try again; ``parked`` after the last try.
- ``cursors``   positions that are not git commits (the HTTP fallback's new.atom mark).

Version 1 databases (no ``failures`` / ``cursors``) are upgraded in place, in one
transaction, when opened.

Everything a run learns is committed in transactions that also carry the position it
has reached (epoch last commit, revision status), so a run killed at any point resumes
where the last commit left it and never records anything twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewbot.model import InputError

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS epochs(
    list TEXT NOT NULL, epoch INTEGER NOT NULL, url TEXT, fingerprint TEXT,
    last_commit TEXT, updated REAL, PRIMARY KEY(list, epoch));
CREATE TABLE IF NOT EXISTS messages(
    list TEXT NOT NULL, message_id TEXT NOT NULL, origin TEXT, kind TEXT NOT NULL,
    subject TEXT, author TEXT, date TEXT, raw BLOB, seen_at REAL NOT NULL,
    revision_id INTEGER, author_email TEXT, in_reply_to TEXT, refs TEXT, patch TEXT,
    PRIMARY KEY(list, message_id));
CREATE INDEX IF NOT EXISTS messages_pending ON messages(list, kind, revision_id);
CREATE TABLE IF NOT EXISTS skipped(
    list TEXT NOT NULL, origin TEXT NOT NULL, message_id TEXT, reason TEXT, at REAL,
    PRIMARY KEY(list, origin));
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, list TEXT NOT NULL, key TEXT NOT NULL, subject TEXT,
    author TEXT, UNIQUE(list, key));
CREATE TABLE IF NOT EXISTS revisions(
    id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series(id),
    revision INTEGER NOT NULL, message_id TEXT, expected INTEGER, status TEXT NOT NULL,
    reviewed TEXT NOT NULL DEFAULT '[]', missing TEXT NOT NULL DEFAULT '[]',
    error TEXT, reviewed_at REAL, UNIQUE(series_id, revision));
CREATE TABLE IF NOT EXISTS findings(
    series_id INTEGER NOT NULL, fingerprint TEXT NOT NULL, revision INTEGER NOT NULL,
    kind TEXT NOT NULL, rule TEXT, file TEXT, function TEXT, resource TEXT,
    patch_message_id TEXT, draft_message_id TEXT, at REAL,
    PRIMARY KEY(series_id, fingerprint, revision));
CREATE TABLE IF NOT EXISTS drafts(
    message_id TEXT PRIMARY KEY, list TEXT, revision_id INTEGER, in_reply_to TEXT,
    filename TEXT, at REAL);
CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, started REAL, finished REAL,
    summary TEXT);
CREATE TABLE IF NOT EXISTS failures(
    list TEXT NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL, reason TEXT,
    tries INTEGER NOT NULL, first_at REAL, last_at REAL, next_at REAL,
    parked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(list, kind, item));
CREATE TABLE IF NOT EXISTS cursors(
    list TEXT NOT NULL, name TEXT NOT NULL, value TEXT, PRIMARY KEY(list, name));
"""

# columns added to ``messages`` after version 1 was released (NULL in older rows: the
# grouping fields are then taken from the raw message once, see cron/series.py)
_ADDED_COLUMNS = (("author_email", "TEXT"), ("in_reply_to", "TEXT"), ("refs", "TEXT"),
                  ("patch", "TEXT"))


def normalize_subject(subject: str) -> str:
    return " ".join(subject.lower().split())


def series_key(subject: str, author_email: str) -> str:
    return f"{author_email.lower()}\0{normalize_subject(subject)}"


def fingerprint(series_subject: str, finding: Any) -> str:
    """Stable across revisions and line moves: (series base subject, rule, file,
    function, resource)."""
    rule, file, function, resource = finding.match_key()
    text = "\0".join([normalize_subject(series_subject), rule, file, function, resource])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


class StateError(InputError):
    """The state file cannot be used; the message names it and says what to do (one
    line on stderr, exit 2, like any bad input)."""


def state_error(path: Path, e: BaseException) -> StateError:
    """What went wrong with the state file, in words a user can act on."""
    text = str(e)
    low = text.lower()
    if isinstance(e, sqlite3.DatabaseError) and ("not a database" in low or "malformed" in low
                                                 or "corrupt" in low):
        return StateError(f"state {path} is corrupt ({text}): move it aside or restore a"
                          " backup")
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        where = path.parent if not os.access(path.parent, os.W_OK) else path
        return StateError(f"cannot write the state {path}: {where} is read-only or not"
                          f" writable ({text})")
    if "disk is full" in low or "no space" in low or "disk i/o error" in low:
        return StateError(f"cannot write the state {path} ({text}: the disk is full or"
                          " failing, or a file size limit was reached); what was committed"
                          " is kept: free some space and run again")
    return StateError(f"state {path}: {type(e).__name__}: {text}")


# What the store hands out: records, not sqlite rows (JSON and space-separated columns
# decoded here, so the poller never sees how they are stored).


@dataclass(slots=True)
class Epoch:
    """How far one public-inbox git epoch of a list has been read."""

    url: str | None
    fingerprint: str | None  # the manifest's; None while the epoch is half-read
    last_commit: str | None


@dataclass(slots=True)
class PendingMessage:
    """A patch or cover not yet part of a fully reviewed revision: what grouping needs."""

    message_id: str
    kind: str  # patch | cover
    subject: str  # the Subject as sent ("" if not recorded)
    author_email: str | None  # None: recorded by a version that did not keep it
    in_reply_to: str | None
    references: list[str] | None
    seen_at: float
    revision_id: int | None


@dataclass(slots=True)
class Revision:
    """One revision of a series and how far its review has come."""

    id: int
    series_id: int
    revision: int
    message_id: str | None
    expected: int | None
    status: str  # waiting | partial | reviewed | error | closed
    reviewed: list[int]  # patch numbers reviewed
    missing: list[int]  # patch numbers that were missing when it was reviewed
    error: str | None
    reviewed_at: float | None


@dataclass(slots=True)
class DraftedFinding:
    """A finding drafted for some revision of a series (by fingerprint)."""

    fingerprint: str
    revision: int
    kind: str  # new | still
    rule: str | None
    file: str | None
    function: str | None
    resource: str | None
    patch_message_id: str | None
    draft_message_id: str | None


@dataclass(slots=True)
class FailedItem:
    """An item that failed, and when it is tried again (never, once parked)."""

    list: str
    kind: str  # thread | review
    item: str  # a Message-ID (thread), a revision id (review)
    reason: str
    tries: int
    next_at: float
    parked: bool


@dataclass(slots=True)
class Waiting:
    """The revisions of a list that wait for missing patches."""

    count: int
    since: float | None  # when the oldest of their messages was seen


def _revision(row: sqlite3.Row) -> Revision:
    return Revision(id=row["id"], series_id=row["series_id"], revision=row["revision"],
                    message_id=row["message_id"], expected=row["expected"],
                    status=row["status"], reviewed=json.loads(row["reviewed"]),
                    missing=json.loads(row["missing"]), error=row["error"],
                    reviewed_at=row["reviewed_at"])


class StateStore:
    """The SQLite file of cron mode: open (creating or upgrading it), transactions, and
    one method per thing the poller records or asks."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the state directory {self.path.parent}:"
                             f" {e.strerror or e}") from None
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._upgrade()
        except sqlite3.Error as e:
            raise state_error(self.path, e) from None

    def _upgrade(self) -> None:
        """Create or upgrade the schema, all in one transaction: a database is either as
        it was or at the current version, whatever happens in between."""
        with self.transaction():
            row = None
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
                row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StateError(f"{self.path}: state written by a newer reviewbot")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(messages)")}
            for col, typ in _ADDED_COLUMNS:
                if col not in have:
                    self.db.execute(f"ALTER TABLE messages ADD COLUMN {col} {typ}")
            self.db.execute("INSERT INTO meta VALUES('schema', ?) ON CONFLICT(key)"
                            " DO UPDATE SET value=excluded.value", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.db.in_transaction:  # nested: part of the outer one
            yield self.db
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise state_error(self.path, e) from None
        try:
            yield self.db
        except BaseException as e:
            if self.db.in_transaction:  # SQLite rolls back by itself on a full disk
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(e, sqlite3.Error):
                raise state_error(self.path, e) from None
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise state_error(self.path, e) from None

    def checkpoint(self) -> None:
        """Commit the transaction so far and go on in a new one (a long ingest commits
        every so many messages together with the position reached)."""
        self.db.execute("COMMIT")
        self.db.execute("BEGIN IMMEDIATE")

    # ----------------------------------------------------------------- epochs
    def epoch(self, lst: str, epoch: int) -> Epoch | None:
        row = self.db.execute(
            "SELECT url, fingerprint, last_commit FROM epochs WHERE list=? AND epoch=?",
            (lst, epoch)).fetchone()
        return None if row is None else Epoch(*row)

    def set_epoch(self, lst: str, epoch: int, url: str, fingerprint: str | None,
                  last_commit: str | None) -> None:
        self.db.execute(
            "INSERT INTO epochs(list, epoch, url, fingerprint, last_commit, updated)"
            " VALUES(?,?,?,?,?,?) ON CONFLICT(list, epoch) DO UPDATE SET url=excluded.url,"
            " fingerprint=excluded.fingerprint, last_commit=excluded.last_commit,"
            " updated=excluded.updated",
            (lst, epoch, url, fingerprint, last_commit, time.time()))

    # --------------------------------------------------------------- messages
    def known(self, lst: str, message_id: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM messages WHERE list=? AND message_id=?", (lst, message_id)
        ).fetchone() is not None

    def add_message(self, lst: str, message_id: str, origin: str, kind: str, subject: str,
                    author: str, date: str, raw: bytes | None, author_email: str | None = None,
                    in_reply_to: str | None = None,
                    references: Iterable[str] | None = None, patch: str | None = None) -> bool:
        """Record a message; False if it was already known (a duplicate). ``subject`` is
        the Subject as sent (with its tags); the grouping fields (author_email,
        in_reply_to, references) are None when not known; ``patch`` is the parsed
        message's Patch fields as JSON (None: parse ``raw`` when needed)."""
        refs = None if references is None else " ".join(references)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO messages(list, message_id, origin, kind, subject, author,"
            " date, raw, seen_at, author_email, in_reply_to, refs, patch)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (lst, message_id, origin, kind, subject, author, date, raw, time.time(),
             author_email, in_reply_to, refs, patch))
        return cur.rowcount == 1

    def set_grouping(self, lst: str, message_id: str, subject: str, author_email: str,
                     in_reply_to: str, references: Iterable[str]) -> None:
        """Fill in the grouping fields of a message recorded without them."""
        self.db.execute(
            "UPDATE messages SET subject=?, author_email=?, in_reply_to=?, refs=?"
            " WHERE list=? AND message_id=?",
            (subject, author_email, in_reply_to, " ".join(references), lst, message_id))

    def add_skipped(self, lst: str, origin: str, message_id: str, reason: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO skipped(list, origin, message_id, reason, at)"
            " VALUES(?,?,?,?,?)", (lst, origin, message_id, reason, time.time()))

    def skipped_message(self, lst: str, message_id: str) -> bool:
        """Was this message skipped (could not be parsed) by an earlier run?"""
        return self.db.execute(
            "SELECT 1 FROM skipped WHERE list=? AND message_id=?", (lst, message_id)
        ).fetchone() is not None

    def pending_messages(self, lst: str) -> list[PendingMessage]:
        """Patches and covers not yet part of a fully reviewed revision: their grouping
        fields, not their bytes (``raw_messages`` reads those, a series at a time)."""
        rows = self.db.execute(
            "SELECT m.message_id, m.kind, m.subject, m.author_email, m.in_reply_to, m.refs,"
            " m.seen_at, m.revision_id"
            " FROM messages m LEFT JOIN revisions r ON m.revision_id = r.id"
            " WHERE m.list=? AND m.kind IN ('patch','cover')"
            " AND (m.revision_id IS NULL OR r.status IN ('waiting','partial'))"
            " ORDER BY m.seen_at, m.message_id", (lst,)).fetchall()
        return [PendingMessage(message_id=mid, kind=kind, subject=subject or "",
                               author_email=email, in_reply_to=irt,
                               references=None if refs is None else refs.split(),
                               seen_at=seen, revision_id=rid)
                for mid, kind, subject, email, irt, refs, seen, rid in rows]

    def has_unassigned(self, lst: str) -> bool:
        """Is a patch or cover assigned to no revision (a run was killed half-way)?"""
        return self.db.execute(
            "SELECT 1 FROM messages WHERE list=? AND kind IN ('patch','cover')"
            " AND revision_id IS NULL LIMIT 1", (lst,)).fetchone() is not None

    def waiting(self, lst: str) -> Waiting:
        count, since = self.db.execute(
            "SELECT COUNT(DISTINCT r.id), MIN(m.seen_at) FROM messages m JOIN revisions r"
            " ON m.revision_id = r.id WHERE m.list=? AND r.status='waiting'",
            (lst,)).fetchone()
        return Waiting(count=count or 0, since=since)

    def _column(self, col: str, lst: str, message_ids: Iterable[str]) -> dict[str, Any]:
        ids = list(message_ids)
        out: dict[str, Any] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for mid, v in self.db.execute(
                    f"SELECT message_id, {col} FROM messages WHERE list=? AND message_id IN ({q})"
                    f" AND {col} IS NOT NULL", (lst, *chunk)):
                out[mid] = v
        return out

    def raw_messages(self, lst: str, message_ids: Iterable[str]) -> dict[str, bytes]:
        """{Message-ID: raw bytes} of the given messages (those that have bytes)."""
        return self._column("raw", lst, message_ids)

    def stored_patches(self, lst: str, message_ids: Iterable[str]) -> dict[str, str]:
        """{Message-ID: Patch fields as JSON} of the given messages (those that have them)."""
        return self._column("patch", lst, message_ids)

    def assign_messages(self, lst: str, message_ids: Iterable[str], revision_id: int) -> None:
        self.db.executemany(
            "UPDATE messages SET revision_id=? WHERE list=? AND message_id=?",
            [(revision_id, lst, m) for m in message_ids])

    def first_seen(self, lst: str, message_ids: Iterable[str]) -> float | None:
        ids = list(message_ids)
        if not ids:
            return None
        q = ",".join("?" * len(ids))
        row = self.db.execute(
            f"SELECT MIN(seen_at) FROM messages WHERE list=? AND message_id IN ({q})",
            (lst, *ids)).fetchone()
        return row[0]

    # ------------------------------------------------------- series/revisions
    def series_id(self, lst: str, key: str, subject: str, author: str) -> int:
        row = self.db.execute("SELECT id FROM series WHERE list=? AND key=?", (lst, key)).fetchone()
        if row:
            return row[0]
        cur = self.db.execute("INSERT INTO series(list, key, subject, author) VALUES(?,?,?,?)",
                              (lst, key, subject, author))
        return int(cur.lastrowid)

    def revision(self, series_id: int, revision: int) -> Revision | None:
        row = self.db.execute("SELECT * FROM revisions WHERE series_id=? AND revision=?",
                              (series_id, revision)).fetchone()
        return None if row is None else _revision(row)

    def ensure_revision(self, series_id: int, revision: int, message_id: str,
                        expected: int) -> Revision:
        self.db.execute(
            "INSERT OR IGNORE INTO revisions(series_id, revision, message_id, expected, status)"
            " VALUES(?,?,?,?, 'waiting')", (series_id, revision, message_id, expected))
        row = self.revision(series_id, revision)
        assert row is not None
        return row

    def update_revision(self, rev_id: int, status: str, reviewed: Iterable[int],
                        missing: Iterable[int], error: str | None = None) -> None:
        self.db.execute(
            "UPDATE revisions SET status=?, reviewed=?, missing=?, error=?, reviewed_at=?"
            " WHERE id=?", (status, json.dumps(sorted(set(reviewed))),
                            json.dumps(sorted(set(missing))), error, time.time(), rev_id))

    # --------------------------------------------------------------- findings
    def drafted(self, series_id: int, fp: str) -> list[DraftedFinding]:
        """The drafts of this finding so far, oldest revision first."""
        rows = self.db.execute(
            "SELECT fingerprint, revision, kind, rule, file, function, resource,"
            " patch_message_id, draft_message_id FROM findings"
            " WHERE series_id=? AND fingerprint=? ORDER BY revision",
            (series_id, fp)).fetchall()
        return [DraftedFinding(*r) for r in rows]

    def add_finding(self, series_id: int, fp: str, revision: int, kind: str, finding: Any,
                    patch_message_id: str, draft_message_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO findings(series_id, fingerprint, revision, kind, rule, file,"
            " function, resource, patch_message_id, draft_message_id, at)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (series_id, fp, revision, kind, finding.rule, finding.file, finding.function,
             finding.resource, patch_message_id, draft_message_id, time.time()))

    def draft_known(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM drafts WHERE message_id=?",
                               (message_id,)).fetchone() is not None

    def add_draft(self, message_id: str, lst: str, revision_id: int, in_reply_to: str,
                  filename: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO drafts(message_id, list, revision_id, in_reply_to, filename,"
            " at) VALUES(?,?,?,?,?,?)",
            (message_id, lst, revision_id, in_reply_to, filename, time.time()))

    # --------------------------------------------------------------- failures
    def fail(self, lst: str, kind: str, item: str, reason: str, max_tries: int,
             retry_after: float, now: float) -> FailedItem:
        """Record one more failed try of an item: tried again after ``retry_after``
        seconds, doubled with each try, and parked after ``max_tries``."""
        row = self.db.execute("SELECT tries FROM failures WHERE list=? AND kind=? AND item=?",
                              (lst, kind, item)).fetchone()
        tries = (row[0] if row else 0) + 1
        parked = tries >= max_tries
        next_at = now + retry_after * 2 ** (tries - 1)
        self.db.execute(
            "INSERT INTO failures(list, kind, item, reason, tries, first_at, last_at, next_at,"
            " parked) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(list, kind, item) DO UPDATE SET"
            " reason=excluded.reason, tries=excluded.tries, last_at=excluded.last_at,"
            " next_at=excluded.next_at, parked=excluded.parked",
            (lst, kind, item, reason[:500], tries, now, now, next_at, int(parked)))
        return FailedItem(lst, kind, item, reason[:500], tries, next_at, parked)

    def clear_failure(self, lst: str, kind: str, item: str) -> None:
        self.db.execute("DELETE FROM failures WHERE list=? AND kind=? AND item=?",
                        (lst, kind, item))

    def failure(self, lst: str, kind: str, item: str) -> FailedItem | None:
        row = self.db.execute(
            "SELECT list, kind, item, reason, tries, next_at, parked FROM failures"
            " WHERE list=? AND kind=? AND item=?", (lst, kind, item)).fetchone()
        return None if row is None else FailedItem(*row[:6], parked=bool(row[6]))

    def failures(self, lst: str | None = None, kind: str | None = None) -> list[FailedItem]:
        """Failed items (of one list, of one kind), parked last, oldest first."""
        rows = self.db.execute(
            "SELECT list, kind, item, reason, tries, next_at, parked FROM failures"
            " WHERE (? IS NULL OR list=?) AND (? IS NULL OR kind=?)"
            " ORDER BY parked, first_at, item", (lst, lst, kind, kind)).fetchall()
        return [FailedItem(*r[:6], parked=bool(r[6])) for r in rows]

    # ---------------------------------------------------------------- cursors
    def cursor(self, lst: str, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM cursors WHERE list=? AND name=?",
                              (lst, name)).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, lst: str, name: str, value: str) -> None:
        self.db.execute("INSERT INTO cursors(list, name, value) VALUES(?,?,?)"
                        " ON CONFLICT(list, name) DO UPDATE SET value=excluded.value",
                        (lst, name, value))

    # ------------------------------------------------------------------ runs
    def add_run(self, started: float, summary: str) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO runs(started, finished, summary) VALUES(?,?,?)",
                            (started, time.time(), summary))

    # ------------------------------------------------------------- inspection
    def snapshot(self) -> dict[str, list[tuple]]:
        """The state without timestamps or row ids: equal for two runs that saw the
        same mail, however often they were interrupted (used by the tests)."""
        q = {
            "epochs": "SELECT list, epoch, url, fingerprint, last_commit FROM epochs"
                      " ORDER BY list, epoch",
            "messages": "SELECT m.list, m.message_id, m.kind, m.subject, s.key, r.revision"
                        " FROM messages m LEFT JOIN revisions r ON m.revision_id=r.id"
                        " LEFT JOIN series s ON r.series_id=s.id ORDER BY m.list, m.message_id",
            "skipped": "SELECT list, origin, message_id, reason FROM skipped ORDER BY 1, 2",
            "series": "SELECT list, key, subject, author FROM series ORDER BY list, key",
            "revisions": "SELECT s.key, r.revision, r.message_id, r.expected, r.status,"
                         " r.reviewed, r.missing, r.error FROM revisions r JOIN series s"
                         " ON r.series_id=s.id ORDER BY s.key, r.revision",
            "findings": "SELECT s.key, f.fingerprint, f.revision, f.kind, f.rule, f.file,"
                        " f.function, f.resource, f.patch_message_id, f.draft_message_id"
                        " FROM findings f JOIN series s ON f.series_id=s.id ORDER BY 1, 2, 3",
            "drafts": "SELECT message_id, list, in_reply_to, filename FROM drafts ORDER BY 1",
            "failures": "SELECT list, kind, item, reason, tries, parked FROM failures"
                        " ORDER BY 1, 2, 3",
        }
        return {k: [tuple(r) for r in self.db.execute(v).fetchall()] for k, v in q.items()}

    def counts(self) -> dict[str, int]:
        out = {}
        for t in ("messages", "skipped", "series", "revisions", "findings", "drafts", "runs",
                  "failures"):
            out[t] = self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        return out
