"""The headers of a drafted reply: sender, recipients, subject, threading.

To the patch author (the real one behind a "via B4 Relay" sender), Cc the list and the
patch's To/Cc; `Subject: Re: <subject>`; In-Reply-To and References thread it under the
patch. Nothing taken from a patch can add a header: every header value is reduced to one
line of printable text before it is set, and addresses are rebuilt from their parts.
"""

from __future__ import annotations

import datetime as _dt
import email.policy
import email.utils
import re
import subprocess
from collections.abc import Callable, Iterable
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from reviewbot.config import section
from reviewbot.model import Patch

_CTRL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_RELAY = re.compile(r"\bvia\s+B4\s+Relay\b", re.I)
_INBODY_FROM = re.compile(r"^From:\s*(.+)$", re.I)


def one_line(value: Any) -> str:
    """A header-safe single line: control characters (CR, LF, ...) become spaces."""
    s = _CTRL.sub(" ", str(value or ""))
    return re.sub(r"\s{2,}", " ", s).strip()


MAX_NAME = 200  # characters of a display name kept (a header line holds 998 octets)
MAX_RECIPIENTS = 50  # [mail] max_recipients: To and Cc together; list and author kept
MAX_SUBJECT = 300  # characters of the subject kept
MAX_REFERENCES = 30  # the last ones of a long References chain (git send-email's depth)
_MSGID_OK = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\[\]-]+")


def make_address(name: str, addr: str) -> Address | None:
    """An Address from untrusted parts, or None if the address is unusable. A display
    name is cut to MAX_NAME characters; an address longer than SMTP allows (254
    octets, 64 for the local part) is unusable."""
    name, addr = one_line(name), one_line(addr).strip("<>")
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 3].rstrip() + "..."
    if "@" not in addr or " " in addr or len(addr.encode()) > 254:
        return None
    user, _, domain = addr.rpartition("@")
    if not user or not domain or len(user.encode()) > 64:
        return None
    try:
        a = Address(display_name=name, username=user, domain=domain)
        str(a)  # raises on characters an address cannot hold
        return a
    except (ValueError, IndexError, TypeError):
        return None


def parse_addresses(values: Iterable[str]) -> list[Address]:
    """Parse "Name <a@b>" strings (each may hold several, comma-separated)."""
    cleaned = [one_line(v) for v in values if v]
    out = []
    for name, addr in email.utils.getaddresses(cleaned):
        a = make_address(name, addr)
        if a is not None:
            out.append(a)
    return out


