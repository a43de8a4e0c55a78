"""Sending drafts over SMTP, against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import itertools
import os
import socket
from pathlib import Path

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from reviewbot.commands import send as send_cmd  # noqa: E402
from reviewbot.mail import draft  # noqa: E402
from reviewbot.mail import outbox as mailout  # noqa: E402
from reviewbot.model import Finding, Patch, PatchResult, Series, SeriesResult  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH:UserWarning")

CORPUS = Path("/work/shared/corpus/cases/006-seedC-rev/patch.patch")
DIFF = (
    CORPUS.read_text()
    if CORPUS.is_file()
    else (
        "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,3 @@ int f(void)\n"
        " a;\n+\tput(x);\n b;\n"
    )
)
LINE = 200 if CORPUS.is_file() else 2


class Sink:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, session)
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        yield sink, ctl.port
    finally:
        ctl.stop()


class Auth:
    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()
        self.logins = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        self.logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=ok)  # handled=False: the server answers 535


@pytest.fixture
def smtp_auth():
    sink = Sink()
    auth = Auth("rita", "s3cret")
    ctl = Controller(
        sink,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=auth,
        auth_required=True,
        auth_require_tls=False,
    )
    ctl.start()
    try:
        yield sink, ctl.port, auth
    finally:
        ctl.stop()


def drafts(n=2):
    ids = itertools.count(1)
    out = []
    for i in range(n):
        patch = Patch(
            subject=f"change {i}",
            raw_subject=f"[PATCH {i + 1}/{n}] change {i}",
            message_id=f"p{i}@corpus.invalid",
            author_name="Bob Peterson",
            author_email="rpeterso@redhat.com",
            date="Fri, 4 Dec 2015 09:00:00 -0500",
            to=["cluster-devel@redhat.com"],
            cc=["Jörg Rödel <joro@example.com>"],
            diff=DIFF,
        )
        f = Finding(
            rule="get-put.double-put",
            category="get-put",
            severity="warning",
            confidence="high",
            file="fs/gfs2/inode.c" if CORPUS.is_file() else "f.c",
            function="gfs2_inode_lookup",
            line=LINE,
            message="The reference is put twice.",
            status="introduced",
        )
        s = Series(subject="s", revision=1, message_id="", patches=[patch])
        res = SeriesResult(
            series=s, patches=[PatchResult(patch=patch, context="tree", findings=[f])]
        )
        out += draft.build_drafts(
            res,
            {"mail": {"from": "Rita <rita@example.org>"}},
            now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            msgid_factory=lambda: f"<d{next(ids)}@reviewbot.invalid>",
        )
    return out


def run_send(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    send_cmd.add_parser(sub, "send")
    args = p.parse_args(["send", *argv])
    return args.run(args)


def write_config(tmp_path, port, **extra) -> str:
    lines = ["[mail]", 'from = "Rita <rita@example.org>"', 'smtp_host = "127.0.0.1"']
    lines.append(f"smtp_port = {port}")
    for k, v in extra.items():
        lines.append(f"{k} = {'true' if v is True else 'false' if v is False else repr(v)}")
    cfg = tmp_path / "config.toml"
    cfg.write_text("\n".join(lines).replace("'", '"') + "\n")
    return str(cfg)


def test_send_enabled_delivers_drafts(tmp_path, smtp, capsys):
    sink, port = smtp
    out = tmp_path / "out"
    paths = mailout.write_eml(drafts(2), out)
    cfg = write_config(tmp_path, port, send=True)
    assert run_send([str(out), "--config", cfg]) == 0
    assert len(sink.envelopes) == 2
    for i, (mail_from, rcpt, content, _session) in enumerate(sink.envelopes):
        assert mail_from == "rita@example.org"
        assert sorted(rcpt) == sorted(
            ["rpeterso@redhat.com", "cluster-devel@redhat.com", "joro@example.com"]
        )
        m = email.message_from_bytes(content, policy=email.policy.default)
        assert m["In-Reply-To"] == f"<p{i}@corpus.invalid>"
        assert m["Subject"] == f"Re: [PATCH {i + 1}/2] change {i}"
        assert "Jörg Rödel" in str(m["Cc"])
        assert m.get_body(("plain",)).get_content().startswith("On Fri, 4 Dec 2015")
        assert "bcc" not in {k.lower() for k in m.keys()}
    # sent drafts are moved aside: a second run sends nothing
    assert not any(p.exists() for p in paths)
    assert sorted(p.name for p in (out / "sent").iterdir()) == sorted(p.name for p in paths)
    assert run_send([str(out), "--config", cfg]) == 0
    assert len(sink.envelopes) == 2
    assert "sent: Re: [PATCH 1/2] change 0" in capsys.readouterr().out


def test_send_disabled_by_default_sends_nothing(tmp_path, smtp, capsys):
    sink, port = smtp
    out = tmp_path / "out"
    paths = mailout.write_eml(drafts(2), out)
    cfg = write_config(tmp_path, port)  # no "send = true"
    assert run_send([str(out), "--config", cfg]) == 0
    printed = capsys.readouterr().out
    assert "sending is disabled" in printed and "would send 2 message(s)" in printed
    assert "rpeterso@redhat.com" in printed
    assert sink.envelopes == []
    assert all(p.exists() for p in paths)


def test_dry_run_flag_wins_over_config(tmp_path, smtp, capsys):
    sink, port = smtp
    out = tmp_path / "out"
    mailout.write_eml(drafts(1), out)
    cfg = write_config(tmp_path, port, send=True)
    assert run_send([str(out), "--config", cfg, "--dry-run"]) == 0
    assert "dry run: would send 1 message(s)" in capsys.readouterr().out
    assert sink.envelopes == []


def test_password_from_environment_and_maildir(tmp_path, smtp_auth, monkeypatch):
    sink, port, auth = smtp_auth
    md = tmp_path / "md"
    mailout.write_maildir(drafts(1), md)
    cfg = write_config(tmp_path, port, send=True, smtp_user="rita")
    monkeypatch.setenv("REVIEWBOT_SMTP_PASSWORD", "s3cret")
    assert run_send([str(md), "--config", cfg]) == 0
    assert auth.logins == [(b"rita", True)]
    assert len(sink.envelopes) == 1
    assert list((md / "new").iterdir()) == []
    assert [p.name.endswith(":2,S") for p in (md / "cur").iterdir()] == [True]


def test_wrong_password_is_an_error_and_nothing_sent(tmp_path, smtp_auth, monkeypatch):
    from reviewbot.model import InputError

    sink, port, auth = smtp_auth
    out = tmp_path / "out"
    mailout.write_eml(drafts(1), out)
    cfg = write_config(tmp_path, port, send=True, smtp_user="rita", smtp_password="wrong")
    monkeypatch.delenv("REVIEWBOT_SMTP_PASSWORD", raising=False)
    with pytest.raises(InputError):
        run_send([str(out), "--config", cfg])
    assert sink.envelopes == []


def test_emit_with_send_flag_sends_when_enabled(tmp_path, smtp, capsysbinary):
    sink, port = smtp
    m = drafts(1)[0]
    patch = Patch(
        subject="x",
        raw_subject="[PATCH] x",
        message_id="emit@corpus.invalid",
        author_name="Bob",
        author_email="bob@example.com",
        diff=DIFF,
    )
    f = Finding(
        "get-put.double-put",
        "get-put",
        "warning",
        "high",
        "fs/gfs2/inode.c" if CORPUS.is_file() else "f.c",
        "fn",
        LINE,
        "Put twice.",
        status="introduced",
    )
    s = Series(subject="s", revision=1, message_id="", patches=[patch])
    res = [SeriesResult(series=s, patches=[PatchResult(patch=patch, context="tree", findings=[f])])]
    ns = argparse.Namespace(outdir=None, maildir=None, send=True)
    base = {"from": "Rita <rita@example.org>", "smtp_host": "127.0.0.1", "smtp_port": port}
    draft.emit(res, ns, {"mail": base})  # sending disabled: nothing goes out, no mbox
    assert sink.envelopes == []
    assert b"would send 1 message(s)" in capsysbinary.readouterr().err
    draft.emit(res, ns, {"mail": dict(base, send=True)})
    assert len(sink.envelopes) == 1
    got = email.message_from_bytes(sink.envelopes[0][2], policy=email.policy.default)
    assert got["In-Reply-To"] == "<emit@corpus.invalid>"
    assert sink.envelopes[0][1] == ["bob@example.com"]
    assert capsysbinary.readouterr().out == b""
    assert m["Message-ID"] != got["Message-ID"]


def test_emit_outdir_and_send_moves_sent_drafts(tmp_path, smtp, capsys):
    sink, port = smtp
    patch = Patch(
        subject="x",
        raw_subject="[PATCH] x",
        message_id="emit2@corpus.invalid",
        author_name="Bob",
        author_email="bob@example.com",
        diff=DIFF,
    )
    f = Finding(
        "get-put.double-put",
        "get-put",
        "warning",
        "high",
        "fs/gfs2/inode.c" if CORPUS.is_file() else "f.c",
        "fn",
        LINE,
        "Put twice.",
        status="introduced",
    )
    s = Series(subject="s", revision=1, message_id="", patches=[patch])
    res = [SeriesResult(series=s, patches=[PatchResult(patch=patch, context="tree", findings=[f])])]
    out = tmp_path / "out"
    ns = argparse.Namespace(outdir=str(out), maildir=None, send=True)
    cfg = {
        "mail": {"from": "r@example.org", "send": True, "smtp_host": "127.0.0.1", "smtp_port": port}
    }
    draft.emit(res, ns, cfg)
    assert len(sink.envelopes) == 1
    assert list(out.glob("*.eml")) == []
    assert [p.name for p in (out / "sent").iterdir()] == ["0001-x.eml"]
    # a later `reviewbot send DIR` finds nothing left to send
    cfgfile = write_config(tmp_path, port, send=True)
    assert run_send([str(out), "--config", cfgfile]) == 0
    assert len(sink.envelopes) == 1


class Picky(Sink):
    """Refuses (554) every message whose Subject holds ``refuse``."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse.encode()
        self.refusals = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse in envelope.original_content.split(b"\r\n\r\n")[0]:
            self.refusals += 1
            return "554 5.7.1 message refused by policy"
        return await super().handle_DATA(server, session, envelope)


