"""Patch files, mboxes, directories and standard input -> Patches, then series.

A file is read as mail (an mbox, mboxrd or a single message; see mail.py) when it starts
like one, else as a plain diff (`git diff`, `diff -u`, `git show`).
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from reviewbot.context.diff import parse_diff
from reviewbot.input.classify import message_kind
from reviewbot.input.limits import InputCaps, PrefixedStream, mib
from reviewbot.input.mail import diff_start, parse_author, parse_message, patch_from_message
from reviewbot.input.series import series_from_patches
from reviewbot.model import InputError, Patch, Series

if TYPE_CHECKING:
    import email.message

__all__ = ["MAIL_SUFFIXES", "load_paths", "looks_like_mail", "mbox_chunks", "parse_mbox_bytes",
           "patch_from_diff"]

MAIL_SUFFIXES = (".patch", ".mbox", ".mbx", ".eml", ".diff")

# an mbox separator: "From <sender> <asctime date>" (format-patch: "From <sha> Mon Sep 17 ...")
_MBOX_FROM_RE = re.compile(rb"^From \S+ +\S.*(\d\d:\d\d|\d{4})")
_HEADER_LINE_RE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_MAIL_HEADER_NAMES = (b"from:", b"subject:", b"message-id:", b"date:", b"to:")
_ESCAPED_FROM_RE = re.compile(rb"^>+From ")
HEAD_BYTES = 64 << 10  # what is read to tell mail from a plain diff


def patch_from_diff(text: str, source: str = "") -> Patch:
    """A Patch for a plain `git diff` / `diff -u` / `git show` text with no mail headers."""
    text = text.replace("\r\n", "\n")
    start = diff_start(text)
    head = text[:start] if start > 0 else ""
    diff = text[start:] if start >= 0 else ""
    if diff and not diff.endswith("\n"):
        diff += "\n"
    subject = Path(source).name if source and source != "-" else "(stdin)"
    name = addr = date = ""
    body = ""
    m = re.match(r"^commit [0-9a-f]{7,40}.*\n((?:[A-Za-z]+:.*\n)*)\n((?:    .*\n|\n)*)", head)
    if m:  # `git show` / `git log -p` output
        for hl in m.group(1).splitlines():
            k, _, v = hl.partition(":")
            if k == "Author":
                name, addr = parse_author(v.strip())
            elif k in ("Date", "AuthorDate"):
                date = v.strip()
        msg_lines = [ln[4:] if ln.startswith("    ") else ln for ln in m.group(2).split("\n")]
        msg_text = "\n".join(msg_lines).strip("\n")
        if msg_text:
            first, _, rest = msg_text.partition("\n")
            subject = first.strip()
            body = rest.strip("\n") + ("\n" if rest.strip() else "")
    return Patch(
        subject=subject,
        raw_subject=subject,
        message_id="",
        author_name=name,
        author_email=addr,
        date=date,
        body=body,
        diff=diff,
        source=source,
    )


def _split_mbox(data: bytes) -> list[bytes]:
    """Split an mbox (mboxo or mboxrd) into message bytes, unescaping >From lines."""
    return list(_messages(io.BytesIO(data), "", InputCaps(len(data) + 1, len(data) + 1)))


def _messages(fh: BinaryIO, name: str, caps: InputCaps) -> Iterator[bytes]:
    """The messages of an mbox stream (CRLF read as LF), one at a time: memory follows
    the largest message, never the file. A message or the stream over its cap is an
    InputError naming `name` and the limit."""
    cur: list[bytes] | None = None
    size = total = 0
    prev_blank = True
    ended_nl = False
    while True:
        line = fh.readline(caps.max_message + 2)
        if not line:
            break
        total += len(line)
        if total > caps.max_input:
            raise InputError(f"{name}: more than {mib(caps.max_input)} of input, the limit "
                             "(max_input_mb in [review] of the configuration)")
        ended_nl = line.endswith(b"\n")
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1] if ended_nl else line
        if prev_blank and line.startswith(b"From ") and _MBOX_FROM_RE.match(line):
            if cur is not None and any(x.strip() for x in cur):
                yield b"\n".join(cur)
            cur, size, prev_blank = [], 0, False
            continue
        if cur is None:
            cur = []
        if line.startswith(b">") and _ESCAPED_FROM_RE.match(line):
            line = line[1:]
        size += len(line) + 1
        if size > caps.max_message:
            raise InputError(f"{name}: a message of more than {mib(caps.max_message)}, the "
                             "limit (max_message_mb in [review] of the configuration)")
        cur.append(line)
        prev_blank = not line.strip()
    if cur is not None:
        if ended_nl:
            cur.append(b"")  # as a split on newlines ends: the last line's newline kept
        if any(x.strip() for x in cur):
            yield b"\n".join(cur)


def looks_like_mail(data: bytes) -> bool:
    head = data.lstrip(b"\n")[:4096]
    if head.startswith(b"From ") and _MBOX_FROM_RE.match(head.split(b"\n", 1)[0]):
        return True
    lines = head.split(b"\n")
    if not lines or not _HEADER_LINE_RE.match(lines[0]):
        return False
    for line in lines:
        if not line.strip():
            break
        if line.lower().startswith(_MAIL_HEADER_NAMES):
            return True
    return False


def mbox_chunks(data: bytes) -> list[bytes]:
    """The bytes of each message of an mbox, a single message or a format-patch file."""
    data = data.replace(b"\r\n", b"\n")
    return [chunk.lstrip(b"\n") for chunk in _split_mbox(data.lstrip(b"\n"))]


def parse_mbox_bytes(data: bytes) -> list[email.message.EmailMessage]:
    """Messages of an mbox, a single message, or a format-patch file (CRLF allowed)."""
    out = []
    for chunk in mbox_chunks(data):
        try:
            out.append(parse_message(chunk))
        except Exception:
            continue
    return out


@contextmanager
def _opened(spec: str) -> Iterator[BinaryIO]:
    """A file (or "-", stdin) open for reading as bytes; errors as one line."""
    if spec == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(spec, "rb")  # noqa: SIM115 - closed below, errors mapped first
    except FileNotFoundError:
        raise InputError(f"{spec}: no such file or directory") from None
    except IsADirectoryError:
        raise InputError(f"{spec}: is a directory") from None
    except OSError as e:
        raise InputError(f"{spec}: cannot read: {e.strerror or e}") from None
    with fh:
        yield fh


def _read_capped(fh: BinaryIO, name: str, cap: int, what: str) -> bytes:
    """All of a stream, or an InputError once it passes `cap` bytes."""
    buf = bytearray()
    while len(buf) <= cap:
        chunk = fh.read(min(1 << 20, cap + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
    raise InputError(f"{name}: more than {mib(cap)}, the limit for {what}")


def _patches_from_stream(name: str, fh: BinaryIO, strict: bool, messages: bool,
                         caps: InputCaps) -> list[Patch]:
    """The patches of one file or stdin: an mbox read message by message, or one diff."""
    try:
        head = fh.read(HEAD_BYTES)  # a buffered read: all of it, or the whole input
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
    if not head.strip():
        if strict:
            raise InputError(f"{name}: empty file")
        return []
    stream = io.BufferedReader(PrefixedStream(head, fh), 1 << 16)
    try:
        if looks_like_mail(head.replace(b"\r\n", b"\n")):
            patches = _mail_patches(name, stream, messages, caps)
            if not patches and strict:
                raise InputError(f"{name}: no message found")
            return patches
        limit = "one patch (max_message_mb in [review] of the configuration)"
        data = _read_capped(stream, name, min(caps.max_message, caps.max_input), limit)
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
    text = data.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")
    if diff_start(text) >= 0:
        return [patch_from_diff(text, source=name)]
    if strict:
        raise InputError(f"{name}: no patch found (neither mail nor diff)")
    return []


def _mail_patches(name: str, stream: BinaryIO, messages: bool, caps: InputCaps
                  ) -> list[Patch]:
    """The Patch of each message of a mail stream. With ``messages=False`` a reply keeps
    only what grouping needs (no body, no address lists): in a list archive most of the
    bytes are replies."""
    patches = []
    for chunk in _messages(stream, name, caps):
        try:
            p = patch_from_message(parse_message(chunk.lstrip(b"\n")), source=name)
        except Exception:  # as parse_mbox_bytes: an unparsable message is skipped
            continue
        if not messages:
            p.message = None  # not kept from loading to review: memory
            if message_kind(p) in ("reply", "other"):
                p.body, p.to, p.cc = "", [], []
        patches.append(p)
    return patches


def _patches_of(spec: str, strict: bool, messages: bool, caps: InputCaps) -> list[Patch]:
    with _opened(spec) as fh:
        try:
            return _patches_from_stream(spec, fh, strict, messages, caps)
        except InputError as e:
            if spec == "-" and str(e).startswith("-: "):
                raise InputError(f"standard input: {str(e)[3:]}") from None
            raise


def _dir_entries(d: Path) -> list[Path]:
    out = []
    try:
        entries = sorted(d.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise InputError(f"{d}: cannot list directory: {e.strerror or e}") from None
    for f in entries:
        if f.name.startswith(".") or not f.is_file():
            continue
        if f.suffix.lower() in MAIL_SUFFIXES:
            out.append(f)
            continue
        try:
            with f.open("rb") as fh:
                head = fh.read(4096)
        except OSError:
            continue
        if looks_like_mail(head.replace(b"\r\n", b"\n")):
            out.append(f)
    return out


def load_paths(paths: list[str], all_revisions: bool = False, messages: bool = True,
               caps: InputCaps | None = None) -> list[Series]:
    """Read patch files, mboxes, directories or "-" (stdin) into series, each file as a
    stream within `caps`. With ``messages=False`` a patch's `message` is None (only email
    drafts quote it)."""
    caps = caps or InputCaps()
    if not paths:
        raise InputError("no input given")
    patches: list[Patch] = []
    for spec in paths:
        if spec != "-" and Path(spec).is_dir():
            files = _dir_entries(Path(spec))
            found: list[Patch] = []
            for f in files:
                found.extend(_patches_of(str(f), False, messages, caps))
            if not any(p.diff for p in found):
                raise InputError(f"{spec}: no patch found in directory")
            patches.extend(found)
            continue
        found = _patches_of(spec, True, messages, caps)
        if not any(p.diff for p in found):
            raise InputError(f"{spec}: no patch found")
        patches.extend(found)
    series = series_from_patches(patches, all_revisions=all_revisions)
    if not any(s.patches for s in series):
        raise InputError("no patch found in the input")
    return check_diffs(series)


def check_diffs(series: list[Series]) -> list[Series]:
    """Each patch's diff parsed here (not kept: the review parses it again, one patch at a
    time). One that does not parse (a malformed hunk header, a truncated hunk) is marked
    unreviewable with the cause, and the others are reviewed; when none parses, the input
    is bad (InputError)."""
    bad = []
    for s in series:
        for p in s.patches:
            try:
                parse_diff(p.diff)
            except InputError as e:
                where = p.source or "input"
                p.unreviewable = f"{where}: patch '{p.subject}': {e}"
                bad.append(p.unreviewable)
    if bad and all(p.unreviewable for s in series for p in s.patches):
        raise InputError(bad[0] if len(bad) == 1 else
                         f"no patch could be reviewed: {bad[0]} (and {len(bad) - 1} more)")
    return series
