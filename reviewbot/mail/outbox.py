"""Write drafts as .eml files, into a Maildir, or as an mbox stream; read them back.

File names are generated (`0001-<slug>.eml`, slug made of [a-z0-9-] from the subject), so no
subject can name a path outside the folder given. Files are written to a temporary name in
that folder and renamed into place, which replaces a symlink rather than following it.
``write_maildir`` is the one Maildir writer (``review --maildir`` and ``poll``'s outbox).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import errno
import glob
import io
import itertools
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

from reviewbot.mail.headers import REPLY_POLICY
from reviewbot.model import InputError

SLUG_MAX = 52


def as_bytes(msg: EmailMessage, linesep: str = "\n") -> bytes:
    """The message as RFC 5322 bytes (headers 7-bit, RFC 2047 encoded where needed)."""
    return msg.as_bytes(policy=REPLY_POLICY.clone(linesep=linesep))


def slug(subject: str) -> str:
    s = re.sub(r"^\s*(re|fwd?)\s*:\s*", "", str(subject or ""), flags=re.I)
    s = re.sub(r"\[[^\]]*\]", " ", s)  # [PATCH v2 1/3]
    s = re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")
    s = s[:SLUG_MAX].rstrip("-")
    return s or "draft"


def eml_name(n: int, msg: EmailMessage) -> str:
    return f"{n:04d}-{slug(str(msg.get('Subject', '')))}.eml"


def write_error(path: str | os.PathLike, e: OSError) -> InputError:
    """An error writing a draft, naming the file and the cause (a full disk says so)."""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        why += " (disk full: nothing was delivered half-written; free space and run again)"
    return InputError(f"cannot write {os.fspath(path)}: {why}")


def _atomic_write(folder: Path, name: str, data: bytes) -> Path:
    if "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"bad file name {name!r}")
    target = folder / name
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as e:
        raise write_error(target, e) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise write_error(target, e) from None
        raise
    return target


def write_eml(msgs: Iterable[EmailMessage], outdir: str | os.PathLike) -> list[Path]:
    """Write each message to OUTDIR/NNNN-<slug>.eml (created if needed); return the paths."""
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    return [_atomic_write(folder, eml_name(n, m), as_bytes(m)) for n, m in enumerate(msgs, start=1)]


def write_maildir(msgs: Iterable[EmailMessage], maildir: str | os.PathLike,
                  names: Iterable[str] | None = None) -> list[Path]:
    """Deliver each message into the Maildir (created if needed, private like any
    mailbox) under new/; return the paths. Each file is written in tmp/, fsynced and
    renamed into new/, so a reader never sees half a message and a crash loses none that
    was delivered. ``names`` (one per message) are file names the caller derives from
    what a message is about (poll: from the fingerprints): a message whose name is in
    new/ or cur/ already was delivered by a run killed before it recorded that, and is
    not written twice. Without names each gets a new unique Maildir name."""
    md = Path(os.fspath(maildir))
    for d in (md, md / "tmp", md / "new", md / "cur"):
        if not d.is_dir():
            try:
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as e:
                raise write_error(d, e) from None
    given = iter(names) if names is not None else None
    out = []
    for m in msgs:
        name = next(given) if given is not None else _unique_name()
        if "/" in name or name.startswith(".") or "\0" in name:
            raise ValueError(f"bad Maildir file name {name!r}")
        target = md / "new" / name
        if given is not None and (target.exists()
                                  or any((md / "cur").glob(glob.escape(name) + "*"))):
            out.append(target)
            continue
        _deliver(md, name, as_bytes(m))
        out.append(target)
    return out


_DELIVERIES = itertools.count(1)


def _unique_name() -> str:
    """time.MusecPpidQn.host, as Maildir writers (and Python's mailbox) name files."""
    now = time.time()
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_DELIVERIES)}.{host}"


def clean_tmp(maildir: str | os.PathLike) -> list[Path]:
    """Remove what killed writers left in the Maildir's tmp/: files whose writing process
    (the ``.PID`` suffix ``_deliver`` gives them) is gone, and any older than 36 hours
    (the Maildir rule). Returns the files removed."""
    tmpdir = Path(os.fspath(maildir)) / "tmp"
    if not tmpdir.is_dir():
        return []
    removed = []
    now = time.time()
    for f in tmpdir.iterdir():
        pid = f.name.rpartition(".")[2]
        try:
            stale = now - f.lstat().st_mtime > 36 * 3600
            if not stale and pid.isdigit():
                stale = not _alive(int(pid))
            if stale:
                f.unlink()
                removed.append(f)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _deliver(md: Path, name: str, data: bytes) -> None:
    tmp = md / "tmp" / f"{name}.{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, md / "new" / name)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise write_error(tmp, e) from None
    try:  # the rename itself survives a crash once new/ is on disk
        dfd = os.open(md / "new", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


_FROM_LINE = re.compile(rb"^(>*From )", re.M)


def write_mbox(msgs: Iterable[EmailMessage], stream: IO[Any]) -> None:
    """Write the messages as an mboxrd stream (">From " quoting) to a binary or text stream."""
    chunks = []
    for m in msgs:
        data = as_bytes(m)
        data = _FROM_LINE.sub(rb">\1", data)
        sender = email.utils.parseaddr(str(m.get("From", "")))[1] or "MAILER-DAEMON"
        sender = re.sub(r"\s", "", sender)
        stamp = time.asctime(time.gmtime())
        chunks.append(f"From {sender} {stamp}\n".encode("ascii", "replace") + data)
        if not data.endswith(b"\n"):
            chunks.append(b"\n")
        chunks.append(b"\n")
    blob = b"".join(chunks)
    buf = getattr(stream, "buffer", None)
    if buf is not None:  # sys.stdout and other text wrappers: write the bytes under them
        stream.flush()
        buf.write(blob)
        buf.flush()
    elif isinstance(stream, io.TextIOBase):
        stream.write(blob.decode("utf-8", "surrogateescape"))
    else:
        stream.write(blob)


def read_drafts(path: str | os.PathLike) -> list[tuple[Path, EmailMessage]]:
    """Drafts in a folder of .eml files, a Maildir (its new/), or one .eml file, in name order."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif (p / "new").is_dir() and (p / "cur").is_dir():
        files = sorted(
            x for x in (p / "new").iterdir() if x.is_file() and not x.name.startswith(".")
        )
    elif p.is_dir():
        files = sorted(x for x in p.glob("*.eml") if x.is_file())
    else:
        raise InputError(f"no drafts at {p}: not a file, a Maildir or a folder of .eml files")
    out = []
    for f in files:
        with open(f, "rb") as fh:
            msg = email.message_from_binary_file(fh, policy=email.policy.default)
        out.append((f, msg))  # type: ignore[arg-type]
    return out


def mark_sent(path: str | os.PathLike) -> Path:
    """Move a sent draft out of the way: Maildir new/ -> cur/ (flag S); .eml -> sent/."""
    path = Path(path)
    if path.parent.name == "new" and (path.parent.parent / "cur").is_dir():
        dest = path.parent.parent / "cur" / (path.name.split(":")[0] + ":2,S")
    else:
        (path.parent / "sent").mkdir(exist_ok=True)
        dest = path.parent / "sent" / path.name
    os.replace(path, dest)
    return dest
