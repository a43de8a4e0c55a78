"""Mirror a public-inbox archive incrementally: git epochs with pygit2, or HTTP as fallback.

A public-inbox v2 inbox is a set of git repositories ("epochs", ``git/0.git``,
``git/1.git``, ...), each a linear history in which every commit adds one message as the
blob ``m`` at the root of its tree (``d`` instead of ``m``: a message removed by purge).
The inbox's ``manifest.js.gz`` (gzip JSON, grokmirror format) lists the epochs with a
fingerprint that changes when the epoch does, so an unchanged inbox costs one small
HTTP request and no git traffic.

``GitMirror``: clone each epoch once (into a temporary name, then renamed, so a killed
clone is simply redone), fetch it later, and walk only the commits after the last one
processed. New epochs (roll-over) appear in the manifest and are cloned then.

``HttpSource``: when the server offers no git (no manifest), read ``new.atom`` page by
page (``?t=``) back to what the last run saw, and fetch the thread (``MSGID/t.mbox.gz``)
of each message not yet seen, each request within a deadline (``cron/net.py``), with
retries and backoff, and caps on what is downloaded and decompressed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reviewbot.cron.net import Caps, NetError, fetch_retrying

log = logging.getLogger("reviewbot.cron.mirror")

_EPOCH_RE = re.compile(r"/git/(\d+)\.git$")


class MirrorError(Exception):
    """The archive cannot be read (server down, bad answer, limit exceeded)."""


@dataclass
class Limits:
    timeout: float = 30.0  # seconds for one HTTP request, connect and whole transfer
    git_timeout: float = 1800.0  # seconds for one git clone or fetch of an epoch
    deadline: float = 3600.0  # seconds for all of a run's network operations
    retries: int = 3  # attempts after the first, for connection errors and 429/5xx
    backoff: float = 1.0  # seconds, doubled after each retry
    max_download: int = 64 * 1024 * 1024  # bytes of one HTTP answer, compressed
    max_decompressed: int = 512 * 1024 * 1024  # bytes after gunzip
    max_threads: int = 200  # threads fetched per HTTP poll
    max_pages: int = 40  # new.atom pages read back per HTTP poll (25 messages each)
    max_tries: int = 5  # runs that try a failing item before it is parked
    retry_after: float = 900.0  # seconds before a failed item is tried again, doubled

    @classmethod
    def from_config(cls, cfg: dict) -> Limits:
        lim = cls()
        for k, conv in (("timeout", float), ("git_timeout", float), ("deadline", float),
                        ("retries", int), ("backoff", float), ("max_threads", int),
                        ("max_pages", int), ("max_tries", int)):
            if k in cfg:
                setattr(lim, k, conv(cfg[k]))
        if "retry_after_minutes" in cfg:
            lim.retry_after = float(cfg["retry_after_minutes"]) * 60
        if "max_download_mb" in cfg:
            lim.max_download = int(float(cfg["max_download_mb"]) * 1024 * 1024)
        if "max_decompressed_mb" in cfg:
            lim.max_decompressed = int(float(cfg["max_decompressed_mb"]) * 1024 * 1024)
        for k in ("timeout", "git_timeout", "deadline"):
            if getattr(lim, k) <= 0:
                raise ValueError(f"{k} must be a positive number of seconds")
        if lim.max_tries < 1 or lim.max_pages < 1:
            raise ValueError("max_tries and max_pages must be at least 1")
        return lim

    @property
    def caps(self) -> Caps:
        return Caps(self.max_download, self.max_decompressed)


def inbox_url(lore: str, name: str | None) -> str:
    """The inbox's base URL from a server URL and a list name (``--lore`` may already
    name the inbox)."""
    base = lore.rstrip("/")
    if not name:
        return base
    if urllib.parse.urlparse(base).path.rstrip("/").split("/")[-1] == name:
        return base
    return f"{base}/{name}"


# ------------------------------------------------------------------------ manifest


def fetch_manifest(url: str, limits: Limits, until: float | None = None
                   ) -> dict[int, dict] | None:
    """The inbox's epochs {epoch: {"url", "fingerprint"}} from its manifest.js.gz;
    None if the server offers no manifest (HTTP 404/403: no git)."""
    murl = f"{url}/manifest.js.gz"
    try:
        data = fetch_retrying(murl, limits.timeout, limits.caps, limits.retries,
                              limits.backoff, until)
    except NetError as e:
        if e.status == 403:
            return None
        raise MirrorError(str(e) if str(e).startswith("cannot reach")
                          else f"cannot reach {murl}: {e}") from None
    if data is None:
        return None
    try:
        man = json.loads(data)
    except RecursionError:
        raise MirrorError(f"bad manifest at {murl}: nested too deeply") from None
    except ValueError as e:
        raise MirrorError(f"bad manifest at {murl}: {e}") from None
    if not isinstance(man, dict):
        raise MirrorError(f"bad manifest at {murl}: a JSON {type(man).__name__},"
                          " not an object of repositories")
    out: dict[int, dict] = {}
    for key, val in man.items():
        m = _EPOCH_RE.search(key)
        if m and isinstance(val, dict):
            n = int(m.group(1))
            fp = val.get("fingerprint")
            out[n] = {"url": f"{url}/git/{n}.git",
                      "fingerprint": fp if isinstance(fp, str) else None}
    return out


# ----------------------------------------------------------------------- git mirror


class GitMirror:
    """Bare pygit2 mirrors of one inbox's epochs under ``dest``."""

    def __init__(self, dest: str | Path, progress: Callable[[str, int, int], None] | None = None):
        self.dest = Path(dest)
        self.progress = progress

    def path(self, epoch: int) -> Path:
        return self.dest / f"{epoch}.git"

    def _callbacks(self, label: str):
        import pygit2

        progress = self.progress

        class CB(pygit2.RemoteCallbacks):
            def transfer_progress(self, stats):  # noqa: D102
                if progress:
                    progress(label, stats.received_objects, stats.total_objects)

        return CB()

    def sync(self, epoch: int, url: str, timeout: float):
        """Clone (first time) or fetch one epoch within ``timeout`` seconds; returns the
        pygit2 Repository. libgit2 has only per-read timeouts, so the transfer runs in a
        child process that is killed at the deadline (its half-written lock and pack
        files removed: the next run fetches again from where the refs are)."""
        import multiprocessing

        import pygit2

        path = self.path(epoch)
        ctx = multiprocessing.get_context("fork")
        rd, wr = ctx.Pipe(duplex=False)
        child = ctx.Process(target=self._sync_child, args=(epoch, url, wr), daemon=True)
        child.start()
        wr.close()
        try:
            if not rd.poll(timeout):
                child.kill()
                child.join()
                self._remove_stale(path)
                raise MirrorError(f"cannot mirror {url}: no complete answer within"
                                  f" {timeout:g}s (deadline, git_timeout)")
            try:
                err = rd.recv()
            except EOFError:
                err = "the git transfer process died"
        finally:
            rd.close()
            child.join(5)
        if err:
            raise MirrorError(f"cannot mirror {url}: {err}")
        return pygit2.Repository(str(path))

    def _sync_child(self, epoch: int, url: str, wr) -> None:
        """In the child: the transfer; sends "" when done, else why it failed."""
        import pygit2

        try:
            self._transfer(epoch, url)
            wr.send("")
        except pygit2.GitError as e:
            wr.send(str(e) or type(e).__name__)
        except OSError as e:
            wr.send(f"{e.filename or ''}: {e.strerror or e}")

    def _transfer(self, epoch: int, url: str) -> None:
        import pygit2

        path = self.path(epoch)
        if path.is_dir():
            repo = pygit2.Repository(str(path))
            if "origin" not in [r.name for r in repo.remotes]:
                repo.remotes.create("origin", url)
            repo.remotes.set_url("origin", url)
            repo.remotes["origin"].fetch(["+refs/heads/*:refs/heads/*"],
                                         callbacks=self._callbacks(f"fetch epoch {epoch}"))
            return
        self.dest.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # a clone killed half-way
        pygit2.clone_repository(url, str(tmp), bare=True,
                                callbacks=self._callbacks(f"clone epoch {epoch}"))
        tmp.rename(path)

    @staticmethod
    def _remove_stale(path: Path) -> None:
        """What a killed libgit2 transfer leaves: ``*.lock`` files (refs, packed-refs,
        config, FETCH_HEAD) and the pack it was writing; a half clone entirely."""
        shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
        if not path.is_dir():
            return
        for dirpath, _dirs, files in os.walk(path):
            for f in files:
                if f.endswith(".lock") or (dirpath.endswith(os.path.join("objects", "pack"))
                                           and f.startswith(("pack_git2_", "tmp_"))):
                    try:
                        os.unlink(os.path.join(dirpath, f))
                    except OSError:
                        pass

    @staticmethod
    def head(repo) -> str | None:
        for name in ("refs/heads/master", "refs/heads/main"):
            if name in repo.references:
                return str(repo.references[name].resolve().target)
        heads = [r for r in repo.references if r.startswith("refs/heads/")]
        return str(repo.references[heads[0]].resolve().target) if heads else None

    @staticmethod
    def count_new(repo, last: str | None) -> int:
        return sum(1 for _ in GitMirror._walker(repo, last))

    @staticmethod
    def _walker(repo, last: str | None):
        import pygit2

        tip = GitMirror.head(repo)
        if tip is None:
            return iter(())
        w = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
        if last:
            try:
                w.hide(last)
            except (KeyError, ValueError, pygit2.GitError):
                log.warning("last commit %s is gone from the epoch (rewritten history?);"
                            " walking all of it, known messages are skipped", last)
        return w

    @staticmethod
    def new_messages(repo, last: str | None) -> Iterator[tuple[str, bytes | None]]:
        """(commit id, message bytes or None for a deletion), oldest first, after ``last``."""
        for c in GitMirror._walker(repo, last):
            tree = c.tree
            if "m" in tree:
                yield str(c.id), repo[tree["m"].id].data
            else:
                yield str(c.id), None