def _git_identity() -> tuple[str, str]:
    def get(key: str) -> str:
        try:
            r = subprocess.run(
                ["git", "config", "--get", key],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""

    return get("user.name"), get("user.email")


def sender_address(cfg: dict[str, Any]) -> Address:
    """`[mail] from`, else git's user.name / user.email, else reviewbot@localhost."""
    mail = section(cfg, "mail")
    frm = mail.get("from")
    if frm:
        got = parse_addresses([str(frm)])
        if got:
            return got[0]
    name, addr = _git_identity()
    a = make_address(name, addr)
    return a or Address(display_name="reviewbot", username="reviewbot", domain="localhost")


def patch_author(patch: Patch) -> Address | None:
    """The real author: for "Name via B4 Relay" senders, X-Original-From or the in-body From."""
    name, addr = patch.author_name, patch.author_email
    msg = patch.message
    if not addr and msg is not None and msg.get("From"):
        got = parse_addresses([str(msg.get("From"))])
        if got:
            name, addr = got[0].display_name, got[0].addr_spec
    if _RELAY.search(name or ""):
        real = None
        if msg is not None and msg.get("X-Original-From"):
            got = parse_addresses([str(msg.get("X-Original-From"))])
            real = got[0] if got else None
        if real is None:
            real = _inbody_from(patch)
        if real is not None:
            return real
        name = _RELAY.sub("", name).strip()
    return make_address(name, addr)


def _inbody_from(patch: Patch) -> Address | None:
    texts = [patch.body]
    msg = patch.message
    if msg is not None:
        try:
            part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
            texts.append(part.get_content() if part is not None else "")
        except (KeyError, LookupError, AttributeError, UnicodeError):
            pass
    for text in texts:
        lines = [ln for ln in (text or "").splitlines()[:6]]
        for ln in lines:
            m = _INBODY_FROM.match(ln.strip())
            if m:
                got = parse_addresses([m.group(1)])
                if got:
                    return got[0]
    return None


def _list_address(patch: Patch) -> list[Address]:
    msg = patch.message
    if msg is None:
        return []
    post = one_line(msg.get("List-Post", ""))
    m = re.search(r"mailto:([^>\s?]+)", post)
    if not m:
        return []
    a = make_address("", m.group(1))
    return [a] if a else []


def valid_msgid(value: str) -> str | None:
    """The id of a valid msg-id (RFC 5322 ``<id-left@id-right>``, dot-atom text, at most
    250 octets) without <>, else None: an id that is not one is never used to thread."""
    v = str(value or "").strip()
    if v.startswith("<") and v.endswith(">"):
        v = v[1:-1]
    if len(v) > 250 or not _MSGID_OK.fullmatch(v):
        return None
    return v


def thread_id(patch: Patch) -> str | None:
    """The patch's Message-ID if a reply may thread under it: valid as sent (the raw
    header, when the message is at hand) and as parsed."""
    pid = valid_msgid(patch.message_id)
    msg = patch.message
    if pid is None or msg is None:
        return pid
    raw = next((v for k, v in msg.raw_items() if k.lower() == "message-id"), None)
    if raw is None:
        return pid
    return pid if valid_msgid(one_line(raw)) == pid else None


def _key(a: Address) -> str:
    return a.addr_spec.lower()


def default_msgid(domain: str) -> Callable[[], str]:
    return lambda: email.utils.make_msgid(idstring="reviewbot", domain=domain)


def new_message(
    patch: Patch,
    sender: Address,
    extra_cc: list[Address],
    now: _dt.datetime,
    msgid: str,
    max_recipients: int = MAX_RECIPIENTS,
) -> EmailMessage:
    """The reply's headers. At most ``max_recipients`` in To and Cc (the author and the
    list always, then the cover's and the patch's To and Cc in order); threaded only
    under a valid msg-id (``thread_id``)."""
    msg = EmailMessage(policy=email.policy.default)
    author = patch_author(patch)
    msg["From"] = sender
    if author is not None:
        msg["To"] = author
    seen = {_key(sender)}
    if author is not None:
        seen.add(_key(author))
    cc: list[Address] = []
    lists = _list_address(patch)
    room = max(max_recipients - len(seen) + 1, len(lists))  # + 1: the sender is in seen
    for a in lists + extra_cc + parse_addresses(patch.to) + parse_addresses(patch.cc):
        if len(cc) >= room:
            break
        if _key(a) not in seen:
            seen.add(_key(a))
            cc.append(a)
    if author is None and cc:
        msg["To"] = cc.pop(0)
    if cc:
        msg["Cc"] = cc
    subject = one_line(patch.raw_subject or patch.subject)[:MAX_SUBJECT] or "your patch"
    if not re.match(r"re:", subject, re.I):
        subject = "Re: " + subject
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = one_line(msgid)
    pid = thread_id(patch)
    if pid:
        refs = []
        for r in patch.references[-MAX_REFERENCES:]:
            r = valid_msgid(one_line(r))
            if r and r != pid and f"<{r}>" not in refs:
                refs.append(f"<{r}>")
        refs.append(f"<{pid}>")
        msg["In-Reply-To"] = f"<{pid}>"
        msg["References"] = " ".join(refs)
    return msg


# ---------------------------------------------------------------- writing the headers

FOLD_AT = 78  # columns a header line should keep to (RFC 5322); 998 is the hard limit
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
_PLAIN = re.compile(r"[\x20-\x7e]*")


def _fold_words(name: str, text: str, linesep: str) -> str:
    """`Name: text` folded at its spaces only: each line within FOLD_AT columns where its
    words allow, the first word always on the line of the name."""
    words = text.split()
    lines = [f"{name}: {words[0]}" if words else f"{name}:"]
    for w in words[1:]:
        if len(lines[-1]) + 1 + len(w) <= FOLD_AT:
            lines[-1] += " " + w
        else:
            lines.append(" " + w)
    return linesep.join(lines) + linesep


class ReplyPolicy(email.policy.EmailPolicy):
    """policy.default, folded as mail clients and git send-email fold: a header that fits
    in 78 columns stays on one line, one that does not is folded at its spaces, never right
    after the colon, and a plain ASCII value (Subject, In-Reply-To, References, Message-ID)
    is never RFC 2047-encoded just to split a long word such as a Message-ID."""

    def fold(self, name: str, value: Any) -> str:
        return self._our_fold(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        ours = self._our_fold(name, value)
        if ours is not None:
            return ours.encode("ascii")
        folded = super().fold_binary(name, value)
        return self._join_after_colon(folded)

    def _our_fold(self, name: str, value: Any) -> str | None:
        if name.lower() in _ADDRESS_HEADERS:
            return None  # display names need quoting or encoding: the library's folding
        text = " ".join(str(value).split())  # a parsed draft's value may be folded source
        if not _PLAIN.fullmatch(text) or "=?" in text:
            return None  # needs (or looks like) RFC 2047 encoding
        if len(name) + 2 + max((len(w) for w in text.split()), default=0) > 998:
            return None
        return _fold_words(name, text, self.linesep)

    def _join_after_colon(self, folded: bytes) -> bytes:
        """`From:` alone on its line with the address below: put them on one line."""
        sep = self.linesep.encode()
        lines = folded.split(sep)
        if (len(lines) > 2 and lines[0].endswith(b":") and b"=?" not in lines[1]
                and len(lines[0]) + len(lines[1]) <= 998):
            lines[0:2] = [lines[0] + b" " + lines[1].lstrip()]
        return sep.join(lines)


REPLY_POLICY = ReplyPolicy(max_line_length=FOLD_AT)


def set_body(msg: EmailMessage, text: str) -> None:
    lines = text.split("\n")
    if max((len(ln.encode("utf-8")) for ln in lines), default=0) > 990:
        cte = "quoted-printable"
    elif text.isascii():
        cte = "7bit"
    else:
        cte = "8bit"
    msg.set_content(text, charset="utf-8", cte=cte)

