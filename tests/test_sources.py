from __future__ import annotations

import io
import quopri
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from reviewbot.input.classify import message_kind, parse_subject
from reviewbot.input.mail import parse_message, patch_from_message, patch_headers
from reviewbot.input.mbox import load_paths, mbox_chunks, parse_mbox_bytes
from reviewbot.input.series import series_from_messages
from reviewbot.model import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

DIFF = """diff --git a/drivers/x.c b/drivers/x.c
index 1111111..2222222 100644
--- a/drivers/x.c
+++ b/drivers/x.c
@@ -1,3 +1,3 @@
 int a;
-int b;
+int c;
 int d;
"""


def mail(
    subject: str,
    msgid: str,
    body: str = "Commit message.\n\nSigned-off-by: A <a@example.org>\n---\n" + DIFF,
    irt: str | None = None,
    frm: str = "Alice Dev <alice@example.org>",
    extra: str = "",
    sep: bool = True,
) -> str:
    hdr = f"From: {frm}\nTo: Maint <m@example.org>, list@example.org\nCc: Bob <bob@example.org>\n"
    hdr += f"Subject: {subject}\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <{msgid}>\n"
    if irt:
        hdr += f"In-Reply-To: <{irt}>\nReferences: <{irt}>\n"
    hdr += extra
    text = hdr + "\n" + body
    if sep:
        text = "From mboxrd@z Thu Jan  1 00:00:00 1970\n" + text + "\n"
    return text


