"""Send drafts over SMTP, only when the configuration says so (`[mail] send = true`).

Otherwise (the default) this is a dry run: it prints what would be sent and sends nothing.
Settings, all under [mail]: smtp_host (default localhost), smtp_port (25, 465 with ssl, 587
with starttls), smtp_user, smtp_password (or $REVIEWBOT_SMTP_PASSWORD), starttls, ssl.
Credentials come from the configuration or the environment, never from the command line.
"""

from __future__ import annotations

import email.utils
import os
import smtplib
import ssl as _ssl
import sys
from collections.abc import Iterable
from email.message import EmailMessage
from typing import IO, Any

from reviewbot.config import section
from reviewbot.mail.headers import one_line
from reviewbot.model import InputError

PASSWORD_ENV = "REVIEWBOT_SMTP_PASSWORD"


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def settings(cfg: dict[str, Any]) -> dict[str, Any]:
    mail = section(cfg, "mail")
    use_ssl = _bool(mail.get("ssl", False))
    starttls = _bool(mail.get("starttls", False))
    port = mail.get("smtp_port") or (465 if use_ssl else 587 if starttls else 25)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise InputError(f"[mail] smtp_port is not a number: {port!r}") from None
    return {
        "enabled": _bool(mail.get("send", False)),
        "host": str(mail.get("smtp_host") or "localhost"),
        "port": port,
        "user": str(mail.get("smtp_user") or ""),
        "password": str(mail.get("smtp_password") or os.environ.get(PASSWORD_ENV) or ""),
        "starttls": starttls,
        "ssl": use_ssl,
        "timeout": float(mail.get("smtp_timeout", 60)),
    }


def recipients(msg: EmailMessage) -> list[str]:
    vals = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
    out: list[str] = []
    for _name, addr in email.utils.getaddresses(vals):
        if addr and addr.lower() not in (a.lower() for a in out):
            out.append(addr)
    return out


def envelope_from(msg: EmailMessage) -> str:
    return email.utils.parseaddr(str(msg.get("From", "")))[1]


def describe(msg: EmailMessage) -> str:
    """One short block: who gets it and what it is."""
    return (
        f"Subject: {msg.get('Subject', '')}\n"
        f"  From: {msg.get('From', '')}\n"
        f"  To: {', '.join(recipients(msg))}\n"
        f"  In-Reply-To: {msg.get('In-Reply-To', '-')}\n"
    )


def _connect(s: dict[str, Any]) -> smtplib.SMTP:
    if s["ssl"]:
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            s["host"], s["port"], timeout=s["timeout"], context=_ssl.create_default_context()
        )
    else:
        conn = smtplib.SMTP(s["host"], s["port"], timeout=s["timeout"])
    conn.ehlo()
    if s["starttls"] and not s["ssl"]:
        conn.starttls(context=_ssl.create_default_context())
        conn.ehlo()
    if s["user"]:
        conn.login(s["user"], s["password"])
    return conn


def send_messages(
    msgs: Iterable[EmailMessage],
    cfg: dict[str, Any],
    *,
    dry_run: bool = False,
    out: IO[str] | None = None,
    on_sent: Any = None,
    on_failed: Any = None,
) -> int:
    """Send `msgs` if `[mail] send` is true and not `dry_run`; otherwise print what would be
    sent. Returns the number of messages actually sent. `on_sent(index, msg)` is called after
    each message the server accepted, `on_failed(index, msg, reason)` after each it refused:
    the others are sent all the same (without `on_failed`, the refusals are raised together
    at the end as one InputError). The Date header is set to the time of sending."""
    out = out if out is not None else sys.stdout
    msgs = list(msgs)
    s = settings(cfg)
    if dry_run or not s["enabled"]:
        why = "dry run" if dry_run else "sending is disabled ([mail] send = false)"
        out.write(f"{why}: would send {len(msgs)} message(s) via {s['host']}:{s['port']}\n")
        for m in msgs:
            out.write(describe(m))
        return 0
    if not msgs:
        return 0
    sent = 0
    refused: list[str] = []
    conn = _open(s)
    try:
        for i, m in enumerate(msgs):
            rcpt = recipients(m)
            frm = envelope_from(m)
            subject = one_line(m.get("Subject", ""))
            if not rcpt or not frm:
                out.write(f"skipped (no sender or recipients): {subject}\n")
                continue
            del m["Date"]
            m["Date"] = email.utils.formatdate(localtime=True)
            if conn is None:
                conn = _open(s)  # the server hung up after refusing the last one
            try:
                conn.send_message(m, from_addr=frm, to_addrs=rcpt)
            except (smtplib.SMTPException, OSError) as e:
                reason = _reason(e)
                if isinstance(e, (smtplib.SMTPServerDisconnected, OSError)):
                    conn = None
                else:
                    try:
                        conn.rset()
                    except (smtplib.SMTPException, OSError):
                        conn = None
                out.write(f"refused: {subject}: {reason}\n")
                if on_failed is None:
                    refused.append(f"{subject!r}: {reason}")
                else:
                    on_failed(i, m, reason)
                continue
            sent += 1
            out.write(f"sent: {subject} -> {', '.join(rcpt)}\n")
            if on_sent is not None:
                on_sent(i, m)
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
    if refused:
        raise InputError(f"SMTP server refused {len(refused)} of {len(msgs)} message(s): "
                         + "; ".join(refused))
    return sent


def _open(s: dict[str, Any]) -> smtplib.SMTP:
    try:
        return _connect(s)
    except (OSError, smtplib.SMTPException) as e:
        raise InputError(f"cannot connect to SMTP server {s['host']}:{s['port']}: {e}") from None


def _reason(e: BaseException) -> str:
    """One line: the server's code and words (``554 5.7.1 rejected``), or the error."""
    code = getattr(e, "smtp_code", None)
    text = getattr(e, "smtp_error", b"")
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        first = next(iter(e.recipients.values()), (None, b""))
        code, text = first
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if code:
        return one_line(f"{code} {text}")[:300]
    return one_line(f"{type(e).__name__}: {e}")[:300]
