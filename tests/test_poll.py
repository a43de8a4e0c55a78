"""Cron mode end to end: a real public-inbox-httpd on 127.0.0.1, `reviewbot poll` as a
subprocess, the bundled example list (examples/list) plus messages added while it runs."""

from __future__ import annotations

import email
import email.policy
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reviewbot.cron.localinbox import LocalInbox, missing_tools
from reviewbot.cron.mirror import split_mboxrd
from reviewbot.cron.store import StateStore

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples" / "list"
TREE = EX / "tree"
LIST = "widget-devel"

pytestmark = pytest.mark.skipif(
    missing_tools() is not None,
    reason=f"public-inbox cannot run here: {missing_tools()} (CI installs it in .ci/run)")

A1_1 = "20240506090000.v1-1-alice@example.org"
A2_1 = "20240510080000.v2-1-alice@example.org"
B = "20240507140000.v1-0-carol@example.org"
C_2 = "20240508110000.v1-2-dave@example.org"


def mbox_of(path: Path, keep=None, drop=None) -> bytes:
    """The messages of an mbox whose Message-ID is (not) in the given set, as mboxrd."""
    out = []
    for raw in split_mboxrd(path.read_bytes()):
        mid = re.search(rb"^Message-ID: <([^>]+)>", raw, re.M).group(1).decode()
        if (keep is None or mid in keep) and (drop is None or mid not in drop):
            body = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            out.append(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body + b"\n")
    return b"".join(out)


@pytest.fixture
def inbox(tmp_path):
    ibx = LocalInbox(tmp_path / "pi", LIST)
    ibx.create()
    ibx.import_mbox(EX / "list.mbox")
    ibx.start()
    yield ibx
    ibx.stop()


class Runner:
    def __init__(self, tmp: Path, ibx: LocalInbox, name: str = "run", **cfg) -> None:
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ibx = ibx
        self.state = self.dir / "state.sqlite"
        self.outbox = self.dir / "outbox"
        poll = {"wait_incomplete_hours": 24, "retries": 1, "backoff": 0.1, "timeout": 10}
        poll.update(cfg)
        lines = ["[mail]", 'from = "Review Bot <bot@example.org>"', "[poll]"]
        for k, v in poll.items():
            lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
        self.config = self.dir / "config.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.env = dict(os.environ, HOME=str(self.dir / "home"), XDG_CACHE_HOME=str(self.dir / "cache"),
                        GIT_CONFIG_NOSYSTEM="1")
        for k in list(self.env):
            if k.startswith("REVIEWBOT_"):
                del self.env[k]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "reviewbot.cli", "poll", "--config", str(self.config),
                "--lore", self.ibx.server, "--list", LIST, "--state", str(self.state),
                "--outbox", str(self.outbox), "--tree", str(TREE)]

    def run(self, env=None, expect=0) -> subprocess.CompletedProcess:
        e = dict(self.env, **(env or {}))
        r = subprocess.run(self.argv(), env=e, capture_output=True, text=True, timeout=120)
        if expect is not None:
            assert r.returncode == expect, (r.returncode, r.stdout, r.stderr)
        return r

    def drafts(self) -> dict[str, email.message.EmailMessage]:
        out = {}
        for sub in ("new", "cur"):
            d = self.outbox / sub
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    out[f.name] = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        return out

    def outbox_view(self) -> dict[str, tuple]:
        """The outbox without Date (the only header that depends on when it ran)."""
        return {name: tuple((k, str(v)) for k, v in m.items() if k != "Date") + (m.get_content(),)
                for name, m in self.drafts().items()}

    def snapshot(self) -> dict:
        s = StateStore(self.state)
        try:
            return s.snapshot()
        finally:
            s.close()

    def replies_to(self) -> list[str]:
        return sorted(str(m["In-Reply-To"]).strip("<>") for m in self.drafts().values())


