"""Turn review findings into reply mails a maintainer can send as they are (GUIDE section 5).

One draft per patch with introduced findings: `Subject: Re: <subject>`, threaded under the
patch (In-Reply-To / References), To the patch author, Cc the list and the patch's To/Cc.
The body quotes only the diff lines around each finding (`> `), puts the comment right under
the line it concerns, marks skipped parts with `[...]`, wraps prose at 72 columns and ends with
a short footer. Optional: a summary reply to the cover letter (`[mail] summary`), a short
acknowledgement of `fixed` findings (`[mail] acknowledge_fixed`).

Nothing taken from a patch can add a header: every header value is reduced to one line of
printable text before it is set, and addresses are rebuilt from their parts.
"""

from __future__ import annotations

import datetime as _dt
import email.policy
import email.utils
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from reviewbot import __version__
from reviewbot.config import section
from reviewbot.model import Finding, Patch, PatchResult, SeriesResult

WIDTH = 72
QUOTE_BEFORE = 3  # diff lines quoted above the line of a finding
EXTRA_BEFORE = 2  # ... above a further line the finding names
FILL_GAP = 2  # quote up to this many lines rather than write [...]

_CTRL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_RELAY = re.compile(r"\bvia\s+B4\s+Relay\b", re.I)
_INBODY_FROM = re.compile(r"^From:\s*(.+)$", re.I)


# --------------------------------------------------------------------------- helpers


def one_line(value: Any) -> str:
    """A header-safe single line: control characters (CR, LF, ...) become spaces."""
    s = _CTRL.sub(" ", str(value or ""))
    return re.sub(r"\s{2,}", " ", s).strip()


