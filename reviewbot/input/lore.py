"""One series from a public-inbox archive (lore) by Message-ID, through b4's API.

``fetch_series(MSGID|URL, lore)`` does what ``b4 am -c`` does: fetch the thread of the
message (``MSGID/t.mbox.gz``, read by reviewbot itself with a deadline and size caps),
search the archive for newer revisions of the series
(``b4.mbox.get_extra_series``, which needs a searchable inbox), and return the newest
revision as reviewbot Series (grouped by ``series.series_from_messages``).

``--lore`` is the inbox URL, e.g. ``https://lore.kernel.org/all`` (the default) or
``http://127.0.0.1:8080/widget-devel``; a bare server URL gets ``/all`` as b4 does. A
message URL (``https://lore.kernel.org/linux-fsdevel/MSGID/``) names both the message
and, unless ``--lore`` is given, the inbox.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import urllib.parse

from reviewbot.cron.net import Caps, NetError, deadline, fetch
from reviewbot.input.limits import InputCaps
from reviewbot.model import InputError, Series

DEFAULT_LORE = "https://lore.kernel.org/all"
TIMEOUT = InputCaps.lore_timeout  # seconds for the whole thread mbox ([review] timeout)
CAPS = Caps(max_download=InputCaps.max_download, max_decompressed=InputCaps.max_decompressed)
_SUFFIXES = {"t", "T", "raw", "t.mbox.gz", "t.atom", "t.mbox", "#r"}


def parse_msgid(arg: str) -> tuple[str, str | None]:
    """(Message-ID without <>, inbox URL named by the argument or None)."""
    arg = arg.strip()
    if arg.startswith(("http://", "https://")):
        u = urllib.parse.urlparse(arg)
        parts = [p for p in u.path.split("/") if p]
        while parts and parts[-1] in _SUFFIXES:
            parts.pop()
        if not parts:
            raise InputError(f"no Message-ID in URL: {arg}")
        msgid = urllib.parse.unquote(parts[-1])
        inbox = parts[:-1]
        if not inbox or inbox == ["r"]:  # lore's /r/ and patch.msgid.link redirect to all
            inbox = ["all"]
        base = f"{u.scheme}://{u.netloc}/" + "/".join(inbox)
        if u.netloc == "patch.msgid.link":
            base = DEFAULT_LORE
        return msgid.strip("<>"), base
    if arg.lower().startswith("id:"):
        arg = arg[3:]
    msgid = arg.strip().strip("<>").strip()
    if not msgid or " " in msgid:
        raise InputError(f"not a Message-ID: {arg!r}")
    return msgid, None


def _inbox_base(lore: str) -> str:
    base = lore.rstrip("/")
    if base.endswith("/%s"):
        base = base[:-3]
    u = urllib.parse.urlparse(base)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise InputError(f"--lore must be an http(s) URL: {lore}")
    if not u.path or u.path == "/":
        base += "/all"
    return base


def _setup_b4(base: str):
    """Point b4 (and liblore under it) at ``base``; quiet its logging."""
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="reviewbot-b4-"))
    import b4
    import b4.mbox  # noqa: F401 - get_extra_series

    b4.logger.setLevel(logging.ERROR)
    b4.LORENODE = None  # the node is cached per process: rebuild it for this base
    b4.setup_config(argparse.Namespace(config={"b4.midmask": base + "/%s"}))
    return b4


def fetch_thread_mbox(msgid: str, base: str, caps: Caps = CAPS,
                      timeout: float = TIMEOUT) -> bytes:
    """The thread mbox of msgid (``MSGID/t.mbox.gz``), inflated, fetched by reviewbot
    itself within ``timeout`` seconds for the whole transfer and within ``caps``
    (liblore's reader has neither: a 1 MB gzip bomb took 4 GB)."""
    q = urllib.parse.quote(msgid, safe="@!$&'()*+,;=:~")
    url = f"{base}/{q}/t.mbox.gz"
    try:
        data = fetch(url, timeout, caps)
    except NetError as e:
        if str(e).startswith("cannot reach"):
            raise InputError(_short(e)) from None
        raise InputError(f"cannot fetch <{msgid}> from {base}: {_short(e)}") from None
    if data is None:
        raise InputError(f"message not found: <{msgid}> at {base}")
    return data


def fetch_messages(msgid: str, base: str, newer: bool = True,
                   caps: InputCaps | None = None) -> list:
    """The thread of msgid (plus newer revisions if ``newer``) as EmailMessages, the
    thread mbox fetched within `caps` ([review] timeout, max_download_mb and
    max_decompressed_mb of the configuration)."""
    caps = caps or InputCaps(lore_timeout=TIMEOUT)
    t_mbox = fetch_thread_mbox(msgid, base, Caps(caps.max_download, caps.max_decompressed),
                               caps.lore_timeout)
    b4 = _setup_b4(base)
    msgs = b4.split_and_dedupe_pi_results(t_mbox) if t_mbox else []
    thread = b4.get_strict_thread(msgs, msgid) if msgs else None
    if not thread:
        raise InputError(f"message not found: <{msgid}> at {base}")
    if newer:
        try:  # b4's search has no deadline of its own: give it one
            with deadline(caps.lore_timeout, f"{base}: the search for newer revisions"):
                thread = b4.mbox.get_extra_series(thread, direction=1, nocache=True)
        except Exception as e:  # noqa: BLE001 - a failed search still leaves the thread
            logging.getLogger("reviewbot.input.lore").warning(
                "could not look for newer revisions: %s", _short(e))
    return thread


def _short(e: BaseException) -> str:
    s = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "Connection refused" in str(e):
        return "connection refused"
    return s[:200]


def fetch_series(msgid_or_url: str, lore: str | None = None, newer: bool = True,
                 caps: InputCaps | None = None) -> list[Series]:
    """The newest revision of the series that msgid_or_url belongs to, as Series."""
    msgid, url_base = parse_msgid(msgid_or_url)
    base = _inbox_base(lore or url_base or DEFAULT_LORE)
    msgs = fetch_messages(msgid, base, newer=newer, caps=caps)
    import b4

    from reviewbot.input.series import series_from_messages

    lmbx = b4.LoreMailbox()
    for m in msgs:
        lmbx.add_message(m)
    rev = lmbx.get_latest_revision()
    chosen = msgs
    if rev is not None:
        lser = lmbx.get_series(rev, codereview_trailers=False)
        if lser is not None:
            picked = [lm.msg for lm in lser.patches if lm is not None]
            if any(lm is not None and lm.has_diff for lm in lser.patches):
                # keep the replies to that revision (grouping sets them aside)
                ids = {b4.LoreMessage.get_clean_msgid(m) for m in picked}
                picked += [m for m in msgs if b4.LoreMessage.get_clean_msgid(m) not in ids
                           and str(m.get("Subject", "")).lower().startswith("re:")]
                chosen = picked
    series = series_from_messages(chosen)
    series = [s for s in series if s.patches]
    if not series:
        raise InputError(f"no patches in the thread of <{msgid}> at {base}")
    from reviewbot.input.mbox import check_diffs

    return check_diffs(series)
