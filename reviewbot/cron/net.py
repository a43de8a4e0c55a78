"""HTTP reads with a deadline on the whole transfer and caps on what is kept.

A socket timeout bounds each read, not a transfer: a server that sends a byte a second
never trips it. ``Deadline`` bounds the whole operation (connect, headers, body) with a
real-time timer (SIGALRM, main thread) that interrupts whatever read is blocked, and the
socket timeout is kept at the time left so that a stall is noticed even where no timer
can run. Bodies are streamed: the compressed bytes are counted against
``max_download``, and gzip (Content-Encoding or a ``.gz`` body) is inflated as it comes,
counted against ``max_decompressed``, so a gzip bomb is stopped at the cap, not after.
Used by the cron mirror (manifest, new.atom, thread mboxes) and ``review --msgid``.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

USER_AGENT = "reviewbot/0.1"
RETRY_STATUS = (429, 500, 502, 503, 504)


class NetError(Exception):
    """A transfer that failed: unreachable, an HTTP error, a cap or the deadline hit."""

    def __init__(self, message: str, status: int | None = None,
                 retry: bool = False) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, if the server answered
        self.retry = retry  # worth trying again later (5xx, 429, timeouts, resets)


class DeadlineExceeded(NetError):
    """The deadline of an operation passed before it finished."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=True)


@dataclass(frozen=True)
class Caps:
    """What one answer may cost."""

    max_download: int  # bytes as sent (compressed)
    max_decompressed: int  # bytes after gunzip


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[float]:
    """Raise DeadlineExceeded in the body once ``seconds`` have passed (in the main
    thread, by SIGALRM; elsewhere only the socket timeouts apply). Yields the absolute
    monotonic end time. Nests: an inner deadline never extends an outer one."""
    end = time.monotonic() + max(seconds, 0.001)
    if threading.current_thread() is not threading.main_thread():
        yield end
        return
    outer_handler = signal.getsignal(signal.SIGALRM) or signal.SIG_DFL  # None: set in C
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    outer_end = time.monotonic() + outer_left if outer_left else None
    if outer_end is not None and outer_end < end:
        yield outer_end  # the outer deadline comes first and stays armed
        return

    def expire(_sig, _frame) -> None:
        raise DeadlineExceeded(f"{what}: no complete answer within {seconds:g}s (deadline)")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(end - time.monotonic(), 0.001))
    try:
        yield end
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_end is not None:  # re-arm the outer one for the time it has left
            signal.setitimer(signal.ITIMER_REAL, max(outer_end - time.monotonic(), 0.001))


def _inflater(gz: bool, cap: int, url: str):
    """A function from compressed chunks to inflated ones, raising past ``cap``."""
    if not gz:
        return None
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0

    def feed(chunk: bytes) -> bytes:
        nonlocal total
        try:
            out = d.decompress(chunk, cap - total + 1)
        except zlib.error as e:
            raise NetError(f"{url}: bad gzip data: {e}") from None
        total += len(out)
        if total > cap or d.unconsumed_tail:
            raise NetError(f"{url}: inflates to more than the limit of {cap} bytes"
                           " (max_decompressed_mb)")
        return out

    return feed


def fetch(url: str, timeout: float, caps: Caps, *, gunzip: bool = True) -> bytes | None:
    """GET ``url`` within ``timeout`` seconds for the whole transfer, within ``caps``;
    the body (inflated if gzip), or None on 404/410. Raises NetError (``retry`` set for
    what may pass: 429/5xx, timeouts, resets)."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                               "Accept-Encoding": "gzip"})
    try:
        with deadline(timeout, url) as end:
            with urllib.request.urlopen(req, timeout=max(end - time.monotonic(), 0.001)) as r:
                clen = r.headers.get("Content-Length", "")
                if clen.isdigit() and int(clen) > caps.max_download:
                    raise NetError(f"{url}: {clen} bytes exceeds the download limit of"
                                   f" {caps.max_download} bytes (max_download_mb)")
                enc = r.headers.get("Content-Encoding", "").lower()
                feed = None
                got = 0
                parts: list[bytes] = []
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise DeadlineExceeded(f"{url}: no complete answer within"
                                               f" {timeout:g}s (deadline)")
                    chunk = r.read1(65536)  # what one read brings: the deadline is
                    # checked between reads even where no timer runs
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > caps.max_download:
                        raise NetError(f"{url}: exceeds the download limit of"
                                       f" {caps.max_download} bytes (max_download_mb)")
                    if feed is None and gunzip and (enc == "gzip" or (
                            not parts and chunk[:2] == b"\x1f\x8b")):
                        feed = _inflater(True, caps.max_decompressed, url)
                    parts.append(feed(chunk) if feed is not None else chunk)
                return b"".join(parts)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            return None
        raise NetError(f"{url}: HTTP {e.code}", status=e.code,
                       retry=e.code in RETRY_STATUS) from None
    except NetError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            raise NetError(f"cannot reach {url}: connection refused") from None
        if isinstance(reason, TimeoutError) or isinstance(e, TimeoutError):
            raise DeadlineExceeded(f"{url}: no complete answer within {timeout:g}s"
                                   " (deadline)") from None
        raise NetError(f"cannot reach {url}: {reason}", retry=True) from None
    except http.client.HTTPException as e:  # garbage instead of HTTP, a cut-off body
        raise NetError(f"{url}: not a valid HTTP answer ({type(e).__name__}: {e})",
                       retry=True) from None


def fetch_retrying(url: str, timeout: float, caps: Caps, retries: int, backoff: float,
                   until: float | None = None) -> bytes | None:
    """``fetch`` with up to ``retries`` more attempts (backoff doubling) for what may
    pass; never past ``until`` (a monotonic time: the run's deadline)."""
    last: NetError | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        left = timeout if until is None else min(timeout, until - time.monotonic())
        if left <= 0:
            raise DeadlineExceeded(f"{url}: the run's deadline has passed")
        try:
            return fetch(url, left, caps)
        except NetError as e:
            last = e
            # a deadline passed once will pass again: that item waits for a later run
            if not e.retry or isinstance(e, DeadlineExceeded):
                raise
    assert last is not None  # the loop ran at least once
    raise last
