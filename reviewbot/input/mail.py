"""One mail -> a Patch: headers, the text parts of the body, commit message and diff.

Messages are parsed with the standard `email` package (policy.default), imported where a
message is parsed, and decoded robustly: any charset or transfer encoding, inline or
attached patches, never a traceback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import unidiff

from reviewbot.input.classify import parse_subject
from reviewbot.model import Patch

if TYPE_CHECKING:
    import email.message

__all__ = ["diff_start", "parse_author", "parse_message", "patch_from_message",
           "patch_headers", "split_body"]

_DIFF_START_RE = re.compile(r"^diff --git ", re.M)
_PLAIN_DIFF_START_RE = re.compile(r"^--- \S.*\n\+\+\+ \S", re.M)
_SEPARATOR_RE = re.compile(r"^---[ \t]*$", re.M)
_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def parse_message(data: bytes) -> email.message.EmailMessage:
    """One message's bytes, parsed (policy.default)."""
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(without_lone_cr(data))


_LONE_CR = re.compile(rb"\r(?!\n)|\0")


def without_lone_cr(data: bytes) -> bytes:
    """The message with a CR that ends no line (and NUL) in its header block made a
    space: the email parser would end the headers there and lose the rest (a lone CR
    inside a quoted From name dropped the author)."""
    end = data.find(b"\n\n")
    crlf = data.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    head = data[:end] if end != -1 else data
    if b"\r" not in head and b"\0" not in head:
        return data
    return _LONE_CR.sub(b" ", head) + (data[end:] if end != -1 else b"")


# ---------------------------------------------------------------- headers


def _decode_raw_header(value: str) -> str:
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def _header(msg: email.message.Message, name: str) -> str:
    """A header's decoded, unfolded value; "" if absent; never raises."""
    try:
        v = msg.get(name)
        if v is None:
            return ""
        v = str(v)
    except Exception:
        v = ""
        try:
            for k, raw in msg.raw_items():
                if k.lower() == name.lower():
                    v = _decode_raw_header(str(raw))
                    break
        except Exception:
            return ""
    if "=?" in v:  # encoded words left undecoded by a lax header class
        v = _decode_raw_header(v)
    return " ".join(v.replace("\r", " ").replace("\n", " ").split())


def _raw_header(msg: email.message.Message, name: str) -> str:
    """A header's value as sent (unfolded, not re-formatted), "" if absent."""
    try:
        for k, raw in msg.raw_items():
            if k.lower() == name.lower():
                return " ".join(str(raw).split())
    except Exception:
        pass
    return _header(msg, name)


def _header_all(msg: email.message.Message, name: str) -> list[str]:
    try:
        vals = msg.get_all(name) or []
        return [str(v) for v in vals]
    except Exception:
        out = []
        try:
            for k, raw in msg.raw_items():
                if k.lower() == name.lower():
                    out.append(_decode_raw_header(str(raw)))
        except Exception:
            pass
        return out