def msgs_of(text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return parse_mbox_bytes(data)


def write(tmp_path, name, text: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


# ------------------------------------------------------------------ subjects


@pytest.mark.parametrize(
    "raw, subject, rev, num, total, reply",
    [
        ("[PATCH v2 3/5] gfs2: fix it", "gfs2: fix it", 2, 3, 5, False),
        ("[RFC PATCH net-next v3 01/12] net: x", "net: x", 3, 1, 12, False),
        ("[GFS2 PATCH] GFS2: Release iopen", "GFS2: Release iopen", 1, 1, 1, False),
        ("Re: [PATCH 0/2] cover", "cover", 1, 0, 2, True),
        ("[PATCH] [v2] [1/2] foo", "foo", 2, 1, 2, False),
        ("plain subject", "plain subject", 1, 1, 1, False),
    ],
)
def test_parse_subject(raw, subject, rev, num, total, reply):
    info = parse_subject(raw)
    assert (info["subject"], info["revision"], info["number"], info["total"]) == (
        subject, rev, num, total)
    assert info["is_reply"] is reply


# ------------------------------------------------------------------ the bundled example


def test_example_series_mbox():
    series = load_paths([str(EXAMPLES / "series.mbox")])
    assert len(series) == 1
    s = series[0]
    assert s.cover is not None and s.cover.number == 0
    assert s.subject == "misc: demo: buffer size and probe deferral"
    assert s.message_id == "cover.demo-series@example.org"
    assert [p.number for p in s.patches] == [1, 2]
    assert s.expected == 2 and s.missing == [] and s.complete
    p2 = s.patches[1]
    assert p2.subject == "misc: demo: defer probe until the parent is registered"
    assert p2.raw_subject.startswith("[PATCH 2/2] ")
    assert p2.message_id == "patch2.demo-series@example.org"
    assert p2.in_reply_to == "cover.demo-series@example.org"
    assert p2.references == ["cover.demo-series@example.org"]
    assert (p2.author_name, p2.author_email) == ("Ada Example", "ada@example.org")
    assert p2.to == ["Misc Maintainer <misc@example.org>"]
    assert p2.cc == ["demo-list@lists.example.org"]
    assert p2.date == "Mon, 4 Mar 2024 10:00:00 +0000"
    assert p2.body.startswith("Probing before") and "Signed-off-by" in p2.body
    assert "---" not in p2.body and "diff --git" not in p2.body
    assert p2.diff.startswith("diff --git a/drivers/misc/demo.c")
    assert p2.diff.endswith("\n") and "2.39" not in p2.diff  # signature dropped
    assert "+\t\treturn ret;\n" in p2.diff
    assert p2.message is not None and p2.source.endswith("series.mbox")
    assert len(p2.patchset) == 1


# ------------------------------------------------------------------ mbox variants


def test_many_messages_grouped_and_ordered(tmp_path):
    text = (
        mail("[PATCH 0/3] my series", "c@x")
        .replace("---\n" + DIFF, "Cover text.\n")
        + mail("[PATCH 3/3] third", "p3@x", irt="c@x")
        + mail("[PATCH 1/3] first", "p1@x", irt="c@x")
        + mail("[PATCH 2/3] second", "p2@x", irt="c@x")
        + mail("[PATCH] unrelated single", "u@x")
    )
    series = load_paths([write(tmp_path, "many.mbox", text)])
    assert len(series) == 2
    s = next(s for s in series if s.cover)
    assert [p.subject for p in s.patches] == ["first", "second", "third"]
    assert s.subject == "my series" and s.message_id == "c@x"
    single = next(s for s in series if not s.cover)
    assert single.patches[0].subject == "unrelated single" and single.expected == 1


def test_mboxrd_from_escaping_and_crlf(tmp_path):
    body = "Intro.\n>From the start this was wrong.\n>>From quoted.\n\nSigned-off-by: A <a@x>\n---\n" + DIFF
    text = mail("[PATCH] escaped", "e@x", body=body)
    p = load_paths([write(tmp_path, "rd.mbox", text.replace("\n", "\r\n").encode())])[0].patches[0]
    assert "\nFrom the start this was wrong.\n" in p.body
    assert "\n>From quoted." in p.body
    assert "\r" not in p.diff and "\r" not in p.body
    assert p.diff == DIFF
    assert len(p.patchset[0]) == 1


def test_body_line_starting_with_from_does_not_split(tmp_path):
    body = "Intro.\n\nFrom what I see this is fine.\n---\n" + DIFF
    text = mail("[PATCH] from line", "f@x", body=body)
    msgs = msgs_of(text)
    assert len(msgs) == 1


def _mime_patch(cte: str, charset: str = "utf-8", name: str = "Jörg Müller") -> bytes:
    m = EmailMessage()
    m["From"] = f"{name} <jm@example.org>"
    m["To"] = "list@example.org"
    m["Subject"] = "[PATCH] caf\u00e9: fix"
    m["Message-ID"] = "<mime@x>"
    body = "Fix the caf\u00e9 driver.\n\nSigned-off-by: J\u00f6rg <jm@example.org>\n---\n" + DIFF
    m.set_content(body, charset=charset, cte=cte)
    return m.as_bytes(policy=policy.SMTP)


@pytest.mark.parametrize(
    "cte, charset",
    [("quoted-printable", "utf-8"), ("base64", "utf-8"), ("quoted-printable", "latin-1"),
     ("8bit", "latin-1")],
)
def test_transfer_encodings_and_charsets(tmp_path, cte, charset):
    raw = _mime_patch(cte, charset)
    if cte == "base64":
        assert b"diff --git" not in raw
    if cte == "quoted-printable" and charset == "latin-1":
        assert b"=E9" in raw
    p = load_paths([write(tmp_path, "m.eml", raw)])[0].patches[0]
    assert p.subject == "café: fix"
    assert p.author_name == "Jörg Müller"
    assert p.body.startswith("Fix the café driver.")
    assert p.diff == DIFF


def test_undeclared_latin1_body_never_raises(tmp_path):
    raw = mail("[PATCH] bytes", "b@x", body="Caf\xe9 fix.\n---\n" + DIFF).encode("latin-1")
    p = load_paths([write(tmp_path, "b.patch", raw)])[0].patches[0]
    assert p.body == "Café fix.\n" and p.diff == DIFF


def test_rfc2047_folded_subject():
    raw = (
        "From: =?utf-8?q?J=C3=B6rg?= <j@x>\nSubject: [PATCH v2 1/1] a very long\n"
        " =?utf-8?q?subject_caf=C3=A9?=\nMessage-ID: <s@x>\n\nText\n---\n" + DIFF
    )
    p = patch_from_message(BytesParser(policy=policy.default).parsebytes(raw.encode()))
    assert p.raw_subject == "[PATCH v2 1/1] a very long subject café"
    assert p.subject == "a very long subject café"
    assert p.author_name == "Jörg" and p.revision == 2


def test_multipart_with_patch_attachment():
    m = EmailMessage()
    m["From"] = "Att <att@example.org>"
    m["Subject"] = "[PATCH] attached"
    m["Message-ID"] = "<att@x>"
    m.set_content("Please see the attached fix.\n\nSigned-off-by: Att <att@example.org>\n")
    m.add_attachment(DIFF.encode(), maintype="text", subtype="x-patch", filename="0001-fix.patch")
    msg = BytesParser(policy=policy.default).parsebytes(m.as_bytes())
    p = patch_from_message(msg)
    assert p.body.startswith("Please see the attached fix.")
    assert p.diff == DIFF


def test_b4_relay_sender_uses_original_from():
    text = mail(
        "[PATCH] relayed",
        "r@x",
        frm="Carol Coder via B4 Relay <devnull+carol.example.org@kernel.org>",
        extra="X-Original-From: Carol Coder <carol@example.org>\n",
    )
    p = patch_from_message(msgs_of(text)[0])
    assert (p.author_name, p.author_email) == ("Carol Coder", "carol@example.org")


def test_in_body_from_line_is_the_author():
    body = "From: Dave Real <dave@example.org>\n\nThe change.\n---\n" + DIFF
    text = mail("[PATCH] in-body", "ib@x", frm="Sender <s@example.org>", body=body)
    p = patch_from_message(msgs_of(text)[0])
    assert (p.author_name, p.author_email) == ("Dave Real", "dave@example.org")
    assert p.body == "The change.\n"


def test_list_id_and_missing_message_id():
    text = mail("[PATCH] l", "l@x", extra="List-Id: <gfs2.lists.linux.dev>\n")
    p = patch_from_message(msgs_of(text)[0])
    assert p.list_id == "gfs2.lists.linux.dev"
    raw = "From: x <x@y>\nSubject: no id\n\nbody\n---\n" + DIFF
    p2 = patch_from_message(BytesParser(policy=policy.default).parsebytes(raw.encode()))
    assert p2.message_id == "" and p2.diff == DIFF


# ------------------------------------------------------------------ series assembly


def test_replies_set_aside():
    text = (
        mail("[PATCH 1/2] one", "p1@x")
        + mail("[PATCH 2/2] two", "p2@x", irt="p1@x")
        + mail("Re: [PATCH 2/2] two", "r1@x", irt="p2@x", body="> quoted\nLooks good.\n")
        + mail("Re: [PATCH 2/2] two", "r2@x", irt="r1@x", body="Thanks, with a diff:\n" + DIFF)
    )
    series = series_from_messages(msgs_of(text))
    assert len(series) == 1
    s = series[0]
    assert [p.message_id for p in s.patches] == ["p1@x", "p2@x"]
    assert {r.message_id for r in s.replies} == {"r1@x", "r2@x"}
    assert s.cover is None and s.subject == "one" and s.message_id == "p1@x"


@pytest.mark.parametrize("subject, has_diff, kind", [
    ("[PATCH 1/2] x", True, "patch"),
    ("plain subject", True, "patch"),  # a bare diff mailed without tags
    ("[PATCH 0/2] x", False, "cover"),
    ("[PATCH v3 00/12] x", True, "cover"),  # number 0 decides, not the diff
    ("Re: [PATCH 1/2] x", True, "reply"),  # a reply quoting or proposing a diff
    ("Re: [PATCH 0/2] x", False, "reply"),
    ("AW: [PATCH] x", False, "reply"),
    ("[PATCH 1/2] x", False, "other"),  # tagged, no diff: not a patch, not a reply
    ("[GIT PULL] fixes", False, "other"),
    ("plain subject", False, "other"),
])
def test_one_classifier_of_messages(subject, has_diff, kind):
    """Series grouping and the poll's records name a message's kind the same way."""
    from reviewbot.cron.ingest import classify

    text = mail(subject, "m@x", body="Text.\n" + ("---\n" + DIFF if has_diff else ""),
                sep=False)
    p = patch_from_message(parse_message(text.encode()))
    assert message_kind(p) == kind
    assert classify(text.encode())[1] == kind  # what poll stores


def test_other_messages_are_filed_like_replies():
    """A message that is neither patch, cover nor Re: (a note, a pull request) answering
    a patch goes with the series' replies, and so do the answers to it."""
    text = (
        mail("[PATCH 1/2] one", "p1@x")
        + mail("[PATCH 2/2] two", "p2@x", irt="p1@x")
        + mail("[GIT PULL] take these", "o1@x", irt="p2@x", body="Please pull.\n")
        + mail("Re: [GIT PULL] take these", "o2@x", irt="o1@x", body="Pulled.\n")
        + mail("unrelated note", "o3@x", body="Hello.\n")
    )
    kinds = [message_kind(patch_from_message(m)) for m in msgs_of(text)]
    assert kinds == ["patch", "patch", "other", "reply", "other"]
    [s] = series_from_messages(msgs_of(text))
    assert [p.message_id for p in s.patches] == ["p1@x", "p2@x"]
    assert [r.message_id for r in s.replies] == ["o1@x", "o2@x"]


def test_v1_and_v2_keep_newest_unless_all_revisions():
    text = (
        mail("[PATCH 1/1] gfs2: fix the thing", "v1@x")
        + mail("[PATCH v2 1/1] gfs2: fix the thing", "v2@x")
    )
    series = series_from_messages(msgs_of(text))
    assert [s.revision for s in series] == [2]
    assert series[0].message_id == "v2@x"
    both = series_from_messages(msgs_of(text), all_revisions=True)
    assert sorted(s.revision for s in both) == [1, 2]


def test_v2_threaded_under_v1_cover():
    cover1 = mail("[PATCH 0/1] old title", "c1@x", body="cover v1\n")
    cover2 = mail("[PATCH v2 0/1] new title", "c2@x", body="cover v2\n", irt="c1@x")
    text = (
        cover1 + mail("[PATCH 1/1] x", "a1@x", irt="c1@x")
        + cover2 + mail("[PATCH v2 1/1] x", "a2@x", irt="c2@x")
    )
    series = series_from_messages(msgs_of(text))
    assert len(series) == 1
    assert series[0].revision == 2 and series[0].cover.message_id == "c2@x"
    assert [p.message_id for p in series[0].patches] == ["a2@x"]


def test_missing_patch_recorded():
    text = (
        mail("[PATCH 0/3] three", "c@x", body="cover\n")
        + mail("[PATCH 1/3] a", "1@x", irt="c@x")
        + mail("[PATCH 3/3] c", "3@x", irt="c@x")
    )
    s = series_from_messages(msgs_of(text))[0]
    assert s.expected == 3 and s.missing == [2] and not s.complete
    assert s.cover.body.startswith("cover")


def test_unthreaded_format_patch_directory(tmp_path):
    d = tmp_path / "outgoing"
    d.mkdir()
    for n in (2, 1):
        (d / f"000{n}-p.patch").write_text(
            f"From 9c7fe83530a351845719acf1dda0587e8c74358{n} Mon Sep 17 00:00:00 2001\n"
            f"From: A <a@x>\nSubject: [PATCH {n}/2] part {n}\n\nmsg\n---\n" + DIFF
        )
    (d / "notes.txt").write_text("not a patch\n")
    series = load_paths([str(d)])
    assert len(series) == 1
    assert [p.subject for p in series[0].patches] == ["part 1", "part 2"]
    assert series[0].patches[0].source.endswith("0001-p.patch")


# ------------------------------------------------------------------ plain diffs, stdin


def test_plain_git_diff_file(tmp_path):
    p = load_paths([write(tmp_path, "change.diff", DIFF)])[0].patches[0]
    assert p.message_id == "" and p.subject == "change.diff" and p.diff == DIFF
    assert p.number == 1 and p.total == 1


def test_plain_diff_u_file(tmp_path):
    text = "--- x.c.orig\t2024-01-01\n+++ x.c\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n"
    p = load_paths([write(tmp_path, "u.diff", text)])[0].patches[0]
    assert p.diff == text and p.patchset[0].path == "x.c"


def test_git_show_output(tmp_path):
    text = (
        "commit 0123456789abcdef0123456789abcdef01234567\nAuthor: Eve <eve@x>\n"
        "Date:   Mon Mar 4 10:00:00 2024 +0000\n\n    drivers: tweak\n\n    Longer text.\n\n" + DIFF
    )
    p = load_paths([write(tmp_path, "show.txt", text)])[0].patches[0]
    assert p.subject == "drivers: tweak" and p.author_email == "eve@x"
    assert p.body == "Longer text.\n"


def test_stdin(monkeypatch):
    raw = mail("[PATCH] from stdin", "in@x").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    s = load_paths(["-"])
    assert s[0].patches[0].subject == "from stdin" and s[0].patches[0].source == "-"


# ------------------------------------------------------------------ bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_paths([str(tmp_path / "nope.patch")])


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="empty"):
        load_paths([write(tmp_path, "e.patch", "")])


def test_not_a_patch(tmp_path):
    with pytest.raises(InputError, match="no patch found"):
        load_paths([write(tmp_path, "n.txt", "hello world\nnothing here\n")])


def test_mail_without_diff(tmp_path):
    with pytest.raises(InputError, match="no patch found"):
        load_paths([write(tmp_path, "q.eml", mail("question", "q@x", body="Just a question.\n"))])


def test_empty_directory(tmp_path):
    with pytest.raises(InputError, match="no patch found"):
        load_paths([str(tmp_path)])


def test_truncated_hunk_is_input_error(tmp_path):
    body = "msg\n---\n" + DIFF.rsplit("\n", 3)[0] + "\n"
    with pytest.raises(InputError, match="corrupt diff") as ei:
        load_paths([write(tmp_path, "t.patch", mail("[PATCH] trunc", "t@x", body=body))])
    assert "\n" not in str(ei.value)


def test_binary_rename_new_deleted_load(tmp_path):
    diff = """diff --git a/fw.bin b/fw.bin
index 1234567..89abcde 100644
Binary files a/fw.bin and b/fw.bin differ
diff --git a/old.c b/new.c
similarity index 100%
rename from old.c
rename to new.c
diff --git a/n.txt b/n.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/n.txt
@@ -0,0 +1 @@
+x
diff --git a/d.c b/d.c
deleted file mode 100644
index 3333333..0000000
--- a/d.c
+++ /dev/null
@@ -1 +0,0 @@
-x
"""
    p = load_paths([write(tmp_path, "odd.patch", mail("[PATCH] odd", "o@x", body="m\n---\n" + diff))])
    assert [pf.path for pf in p[0].patches[0].patchset] == ["fw.bin", "new.c", "n.txt", "d.c"]


def test_garbage_bytes_never_traceback(tmp_path):
    raw = b"From: \xff\xfe\nSubject: =?bogus?q?x?=\nContent-Type: text/plain; charset=nonsense\n"
    raw += b"Content-Transfer-Encoding: base64\n\n!!!notbase64\n"
    with pytest.raises(InputError):
        load_paths([write(tmp_path, "g.eml", raw)])


def test_qp_encoded_mbox_roundtrip(tmp_path):
    body = ("Fix.\n---\n" + DIFF).encode()
    enc = quopri.encodestring(body).decode()
    text = mail(
        "[PATCH] qp",
        "qp@x",
        body=enc,
        extra="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n",
    )
    p = load_paths([write(tmp_path, "qp.mbox", text)])[0].patches[0]
    assert p.diff == DIFF and p.body == "Fix.\n"


# name in From/To/Cc -> (author_name, the mailbox as To/Cc list it) for UTF-8 and Latin-1 bytes
_NAMES = {
    "Dev 0": ("Dev 0", "Dev 0 <a@ex.org>"),
    "J. Doe": ("J. Doe", "J. Doe <a@ex.org>"),
    "O'Brien": ("O'Brien", "O'Brien <a@ex.org>"),
    '"Quoted, Name"': ("Quoted, Name", '"Quoted, Name" <a@ex.org>'),
    "=?utf-8?q?J=C3=B6rg?=": ("Jörg", "Jörg <a@ex.org>"),
    "Jörg": ("Jörg", "Jörg <a@ex.org>"),  # Latin-1 bytes in a header: U+FFFD
    "A (comment)": ("A", "A <a@ex.org>"),
    "": ("", "a@ex.org"),
    "Name With  Spaces": ("Name With Spaces", "Name With Spaces <a@ex.org>"),
    "trailing.": ("trailing.", "trailing. <a@ex.org>"),
    "Foo via B4 Relay": ("Foo", "Foo via B4 Relay <a@ex.org>"),  # no X-Original-From
}
# raw Subject -> (raw_subject, subject, revision, number, total)
_SUBJECTS = {
    "[PATCH v2 1/3] x: y": ("[PATCH v2 1/3] x: y", "x: y", 2, 1, 3),
    "=?utf-8?b?W1BBVENIIDEvMl0gw6R0c2No?=": ("[PATCH 1/2] ätsch", "ätsch", 1, 1, 2),
    "[PATCH 2/2] a\n  folded  subject": ("[PATCH 2/2] a folded subject", "a folded subject",
                                         1, 2, 2),
    "Re: [PATCH] x": ("Re: [PATCH] x", "x", 1, 1, 1),
    '[RFC PATCH 0/2] (paren) "q" \\ back': ('[RFC PATCH 0/2] (paren) "q" \\ back',
                                            '(paren) "q" \\ back', 1, 0, 2),
    "[PATCH]\n\tx: tab folded": ("[PATCH] x: tab folded", "x: tab folded", 1, 1, 1),
}


def test_patch_headers_agree_with_patch_from_message_on_examples():
    n = 0
    for mbox in sorted(EXAMPLES.rglob("*.mbox")):
        for msg in parse_mbox_bytes(mbox.read_bytes()):
            full = patch_from_message(msg)
            light, has_diff = patch_headers(msg)
            assert has_diff == bool(full.diff.strip())
            assert (light.raw_subject, light.message_id, light.author_email,
                    light.in_reply_to, light.references) == (
                full.raw_subject, full.message_id, full.author_email,
                full.in_reply_to, full.references)
            n += 1
    assert n > 10


# ------------------------------------------------------------------ bodies and encodings

# (extra headers, body) -> (commit message from UTF-8 bytes, from Latin-1 bytes, the in-body
# author if any, List-Id)
_BODIES = [
    (("", "Fix.\n\nSigned-off-by: A <a@ex.org>\n---\n" + DIFF),
     ("Fix.\n\nSigned-off-by: A <a@ex.org>\n",) * 2 + (None, "")),
    (("", "From: Real Author <real@ex.org>\n\nFix.\n---\n" + DIFF),  # in-body From
     ("Fix.\n",) * 2 + (("Real Author", "real@ex.org"), "")),
    (("", "From: =?utf-8?q?J=C3=B6rg?= <j@ex.org>\n\nFix.\n---\n" + DIFF),
     ("Fix.\n",) * 2 + (("Jörg", "j@ex.org"), "")),
    (("Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n",
      "Fix für ä.\n---\n" + DIFF),
     ("Fix für ä.\n", "Fix f\ufffdr \ufffd.\n", None, "")),
    (("Content-Type: text/plain; charset=\"iso-8859-1\"\n", "Fix f\xfcr.\n---\n" + DIFF),
     ("Fix fÃ¼r.\n", "Fix für.\n", None, "")),
    (("Content-Type: text/plain; charset=utf-8; format=flowed\n", "Fix.\n---\n" + DIFF),
     ("Fix.\n",) * 2 + (None, "")),
    (("Content-Transfer-Encoding: quoted-printable\n", "Fix=3D.\n---\n" + DIFF),
     ("Fix=.\n",) * 2 + (None, "")),
    (("Content-Type: multipart/mixed; boundary=b\n",
      "--b\nContent-Type: text/plain\n\nFix.\n---\n" + DIFF + "--b--\n"),
     ("Fix.\n",) * 2 + (None, "")),
    (("X-Original-From: Orig Author <orig@ex.org>\nList-Id: <x.lists.ex.org>\n",
      "Fix.\n---\n" + DIFF),  # read only for a relay sender
     ("Fix.\n",) * 2 + (None, "x.lists.ex.org")),
    (("Message-ID: <dup@x>\nSubject: second subject\n", "Fix.\n---\n" + DIFF),
     ("Fix.\n",) * 2 + (None, "")),  # the first of a repeated header
    (("", "Fix.\r\nwith a lone \r in it\n---\n" + DIFF + "-- \n2.39.0\n\n"),
     ("Fix.\nwith a lone \n in it\n",) * 2 + (None, "")),
]


@pytest.mark.parametrize("name", _NAMES)
@pytest.mark.parametrize("subject", _SUBJECTS)
@pytest.mark.parametrize("mail_in, want", _BODIES, ids=[str(i) for i in range(len(_BODIES))])
def test_every_field_of_a_mail(name, subject, mail_in, want):
    """Names (quoting, comments, encoded words, relays), subjects (tags, encoded words,
    folding), bodies (charsets, transfer encodings, multipart, in-body From, CRLF) as UTF-8
    and as Latin-1 bytes: every field of the Patch, and patch_headers' share of them."""
    extra, body = mail_in
    fr = f"{name} <a@ex.org>" if name else "a@ex.org"
    raw = (f"From: {fr}\nTo: {fr}, b@c.org, \"X, Y\" <x@y.org>\nCc: {fr}\n  , c@d.org\n"
           f"Subject: {subject}\nMessage-ID: <m@x>\nIn-Reply-To: <p@x> (comment)\n"
           f"References: <r1@x>\n <r2@x>\nDate: Mon, 4 Mar 2024\n  10:00:00 +0000\n"
           f"{extra}\n{body}")
    for charset, message in (("utf-8", want[0]), ("latin-1", want[1])):
        msg = parse_message(raw.encode(charset, "replace"))
        p = patch_from_message(msg, source="s")
        author, mailbox = _NAMES[name]
        if charset == "latin-1" and not name.isascii():  # raw 8-bit bytes in a header
            author, mailbox = author.replace("ö", "\ufffd"), mailbox.replace("ö", "\ufffd")
        if want[2] is not None:  # the in-body From is the author
            author = want[2][0]
        elif "Relay" in name and "X-Original-From" in extra:
            author = "Orig Author"
        email_ = want[2][1] if want[2] else "orig@ex.org" if author == "Orig Author" \
            else "a@ex.org"
        assert (p.author_name, p.author_email) == (author, email_), charset
        assert p.to == [mailbox, "b@c.org", '"X, Y" <x@y.org>'] and p.cc == [mailbox, "c@d.org"]
        assert (p.raw_subject, p.subject, p.revision, p.number, p.total) == _SUBJECTS[subject]
        assert (p.message_id, p.in_reply_to, p.references, p.list_id) == (
            "m@x", "p@x", ["r1@x", "r2@x"], want[3])
        assert p.date == "Mon, 4 Mar 2024 10:00:00 +0000"
        assert p.body == message and p.diff == DIFF, charset
        assert p.message is msg and p.source == "s"
        light, has_diff = patch_headers(msg)
        assert has_diff
        for f in ("subject", "raw_subject", "message_id", "number", "total", "revision",
                  "author_name", "author_email", "date", "in_reply_to", "references"):
            assert getattr(light, f) == getattr(p, f), f


def test_relay_sender_without_original_from_keeps_its_name():
    raw = ("From: Foo via B4 Relay <devnull+foo.ex.org@kernel.org>\nSubject: [PATCH] x\n"
           "Message-ID: <m@x>\n\nFix.\n---\n" + DIFF)
    p = patch_from_message(BytesParser(policy=policy.default).parsebytes(raw.encode()))
    assert (p.author_name, p.author_email) == ("Foo", "devnull+foo.ex.org@kernel.org")


PLAIN = ("From: A Dev <a@ex.org>\nTo: b@ex.org\nSubject: [PATCH] x: y\n"
         "Message-ID: <m@x>\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nFix.\n---\n" + DIFF)


@pytest.mark.parametrize("variant, want", [
    ((None, None), ("[PATCH] x: y", ["b@ex.org"], True, "m@x")),
    (("To: b@ex.org", "To: B <b@ex.org>,\n\tc@ex.org"),
     ("[PATCH] x: y", ["B <b@ex.org>", "c@ex.org"], True, "m@x")),
    (("Subject: [PATCH] x: y", "Subject: =?utf-8?q?x?="), ("x", ["b@ex.org"], True, "m@x")),
    (("Subject: [PATCH] x: y", "Subject: caf\xe9"), ("café", ["b@ex.org"], True, "m@x")),
    # a body that is not base64 decodes to noise: no diff in it, and no traceback
    (("To: b@ex.org", "Content-Transfer-Encoding: base64"), ("[PATCH] x: y", [], False, "m@x")),
    (("To: b@ex.org", "Content-Type: multipart/mixed; boundary=b"),
     ("[PATCH] x: y", [], True, "m@x")),
    (("To: b@ex.org", " continuation first"), ("[PATCH] x: y", [], True, "m@x")),
    # a line that is not a header ends the headers: the rest is body
    (("To: b@ex.org", "Not a header line"), ("", [], True, "")),
])
def test_odd_header_lines(variant, want):
    """Mails a format-patch would not write, read as the email package reads them."""
    old, new = variant
    text = PLAIN if old is None else PLAIN.replace(old, new)
    p = patch_from_message(parse_message(text.encode("utf-8")))
    assert (p.raw_subject, p.to, p.diff == DIFF, p.message_id) == want
    assert p.author_email == "a@ex.org"


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def test_examples_and_corpus_mails_are_read_whole():
    files = sorted(EXAMPLES.rglob("*.mbox")) + sorted(CORPUS.glob("cases/*/patch.mbox"))
    patches = [patch_from_message(parse_message(c), source=str(f))
               for f in files for c in mbox_chunks(f.read_bytes())]
    assert len(patches) > 10
    for p in patches:
        assert "@" in p.author_email and p.raw_subject and p.body
        assert p.message is not None and (p.diff or p.number == 0 or "Re:" in p.raw_subject)


def test_review_loads_patches_alike_with_and_without_messages():
    mbox = EXAMPLES / "series.mbox"
    with_msgs = load_paths([str(mbox)])
    without = load_paths([str(mbox)], messages=False)
    read = [p for s in with_msgs for p in (*s.patches, *s.replies, s.cover) if p is not None]
    assert len(read) > 2 and all(p.message is not None for p in read)
    assert all(p.message is None for s in without for p in (*s.patches, *s.replies, s.cover)
               if p is not None)
    for p in read:
        p.message = None
    assert without == with_msgs