def test_a_refused_draft_is_kept_with_its_reason_the_others_sent_once(tmp_path, capsys):
    import json

    sink = Picky("change 1")
    ctl = Controller(sink, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        md = tmp_path / "md"
        mailout.write_maildir(drafts(3), md)
        cfg = write_config(tmp_path, ctl.port, send=True, max_tries=2, retry_after_minutes=0)
        assert run_send([str(md), "--config", cfg]) == 3
        assert len(sink.envelopes) == 2 and sink.refusals == 1
        (left,) = list((md / "new").iterdir())
        state = json.loads((md / ".reviewbot-send.json").read_text())
        assert state[left.name]["tries"] == 1
        assert state[left.name]["reason"] == "554 5.7.1 message refused by policy"
        err = capsys.readouterr().err
        assert left.name in err and "554" in err and "try 1 of 2" in err
        # the next run tries only that one again; the second refusal parks it
        assert run_send([str(md), "--config", cfg]) == 3
        assert len(sink.envelopes) == 2 and sink.refusals == 2
        assert list((md / "new").iterdir()) == []
        assert [p.name for p in (md / "parked").iterdir()] == [left.name]
        assert "parked" in capsys.readouterr().err
        # parked: not tried again; nothing else to send
        assert run_send([str(md), "--config", cfg]) == 0
        assert len(sink.envelopes) == 2 and sink.refusals == 2
        sent = [email.message_from_bytes(e[2], policy=email.policy.default)["Subject"]
                for e in sink.envelopes]
        assert sorted(sent) == ["Re: [PATCH 1/3] change 0", "Re: [PATCH 3/3] change 2"]
    finally:
        ctl.stop()


def test_a_refused_draft_waits_for_its_backoff(tmp_path, capsys):
    sink = Picky("change 0")
    ctl = Controller(sink, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        out = tmp_path / "out"
        mailout.write_eml(drafts(1), out)
        cfg = write_config(tmp_path, ctl.port, send=True, retry_after_minutes=60)
        assert run_send([str(out), "--config", cfg]) == 3
        assert run_send([str(out), "--config", cfg]) == 0  # not due yet: not sent
        assert sink.refusals == 1
        assert "waiting (refused 1x" in capsys.readouterr().out
        assert [p.name for p in out.glob("*.eml")] == ["0001-change-0.eml"]
    finally:
        ctl.stop()


def test_review_send_sends_the_others_and_names_the_refused_one(tmp_path):
    from reviewbot.mail import send as sendmail
    from reviewbot.model import InputError

    sink = Picky("change 0")
    ctl = Controller(sink, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        cfg = {"mail": {"from": "r@example.org", "send": True, "smtp_host": "127.0.0.1",
                        "smtp_port": ctl.port}}
        with pytest.raises(InputError, match="refused 1 of 2.*change 0.*554"):
            sendmail.send_messages(drafts(2), cfg, out=open(os.devnull, "w"))
        assert len(sink.envelopes) == 1
    finally:
        ctl.stop()


# ------------------------------------------------------------- git's sendemail.* settings


def git_repo(tmp_path, **keys) -> Path:
    """A real repository whose own configuration sets sendemail.KEY = value."""
    import subprocess

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for k, v in keys.items():
        subprocess.run(["git", "-C", str(repo), "config", f"sendemail.{k}", str(v)], check=True)
    return repo


def test_send_uses_git_sendemail_settings_when_the_config_does_not_say(
        tmp_path, smtp_auth, monkeypatch, capsys):
    sink, port, auth = smtp_auth
    repo = git_repo(tmp_path, smtpServer="127.0.0.1", smtpServerPort=port, smtpUser="rita",
                    smtpPass="s3cret")
    monkeypatch.delenv("REVIEWBOT_SMTP_PASSWORD", raising=False)
    out = tmp_path / "out"
    mailout.write_eml(drafts(1), out)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[mail]\nfrom = "Rita <rita@example.org>"\nsend = true\n')
    monkeypatch.chdir(repo)
    assert run_send([str(out), "--config", str(cfg), "--dry-run"]) == 0
    assert f"via 127.0.0.1:{port}" in capsys.readouterr().out  # what it would use
    assert run_send([str(out), "--config", str(cfg)]) == 0
    assert auth.logins == [(b"rita", True)]  # user and password from git config
    assert len(sink.envelopes) == 1
    # outside the repository its settings do not apply
    monkeypatch.chdir(tmp_path)
    from reviewbot.mail import send as sendmail

    s = sendmail.settings({"mail": {}})
    assert (s["host"], s["port"], s["user"]) != ("127.0.0.1", port, "rita")


def test_the_configuration_wins_over_git_config(tmp_path, smtp, monkeypatch):
    from reviewbot.mail import send as sendmail

    sink, port = smtp
    repo = git_repo(tmp_path, smtpServer="192.0.2.1", smtpServerPort="2525", smtpUser="gituser",
                    smtpPass="gitpass", smtpEncryption="ssl")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("REVIEWBOT_SMTP_PASSWORD", raising=False)
    s = sendmail.settings({"mail": {"smtp_host": "127.0.0.1", "smtp_port": port,
                                    "smtp_user": "cfguser", "starttls": False}})
    assert (s["host"], s["port"], s["user"], s["ssl"], s["starttls"]) == (
        "127.0.0.1", port, "cfguser", False, False)
    # another server than git's: none of git's keys, above all not its password
    s = sendmail.settings({"mail": {"smtp_host": "127.0.0.1"}})
    assert (s["port"], s["user"], s["password"], s["ssl"]) == (25, "", "", False)
    # git's server named in the configuration too: git's other keys fill in
    s = sendmail.settings({"mail": {"smtp_host": "192.0.2.1"}})
    assert (s["port"], s["user"], s["password"], s["ssl"]) == (2525, "gituser", "gitpass", True)
    out = tmp_path / "out"
    mailout.write_eml(drafts(1), out)
    assert run_send([str(out), "--config", write_config(tmp_path, port, send=True)]) == 0
    assert len(sink.envelopes) == 1  # sent to the configured server, not to git's


@pytest.mark.parametrize("enc,ssl,starttls,port", [
    ("ssl", True, False, 465), ("tls", False, True, 587), ("none", False, False, 25),
])
def test_git_smtp_encryption(tmp_path, monkeypatch, enc, ssl, starttls, port):
    from reviewbot.mail import send as sendmail

    monkeypatch.chdir(git_repo(tmp_path, smtpServer="smtp.example.org", smtpEncryption=enc))
    s = sendmail.settings({})
    assert (s["host"], s["ssl"], s["starttls"], s["port"]) == ("smtp.example.org", ssl,
                                                                starttls, port)


def test_git_smtp_server_program_or_bad_port_is_one_clear_error(tmp_path, monkeypatch):
    from reviewbot.mail import send as sendmail
    from reviewbot.model import InputError

    monkeypatch.chdir(git_repo(tmp_path, smtpServer="/usr/sbin/sendmail"))
    with pytest.raises(InputError, match="is a program"):
        sendmail.settings({})
    assert sendmail.settings({"mail": {"smtp_host": "127.0.0.1"}})["host"] == "127.0.0.1"
    monkeypatch.chdir(git_repo(tmp_path / "b", smtpServer="h", smtpServerPort="no-such-svc"))
    with pytest.raises(InputError, match="not a port"):
        sendmail.settings({})
    monkeypatch.chdir(git_repo(tmp_path / "c", smtpServer="h", smtpServerPort="submission"))
    assert sendmail.settings({})["port"] == 587  # a service name, as git send-email takes
