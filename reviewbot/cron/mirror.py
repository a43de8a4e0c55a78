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

``HttpSource``: when the server offers no git (no manifest), read ``new.atom`` and fetch
the thread (``MSGID/t.mbox.gz``) of each message not yet seen, with timeouts, retries
with backoff, and caps on what is downloaded and decompressed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("reviewbot.cron.mirror")

USER_AGENT = "reviewbot-poll/0.1"
_EPOCH_RE = re.compile(r"/git/(\d+)\.git$")


class MirrorError(Exception):
    """The archive cannot be read (server down, bad answer, limit exceeded)."""


@dataclass
class Limits:
    timeout: float = 30.0  # seconds, per request (connect and each read)
    retries: int = 3  # attempts after the first, for connection errors and 429/5xx
    backoff: float = 1.0  # seconds, doubled after each retry
    max_download: int = 64 * 1024 * 1024  # bytes of one HTTP answer, compressed
    max_decompressed: int = 512 * 1024 * 1024  # bytes after gunzip
    max_threads: int = 200  # threads fetched per HTTP poll

    @classmethod
    def from_config(cls, cfg: dict) -> Limits:
        lim = cls()
        for k, conv in (("timeout", float), ("retries", int), ("backoff", float),
                        ("max_threads", int)):
            if k in cfg:
                setattr(lim, k, conv(cfg[k]))
        if "max_download_mb" in cfg:
            lim.max_download = int(float(cfg["max_download_mb"]) * 1024 * 1024)
        if "max_decompressed_mb" in cfg:
            lim.max_decompressed = int(float(cfg["max_decompressed_mb"]) * 1024 * 1024)
        return lim


def inbox_url(lore: str, name: str | None) -> str:
    """The inbox's base URL from a server URL and a list name (``--lore`` may already
    name the inbox)."""
    base = lore.rstrip("/")
    if not name:
        return base
    if urllib.parse.urlparse(base).path.rstrip("/").split("/")[-1] == name:
        return base
    return f"{base}/{name}"


