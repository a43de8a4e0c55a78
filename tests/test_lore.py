"""`review --msgid` and reviewbot.input.lore.fetch_series against a real public-inbox-httpd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reviewbot.cron.localinbox import LocalInbox, missing_tools
from reviewbot.input.lore import fetch_series, parse_msgid
from reviewbot.model import InputError

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples" / "list"
A1_0 = "20240506090000.v1-0-alice@example.org"
A1_1 = "20240506090000.v1-1-alice@example.org"
A2 = ["20240510080000.v2-1-alice@example.org", "20240510080000.v2-2-alice@example.org"]

needs_pi = pytest.mark.skipif(
    missing_tools() is not None,
    reason=f"public-inbox cannot run here: {missing_tools()} (CI installs it in .ci/run)")


@pytest.fixture(scope="module")
def inbox(tmp_path_factory):
    ibx = LocalInbox(tmp_path_factory.mktemp("lore") / "pi", "widget-devel")
    ibx.create()
    ibx.import_mbox(EX / "list.mbox")
    ibx.import_mbox(EX / "later.mbox")
    ibx.start()
    yield ibx
    ibx.stop()


def test_parse_msgid_forms():
    assert parse_msgid("<a@b>") == ("a@b", None)
    assert parse_msgid("id:a@b") == ("a@b", None)
    assert parse_msgid("https://lore.kernel.org/linux-fsdevel/a@b/") == (
        "a@b", "https://lore.kernel.org/linux-fsdevel")
    assert parse_msgid("https://lore.kernel.org/r/a%40b") == ("a@b", "https://lore.kernel.org/all")
    assert parse_msgid("http://127.0.0.1:9/x/a@b/T/#u")[0] == "a@b"
    assert parse_msgid("https://patch.msgid.link/a@b")[1] == "https://lore.kernel.org/all"
    with pytest.raises(InputError):
        parse_msgid("not a msgid")


@needs_pi
def test_fetch_series_picks_the_newest_revision(inbox, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (s,) = fetch_series(A1_1, inbox.url)
    assert s.revision == 2 and s.complete
    assert [p.message_id for p in s.patches] == A2
    # a URL names the inbox too
    (s,) = fetch_series(f"{inbox.url}/{A1_0}/T/")
    assert s.revision == 2


@needs_pi
def test_missing_message_and_server_down_are_one_line_errors(inbox, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="message not found: <nope@example.org>"):
        fetch_series("nope@example.org", inbox.url)
    dead = LocalInbox(tmp_path / "dead", "widget-devel")
    dead.port = 9  # nothing listens on the discard port on loopback
    with pytest.raises(InputError, match="cannot reach") as ei:
        fetch_series(A1_1, dead.url)
    assert "\n" not in str(ei.value)


@needs_pi
def test_review_msgid_cli_reviews_the_newest_revision(inbox, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    argv = [sys.executable, "-m", "reviewbot.cli", "review", "--msgid", A1_1, "--lore", inbox.url,
            "--tree", str(EX / "tree"), "--format", "json"]
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr  # findings
    doc = json.loads(r.stdout)
    (series,) = doc["series"]
    assert series["revision"] == 2
    p1 = series["patches"][0]
    assert p1["message_id"] == A2[0]
    assert {f["function"] for f in p1["findings"]} == {"widget_open"}
    r = subprocess.run(argv[:5] + ["missing@example.org"] + argv[6:], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "message not found" in r.stderr


class _Bad:
    """A server on 127.0.0.1 that answers every GET with a gzip bomb, or stalls."""

    def __init__(self, mode: str) -> None:
        import http.server
        import threading
        import zlib

        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        bomb = b"".join(c.compress(b"\0" * (1 << 20)) for _ in range(32)) + c.flush()

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                if mode == "search-stall" and self.path.endswith("/t.mbox.gz"):
                    import gzip

                    body = gzip.compress((EX / "list.mbox").read_bytes())
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if mode in ("stall", "search-stall"):
                    time.sleep(30)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(bomb)))
                self.end_headers()
                self.wfile.write(bomb)

            def do_POST(self):  # noqa: N802 - b4's search (?q=...&x=m)
                time.sleep(30)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = S(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/widget-devel"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_thread_mbox_is_fetched_with_caps_and_a_deadline():
    from reviewbot.cron.net import Caps
    from reviewbot.input.lore import fetch_thread_mbox

    bomb = _Bad("bomb")
    try:
        with pytest.raises(InputError, match="inflates to more than the limit of 1048576"):
            fetch_thread_mbox("a@b", bomb.url, Caps(1 << 20, 1 << 20))
        with pytest.raises(InputError, match="download limit"):
            fetch_thread_mbox("a@b", bomb.url, Caps(1000, 1 << 20))
    finally:
        bomb.close()
    stall = _Bad("stall")
    try:
        t = time.monotonic()
        with pytest.raises(InputError, match="deadline"):
            fetch_thread_mbox("a@b", stall.url, timeout=1)
        assert time.monotonic() - t < 2
    finally:
        stall.close()


def test_a_stalled_search_for_newer_revisions_is_cut_off(monkeypatch, tmp_path):
    from reviewbot.input import lore

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(lore, "TIMEOUT", 1.0)  # [the search's deadline, 60 s by default]
    srv = _Bad("search-stall")
    try:
        t = time.monotonic()
        (s,) = fetch_series(A1_1, srv.url)
        assert time.monotonic() - t < 4
        assert s.revision == 1 and [p.message_id for p in s.patches][0] == A1_1
    finally:
        srv.close()