def _format_addr(name: str, addr: str) -> str:
    name = " ".join(name.split())
    if not name:
        return addr
    if re.search(r'[,;:()<>@\[\]"]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def _addresses(msg: email.message.Message, name: str) -> list[str]:
    vals = _header_all(msg, name)
    import email.utils

    out = []
    try:
        pairs = email.utils.getaddresses(vals)
    except Exception:
        pairs = []
    for n, a in pairs:
        if not a and not n:
            continue
        out.append(_format_addr(_decode_raw_header(n), a))
    return out


def parse_author(value: str) -> tuple[str, str]:
    """(name, address) of one mailbox; (the value, "") when it does not read as one."""
    import email.utils

    try:
        name, addr = email.utils.parseaddr(value)
    except Exception:
        return value.strip(), ""
    return " ".join(_decode_raw_header(name).split()), addr


def _msgid(value: str) -> str:
    m = _MSGID_RE.search(value)
    if m:
        return m.group(1)
    return value.strip().strip("<>").strip()


# ---------------------------------------------------------------- bodies


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    if charset:
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            pass
        return data.decode("utf-8", errors="replace")
    return data.decode("latin-1")  # undeclared 8-bit text that is not UTF-8


def _part_text(part: email.message.Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        try:
            raw = part.get_payload()
        except Exception:
            return ""
        if isinstance(raw, str):
            return raw
        return ""
    if isinstance(payload, str):
        return payload
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _decode_bytes(payload, charset)


def _is_texty(part: email.message.Message) -> bool:
    try:
        ctype = part.get_content_type()
    except Exception:
        return False
    if ctype.startswith("text/"):
        return ctype in ("text/plain", "text/x-patch", "text/x-diff", "text/x-log") or \
            not ctype.startswith("text/html")
    if ctype in ("application/octet-stream", "application/x-patch", "application/x-diff"):
        fn = ""
        try:
            fn = part.get_filename() or ""
        except Exception:
            pass
        return fn.endswith((".patch", ".diff", ".txt")) or not fn
    return False


def _body_texts(msg: email.message.Message) -> list[str]:
    """The decoded text parts of a message, in order (html and signatures skipped)."""
    texts = []
    try:
        parts = list(msg.walk()) if msg.is_multipart() else [msg]
    except Exception:
        parts = [msg]
    for part in parts:
        try:
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
        except Exception:
            continue
        if ctype == "text/html" or ctype.startswith("application/pgp") or \
                ctype.endswith("signature"):
            continue
        if part is msg or _is_texty(part):
            texts.append(_part_text(part).replace("\r\n", "\n").replace("\r", "\n"))
    return texts


def diff_start(text: str) -> int:
    """Where a diff (git, else plain unified) starts in a text; -1 if there is none."""
    m = _DIFF_START_RE.search(text)
    if m:
        return m.start()
    m = _PLAIN_DIFF_START_RE.search(text)
    if m:
        return m.start()
    return -1


def _strip_signature(diff: str) -> str:
    """Drop a trailing mail signature ("-- \\n2.39.0") that follows the last hunk."""
    idx = diff.rfind("\n-- \n")
    if idx < 0:
        if diff.startswith("-- \n"):
            return ""
        return diff
    tail = diff[idx + 5:].split("\n")
    if len([t for t in tail if t.strip()]) <= 4 and not any(
        t[:1] in ("+", "-", " ", "@", "\\") or t.startswith("diff ") for t in tail if t
    ):
        return diff[: idx + 1]
    return diff


def _trim_trailing_blank(diff: str) -> str:
    """Drop blank lines after the last hunk (mbox separators), unless a hunk needs them."""
    if not diff.endswith("\n\n"):
        return diff
    trimmed = diff.rstrip("\n") + "\n"
    try:
        unidiff.PatchSet(trimmed)
    except Exception:
        return diff
    return trimmed


def split_body(text: str, trim: bool = True) -> tuple[str, str, dict[str, str]]:
    """(commit message, diff, in-body headers) of a patch mail's text.

    ``trim=False`` skips dropping blank lines after the last hunk (a unidiff parse): the
    commit message and in-body headers are the same, the diff may keep trailing blanks."""
    text = text.replace("\r\n", "\n")
    inbody: dict[str, str] = {}
    # in-body headers ("From: ...", "Subject: ...", "Date: ...") at the very top
    lines = text.lstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(From|Subject|Date|Message-ID|Reply-To):\s*(.*)$", lines[i], re.I)
        if not m:
            break
        inbody[m.group(1).lower()] = m.group(2).strip()
        i += 1
    if inbody and (i == len(lines) or not lines[i].strip()):
        text = "\n".join(lines[i:])
    else:
        inbody = {}
    start = diff_start(text)
    if start < 0:
        msg_part, diff = text, ""
    else:
        diff = _strip_signature(text[start:])
        msg_part = text[:start]
    sep = _SEPARATOR_RE.search(msg_part)
    if sep:
        msg_part = msg_part[: sep.start()]
    elif start < 0:
        # no diff: drop a trailing signature from the message
        idx = msg_part.rfind("\n-- \n")
        if idx >= 0:
            msg_part = msg_part[:idx]
    if diff and not diff.endswith("\n"):
        diff += "\n"
    if trim:
        diff = _trim_trailing_blank(diff)
    return msg_part.strip("\n").rstrip() + ("\n" if msg_part.strip() else ""), diff, inbody


# ---------------------------------------------------------------- messages -> patches


def _body_and_inbody(msg: email.message.Message, trim: bool = True
                     ) -> tuple[str, str, dict[str, str]]:
    """(commit message, diff, in-body headers) of a message: the part that carries the
    diff (inline or attached), else the first non-empty text part."""
    texts = _body_texts(msg)
    body, diff = "", ""
    inbody: dict[str, str] = {}
    for t in texts:  # the part that carries the diff (inline or attached)
        if diff_start(t) >= 0:
            b, diff, ib = split_body(t, trim)
            if not body:
                body, inbody = b, ib
            break
    if not body:
        for t in texts:
            if t.strip():
                b, _d, ib = split_body(t, trim)
                body, inbody = b, ib
                break
    return body, diff, inbody


def _author(msg: email.message.Message, inbody: dict[str, str]) -> tuple[str, str]:
    """(name, address) of the author: the in-body From, else X-Original-From for a relay
    sender, else the From header."""
    name, addr = parse_author(_header(msg, "From"))
    if inbody.get("from"):
        n2, a2 = parse_author(inbody["from"])
        if a2:
            name, addr = n2, a2
    elif re.search(r"\bvia\b.*relay", name, re.I) or "devnull+" in addr:
        orig = _header(msg, "X-Original-From")
        if orig:
            n2, a2 = parse_author(orig)
            if a2:
                name, addr = n2, a2
        else:
            name = re.sub(r"\s+via\s+.*$", "", name, flags=re.I)
    return name, addr


def _threading(refs_raw: str, irt: str) -> tuple[str, list[str]]:
    references = _MSGID_RE.findall(refs_raw)
    in_reply_to = _msgid(irt) if irt else ""
    if not in_reply_to and references:
        in_reply_to = references[-1]
    return in_reply_to, references


def _header_fields(msg: email.message.Message, inbody: dict[str, str]) -> dict[str, object]:
    """The Patch fields both readers fill the same way: subject and tags, Message-ID,
    author, date and threading."""
    raw_subject = _header(msg, "Subject")
    info = parse_subject(raw_subject)
    name, addr = _author(msg, inbody)
    in_reply_to, references = _threading(" ".join(_header_all(msg, "References")),
                                         _header(msg, "In-Reply-To"))
    return dict(subject=info["subject"], raw_subject=raw_subject,
                message_id=_msgid(_header(msg, "Message-ID")), number=info["number"],
                total=info["total"], revision=info["revision"], author_name=name,
                author_email=addr, date=_raw_header(msg, "Date"), in_reply_to=in_reply_to,
                references=references)


def patch_from_message(msg: email.message.Message, source: str = "") -> Patch:
    """A Patch with every field filled from one message (never raises on odd mail)."""
    body, diff, inbody = _body_and_inbody(msg)
    list_id = _header(msg, "List-Id")
    if list_id:
        list_id = _msgid(list_id)
    return Patch(
        **_header_fields(msg, inbody),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        list_id=list_id,
        body=body,
        diff=diff,
        message=msg if _is_email_message(msg) else None,
        source=source,
    )


def _is_email_message(msg: object) -> bool:
    import email.message

    return isinstance(msg, email.message.EmailMessage)


def patch_headers(msg: email.message.Message) -> tuple[Patch, bool]:
    """(Patch, has a diff) with only what grouping a series needs: subject and tags,
    Message-ID, In-Reply-To/References, author and date (no To/Cc, body or diff). Equal,
    field for field, to what ``patch_from_message`` gives for those; cheaper (no address
    lists, no trimming parse of the diff)."""
    _body, diff, inbody = _body_and_inbody(msg, trim=False)
    return Patch(**_header_fields(msg, inbody)), bool(diff.strip())