def gunzip_limited(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise MirrorError(f"decompressed data exceeds the limit of {limit} bytes")
    return out


# ------------------------------------------------------------------------ manifest


def fetch_manifest(url: str, limits: Limits) -> dict[int, dict] | None:
    """The inbox's epochs {epoch: {"url", "fingerprint"}} from its manifest.js.gz;
    None if the server offers no manifest (HTTP 404/403: no git)."""
    murl = f"{url}/manifest.js.gz"
    req = urllib.request.Request(murl, headers={"User-Agent": USER_AGENT})
    data: bytes | None = None
    why = ""
    for attempt in range(limits.retries + 1):
        if attempt:
            time.sleep(limits.backoff * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(req, timeout=limits.timeout) as r:
                data = r.read(limits.max_download + 1)
            break
        except urllib.error.HTTPError as e:
            if e.code in (404, 403, 410):
                return None
            why = f"HTTP {e.code}"
            if e.code not in (429, 500, 502, 503, 504):
                break
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            why = str(reason)
            if isinstance(reason, ConnectionRefusedError):
                break  # nobody listens: retrying within this run will not help
    if data is None:
        raise MirrorError(f"cannot reach {murl}: {why}")
    if len(data) > limits.max_download:
        raise MirrorError(f"{murl} exceeds the download limit")
    try:
        man = json.loads(gunzip_limited(data, limits.max_decompressed))
    except (OSError, ValueError, zlib.error, EOFError) as e:
        raise MirrorError(f"bad manifest at {murl}: {e}") from None
    out: dict[int, dict] = {}
    for key, val in man.items():
        m = _EPOCH_RE.search(key)
        if m and isinstance(val, dict):
            n = int(m.group(1))
            out[n] = {"url": f"{url}/git/{n}.git", "fingerprint": val.get("fingerprint")}
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

    def sync(self, epoch: int, url: str):
        """Clone (first time) or fetch one epoch; returns the pygit2 Repository."""
        import pygit2

        path = self.path(epoch)
        try:
            if path.is_dir():
                repo = pygit2.Repository(str(path))
                if "origin" not in [r.name for r in repo.remotes]:
                    repo.remotes.create("origin", url)
                repo.remotes.set_url("origin", url)
                repo.remotes["origin"].fetch(["+refs/heads/*:refs/heads/*"],
                                             callbacks=self._callbacks(f"fetch epoch {epoch}"))
                return repo
            self.dest.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)  # a clone killed half-way
            pygit2.clone_repository(url, str(tmp), bare=True,
                                    callbacks=self._callbacks(f"clone epoch {epoch}"))
            tmp.rename(path)
            return pygit2.Repository(str(path))
        except pygit2.GitError as e:
            raise MirrorError(f"cannot mirror {url}: {e}") from None

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


class HttpSource:
    """requests-based reader of new.atom and thread mboxes."""

    def __init__(self, url: str, limits: Limits) -> None:
        import requests

        self.url = url.rstrip("/")
        self.limits = limits
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def get(self, url: str) -> bytes | None:
        """GET with retries and a size cap; None on 404."""
        import requests

        lim = self.limits
        last = ""
        for attempt in range(lim.retries + 1):
            if attempt:
                time.sleep(lim.backoff * 2 ** (attempt - 1))
            try:
                with self.session.get(url, timeout=(lim.timeout, lim.timeout), stream=True) as r:
                    if r.status_code == 404:
                        return None
                    if r.status_code in (429, 500, 502, 503, 504):
                        last = f"HTTP {r.status_code}"
                        continue
                    if r.status_code != 200:
                        raise MirrorError(f"{url}: HTTP {r.status_code}")
                    clen = r.headers.get("Content-Length")
                    if clen and clen.isdigit() and int(clen) > lim.max_download:
                        raise MirrorError(f"{url}: {clen} bytes exceeds the download limit")
                    buf = bytearray()
                    for chunk in r.raw.stream(65536, decode_content=False):
                        buf += chunk
                        if len(buf) > lim.max_download:
                            raise MirrorError(f"{url}: exceeds the download limit"
                                              f" of {lim.max_download} bytes")
                    data = bytes(buf)
                    if r.headers.get("Content-Encoding", "").lower() == "gzip":
                        data = gunzip_limited(data, lim.max_decompressed)
                    return data
            except requests.ConnectionError as e:
                last = str(e)
                if "refused" in last.lower():
                    break
            except requests.Timeout:
                last = f"timed out after {lim.timeout}s"
        raise MirrorError(f"cannot reach {url}: {last}")

    def new_message_ids(self) -> list[str]:
        """Message-IDs in new.atom, oldest first."""
        data = self.get(f"{self.url}/new.atom")
        if data is None:
            raise MirrorError(f"{self.url}/new.atom: not found (is this a public-inbox?)")
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            raise MirrorError(f"{self.url}/new.atom: bad XML: {e}") from None
        ns = "{http://www.w3.org/2005/Atom}"
        out = []
        for entry in root.iter(f"{ns}entry"):
            for link in entry.iter(f"{ns}link"):
                href = link.get("href", "")
                if href.startswith(self.url + "/"):
                    mid = urllib.parse.unquote(href[len(self.url) + 1:].strip("/"))
                    if mid:
                        out.append(mid)
                    break
        return list(reversed(out))

    def thread(self, message_id: str) -> list[bytes]:
        """The raw messages of the thread containing message_id (t.mbox.gz)."""
        q = urllib.parse.quote(message_id, safe="@!$&'()*+,;=:~")
        data = self.get(f"{self.url}/{q}/t.mbox.gz")
        if data is None:
            return []
        if data[:2] == b"\x1f\x8b":
            data = gunzip_limited(data, self.limits.max_decompressed)
        return split_mboxrd(data)


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

