"""Cron mode against a hostile server: a real public-inbox-httpd behind a Python proxy on
127.0.0.1 that stalls, trickles, answers 500 or garbage, or sends a gzip bomb for chosen
paths. Each poll must end within its deadline plus a small margin, release the lock,
ingest what it could, retry the failed item on the next run and park it after max_tries."""

from __future__ import annotations

import fcntl
import gzip
import http.server
import shutil
import socketserver
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_poll import A1_1, EX, LIST, Runner

from reviewbot.cron.localinbox import LocalInbox, missing_tools

pytestmark = pytest.mark.skipif(
    missing_tools() is not None,
    reason=f"public-inbox cannot run here: {missing_tools()} (CI installs it in .ci/run)")

MARGIN = 2.5  # seconds beyond the configured deadlines: interpreter start, the review


class Hostile:
    """A proxy to ``upstream`` that misbehaves on paths holding a key of ``rules``:
    stall | trickle | half (the upstream's answer cut in the middle) | 500 | garbage | bomb
    | json-list | json-deep."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: dict[str, str] = {}
        self.hits: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.hits.append(self.path)
                rule = next((v for k, v in owner.rules.items() if k in self.path), None)
                try:
                    if rule is None:
                        return self.forward()
                    getattr(self, "_" + rule.replace("-", "_"))()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - git's upload-pack
                self.do_GET()

            def forward(self, half: bool = False) -> None:
                body = self.body()
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() in ("content-type", "accept", "git-protocol",
                                         "accept-encoding", "host")}
                req = urllib.request.Request(owner.upstream + self.path, data=body,
                                             headers=hdrs, method=self.command)
                try:
                    r = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    r = e
                data = r.read()
                self.send_response(r.status if hasattr(r, "status") else r.code)
                for k, v in r.headers.items():
                    if k.lower() in ("content-type", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if half:  # part of the answer, then nothing more
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    time.sleep(60)
                    return
                self.wfile.write(data)

            def _half(self) -> None:
                self.forward(half=True)

            def body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if n == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(n))
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else None

            def _stall(self) -> None:
                time.sleep(60)

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.end_headers()
                for _ in range(120):
                    self.wfile.write(b"<")
                    self.wfile.flush()
                    time.sleep(0.5)

            def _500(self) -> None:
                self.send_response(500)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"oops\n")

            def _garbage(self) -> None:
                self.wfile.write(b"\x00\xffNOT HTTP AT ALL\r\n\r\n" * 50)

            def _bomb(self) -> None:
                data = owner.bomb()
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json_list(self) -> None:
                self._gz(b'["/widget-devel/git/0.git"]')

            def _json_deep(self) -> None:
                self._gz(b"[" * 100_000 + b"]" * 100_000)

            def _gz(self, data: bytes) -> None:
                data = gzip.compress(data)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._bomb_data: bytes | None = None

    def bomb(self) -> bytes:
        """64 MiB of zeros, gzipped (~64 KB)."""
        if self._bomb_data is None:
            import zlib

            c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            chunk = b"\0" * (1 << 20)
            self._bomb_data = b"".join(c.compress(chunk) for _ in range(64)) + c.flush()
        return self._bomb_data

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def inbox(tmp_path):
    ibx = LocalInbox(tmp_path / "pi", LIST)
    ibx.create()
    ibx.import_mbox(EX / "list.mbox")
    ibx.start()
    yield ibx
    ibx.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The example list, for the tests that add no mail to it (one inbox: they are many)."""
    ibx = LocalInbox(tmp_path_factory.mktemp("shared") / "pi", LIST)
    ibx.create()
    ibx.import_mbox(EX / "list.mbox")
    ibx.start()
    yield ibx
    ibx.stop()


@pytest.fixture
def hostile(shared):
    with Hostile(shared.server) as h:
        yield h


@pytest.fixture
def hostile_own(inbox):
    """A proxy to this test's own inbox (which it adds mail to)."""
    with Hostile(inbox.server) as h:
        yield h