def test_poll_first_then_nothing_then_new_mail(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    out = r.run()
    assert re.search(r"7 new messages \(0 skipped\), 2 series reviewed .* 1 waiting, 1 draft ", out.stdout), out.stdout
    drafts = r.drafts()
    assert len(drafts) == 1
    (d,) = drafts.values()
    assert str(d["In-Reply-To"]) == f"<{A1_1}>"
    assert str(d["Subject"]) == "Re: [PATCH 1/2] widget: load firmware on open"
    assert str(d["To"]) == "Alice Developer <alice@example.org>"
    assert "widget-devel@lists.example.org" in str(d["Cc"])
    body = d.get_content()
    assert "> +\t\treturn ret;" in body
    assert "still present" not in body
    snap1 = r.snapshot()
    assert {x[4] for x in snap1["revisions"]} == {"reviewed", "waiting"}
    v1 = {x[1] for x in snap1["findings"]}
    assert v1 and {(x[2], x[3], x[6]) for x in snap1["findings"]} == {(1, "new", "widget_open")}

    # nothing new: nothing drafted, state unchanged, fast
    t = time.monotonic()
    out = r.run()
    elapsed = time.monotonic() - t
    assert "0 new messages" in out.stdout and "0 drafts" in out.stdout
    assert r.drafts().keys() == drafts.keys()
    assert r.snapshot() == snap1
    assert elapsed < 1.0, f"poll with nothing new took {elapsed:.2f}s"

    # the v2, the late patch 2/2 of the incomplete series and a reply, added to the live
    # inbox, each message after the first in a new epoch (roll-over)
    inbox.import_mbox(EX / "later.mbox", rollover=True)
    assert inbox.epochs() == [0, 1, 2, 3, 4]
    out = r.run()
    assert "5 new messages" in out.stdout and "2 drafts" in out.stdout, out.stdout
    assert r.replies_to() == sorted([A1_1, A2_1, C_2])
    v2 = next(m for m in r.drafts().values() if str(m["In-Reply-To"]) == f"<{A2_1}>")
    still = [x for x in r.snapshot()["findings"] if x[3] == "still"]
    # each finding of v1 that v2 still has is drafted again once, saying so once
    assert {x[1] for x in still} == v1 and {x[2] for x in still} == {2}
    # (one paragraph for the exit that leaves both held, so the note is said once there)
    v2_text = " ".join(v2.get_content().split())
    assert len(still) == 2 and v2_text.count("already pointed out in the review of v1") == 1
    assert re.search(r"this 'return ret' skips the unwind code: 'w->lock' \(mutex_lock\(\) "
                     r"at line \d+\) stays held and 'buf' \(kzalloc\(\) at line \d+\) leaks\. "
                     r"Should this be goto out_free\? This was already pointed out in the review "
                     r"of v1\.", v2_text), v2_text
    c2 = next(m for m in r.drafts().values() if str(m["In-Reply-To"]) == f"<{C_2}>")
    assert "widget_resume" in c2.get_content() or "return ret;" in c2.get_content()
    snap2 = r.snapshot()
    assert [(e[1], bool(e[4])) for e in snap2["epochs"]] == [(n, True) for n in range(5)]
    assert all(x[4] == "reviewed" for x in snap2["revisions"])
    dave = {(x[2], x[3], x[6]) for x in snap2["findings"] if x[0].startswith("dave@")}
    assert dave == {(1, "new", "widget_resume")}
    # every message recorded once; the reply is known but consumed by no revision
    mids = [x[1] for x in snap2["messages"]]
    assert len(mids) == len(set(mids)) == 12

    # and once only
    out = r.run()
    assert "0 new messages" in out.stdout and "0 drafts" in out.stdout
    assert r.snapshot() == snap2
    assert len(r.drafts()) == 3


def test_incomplete_series_reviewed_after_timeout_and_late_patch_once(tmp_path, inbox):
    r = Runner(tmp_path, inbox, wait_incomplete_hours=1 / 3600)  # one second
    out = r.run()
    assert "1 waiting" in out.stdout
    time.sleep(1.1)
    out = r.run()
    assert "1 series reviewed (1 incomplete)" in out.stdout, out.stdout
    rev = [x for x in r.snapshot()["revisions"] if x[0].startswith("dave@")]
    assert rev[0][4:7] == ("partial", "[1]", "[2]")
    assert C_2 not in r.replies_to()

    inbox.import_mbox(mbox_of(EX / "later.mbox", keep={C_2}))
    out = r.run()
    assert "1 new message " in out.stdout and "1 draft " in out.stdout, out.stdout
    assert r.replies_to() == sorted([A1_1, C_2])
    rev = [x for x in r.snapshot()["revisions"] if x[0].startswith("dave@")]
    assert rev[0][4:7] == ("reviewed", "[1, 2]", "[]")
    before = r.outbox_view()
    out = r.run()
    assert "0 drafts" in out.stdout and r.outbox_view() == before


def test_malformed_message_is_skipped_and_does_not_stop_the_run(tmp_path, inbox):
    bad = (b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"
           b"From: Mallory <mallory@example.org>\nTo: widget-devel@lists.example.org\n"
           b"Subject: [PATCH] widget: something\nDate: Sat, 11 May 2024 10:00:00 +0000\n"
           b"Message-ID: <bad-charset@example.org>\nMIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\n"
           b"Content-Transfer-Encoding: 8bit\n\n\xff\xfe garbage\n\n")
    inbox.import_mbox(bad + mbox_of(EX / "later.mbox", keep={C_2}))
    r = Runner(tmp_path, inbox)
    out = r.run()
    assert "9 new messages (1 skipped)" in out.stdout, out.stdout
    assert "bad-charset@example.org" in out.stderr and "skipping" in out.stderr
    snap = r.snapshot()
    assert [(x[2], "charset" in x[3]) for x in snap["skipped"]] == [("bad-charset@example.org", True)]
    assert r.replies_to() == sorted([A1_1, C_2])  # the rest was reviewed
    out = r.run()
    assert "0 new messages (0 skipped)" in out.stdout and r.snapshot() == snap


def _kill_scenarios(tmp_path, inbox):
    inbox.import_mbox(EX / "later.mbox", rollover=True)
    base = Runner(tmp_path, inbox, "baseline")
    base.run()
    want_box, want_state = base.outbox_view(), base.snapshot()
    assert len(want_box) == 3
    return want_box, want_state


def test_poll_killed_anywhere_resumes_without_loss_or_duplicates(tmp_path, inbox):
    want_box, want_state = _kill_scenarios(tmp_path, inbox)
    hooks = [{"REVIEWBOT_TEST_CRASH_AFTER": str(n)} for n in (1, 7, 12)]
    hooks += [{"REVIEWBOT_TEST_CRASH_AFTER_DRAFTS": str(n)} for n in (1, 2)]
    for i, env in enumerate(hooks):
        r = Runner(tmp_path, inbox, f"crash{i}")
        killed = r.run(env=env, expect=None)
        assert killed.returncode == 137, (env, killed.stdout, killed.stderr)
        r.run()
        assert r.outbox_view() == want_box, env
        assert r.snapshot() == want_state, env
    r.run()  # and a further run changes nothing
    assert r.outbox_view() == want_box and r.snapshot() == want_state


def test_poll_sigkill_mid_run(tmp_path, inbox):
    want_box, want_state = _kill_scenarios(tmp_path, inbox)
    # a real SIGKILL while the run is parked after 6 messages (inside a transaction)
    r = Runner(tmp_path, inbox, "sigkill")
    flag = r.dir / "paused"
    env = dict(r.env, REVIEWBOT_TEST_PAUSE_AFTER="6", REVIEWBOT_TEST_PAUSE_FILE=str(flag))
    p = subprocess.Popen(r.argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    r.run()
    assert r.outbox_view() == want_box and r.snapshot() == want_state
    # SIGKILL at arbitrary moments, each run resuming the last one
    r = Runner(tmp_path, inbox, "random")
    for delay in (0.15, 0.3, 0.5, 0.8):
        p = subprocess.Popen(r.argv(), env=r.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
    r.run()
    assert r.outbox_view() == want_box and r.snapshot() == want_state


def test_server_down_fails_clearly_and_keeps_state(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    r.run()
    snap, box = r.snapshot(), r.outbox_view()
    inbox.stop()
    inbox.import_mbox(EX / "later.mbox")  # mail the bot cannot see while it is down
    t = time.monotonic()
    out = r.run(expect=2)
    assert time.monotonic() - t < 10
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0] and inbox.server in err[0], out.stderr
    assert out.stdout == ""
    assert r.snapshot() == snap and r.outbox_view() == box
    inbox.start()  # back up: the next poll catches up
    out = r.run()
    assert "5 new messages" in out.stdout


def test_lock_keeps_two_runs_apart(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    lock = Path(str(r.state) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        out = r.run(expect=2)
        assert "another poll is running" in out.stderr
        assert not r.state.exists() and not r.outbox.exists()
    r.run()
    assert len(r.drafts()) == 1


def test_http_fallback_and_limits(tmp_path, inbox):
    r = Runner(tmp_path, inbox, transport="http")
    out = r.run()
    assert "7 new messages" in out.stdout and "1 draft " in out.stdout, out.stdout
    assert r.replies_to() == [A1_1]
    assert r.snapshot()["epochs"] == []  # no git used
    inbox.import_mbox(mbox_of(EX / "later.mbox"))
    out = r.run()
    assert "5 new messages" in out.stdout, out.stdout
    assert r.replies_to() == sorted([A1_1, A2_1, C_2])
    out = r.run()
    assert "0 new messages" in out.stdout

    small = Runner(tmp_path, inbox, "small", transport="http", max_download_mb=0.001)
    out = small.run(expect=2)
    assert "download limit" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_line_exit_2(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    r.config.write_text("[poll\n")
    out = r.run(expect=2)
    assert len(out.stderr.strip().splitlines()) == 1 and "config" in out.stderr
    r.config.write_text('[poll]\ntransport = "carrier-pigeon"\n')
    out = r.run(expect=2)
    assert "transport" in out.stderr


def test_rows_recorded_without_grouping_fields_group_the_same(tmp_path):
    """A state written before the grouping fields and parsed Patches were recorded (or by
    an older version) is grouped and reviewed as if they had been."""
    import argparse

    from reviewbot.cron.ingest import classify, patch_json
    from reviewbot.cron.poll import PollRun, options
    from reviewbot.cron.review import review_pending

    def review(name: str, fields: bool):
        d = tmp_path / name
        args = argparse.Namespace(
            state=str(d / "state.sqlite"), outbox=str(d / "outbox"), list=LIST,
            lore="http://127.0.0.1:9", tree=str(TREE), quiet=True, lock=None,
            wait_incomplete_hours=0, transport=None)
        opts = options({"mail": {"from": "Review Bot <bot@example.org>"}}, args)
        st = StateStore(opts.state)
        poller = PollRun.start(opts, st)
        with st.transaction():
            for raw in split_mboxrd((EX / "list.mbox").read_bytes()):
                p, kind = classify(raw)
                keep = raw if kind in ("patch", "cover") else None
                author = f"{p.author_name} <{p.author_email}>"
                extra = ((p.author_email, p.in_reply_to, p.references,
                          patch_json(p) if keep else None) if fields else ())
                st.add_message(LIST, p.message_id, "o", kind, p.raw_subject, author, p.date,
                               keep, *extra)
        review_pending(poller, opts.lists[0])
        filled = st.db.execute("SELECT COUNT(*) FROM messages WHERE kind IN ('patch','cover')"
                               " AND refs IS NULL").fetchone()[0]
        snap = st.snapshot()
        st.close()
        names = sorted(p.name for p in (d / "outbox" / "new").iterdir())
        return snap, names, filled, poller.report

    new_snap, new_names, new_null, rep = review("new", True)
    old_snap, old_names, old_null, _ = review("old", False)
    assert rep.reviewed >= 2 and new_names
    assert (old_snap, old_names) == (new_snap, new_names)
    assert new_null == old_null == 0


def test_poll_verbose_logs_each_step(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    r.argv = lambda base=r.argv: [*base(), "-v"]
    err = r.run().stderr
    lines = err.splitlines()
    assert all(ln.startswith("reviewbot: ") for ln in lines), err
    assert f"{LIST}: fetching {inbox.url}/manifest.js.gz" in err
    assert f"{LIST}: fetching epoch 0 from " in err
    # each message ingested, with its kind
    for mid in (A1_1, B):
        assert f"ingested patch <{mid}>" in err, err
    assert "ingested cover <20240506090000.v1-0-alice@example.org>" in err
    assert "ingested reply <20240507083000.r1-bob@example.org>" in err
    assert f"{LIST}: epoch 0: 7 commit(s) read, 7 new message(s)" in err
    # each series reviewed or left waiting, each draft written (the file is there)
    assert re.search(r"reviewed 'widget: firmware loading' v1 \(patches 1, 2\): [1-9]\d* "
                     r"finding\(s\) to draft", err), err
    assert "reviewed 'gadget: use kmalloc_array() for the counter table' v1" in err
    assert "'widget: suspend and resume' v1 waits for patch(es) 2/2" in err
    (written,) = re.findall(r"wrote draft (\S+) \(reply to <" + re.escape(A1_1) + r">\)", err)
    assert Path(written).is_file() and Path(written).name in r.drafts()
    # nothing new: it says why nothing is fetched or reviewed
    err = r.run().stderr
    assert f"{LIST}: epoch 0 unchanged since the last run: not fetched" in err
    assert f"{LIST}: nothing new and nothing due: no review" in err
    assert "ingested" not in err and "wrote draft" not in err
    # without -v, a clean run prints nothing on stderr
    quiet = Runner(tmp_path, inbox, "quiet")
    assert quiet.run().stderr == ""


@pytest.mark.parametrize("transport", ["git", "http"])
def test_poll_since_skips_older_messages(tmp_path, inbox, transport):
    r = Runner(tmp_path, inbox, transport=transport)
    r.argv = lambda base=r.argv: [*base(), "--since", "2024-05-07", "-v"]
    out = r.run()
    # alice's v1 (6 May) is skipped, the rest (7 and 8 May) is ingested and reviewed
    assert "7 new messages (3 skipped), 1 series reviewed" in out.stdout, out.stdout
    assert "0 drafts" in out.stdout and r.drafts() == {}
    assert f"skipped <{A1_1}>" in out.stderr or re.search(
        r"skipped [0-9a-f]{12} '\[PATCH 1/2\] widget: load firmware on open': dated "
        r"2024-05-06 09:01:00 UTC, before --since", out.stderr), out.stderr
    assert "before --since" in out.stderr
    mids = {x[1] for x in r.snapshot()["messages"]}
    assert A1_1 not in mids and B in mids and "20240507083000.r1-bob@example.org" in mids
    assert "reviewed 'gadget: use kmalloc_array() for the counter table' v1" in out.stderr
    # the next run (without --since) does not go back for them
    r.argv = lambda base=r.argv: base()[:-3]
    out = r.run()
    assert "0 new messages" in out.stdout, out.stdout
    assert A1_1 not in {x[1] for x in r.snapshot()["messages"]}


def test_poll_since_bad_date_is_one_line_exit_2(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    r.argv = lambda base=r.argv: [*base(), "--since", "last tuesday"]
    out = r.run(expect=2)
    assert out.stderr.strip().splitlines() == [
        "reviewbot: --since: not a date (YYYY-MM-DD or an ISO 8601 time): 'last tuesday'"]
