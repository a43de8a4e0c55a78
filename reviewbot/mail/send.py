"""Send drafts over SMTP, only when the configuration says so (`[mail] send = true`).

Otherwise (the default) this is a dry run: it prints what would be sent and sends nothing.
Settings, all under [mail]: smtp_host (default localhost), smtp_port (25, 465 with ssl, 587
with starttls), smtp_user, smtp_password (or $REVIEWBOT_SMTP_PASSWORD), starttls, ssl.
What [mail] does not say comes from git's `sendemail.*` keys, as git send-email reads them
(smtpServer, smtpServerPort, smtpUser, smtpPass, smtpEncryption = ssl | tls), from the
repository the command runs in or the global and system files; none of them when smtp_host
names another server than smtpServer (git's credentials go to git's server only). Credentials come from the
configuration, the environment or git config, never from the command line.
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
from reviewbot.mail.outbox import as_bytes
from reviewbot.model import InputError

PASSWORD_ENV = "REVIEWBOT_SMTP_PASSWORD"


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


GIT_KEYS = ("smtpServer", "smtpServerPort", "smtpUser", "smtpPass", "smtpEncryption")


def git_sendemail(cwd: str = ".") -> dict[str, str]:
    """git's `sendemail.KEY` values (KEY of GIT_KEYS) as git sees them from `cwd`: the
    repository's configuration (which has the global and system files under it) or, outside
    a repository, the global, XDG and system files in that order. Read with pygit2, no git
    subprocess."""
    import pygit2

    confs: list[Any] = []
    try:
        found = pygit2.discover_repository(cwd)
        if found:
            confs.append(pygit2.Repository(found).config)
    except (pygit2.GitError, OSError, ValueError):
        pass  # not a repository git can open: its global settings still count
    if not confs:
        for get in (pygit2.Config.get_global_config, pygit2.Config.get_xdg_config,
                    pygit2.Config.get_system_config):
            try:
                confs.append(get())
            except (pygit2.GitError, OSError):
                pass  # that file does not exist
    out: dict[str, str] = {}
    for key in GIT_KEYS:
        for conf in confs:
            try:
                out[key] = str(conf[f"sendemail.{key}"])
                break
            except (KeyError, pygit2.GitError, ValueError):
                continue
    return out


def _git_port(value: str) -> int:
    """smtpServerPort: a number or a service name (git send-email takes both)."""
    import socket

    try:
        return int(value)
    except ValueError:
        pass
    try:
        return socket.getservbyname(value.strip(), "tcp")
    except OSError:
        raise InputError(f"git config sendemail.smtpServerPort: not a port: {value!r}") from None


def settings(cfg: dict[str, Any], cwd: str = ".") -> dict[str, Any]:
    """The SMTP settings: [mail], then git's sendemail.* for what [mail] does not say."""
    mail = section(cfg, "mail")
    git = git_sendemail(cwd)
    server = git.get("smtpServer", "").strip()
    host = str(mail.get("smtp_host") or "")
    if host and host != server:
        git = {}  # git's port, encryption and credentials are for git's server, not this one
    elif server.startswith("/"):
        raise InputError(f"git config sendemail.smtpServer is a program ({server}); reviewbot "
                         f"sends over SMTP only: set [mail] smtp_host")
    if "ssl" in mail or "starttls" in mail:
        use_ssl = _bool(mail.get("ssl", False))
        starttls = _bool(mail.get("starttls", False))
    else:  # git send-email's smtpEncryption: ssl is SMTPS, tls is STARTTLS
        enc = git.get("smtpEncryption", "").strip().lower()
        use_ssl, starttls = enc == "ssl", enc == "tls"
    port = mail.get("smtp_port")
    if not port and git.get("smtpServerPort"):
        port = _git_port(git["smtpServerPort"])
    port = port or (465 if use_ssl else 587 if starttls else 25)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise InputError(f"[mail] smtp_port is not a number: {port!r}") from None
    return {
        "enabled": _bool(mail.get("send", False)),
        "host": host or server or "localhost",
        "port": port,
        "user": str(mail.get("smtp_user") or git.get("smtpUser") or ""),
        "password": str(mail.get("smtp_password") or os.environ.get(PASSWORD_ENV)
                        or git.get("smtpPass") or ""),
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
                # the bytes the draft file holds: folded as drafts are (headers.ReplyPolicy)
                conn.sendmail(frm, rcpt, as_bytes(m, linesep="\r\n"))
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