# ---------------------------------------------------------------------- HTTP source


@dataclass(frozen=True, slots=True)
class AtomEntry:
    """One message listed in new.atom."""

    message_id: str
    updated: str  # YYYYMMDDhhmmss (UTC): public-inbox's ``?t=`` form of its timestamp


@dataclass(slots=True)
class Listing:
    """The messages new.atom lists back to the last run's mark, oldest first."""

    entries: list[AtomEntry]
    gap: str | None = None  # why some messages since the last run may not be listed


class HttpSource:
    """Reads new.atom (page by page, ``?t=``) and thread mboxes over HTTP, each request
    within the request timeout and the run's deadline (``until``), within the caps."""

    def __init__(self, url: str, limits: Limits, until: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.limits = limits
        self.until = until

    def get(self, url: str) -> bytes | None:
        """The body (inflated), None on 404; NetError on failure."""
        lim = self.limits
        return fetch_retrying(url, lim.timeout, lim.caps, lim.retries, lim.backoff,
                              self.until)

    def page(self, before: str | None = None) -> list[AtomEntry]:
        """new.atom's entries, newest first (public-inbox 1.9: 25 by default, ``?t=T``
        those received at or before T: no search index needed)."""
        url = f"{self.url}/new.atom" + (f"?t={before}" if before else "")
        try:
            data = self.get(url)
        except NetError as e:
            raise MirrorError(str(e)) from None
        if data is None:
            if before:
                return []
            raise MirrorError(f"{self.url}/new.atom: not found (is this a public-inbox?)")
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            raise MirrorError(f"{url}: bad XML: {e}") from None
        ns = "{http://www.w3.org/2005/Atom}"
        out = []
        for entry in root.iter(f"{ns}entry"):
            upd = re.sub(r"\D", "", entry.findtext(f"{ns}updated", "") or "")[:14]
            for link in entry.iter(f"{ns}link"):
                href = link.get("href", "")
                if href.startswith(self.url + "/"):
                    mid = urllib.parse.unquote(href[len(self.url) + 1:].strip("/"))
                    if mid:
                        out.append(AtomEntry(mid, upd))
                    break
        return out

    def listing(self, mark: str | None) -> Listing:
        """The entries received at or after ``mark`` (the last run's), paging back with
        ``?t=`` until a page reaches older ones or the archive ends, at most
        ``max_pages`` pages; oldest first. Without a mark (a first run) what the pages
        hold. Paging back stops short, loudly, when too much arrived since the mark."""
        seen: set[str] = set()
        entries: list[AtomEntry] = []
        before: str | None = None
        gap = None
        size = 0  # entries on a full page (the first one's: feedmax, 25 by default)
        for _n in range(self.limits.max_pages):
            page = self.page(before)
            size = size or len(page)
            fresh = [e for e in page if e.message_id not in seen]
            for e in fresh:
                seen.add(e.message_id)
                if mark is None or e.updated >= mark:
                    entries.append(e)
            if not page or (mark is not None and any(e.updated < mark for e in page)):
                break
            oldest = min(e.updated for e in page)
            if not fresh:
                if (len(page) >= size > 1 and all(e.updated == oldest for e in page)
                        and oldest.isdigit()):
                    # a page full of one second: step past it (what else it held is lost)
                    gap = f"more messages received at {oldest} than one page lists"
                    before = _second_before(oldest)
                    continue
                break  # the archive ends here
            before = oldest
        else:
            if mark is not None:
                gap = (f"more than {self.limits.max_pages} pages of new messages since the"
                       f" last run; those received before {before} are not read"
                       " (raise max_pages)")
        entries.reverse()
        return Listing(entries, gap)

    def thread(self, message_id: str) -> list[bytes]:
        """The raw messages of the thread containing message_id (t.mbox.gz); NetError
        when it cannot be fetched."""
        q = urllib.parse.quote(message_id, safe="@!$&'()*+,;=:~")
        data = self.get(f"{self.url}/{q}/t.mbox.gz")
        if data is None:
            return []
        return split_mboxrd(data)


def _second_before(stamp: str) -> str:
    import datetime as dt

    t = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S") - dt.timedelta(seconds=1)
    return t.strftime("%Y%m%d%H%M%S")


def split_mboxrd(data: bytes) -> list[bytes]:
    """Split an mboxrd stream into messages, undoing the >From quoting."""
    msgs: list[bytes] = []
    cur: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From "):  # mboxrd quotes every body line that starts so
            if cur:
                msgs.append(b"".join(cur))
            cur = []
            continue
        if re.match(rb">+From ", line):
            line = line[1:]
        cur.append(line)
    if cur:
        msgs.append(b"".join(cur))
    return [m for m in msgs if m.strip()]

