"""Patch files, mboxes, directories and standard input -> Patches, then series.

A file is read as mail (an mbox, mboxrd or a single message; see mail.py) when it starts
like one, else as a plain diff (`git diff`, `diff -u`, `git show`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
    lines = data.split(b"\n")
    msgs: list[list[bytes]] = []
    cur: list[bytes] | None = None
    prev_blank = True
    for line in lines:
        if prev_blank and line.startswith(b"From ") and _MBOX_FROM_RE.match(line):
            cur = []
            msgs.append(cur)
            prev_blank = False
            continue
        if cur is None:
            cur = []
            msgs.append(cur)
        if line.startswith(b">") and re.match(rb"^>+From ", line):
            line = line[1:]
        cur.append(line)
        prev_blank = not line.strip()
    return [b"\n".join(m) for m in msgs if any(x.strip() for x in m)]


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


def _read_path(spec: str) -> tuple[str, bytes]:
    if spec == "-":
        try:
            return "-", sys.stdin.buffer.read()
        except Exception as e:
            raise InputError(f"cannot read standard input: {e}") from None
    p = Path(spec)
    try:
        return spec, p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{spec}: no such file or directory") from None
    except IsADirectoryError:
        raise InputError(f"{spec}: is a directory") from None
    except OSError as e:
        raise InputError(f"{spec}: cannot read: {e.strerror or e}") from None


def _patches_from_bytes(name: str, data: bytes, strict: bool, messages: bool = True
                        ) -> list[Patch]:
    if not data.strip():
        if strict:
            raise InputError(f"{name}: empty file")
        return []
    norm = data.replace(b"\r\n", b"\n")
    if looks_like_mail(norm):
        patches = []
        for chunk in mbox_chunks(norm):
            try:
                p = patch_from_message(parse_message(chunk), source=name)
            except Exception:  # as parse_mbox_bytes: an unparsable message is skipped
                continue
            if not messages:
                p.message = None  # not kept from loading to review: memory
            patches.append(p)
        if not patches and strict:
            raise InputError(f"{name}: no message found")
        return patches
    text = norm.decode("utf-8", errors="replace")
    if diff_start(text) >= 0:
        return [patch_from_diff(text, source=name)]
    if strict:
        raise InputError(f"{name}: no patch found (neither mail nor diff)")
    return []


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


def load_paths(paths: list[str], all_revisions: bool = False, messages: bool = True
               ) -> list[Series]:
    """Read patch files, mboxes, directories or "-" (stdin) into series. With
    ``messages=False`` a patch's `message` is None (only email drafts quote it)."""
    if not paths:
        raise InputError("no input given")
    patches: list[Patch] = []
    for spec in paths:
        if spec != "-" and Path(spec).is_dir():
            files = _dir_entries(Path(spec))
            found: list[Patch] = []
            for f in files:
                name, data = _read_path(str(f))
                found.extend(_patches_from_bytes(name, data, strict=False, messages=messages))
            if not any(p.diff for p in found):
                raise InputError(f"{spec}: no patch found in directory")
            patches.extend(found)
            continue
        name, data = _read_path(spec)
        found = _patches_from_bytes(name, data, strict=True, messages=messages)
        if not any(p.diff for p in found):
            raise InputError(f"{name}: no patch found")
        patches.extend(found)
    series = series_from_patches(patches, all_revisions=all_revisions)
    if not any(s.patches for s in series):
        raise InputError("no patch found in the input")
    for s in series:
        for p in s.patches:
            try:
                p.patchset  # noqa: B018 - parsed once here (checked), kept for the review
            except InputError as e:
                where = p.source or "input"
                raise InputError(f"{where}: patch '{p.subject}': {e}") from None
    return series