class HostileRunner(Runner):
    """A Runner pointed at the proxy, with short deadlines."""

    def __init__(self, tmp: Path, ibx, proxy: Hostile, name: str = "run", **cfg) -> None:
        base = {"timeout": 1, "retries": 1, "backoff": 0.05, "git_timeout": 3,
                "deadline": 20, "retry_after_minutes": 0, "max_tries": 2}
        base.update(cfg)
        super().__init__(tmp, ibx, name, **base)
        self.proxy = proxy

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[argv.index("--lore") + 1] = self.proxy.server
        return argv

    def timed(self, expect, *extra: str):
        t = time.monotonic()
        r = subprocess.run(self.argv() + list(extra), env=self.env, capture_output=True,
                           text=True, timeout=120)
        took = time.monotonic() - t
        assert r.returncode == expect, (r.returncode, r.stdout, r.stderr)
        return r, took

    def lock_is_free(self) -> bool:
        with open(str(self.state) + ".lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            return True

    def status(self) -> str:
        r = subprocess.run(self.argv() + ["--status"], env=self.env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout


def test_stalls_and_trickles_end_within_the_deadline(tmp_path, shared, hostile):
    # a stall on the manifest: one request's deadline (1 s), no retry of a stall
    hostile.rules = {"manifest.js.gz": "stall"}
    r = HostileRunner(tmp_path, shared, hostile, "stall")
    out, took = r.timed(2)
    assert took < 1 + MARGIN, took
    assert "deadline" in out.stderr and "manifest.js.gz" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert r.lock_is_free()

    # new.atom sent a byte every half second: per-read timeouts never fire, the deadline does
    hostile.rules = {"new.atom": "trickle"}
    r = HostileRunner(tmp_path, shared, hostile, "trickle", transport="http")
    out, took = r.timed(2)
    assert took < 1 + MARGIN, took
    assert "new.atom" in out.stderr and "deadline" in out.stderr
    assert r.lock_is_free()

    # the git endpoints stall: the fetch runs in a child that is ended at git_timeout
    hostile.rules = {"/git/": "stall"}
    r = HostileRunner(tmp_path, shared, hostile, "git", transport="git")
    out, took = r.timed(2)
    assert took < 3 + MARGIN, took
    assert "git_timeout" in out.stderr and "/git/0.git" in out.stderr
    assert r.lock_is_free()
    left = [p for p in (r.dir).rglob("*") if p.name.endswith((".lock", ".tmp"))
            and p.name != "state.sqlite.lock"]
    assert left == []
    hostile.rules = {}  # the server recovers: the next run mirrors and reviews
    out, _ = r.timed(0)
    assert "7 new messages" in out.stdout and r.replies_to() == [A1_1]


def test_the_runs_deadline_stops_it_and_the_next_run_goes_on(tmp_path, shared, hostile):
    hostile.rules = {"t.mbox.gz": "stall"}
    r = HostileRunner(tmp_path, shared, hostile, transport="http", timeout=1.5, deadline=2,
                      max_tries=5)
    out, took = r.timed(3)
    assert took < 2 + MARGIN, took
    assert "deadline of 2s passed" in out.stderr and "deadline reached" in out.stdout
    # the thread cut by its own timeout is a failure, the one cut by the run's deadline not
    assert len(r.snapshot()["failures"]) == 1
    assert r.lock_is_free()
    hostile.rules = {}
    out, _ = r.timed(0)
    assert "7 new messages" in out.stdout and r.replies_to() == [A1_1]
    assert r.snapshot()["failures"] == []


def test_a_failing_thread_is_retried_then_parked_the_others_go_on(tmp_path, shared, hostile):
    # carol's thread answers 500, dave's cover garbage and his patch a gzip bomb; alice's
    # thread is fetched, reviewed and drafted all the same
    hostile.rules = {"carol@": "500", "v1-0-dave@": "garbage", "v1-1-dave@": "bomb"}
    r = HostileRunner(tmp_path, shared, hostile, transport="http", max_decompressed_mb=1)
    out, took = r.timed(3)
    assert took < 10, took
    assert r.replies_to() == [A1_1]
    snap = r.snapshot()
    failed = {f[2]: f for f in snap["failures"]}
    assert set(failed) == {"20240507140000.v1-0-carol@example.org",
                           "20240508110000.v1-0-dave@example.org",
                           "20240508110000.v1-1-dave@example.org"}
    assert "HTTP 500" in failed["20240507140000.v1-0-carol@example.org"][3]
    assert "not a valid HTTP answer" in failed["20240508110000.v1-0-dave@example.org"][3]
    # the bomb is stopped at the cap (1 MiB), not inflated
    assert "inflates to more than the limit" in failed["20240508110000.v1-1-dave@example.org"][3]
    assert all(f[4] == 1 and f[5] == 0 for f in failed.values())
    assert "3 items failed" in out.stdout and "tried again later" in out.stderr
    assert r.lock_is_free()
    hits = len(hostile.hits)

    # the next run tries exactly those again; the second try parks them
    out, _ = r.timed(3)
    assert "3 items failed (3 parked)" in out.stdout and "parked after" in out.stderr
    tried = [h for h in hostile.hits[hits:] if h.endswith("t.mbox.gz")]
    assert set(tried) == {f"/{LIST}/{m}/t.mbox.gz" for m in failed}
    assert all(f[5] == 1 and f[4] == 2 for f in r.snapshot()["failures"])
    status = r.status()
    assert status.count("parked") == 3 and "HTTP 500" in status and "carol" in status

    # parked items are not tried again: the run is clean (nothing failed in it)
    hits = len(hostile.hits)
    out, _ = r.timed(0)
    assert not [h for h in hostile.hits[hits:] if h.endswith("t.mbox.gz")]
    assert "0 new messages" in out.stdout


def test_bomb_and_bad_manifests_are_refused_with_the_reason(tmp_path, shared, hostile):
    hostile.rules = {"t.mbox.gz": "bomb"}
    r = HostileRunner(tmp_path, shared, hostile, "bomb", transport="http",
                      max_decompressed_mb=1)
    out, took = r.timed(3)
    assert "inflates to more than the limit of 1048576 bytes" in out.stderr
    for rule, why in (("json-list", "a JSON list, not an object"),
                      ("json-deep", "nested too deeply")):
        hostile.rules = {"manifest.js.gz": rule}
        r = HostileRunner(tmp_path, shared, hostile, rule)
        out, _ = r.timed(2)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0] and "manifest.js.gz" in lines[0], lines
        assert "internal error" not in out.stderr


def test_review_that_fails_is_retried_then_parked(tmp_path, shared, hostile):
    r = HostileRunner(tmp_path, shared, hostile, transport="http")
    env = {"REVIEWBOT_TEST_FAIL_REVIEW": "firmware loading"}
    out = r.run(env=env, expect=3)
    assert "1 review error" in out.stdout and "review" in out.stderr
    assert r.replies_to() == []
    (f,) = r.snapshot()["failures"]
    assert f[1] == "review" and "firmware loading" in f[3] and f[4:] == (1, 0)
    out = r.run(env=env, expect=3)  # tried again (backoff 0 here), parked
    assert "parked" in out.stdout
    (f,) = r.snapshot()["failures"]
    assert f[4:] == (2, 1)
    assert [x[4] for x in r.snapshot()["revisions"] if x[0].startswith("alice")] == ["error"]
    out = r.run(expect=0)  # parked: not reviewed again
    assert r.replies_to() == []


def test_a_review_that_fails_once_succeeds_on_the_retry(tmp_path, shared, hostile):
    r = HostileRunner(tmp_path, shared, hostile, transport="http")
    r.run(env={"REVIEWBOT_TEST_FAIL_REVIEW": "firmware loading"}, expect=3)
    out = r.run(expect=0)
    assert "1 series reviewed" in out.stdout and r.replies_to() == [A1_1]
    assert r.snapshot()["failures"] == []
    assert r.status() == "no failed or parked items\n"


def test_http_fallback_pages_back_to_what_it_has_seen(tmp_path, inbox):
    r = Runner(tmp_path, inbox, transport="http")
    r.run()
    mails = []
    for i in range(70):
        mails.append(
            f"From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Eve <eve@example.org>\n"
            f"To: {LIST}@lists.example.org\nSubject: chatter {i}\n"
            f"Message-ID: <chatter-{i}@example.org>\n"
            f"Date: Tue, 14 May 2024 10:{i // 60:02d}:{i % 60:02d} +0000\n\nhello {i}\n\n")
    inbox.import_mbox("".join(mails).encode() + (EX / "later.mbox").read_bytes())
    out = r.run()
    assert "75 new messages" in out.stdout, out.stdout  # 70 + later.mbox's 5: three pages
    mids = {x[1] for x in r.snapshot()["messages"]}
    assert {f"chatter-{i}@example.org" for i in range(70)} <= mids and len(mids) == 82
    assert r.run().stdout.count("0 new messages") == 1

    # with too few pages allowed it says so, loudly, and exits 3
    more = [m.replace("chatter", "more").replace("14 May", "15 May") for m in mails]
    inbox.import_mbox("".join(more).encode())
    out = Runner.run(_with(r, max_pages=2), expect=3)
    assert "GAP" in out.stderr and "max_pages" in out.stderr


def _with(r: Runner, **cfg) -> Runner:
    text = r.config.read_text()
    r.config.write_text(text + "".join(f"{k} = {v!r}\n" for k, v in cfg.items()))
    return r


def test_state_written_by_the_previous_version_is_upgraded_in_place(tmp_path, inbox):
    r = Runner(tmp_path, inbox)
    shutil.copy(Path(__file__).parent / "fixtures" / "state-v1.sqlite", r.state)
    before = sqlite3.connect(r.state).execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    out = r.run()
    assert "0 new messages" in out.stdout and "0 drafts" in out.stdout, out.stdout
    db = sqlite3.connect(r.state)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("2",)
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == before == 7
    assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
    inbox.import_mbox(EX / "later.mbox")
    out = r.run()
    assert "5 new messages" in out.stdout


def test_state_errors_name_the_file_and_what_to_do(tmp_path, shared):
    r = Runner(tmp_path, shared)
    r.state.write_bytes(b"this is not SQLite" * 100)
    out = r.run(expect=2)
    assert str(r.state) in out.stderr and "corrupt" in out.stderr
    assert "move it aside or restore a backup" in out.stderr
    assert "internal error" not in out.stderr
    # a state directory that cannot be written (sysfs is read-only everywhere)
    ro = Runner(tmp_path, shared, "ro")
    argv = ro.argv()
    argv[argv.index("--state") + 1] = "/sys/reviewbot-state.sqlite"
    got = subprocess.run(argv + ["--lock", str(ro.dir / "lock")], env=ro.env,
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 2
    assert "/sys/reviewbot-state.sqlite" in got.stderr and "internal error" not in got.stderr
    assert "read-only" in got.stderr or "not writable" in got.stderr, got.stderr


def _small_files() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


def test_a_full_disk_during_ingest_names_the_state_and_damages_nothing(tmp_path, shared):
    r = Runner(tmp_path, shared)
    got = subprocess.run(r.argv(), env=r.env, capture_output=True, text=True, timeout=60,
                         preexec_fn=_small_files)
    assert got.returncode == 2, (got.stdout, got.stderr)
    (line,) = got.stderr.strip().splitlines()
    assert f"cannot write the state {r.state}" in line and "disk is full" in line, line
    assert "internal error" not in line and "rollback" not in line
    out = r.run()  # space again: the run completes as if nothing had happened
    assert "7 new messages" in out.stdout and r.replies_to() == [A1_1]


def test_a_git_fetch_cut_in_the_middle_leaves_nothing_stale(tmp_path, inbox, hostile_own):
    r = HostileRunner(tmp_path, inbox, hostile_own, transport="git")
    r.timed(0)
    inbox.import_mbox(EX / "later.mbox")
    mirror = next((r.dir).rglob("0.git"))
    # what a transfer killed while it updated the refs leaves (libgit2 writes NAME.lock,
    # then renames it): without its removal every later fetch fails on it
    (mirror / "refs" / "heads" / "master.lock").write_text("0" * 40 + "\n")
    hostile_own.rules = {"git-upload-pack": "half"}  # POST: the pack, cut half-way
    out, took = r.timed(2)
    assert took < 3 + MARGIN, took
    assert "git_timeout" in out.stderr
    stale = [p for p in mirror.rglob("*") if p.name.endswith(".lock")
             or p.name.startswith(("pack_git2_", "tmp_"))]
    assert stale == []
    assert r.lock_is_free()
    hostile_own.rules = {}
    out, _ = r.timed(0)
    assert "5 new messages" in out.stdout