def wrap(text: str, width: int = WIDTH, indent: str = "", subsequent: str | None = None) -> str:
    """Wrap prose at `width` columns, keeping paragraphs (blank-line separated)."""
    sub = indent if subsequent is None else subsequent
    paras = re.split(r"\n\s*\n", str(text).strip())
    out = []
    for p in paras:
        p = " ".join(p.split())
        out.append(
            textwrap.fill(
                p,
                width=width,
                initial_indent=indent,
                subsequent_indent=sub,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(out)


def _quote(text: str) -> str:
    return "\n".join("> " + ln if ln else ">" for ln in str(text).split("\n"))


def make_address(name: str, addr: str) -> Address | None:
    """An Address from untrusted parts, or None if the address is unusable."""
    name, addr = one_line(name), one_line(addr).strip("<>")
    if "@" not in addr or " " in addr:
        return None
    user, _, domain = addr.rpartition("@")
    if not user or not domain:
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


def _key(a: Address) -> str:
    return a.addr_spec.lower()


def _attribution(patch: Patch, author: Address | None) -> str:
    who = one_line(author.display_name or author.addr_spec) if author else ""
    who = who or one_line(patch.author_name or patch.author_email) or "the author"
    date = one_line(patch.date)
    return f"On {date}, {who} wrote:" if date else f"{who} wrote:"


def _lower_first(s: str) -> str:
    # "Error exit ..." -> "error exit ...", but keep identifiers like "IS_ERR" or "Foo()".
    m = re.match(r"([A-Z][a-z]+)(\b)", s)
    if m and not s[m.end() :].startswith(("(", "_", "->", ".")):
        return s[0].lower() + s[1:]
    return s


def _sentence(s: str) -> str:
    s = " ".join(str(s).split())
    if s and s[-1] not in ".?!":
        s += "."
    return s


# --------------------------------------------------------------------------- the diff


def _patchset(patch: Patch):
    try:
        return patch.patchset
    except ImportError:  # the shared parser is not there: plain unidiff does the job
        import unidiff

        ps = unidiff.PatchSet(patch.diff)
        patch.__dict__["_patchset"] = ps
        return ps


def _strip_ab(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


class _FileQuote:
    """The quotable lines of one file of a patch, in patch order."""

    def __init__(self, pf, diff_lines: list[str]):
        self.path = _strip_ab(pf.path)
        self.entries: list[dict[str, Any]] = []  # {"text", "target", "type", "hunk"}
        header = next(
            (ln for ln in str(pf.patch_info or "").splitlines() if ln.startswith("diff ")), ""
        )
        if not header:
            header = f"+++ {pf.target_file}"
        self.entries.append({"text": header, "target": None, "type": "file", "hunk": -1})
        for hi, hunk in enumerate(pf):
            self.entries.append(
                {"text": _hunk_header(hunk, diff_lines), "target": None, "type": "hunk", "hunk": hi}
            )
            for line in hunk:
                self.entries.append(
                    {
                        "text": line.line_type + line.value.rstrip("\r\n"),
                        "target": line.target_line_no,
                        "type": line.line_type,
                        "hunk": hi,
                    }
                )
        self.by_target = {
            e["target"]: i for i, e in enumerate(self.entries) if e["target"] is not None
        }

    def hunk_start(self, idx: int) -> int:
        h = self.entries[idx]["hunk"]
        return next(i for i, e in enumerate(self.entries) if e["hunk"] == h and e["type"] == "hunk")

    def window(self, idx: int, before: int) -> set[int]:
        """`idx` and up to `before` post-image lines above it in its hunk; removed lines in
        between or right above come along (they are part of the change), and then one line
        of context above them."""
        first = self.hunk_start(idx) + 1
        start, seen = idx, 0
        while start > first and seen < before:
            start -= 1
            if self.entries[start]["type"] != "-":
                seen += 1
        if start > first and self.entries[start - 1]["type"] == "-":
            while start > first and self.entries[start - 1]["type"] == "-":
                start -= 1
            if start > first:
                start -= 1
        return set(range(start, idx + 1))

    def added_on_path(self, f: Finding) -> int | None:
        """The last line on the finding's path (trace, then its further lines) that the
        patch adds: where the patch meets the problem."""
        for lines in ([t.line for t in f.trace], list(f.lines)):
            added = [
                self.by_target[ln]
                for ln in lines
                if ln in self.by_target and self.entries[self.by_target[ln]]["type"] == "+"
            ]
            if added:
                return added[-1]
        return None

    def nearest_changed(self, line: int, function: str) -> int | None:
        """Index of the changed line nearest to post-image `line`, preferring hunks of
        `function` (by the hunk's section header)."""
        best: tuple[int, int, int] | None = None
        for i, e in enumerate(self.entries):
            if e["type"] not in ("+", "-"):
                continue
            pos = e["target"]
            if pos is None:  # a removed line sits before the next post-image line
                pos = next((x["target"] for x in self.entries[i:] if x["target"] is not None), None)
                if pos is None:
                    pos = max(self.by_target, default=line)
            hdr = self.entries[self.hunk_start(i)]["text"]
            other = 0 if function and re.search(rf"\b{re.escape(function)}\s*\(", hdr) else 1
            key = (other, abs(pos - line), i)
            if best is None or key < best:
                best = key
        return best[2] if best else None


def _hunk_header(hunk, diff_lines: list[str]) -> str:
    pat = re.compile(rf"^@@ -{hunk.source_start}(,\d+)? \+{hunk.target_start}(,\d+)? @@")
    for ln in diff_lines:
        if pat.match(ln):
            return ln.rstrip("\r\n")
    hdr = (
        f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
    )
    return f"{hdr} {hunk.section_header}" if hunk.section_header else hdr


def _post_line(pr: PatchResult, path: str, line: int) -> str:
    for fi in pr.files:
        if fi.path == path and fi.post:
            lines = fi.post.splitlines()
            if 0 < line <= len(lines):
                return lines[line - 1].strip()
    return ""


def _code_at(pr: PatchResult, f: Finding, fq: _FileQuote | None) -> str:
    if fq is not None and f.line in fq.by_target:
        return fq.entries[fq.by_target[f.line]]["text"][1:].strip()
    code = _post_line(pr, f.file, f.line)
    if code:
        return code
    for t in f.trace:
        if t.line == f.line and t.note:
            return one_line(t.note)
    return ""


# --------------------------------------------------------------------------- comments


def _question(f: Finding) -> str:
    r = f.rule.lower()
    if "double" in r or "twice" in r or "extra" in r:
        return "Is the second release intended, or should one of them go?"
    if "errno" in r:
        return "Should the error variable be set to a negative errno before this exit?"
    if "order" in r:
        return "Is that order intended, or should the unwinding be the reverse of the setup?"
    if "release-unheld" in r or "unheld" in r or "not-held" in r:
        return "Is it held on every path that reaches this release?"
    if f.category == "ops-mismatch" or "ops" in r:
        return "Is that intended, or should it use the ops table the other places use?"
    if "leak" in r or "missing" in r:
        return "Could this path release it as well, or is it handed over somewhere I missed?"
    return "Is that intended?"


def _path(f: Finding, limit: int = 4) -> str:
    """A short account of the path, unless the message already names the lines: the steps
    that mention the resource, and the last step."""
    if re.search(r"\bline \d+", f.message):
        return ""
    steps = [t for t in f.trace if t.note]
    if len(steps) < 2:
        return ""
    token = re.split(r"->|\.", f.resource or "")[-1]
    token = re.sub(r"\W", "", token)
    if token:
        keep = [t for t in steps if re.search(rf"\b{re.escape(token)}\b", t.note)]
        if steps[-1] not in keep:
            keep.append(steps[-1])
        if len(keep) >= 2:
            steps = keep
    if len(steps) > limit:
        steps = steps[: limit - 1] + steps[-1:]
    return ", then ".join(f"line {t.line} ({one_line(t.note)})" for t in steps)


def comment_for(f: Finding, in_hunk: bool, code: str) -> str:
    """The review comment for one finding: what is wrong and why, then a question."""
    msg = _sentence(f.message)
    hedge = "I may be misreading this, but it" if f.confidence == "low" else "It"
    parts = []
    if in_hunk:
        parts.append(f"{hedge} looks like {_lower_first(msg)}")
    else:
        where = f"line {f.line}" + (f" ('{code}')" if code else "")
        func = f" of {f.function}()" if f.function else ""
        parts.append(
            f"At {where}{func}, outside the lines this patch touches, "
            f"{hedge.lower()} looks like {_lower_first(msg)}"
        )
    path = _path(f)
    if path:
        parts.append(f"The path I followed: {path}.")
    if not msg.endswith("?"):
        parts.append(_question(f))
    if f.still_present_since:
        parts.append(f"This is still present since v{int(f.still_present_since)}.")
    return wrap(" ".join(parts))


# --------------------------------------------------------------------------- quoting


def quote_blocks(pr: PatchResult, findings: list[Finding]) -> list[dict[str, str]]:
    """Quoted lines and comments, in patch order: a list of {kind, text} with kind
    quote | comment | skip."""
    patch = pr.patch
    diff_lines = patch.diff.splitlines()
    try:
        files = [_FileQuote(pf, diff_lines) for pf in _patchset(patch)]
    except Exception:  # an unparsable diff: comments only, nothing quoted
        files = []
    by_path = {fq.path: fq for fq in files}
    quoted: dict[int, set[int]] = {}  # file index -> entry indices
    comments: dict[tuple[int, int], list[str]] = {}
    loose: list[str] = []  # findings in files the patch does not touch

    for f in findings:
        fq = by_path.get(f.file)
        if fq is None:
            loose.append(comment_for(f, False, _code_at(pr, f, None)))
            continue
        fidx = files.index(fq)
        sel = quoted.setdefault(fidx, {0})
        anchor = fq.by_target.get(f.line)
        in_hunk = anchor is not None
        if anchor is None:
            anchor = fq.added_on_path(f)
        if anchor is None:
            anchor = fq.nearest_changed(f.line, f.function)
        if anchor is None:
            loose.append(comment_for(f, False, _code_at(pr, f, fq)))
            continue
        sel |= fq.window(anchor, QUOTE_BEFORE)
        for extra in f.lines:
            j = fq.by_target.get(extra)
            if j is not None and j < anchor:
                sel |= fq.window(j, EXTRA_BEFORE)
        comments.setdefault((fidx, anchor), []).append(comment_for(f, in_hunk, _code_at(pr, f, fq)))

    blocks: list[dict[str, str]] = []
    for fidx, fq in enumerate(files):
        sel = quoted.get(fidx)
        if not sel:
            continue
        # the header of each hunk something is quoted from
        sel |= {fq.hunk_start(i) for i in sel if i}
        idxs = sorted(sel)
        # fill small gaps inside a hunk rather than write [...]
        filled = set(idxs)
        for a, b in zip(idxs, idxs[1:], strict=False):
            same = fq.entries[a]["hunk"] == fq.entries[b]["hunk"] >= 0
            if same and 1 < b - a <= FILL_GAP + 1:
                filled.update(range(a + 1, b))
        if fidx > 0:  # files before this one are left out
            blocks.append({"kind": "skip", "text": ""})
        run: list[str] = []
        prev = None
        for i in sorted(filled):
            if prev is not None and i != prev + 1:
                blocks.append({"kind": "quote", "text": "\n".join(run)})
                blocks.append({"kind": "skip", "text": ""})
                run = []
            run.append(fq.entries[i]["text"])
            for c in comments.get((fidx, i), []):
                blocks.append({"kind": "quote", "text": "\n".join(run)})
                blocks.append({"kind": "comment", "text": c})
                run = []
            prev = i
        blocks.append({"kind": "quote", "text": "\n".join(run)})
    for c in loose:
        if blocks and blocks[-1]["kind"] == "quote":
            blocks.append({"kind": "skip", "text": ""})
        blocks.append({"kind": "comment", "text": c})
    # merge adjacent quote runs split by an empty comment list
    merged: list[dict[str, str]] = []
    for b in blocks:
        if b["kind"] == "quote" and not b["text"]:
            continue
        if merged and b["kind"] == "quote" and merged[-1]["kind"] == "quote":
            merged[-1] = {"kind": "quote", "text": merged[-1]["text"] + "\n" + b["text"]}
        elif merged and b["kind"] == "skip" and merged[-1]["kind"] == "skip":
            continue
        else:
            merged.append(b)
    while merged and merged[-1]["kind"] == "skip":
        merged.pop()
    return merged


# --------------------------------------------------------------------------- templates


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


# --------------------------------------------------------------------------- messages


def _default_msgid(domain: str) -> Callable[[], str]:
    return lambda: email.utils.make_msgid(idstring="reviewbot", domain=domain)


def _new_message(
    patch: Patch,
    sender: Address,
    extra_cc: list[Address],
    now: _dt.datetime,
    msgid: str,
) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.default)
    author = patch_author(patch)
    msg["From"] = sender
    if author is not None:
        msg["To"] = author
    seen = {_key(sender)}
    if author is not None:
        seen.add(_key(author))
    cc: list[Address] = []
    for a in (
        _list_address(patch) + extra_cc + parse_addresses(patch.to) + parse_addresses(patch.cc)
    ):
        if _key(a) not in seen:
            seen.add(_key(a))
            cc.append(a)
    if author is None and cc:
        msg["To"] = cc.pop(0)
    if cc:
        msg["Cc"] = cc
    subject = one_line(patch.raw_subject or patch.subject) or "your patch"
    if not re.match(r"re:", subject, re.I):
        subject = "Re: " + subject
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = one_line(msgid)
    pid = one_line(patch.message_id).strip("<>")
    if pid and " " not in pid:
        refs = []
        for r in patch.references:
            r = one_line(r).strip("<>")
            if r and " " not in r and r != pid and f"<{r}>" not in refs:
                refs.append(f"<{r}>")
        refs.append(f"<{pid}>")
        msg["In-Reply-To"] = f"<{pid}>"
        msg["References"] = " ".join(refs)
    return msg


def _set_body(msg: EmailMessage, text: str) -> None:
    lines = text.split("\n")
    if max((len(ln.encode("utf-8")) for ln in lines), default=0) > 990:
        cte = "quoted-printable"
    elif text.isascii():
        cte = "7bit"
    else:
        cte = "8bit"
    msg.set_content(text, charset="utf-8", cte=cte)


def _footer_ctx(mail: dict[str, Any], rules: list[str], context: str) -> dict[str, Any]:
    return {
        "rules": sorted(set(rules)),
        "context": context,
        "report_url": one_line(mail.get("report_url", "")),
    }


def _ack_lines(findings: list[Finding]) -> list[str]:
    return [f"{_sentence(f.message)[:-1]} ({f.rule}, {f.function}() in {f.file})" for f in findings]


def build_drafts(
    result: SeriesResult,
    cfg: dict[str, Any],
    *,
    now: _dt.datetime | None = None,
    msgid_factory: Callable[[], str] | None = None,
) -> list[EmailMessage]:
    """One draft per patch with introduced findings; plus, if configured, a summary reply to
    the cover letter (`[mail] summary`) and acknowledgements of fixed findings
    (`[mail] acknowledge_fixed`). `now` and `msgid_factory` make Date / Message-ID
    deterministic (tests, golden files)."""
    mail = section(cfg, "mail")
    sender = sender_address(cfg)
    now = now or _dt.datetime.now(_dt.UTC).astimezone()
    new_id = msgid_factory or _default_msgid(sender.domain or "localhost")
    ack = bool(mail.get("acknowledge_fixed", False))
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
                        f"{f.file}:{f.line} {f.function}(): {_sentence(f.message)} [{f.rule}]"
                        for f in intro
                    ],
                }
            )
        author = patch_author(patch)
        if intro:
            extra = []
            if ack and fixed:
                extra.append(
                    wrap("This patch also fixes: " + "; ".join(_ack_lines(fixed)) + ". Thanks!")
                )
            body = render(
                "patch_reply.txt.j2",
                attribution=_attribution(patch, author),
                blocks=quote_blocks(pr, intro),
                extra=extra,
                **_footer_ctx(mail, [f.rule for f in intro], pr.context),
            )
        elif ack and fixed:
            body = render(
                "ack_fixed.txt.j2",
                attribution=_attribution(patch, author),
                subject=label,
                intro="Thanks, as far as reviewbot can tell this fixes:",
                lines=_ack_lines(fixed),
                **_footer_ctx(mail, [f.rule for f in fixed], pr.context),
            )
        else:
            continue
        msg = _new_message(patch, sender, cover_cc if cover is not None else [], now, new_id())
        _set_body(msg, body)
        drafts.append(msg)

    if mail.get("summary", False) and cover is not None and summary_items:
        n = sum(len(i["lines"]) for i in summary_items)
        body = render(
            "cover_summary.txt.j2",
            attribution=_attribution(cover, patch_author(cover)),
            subject=one_line(cover.raw_subject or cover.subject),
            intro=(
                f"reviewbot found {n} possible issue{'s' if n != 1 else ''} in "
                f"{len(summary_items)} of the {len(result.patches)} patches:"
            ),
            items=summary_items,
            **_footer_ctx(
                mail,
                [f.rule for f in result.findings("introduced")],
                "hunks" if any(p.context == "hunks" for p in result.patches) else "tree",
            ),
        )
        msg = _new_message(cover, sender, [], now, new_id())
        _set_body(msg, body)
        drafts.insert(0, msg)
    return drafts


def emit(results: list[SeriesResult], args: Any, cfg: dict[str, Any]) -> None:
    """`review --format email`: write the drafts to --maildir, --outdir (.eml files) or
    standard output (mbox), and with --send hand them to sendmail (which honours
    `[mail] send`)."""
    import sys

    from reviewbot.mail import outbox as mailout

    msgs = [m for r in results for m in build_drafts(r, cfg)]
    maildir = getattr(args, "maildir", None)
    outdir = getattr(args, "outdir", None)
    send = bool(getattr(args, "send", False))
    paths = []
    if maildir:
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
