"""Input sources: patch files, mboxes, directories, stdin -> Series of Patches.

Messages are parsed with the standard `email` package (policy.default), imported where a
message is parsed, and decoded robustly: any charset or transfer encoding, inline or
attached patches, never a traceback.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import unidiff

from reviewbot.model import InputError, Patch, Series

if TYPE_CHECKING:
    import email.message

__all__ = [
    "load_paths",
    "parse_mbox_bytes",
    "parse_subject",
    "patch_from_diff",
    "patch_from_message",
    "patch_headers",
    "series_from_messages",
    "series_from_patches",
    "split_body",
]

MAIL_SUFFIXES = (".patch", ".mbox", ".mbx", ".eml", ".diff")

# an mbox separator: "From <sender> <asctime date>" (format-patch: "From <sha> Mon Sep 17 ...")
_MBOX_FROM_RE = re.compile(rb"^From \S+ +\S.*(\d\d:\d\d|\d{4})")
_HEADER_LINE_RE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_MAIL_HEADER_NAMES = (b"from:", b"subject:", b"message-id:", b"date:", b"to:")
_DIFF_START_RE = re.compile(r"^diff --git ", re.M)
_PLAIN_DIFF_START_RE = re.compile(r"^--- \S.*\n\+\+\+ \S", re.M)
_SEPARATOR_RE = re.compile(r"^---[ \t]*$", re.M)
_REPLY_PREFIX_RE = re.compile(r"^\s*((re|aw|sv|fwd?|antw)\s*(\[\d+\])?\s*:\s*)+", re.I)
_TAG_RE = re.compile(r"^\s*\[([^\]]*)\]\s*")
_TAGGY_RE = re.compile(r"\b(PATCH|RFC|RESEND|v\d+|\d+/\d+)\b", re.I)
_REV_RE = re.compile(r"(?:^|[\s,])v(\d+)(?:$|[\s,])", re.I)
_NUM_RE = re.compile(r"(?:^|[\s,])(\d+)\s*/\s*(\d+)(?:$|[\s,])")
_MSGID_RE = re.compile(r"<([^<>\s]+)>")


# ---------------------------------------------------------------- subjects


def parse_subject(raw: str) -> dict:
    """Split a subject into its tags and the rest.

    Returns {"subject", "is_reply", "tags", "revision", "number", "total", "has_tags"}.
    """
    s = " ".join(raw.split())
    is_reply = False
    m = _REPLY_PREFIX_RE.match(s)
    if m:
        is_reply = True
        s = s[m.end():]
    tags: list[str] = []
    first = True
    while True:
        m = _TAG_RE.match(s)
        if not m:
            break
        content = m.group(1)
        if not first and not _TAGGY_RE.search(content):
            break
        tags.append(content)
        s = s[m.end():]
        first = False
    revision, number, total = 1, 1, 1
    for t in tags:
        mr = _REV_RE.search(t)
        if mr:
            revision = int(mr.group(1))
        mn = _NUM_RE.search(t)
        if mn:
            number, total = int(mn.group(1)), int(mn.group(2))
    if not s.strip() and tags:  # subject that is only a tag
        s = tags[-1]
    return {
        "subject": s.strip(),
        "is_reply": is_reply,
        "tags": tags,
        "revision": revision,
        "number": number,
        "total": max(total, 1),
        "has_tags": bool(tags),
    }


def _base_subject(subject: str) -> str:
    return " ".join(subject.lower().split())


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


def _parse_author(value: str) -> tuple[str, str]:
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


def _diff_start(text: str) -> int:
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
    start = _diff_start(text)
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
        if _diff_start(t) >= 0:
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
    name, addr = _parse_author(_header(msg, "From"))
    if inbody.get("from"):
        n2, a2 = _parse_author(inbody["from"])
        if a2:
            name, addr = n2, a2
    elif re.search(r"\bvia\b.*relay", name, re.I) or "devnull+" in addr:
        orig = _header(msg, "X-Original-From")
        if orig:
            n2, a2 = _parse_author(orig)
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


def patch_from_message(msg: email.message.Message, source: str = "") -> Patch:
    """A Patch with every field filled from one message (never raises on odd mail)."""
    raw_subject = _header(msg, "Subject")
    info = parse_subject(raw_subject)
    body, diff, inbody = _body_and_inbody(msg)
    name, addr = _author(msg, inbody)
    in_reply_to, references = _threading(" ".join(_header_all(msg, "References")),
                                         _header(msg, "In-Reply-To"))
    list_id = _header(msg, "List-Id")
    if list_id:
        list_id = _msgid(list_id)

    return Patch(
        subject=info["subject"],
        raw_subject=raw_subject,
        message_id=_msgid(_header(msg, "Message-ID")),
        number=info["number"],
        total=info["total"],
        revision=info["revision"],
        author_name=name,
        author_email=addr,
        date=_raw_header(msg, "Date"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        in_reply_to=in_reply_to,
        references=references,
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
    raw_subject = _header(msg, "Subject")
    info = parse_subject(raw_subject)
    _body, diff, inbody = _body_and_inbody(msg, trim=False)
    name, addr = _author(msg, inbody)
    in_reply_to, references = _threading(" ".join(_header_all(msg, "References")),
                                         _header(msg, "In-Reply-To"))
    p = Patch(
        subject=info["subject"],
        raw_subject=raw_subject,
        message_id=_msgid(_header(msg, "Message-ID")),
        number=info["number"],
        total=info["total"],
        revision=info["revision"],
        author_name=name,
        author_email=addr,
        date=_raw_header(msg, "Date"),
        in_reply_to=in_reply_to,
        references=references,
    )
    return p, bool(diff.strip())


def patch_from_diff(text: str, source: str = "") -> Patch:
    """A Patch for a plain `git diff` / `diff -u` / `git show` text with no mail headers."""
    text = text.replace("\r\n", "\n")
    start = _diff_start(text)
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
                name, addr = _parse_author(v.strip())
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


# ---------------------------------------------------------------- grouping


def _is_cover(p: Patch, info: dict) -> bool:
    return info["has_tags"] and p.number == 0 and not info["is_reply"]


class _UF:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def series_from_messages(
    msgs: list[email.message.EmailMessage], all_revisions: bool = False
) -> list[Series]:
    """Group messages into series (thread and subject tags), newest revision only."""
    patches = [patch_from_message(m) for m in msgs]
    return series_from_patches(patches, all_revisions=all_revisions)


def series_from_patches(patches: list[Patch], all_revisions: bool = False) -> list[Series]:
    """Group Patch objects (patches, covers, replies) into Series."""
    # drop exact duplicates (same Message-ID seen twice)
    seen: set[str] = set()
    uniq: list[Patch] = []
    for p in patches:
        if p.message_id:
            if p.message_id in seen:
                continue
            seen.add(p.message_id)
        uniq.append(p)
    patches = uniq
    infos = [parse_subject(p.raw_subject) for p in patches]

    kinds: list[str] = []
    for p, info in zip(patches, infos, strict=True):
        if info["is_reply"]:
            kinds.append("reply")
        elif _is_cover(p, info):
            kinds.append("cover")
        elif p.diff.strip():
            kinds.append("patch")
        else:
            kinds.append("reply")

    nodes = [i for i, k in enumerate(kinds) if k != "reply"]
    by_id = {patches[i].message_id: i for i in nodes if patches[i].message_id}
    uf = _UF(len(patches))

    def ancestors(p: Patch) -> list[str]:
        out = []
        if p.in_reply_to:
            out.append(p.in_reply_to)
        out.extend(reversed(p.references))
        return out

    def compatible(i: int, j: int) -> bool:
        a, b = patches[i], patches[j]
        if a.number == b.number or a.revision != b.revision:
            return False
        if a.total != b.total and max(a.total, b.total) > 1:
            return False
        return kinds[i] != "cover" or kinds[j] != "cover"

    threaded: set[int] = set()
    for i in nodes:
        for mid in ancestors(patches[i]):
            j = by_id.get(mid)
            if j is None or j == i:
                continue
            threaded.add(i)
            threaded.add(j)
            if compatible(i, j):
                uf.union(i, j)
                break

    # messages not threaded with anything: group by tags (format-patch files in a directory)
    buckets: dict[tuple, list[set[int]]] = {}
    for i in nodes:
        if i in threaded:
            continue
        p, info = patches[i], infos[i]
        if not info["has_tags"] or (p.total <= 1 and p.number <= 1):
            continue
        tagkind = " ".join(
            w for w in " ".join(infos[i]["tags"]).upper().split()
            if not re.fullmatch(r"V\d+|\d+/\d+", w)
        )
        key = (p.author_email.lower(), p.revision, p.total, tagkind)
        groups = buckets.setdefault(key, [])
        for g in groups:
            if all(patches[j].number != p.number for j in g):
                uf.union(i, next(iter(g)))
                g.add(i)
                break
        else:
            groups.append({i})

    groups_map: dict[int, list[int]] = {}
    for i in nodes:
        groups_map.setdefault(uf.find(i), []).append(i)

    series_list: list[tuple[int, Series, set[str]]] = []
    owner: dict[str, int] = {}  # message id -> index into series_list
    for root in sorted(groups_map):
        members = groups_map[root]
        cover = None
        plist: list[Patch] = []
        for i in members:
            if kinds[i] == "cover" and cover is None:
                cover = patches[i]
            elif kinds[i] == "cover":
                continue
            else:
                plist.append(patches[i])
        # one patch per number (a resend inside the same thread: keep the last)
        by_num: dict[int, Patch] = {}
        for p in plist:
            by_num[p.number] = p
        plist = sorted(by_num.values(), key=lambda p: p.number)
        head = cover or (plist[0] if plist else None)
        if head is None:
            continue
        expected = max([p.total for p in plist] + ([cover.total] if cover else [1]))
        if not cover and len(plist) == 1 and plist[0].total <= 1:
            expected = 1
        have = {p.number for p in plist}
        missing = [n for n in range(1, expected + 1) if n not in have]
        s = Series(
            subject=head.subject,
            revision=head.revision,
            message_id=head.message_id,
            patches=plist,
            cover=cover,
            expected=expected,
            missing=missing,
        )
        ids = {patches[i].message_id for i in members if patches[i].message_id}
        for mid in ids:
            owner[mid] = len(series_list)
        series_list.append((root, s, ids))

    # replies go to the series they answer
    for i, k in enumerate(kinds):
        if k != "reply":
            continue
        for mid in ancestors(patches[i]):
            if mid in owner:
                series_list[owner[mid]][1].replies.append(patches[i])
                if patches[i].message_id:  # replies to this reply land here too
                    owner.setdefault(patches[i].message_id, owner[mid])
                break

    result = [s for _r, s, _ids in series_list]
    if all_revisions:
        return result

    # keep only the newest revision per family (same base subject, or v2 threaded under v1)
    fam = _UF(len(result))
    by_subject: dict[str, int] = {}
    for n, s in enumerate(result):
        key = _base_subject(s.subject)
        if key in by_subject:
            fam.union(n, by_subject[key])
        else:
            by_subject[key] = n
        head = s.cover or (s.patches[0] if s.patches else None)
        if head is not None:
            for mid in [head.in_reply_to, *head.references]:
                if mid in owner and owner[mid] != n:
                    other = result[owner[mid]]
                    if other.revision != s.revision:
                        fam.union(n, owner[mid])
    best: dict[int, int] = {}
    for n, s in enumerate(result):
        r = fam.find(n)
        if r not in best or s.revision >= result[best[r]].revision:
            best[r] = n
    keep = set(best.values())
    return [s for n, s in enumerate(result) if n in keep]


# ---------------------------------------------------------------- files


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


def _looks_like_mail(data: bytes) -> bool:
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


def _parse_message(data: bytes) -> email.message.EmailMessage:
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(data)


def _mbox_chunks(data: bytes) -> list[bytes]:
    """The bytes of each message of an mbox, a single message or a format-patch file."""
    data = data.replace(b"\r\n", b"\n")
    return [chunk.lstrip(b"\n") for chunk in _split_mbox(data.lstrip(b"\n"))]


def parse_mbox_bytes(data: bytes) -> list[email.message.EmailMessage]:
    """Messages of an mbox, a single message, or a format-patch file (CRLF allowed)."""
    out = []
    for chunk in _mbox_chunks(data):
        try:
            out.append(_parse_message(chunk))
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
    if _looks_like_mail(norm):
        patches = []
        for chunk in _mbox_chunks(norm):
            try:
                p = patch_from_message(_parse_message(chunk), source=name)
            except Exception:  # as parse_mbox_bytes: an unparsable message is skipped
                continue
            if not messages:
                p.message = None  # not kept from loading to review: memory
            patches.append(p)
        if not patches and strict:
            raise InputError(f"{name}: no message found")
        return patches
    text = norm.decode("utf-8", errors="replace")
    if _diff_start(text) >= 0:
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
        if _looks_like_mail(head.replace(b"\r\n", b"\n")):
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
