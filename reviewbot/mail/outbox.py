"""Write drafts as .eml files, into a Maildir, or as an mbox stream; read them back.

File names are generated (`0001-<slug>.eml`, slug made of [a-z0-9-] from the subject), so no
subject can name a path outside the folder given. Files are written to a temporary name in
that folder and renamed into place, which replaces a symlink rather than following it.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import io
import mailbox
import os
import re
import tempfile
import time
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

SLUG_MAX = 52


def as_bytes(msg: EmailMessage, linesep: str = "\n") -> bytes:
    """The message as RFC 5322 bytes (headers 7-bit, RFC 2047 encoded where needed)."""
    return msg.as_bytes(policy=email.policy.default.clone(linesep=linesep, max_line_length=78))


def slug(subject: str) -> str:
    s = re.sub(r"^\s*(re|fwd?)\s*:\s*", "", str(subject or ""), flags=re.I)
    s = re.sub(r"\[[^\]]*\]", " ", s)  # [PATCH v2 1/3]
    s = re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")
    s = s[:SLUG_MAX].rstrip("-")
    return s or "draft"


def eml_name(n: int, msg: EmailMessage) -> str:
    return f"{n:04d}-{slug(str(msg.get('Subject', '')))}.eml"


def _atomic_write(folder: Path, name: str, data: bytes) -> Path:
    if "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"bad file name {name!r}")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        target = folder / name
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def write_eml(msgs: Iterable[EmailMessage], outdir: str | os.PathLike) -> list[Path]:
    """Write each message to OUTDIR/NNNN-<slug>.eml (created if needed); return the paths."""
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    return [_atomic_write(folder, eml_name(n, m), as_bytes(m)) for n, m in enumerate(msgs, start=1)]


def write_maildir(msgs: Iterable[EmailMessage], maildir: str | os.PathLike) -> list[Path]:
    """Add each message to the Maildir (created if needed) under new/; return the paths."""
    md = mailbox.Maildir(os.fspath(maildir), factory=None, create=True)
    out = []
    for m in msgs:
        key = md.add(as_bytes(m))
        out.append(Path(os.fspath(maildir)) / "new" / key)
    return out


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
        from reviewbot.model import InputError

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
