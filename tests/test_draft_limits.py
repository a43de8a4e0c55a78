"""Drafts from hostile patches stay valid mail: header lines within 998 octets, authors found
despite a lone CR, no threading under an invalid Message-ID, a cap on recipients; the
outbox's tmp/ is cleaned of what killed writers left; a write that fails names its file."""

from __future__ import annotations

import datetime as dt
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from reviewbot.cron.ingest import parse_message as poll_parse
from reviewbot.input.mail import parse_message, patch_from_message
from reviewbot.mail import draft
from reviewbot.mail import outbox as mailout
from reviewbot.model import Finding, PatchResult, Series, SeriesResult

ROOT = Path(__file__).resolve().parent.parent
DIFF = ("diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,3 @@ int f(void)\n"
        " a;\n+\tput(x);\n b;\n")
CFG = {"mail": {"from": "Rita <rita@example.org>"}}


def mail(frm: str = "Alice <alice@example.org>", mid: str = "<p1@example.org>",
         extra: str = "") -> bytes:
    return (f"From: {frm}\r\nTo: list@example.org\r\nList-Post: <mailto:list@example.org>\r\n"
            f"{extra}Subject: [PATCH] x: fix\r\nMessage-ID: {mid}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nfix\r\n---\r\n"
            + DIFF.replace("\n", "\r\n")).encode()


def reply(raw: bytes, cfg=CFG, parse=parse_message):
    p = patch_from_message(parse(raw))
    f = Finding("get-put.double-put", "get-put", "warning", "high", "f.c", "f", 2,
                "Put twice.", status="introduced")
    s = Series(subject="x", revision=1, message_id="", patches=[p])
    res = SeriesResult(series=s, patches=[PatchResult(patch=p, context="hunks", findings=[f])])
    (m,) = draft.build_drafts(res, cfg, now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                              msgid_factory=lambda: "<d1@example.org>")
    return m


def header_lines(m) -> list[bytes]:
    return mailout.as_bytes(m).split(b"\n\n", 1)[0].split(b"\n")


def test_a_huge_from_name_gives_header_lines_within_998_octets():
    m = reply(mail(frm='"' + "A" * 50_000 + '" <alice@example.org>',
                   extra="Cc: " + "B" * 20_000 + " <b@example.org>\r\n"))
    assert max(len(ln) for ln in header_lines(m)) <= 998
    assert m["To"].addresses[0].addr_spec == "alice@example.org"
    assert len(m["To"].addresses[0].display_name) <= 200
    assert "b@example.org" in str(m["Cc"])


def test_a_huge_subject_and_message_id_stay_within_998_octets():
    raw = mail(mid="<" + "x" * 3000 + "@example.org>").replace(
        b"Subject: [PATCH] x: fix", b"Subject: [PATCH] " + b"y" * 5000)
    m = reply(raw)
    assert max(len(ln) for ln in header_lines(m)) <= 998
    assert m["In-Reply-To"] is None  # 3,000 octets is not a valid msg-id (250 at most)


def test_a_lone_cr_in_the_from_name_keeps_the_author():
    raw = mail(frm='"Alice\rDeveloper" <alice@example.org>')
    for parse in (parse_message, poll_parse):  # review's parser and poll's
        m = reply(raw, parse=parse)
        assert str(m["To"]) == "Alice Developer <alice@example.org>"
        assert str(m["In-Reply-To"]) == "<p1@example.org>"
        assert all(b"\r" not in ln for ln in header_lines(m))
    nul = reply(mail(frm='"Alice\0Dev" <alice@example.org>'))
    assert str(nul["To"]) == "Alice Dev <alice@example.org>"


def test_an_invalid_message_id_is_not_used_for_threading_and_the_draft_says_so():
    for bad in ("<a b c@example.org>", "<no-at-sign>", "<a@b> <c@d>", "<a@@b>"):
        m = reply(mail(mid=bad, extra="References: <ok@example.org> <also bad>\r\n"))
        assert m["In-Reply-To"] is None and m["References"] is None, bad
        assert "not threaded under the patch" in m.get_content()
    good = reply(mail(extra="References: <ok@example.org> <also bad>\r\n"))
    assert str(good["In-Reply-To"]) == "<p1@example.org>"
    assert str(good["References"]) == "<ok@example.org> <p1@example.org>"
    assert "not threaded" not in good.get_content()


def test_recipients_are_capped_keeping_the_list_and_the_author():
    ccs = ", ".join(f"u{i}@example.org" for i in range(5000))
    m = reply(mail(extra=f"Cc: {ccs}\r\n"))
    to = [a.addr_spec for a in m["To"].addresses]
    cc = [a.addr_spec for a in m["Cc"].addresses]
    assert to == ["alice@example.org"] and cc[0] == "list@example.org"
    assert len(to) + len(cc) == 50  # the default [mail] max_recipients
    small = reply(mail(extra=f"Cc: {ccs}\r\n"),
                  cfg={"mail": dict(CFG["mail"], max_recipients=3)})
    assert [a.addr_spec for a in small["Cc"].addresses] == ["list@example.org", "u0@example.org"]
    one = reply(mail(extra="Cc: u1@example.org, u2@example.org\r\n"),
                cfg={"mail": dict(CFG["mail"], max_recipients=1)})
    assert [a.addr_spec for a in one["Cc"].addresses] == ["list@example.org"]  # always kept


def test_stale_tmp_files_of_killed_writers_are_cleaned(tmp_path):
    md = tmp_path / "md"
    mailout.write_maildir([reply(mail())], md)
    dead = subprocess.Popen(["sleep", "30"])
    dead.kill()
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        (md / "tmp" / f"reviewbot-abc.eml.{dead.pid}").write_text("half")
        (md / "tmp" / f"reviewbot-def.eml.{live.pid}").write_text("being written")
        old = md / "tmp" / "someone-else.tmp"
        old.write_text("old")
        os.utime(old, (0, 0))
        removed = mailout.clean_tmp(md)  # as `poll` and `review --maildir` do first
        assert sorted(p.name for p in removed) == sorted(
            [f"reviewbot-abc.eml.{dead.pid}", "someone-else.tmp"])
        assert [p.name for p in (md / "tmp").iterdir()] == [f"reviewbot-def.eml.{live.pid}"]
    finally:
        live.kill()
        live.wait()


def _fsize_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))


def test_a_failed_draft_write_names_the_file(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "reviewbot.cli", "review", str(ROOT / "examples" / "series.mbox"),
         "--tree", str(ROOT / "examples" / "tree"), "--format", "email", "--outdir", str(out)],
        capture_output=True, text=True, timeout=120, preexec_fn=_fsize_limit,
        env=dict(os.environ, REVIEWBOT_SERVER="off"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = r.stderr.strip().splitlines()[-1]
    assert f"cannot write {out}/0001-" in line and ".eml: File too large" in line, line
    assert list(out.glob("*.eml")) == [] and list(out.glob(".tmp-*")) == []
