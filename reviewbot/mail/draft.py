"""Turn review findings into reply mails a maintainer can send as they are (GUIDE section 5).

One draft per patch with introduced findings, threaded under the patch (``headers``). The
body quotes only the diff lines around each finding (``quoting``), puts the comment right
under the line it concerns (``comments``), marks skipped parts with `[...]`, wraps prose at
72 columns and ends with a short footer; the layout is in the templates. Optional: a
summary reply to the cover letter (`[mail] summary`), a short acknowledgement of `fixed`
findings (`[mail] acknowledge_fixed`).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from reviewbot import __version__
from reviewbot.config import section
from reviewbot.mail.comments import WIDTH, defect_text, upper_first, wrap
from reviewbot.mail.headers import (
    MAX_RECIPIENTS,
    default_msgid,
    new_message,
    one_line,
    parse_addresses,
    patch_author,
    sender_address,
    set_body,
    thread_id,
)
from reviewbot.mail.quoting import quote_blocks
from reviewbot.model import Finding, InputError, Patch, SeriesResult

if TYPE_CHECKING:
    from reviewbot.packs import Packs


def _quote(text: str) -> str:
    return "\n".join("> " + ln if ln else ">" for ln in str(text).split("\n"))


def _attribution(patch: Patch, author: Address | None) -> str:
    who = one_line(author.display_name or author.addr_spec) if author else ""
    who = who or one_line(patch.author_name or patch.author_email) or "The author"
    date = one_line(patch.date)
    return f"On {date}, {who} wrote:" if date else f"{who} wrote:"


_ENV = None


def _env():
    global _ENV
    if _ENV is None:
        import jinja2

        from reviewbot.datafiles import templates_dir

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())),
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["wrap72"] = lambda s, indent="", subsequent=None: wrap(
            s, WIDTH, indent, subsequent
        )
        env.filters["quote"] = _quote
        _ENV = env
    return _ENV


def render(template: str, **ctx: Any) -> str:
    text = _env().get_template(template).render(version=__version__, **ctx)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return text


def _footer_ctx(mail: dict[str, Any], rules: list[str], context: str) -> dict[str, Any]:
    return {
        "rules": sorted(set(rules)),
        "context": context,
        "report_url": one_line(mail.get("report_url", "")),
    }


def _ack_lines(findings: list[Finding], packs: Packs) -> list[str]:
    return [f"{defect_text(f, packs)[:-1]} ({f.rule}, {f.function}() in {f.file})"
            for f in findings]


def _scope(some: int, total: int) -> str:
    """"the patch", "both patches", "all 5 patches", "2 of the 5 patches"."""
    if total == 1:
        return "the patch"
    if some == total:
        return "both patches" if total == 2 else f"all {total} patches"
    return f"{some} of the {total} patches"


def _unthreaded(patch: Patch, author: Address | None, extra_cc: list[Address]) -> list[str]:
    """Why a reply to `patch` cannot be threaded under it, or has nobody to go to."""
    out = []
    if thread_id(patch) is None:
        if patch.message_id:
            why = "the patch's Message-ID is not a valid msg-id"
        elif patch.message is None:
            why = "the patch is a plain diff, with no Message-ID"
        else:  # git format-patch without --thread writes none
            why = "the patch has no Message-ID (a series made without --thread?)"
        out.append(f"this reply is not threaded under the patch: {why}; send it in reply to "
                   "the posted patch")
    if author is None and not (_list_cc(patch) or extra_cc):
        out.append("this reply has no To: address, since the patch names no author and no "
                   "list; add the recipients")
    return out


def _list_cc(patch: Patch) -> bool:
    return bool(parse_addresses(patch.to) or parse_addresses(patch.cc)
                or (patch.message is not None and patch.message.get("List-Post")))


def build_drafts(
    result: SeriesResult,
    cfg: dict[str, Any],
    *,
    now: _dt.datetime | None = None,
    msgid_factory: Callable[[], str] | None = None,
    packs: Packs | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[EmailMessage]:
    """One draft per patch with introduced findings; plus, if configured, a summary reply to
    the cover letter (`[mail] summary`) and acknowledgements of fixed findings
    (`[mail] acknowledge_fixed`). `now` and `msgid_factory` make Date / Message-ID
    deterministic (tests, golden files); `packs` say what kind each resource is (default:
    the shipped ones); `warn` hears, one line each, of a draft that cannot be threaded or
    has no To:."""
    if packs is None:
        from reviewbot.packs import load_packs

        packs = load_packs()
    mail = section(cfg, "mail")
    sender = sender_address(cfg)
    now = now or _dt.datetime.now(_dt.UTC).astimezone()
    new_id = msgid_factory or default_msgid(sender.domain or "localhost")
    ack = bool(mail.get("acknowledge_fixed", False))
    try:
        max_recipients = max(int(mail.get("max_recipients", MAX_RECIPIENTS)), 1)
    except (TypeError, ValueError):
        raise InputError(f"[mail] max_recipients: not a number: "
                         f"{mail.get('max_recipients')!r}") from None
    cover = result.series.cover
    cover_cc = [] if cover is None else parse_addresses(cover.to) + parse_addresses(cover.cc)
    drafts: list[EmailMessage] = []
    summary_items: list[dict[str, Any]] = []

    for pr in result.patches:
        intro = [f for f in pr.findings if f.status == "introduced"]
        fixed = [f for f in pr.findings if f.status == "fixed"]
        patch = pr.patch
        label = one_line(patch.raw_subject or patch.subject)
        if intro:
            summary_items.append(
                {
                    "label": label,
                    "lines": [
                        f"{f.file}:{f.line} {f.function}(): {upper_first(defect_text(f, packs))}"
                        f" [{f.rule}]"
                        for f in intro
                    ],
                }
            )
        author = patch_author(patch)
        unthreaded = _unthreaded(patch, author, cover_cc if cover is not None else [])
        if intro or (ack and fixed):
            for why in unthreaded:
                if warn is not None:
                    warn(f"draft for {label!r}: {why}")
        if intro:
            extra = [wrap(f"(Note: {why}.)") for why in unthreaded]
            if ack and fixed:
                extra.append(
                    wrap("This patch also fixes: " + "; ".join(_ack_lines(fixed, packs))
                         + ". Thanks!")
                )
            body = render(
                "patch_reply.txt.j2",
                attribution=_attribution(patch, author),
                blocks=quote_blocks(pr, intro, packs),
                extra=extra,
                **_footer_ctx(mail, [f.rule for f in intro], pr.context),
            )
        elif ack and fixed:
            body = render(
                "ack_fixed.txt.j2",
                attribution=_attribution(patch, author),
                subject=label,
                intro="Thanks, as far as reviewbot can tell this fixes:",
                lines=[upper_first(x) for x in _ack_lines(fixed, packs)],
                **_footer_ctx(mail, [f.rule for f in fixed], pr.context),
            )
        else:
            continue
        msg = new_message(patch, sender, cover_cc if cover is not None else [], now, new_id(),
                          max_recipients)
        set_body(msg, body)
        drafts.append(msg)

    if mail.get("summary", False) and cover is not None and summary_items:
        if thread_id(cover) is None and warn is not None:
            warn(f"summary for {one_line(cover.raw_subject or cover.subject)!r}: not threaded "
                 "under the cover letter: its Message-ID is missing or not a valid msg-id")
        n = sum(len(i["lines"]) for i in summary_items)
        body = render(
            "cover_summary.txt.j2",
            attribution=_attribution(cover, patch_author(cover)),
            subject=one_line(cover.raw_subject or cover.subject),
            intro=f"An automated review found {n} possible issue{'s' if n != 1 else ''} in "
                  f"{_scope(len(summary_items), len(result.patches))}:",
            items=summary_items,
            **_footer_ctx(
                mail,
                [f.rule for f in result.findings("introduced")],
                "hunks" if any(p.context == "hunks" for p in result.patches) else "tree",
            ),
        )
        msg = new_message(cover, sender, [], now, new_id(), max_recipients)
        set_body(msg, body)
        drafts.insert(0, msg)
    return drafts


def emit(results: list[SeriesResult], args: Any, cfg: dict[str, Any]) -> None:
    """`review --format email`: write the drafts to --maildir, --outdir (.eml files) or
    standard output (mbox), and with --send hand them to sendmail (which honours
    `[mail] send`)."""
    import sys

    from reviewbot.mail import outbox as mailout

    def warn(line: str) -> None:
        sys.stderr.write(f"reviewbot: warning: {line}\n")

    msgs = [m for r in results for m in build_drafts(r, cfg, warn=warn)]
    maildir = getattr(args, "maildir", None)
    outdir = getattr(args, "outdir", None)
    send = bool(getattr(args, "send", False))
    paths = []
    if maildir:
        mailout.clean_tmp(maildir)  # what a killed run was writing
        paths = mailout.write_maildir(msgs, maildir)
    elif outdir:
        paths = mailout.write_eml(msgs, outdir)
    elif not send:
        mailout.write_mbox(msgs, sys.stdout)
    for p in paths:
        sys.stderr.write(f"draft: {p}\n")
    if send:
        from reviewbot.mail import send as sendmail

        def sent(i: int, _msg: EmailMessage) -> None:
            if paths:  # written and sent: a later `reviewbot send DIR` must not resend it
                mailout.mark_sent(paths[i])

        sendmail.send_messages(msgs, cfg, out=sys.stderr, on_sent=sent)
