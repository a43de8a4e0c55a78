"""Bounded memory where input enters: files and stdin streamed with caps, an mbox read
message by message, a lore thread's gzip bomb, git object bombs, an oversized C file in
audit. Each case runs the real command in its own process and measures its peak RSS
(os.wait4); bench/memory.py runs the big versions (200 MB mbox, 1 GiB bombs)."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from reviewbot.input.limits import InputCaps
from reviewbot.input.mbox import _messages, _split_mbox, load_paths
from reviewbot.model import InputError

C_FILE = """#include <linux/slab.h>

int widget_open(int n)
{
\tchar *p;

\tp = kmalloc(n, GFP_KERNEL);
\tif (!p)
\t\treturn -ENOMEM;
\tkfree(p);
\treturn 0;
}
"""


def _diff(path: str, pre_blob: str = "1111111") -> str:
    """A patch of C_FILE adding a leak; the whole function is context (reviewable on the
    hunks alone)."""
    lines = C_FILE.splitlines()
    new = lines[:9] + ["\tif (n > 4)", "\t\treturn -EINVAL;"] + lines[9:]
    body = "".join(("+" if 9 <= i < 11 else " ") + ln + "\n" for i, ln in enumerate(new))
    return (f"diff --git a/{path} b/{path}\nindex {pre_blob[:7]}..2222222 100644\n"
            f"--- a/{path}\n+++ b/{path}\n@@ -1,{len(lines)} +1,{len(new)} @@\n" + body)


def _mail(subject: str, msgid: str, body: str, irt: str = "") -> str:
    head = ("From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Dev <dev@example.org>\n"
            f"To: list@example.org\nSubject: {subject}\n"
            f"Date: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <{msgid}>\n")
    if irt:
        head += f"In-Reply-To: <{irt}>\nReferences: <{irt}>\n"
    return head + "\n" + body + "\n"


@dataclass
class Ran:
    rc: int
    out: str
    err: str
    rss_mb: float  # the process's own peak resident set size


# The command is forked from a small process (python -S), not from pytest: a child forked
# from pytest counts the pages it shares with it in its peak RSS until it execs.
_MEASURE = """
import os, sys
fd, cmd = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
os.write(fd, f"{ru.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""


def run(args: list[str], stdin=None, env: dict | None = None, timeout: float = 120) -> Ran:
    """`reviewbot ARGS` as its own process, with its own peak RSS from wait4."""
    r, w = os.pipe()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen([sys.executable, "-S", "-c", _MEASURE, str(w), sys.executable,
                              "-m", "reviewbot.cli", *args],
                             stdin=stdin if stdin is not None else subprocess.DEVNULL,
                             stdout=fo, stderr=fe, env=env, pass_fds=(w,))
        os.close(w)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"reviewbot {args} ran longer than {timeout} s") from None
        with os.fdopen(r, "rb") as report:
            rss_kb, rc = map(int, report.read().split())
        fo.seek(0)
        fe.seek(0)
        return Ran(rc, fo.read().decode(), fe.read().decode(), rss_kb / 1024)


def config(tmp_path: Path, **review) -> str:
    p = tmp_path / "config.toml"
    p.write_text("[review]\n" + "".join(f"{k} = {v}\n" for k, v in review.items()))
    return str(p)


# ------------------------------------------------------------------ files and stdin


def test_dev_zero_stops_at_the_cap_with_one_line():
    r = run(["review", "--no-tree", "/dev/zero"])
    assert r.rc == 2
    assert r.err.strip().splitlines() == [
        "reviewbot: /dev/zero: more than 64 MiB, the limit for one patch "
        "(max_message_mb in [review] of the configuration)"]
    assert r.rss_mb < 200, r.rss_mb  # it read 64 MiB, then stopped; it did not grow


def test_endless_stdin_stops_at_a_configured_cap(tmp_path):
    with open("/dev/zero", "rb") as zero:
        r = run(["review", "--no-tree", "--config", config(tmp_path, max_message_mb=2), "-"],
                stdin=zero)
    assert r.rc == 2
    assert r.err.strip() == ("reviewbot: standard input: more than 2 MiB, the limit for one "
                             "patch (max_message_mb in [review] of the configuration)")
    assert r.rss_mb < 120, r.rss_mb


def test_b4_check_reads_stdin_up_to_the_cap():
    import json

    with open("/dev/zero", "rb") as zero:
        r = run(["b4-check", "--no-tree"], stdin=zero)
    assert r.rc == 0  # b4 reads the verdict from the JSON
    [check] = json.loads(r.out)
    assert check["status"] == "fail" and check["summary"] == (
        "cannot check: standard input: more than 64 MiB, the limit for one patch")
    assert r.rss_mb < 200, r.rss_mb


def test_an_endless_mail_stream_stops_at_the_input_cap(tmp_path):
    """Mail that never ends (every message small): the cap on the whole input stops it."""
    one = _mail("Re: chatter", "x@example.org", "text\n" * 20, irt="y@example.org")
    mbox = tmp_path / "chatter.mbox"
    mbox.write_text(one * 4000)  # ~1.2 MB
    r = run(["review", "--no-tree", "--config", config(tmp_path, max_input_mb=0.5),
             str(mbox)])
    assert r.rc == 2
    assert r.err.strip() == (f"reviewbot: {mbox}: more than 0.5 MiB of input, the limit "
                             "(max_input_mb in [review] of the configuration)")


def test_one_message_over_the_cap_is_named(tmp_path):
    big = _mail("[PATCH] big", "big@example.org", "x" * 3_000_000 + "\n---\n" +
                _diff("drivers/w.c"))
    mbox = tmp_path / "big.mbox"
    mbox.write_text(_mail("[PATCH] small", "s@example.org", "m\n---\n" + _diff("drivers/a.c"))
                    + big)
    with pytest.raises(InputError, match=r"big.mbox: a message of more than 2 MiB, the limit"):
        load_paths([str(mbox)], caps=InputCaps(max_message=2 << 20))
    [s1, s2] = load_paths([str(mbox)])  # under the default cap both are read
    assert {s1.subject, s2.subject} == {"small", "big"}


def test_bad_caps_in_the_configuration_are_one_line(tmp_path):
    r = run(["review", "--no-tree", "--config", config(tmp_path, max_message_mb=-1),
             "/dev/null"])
    assert r.rc == 2 and r.err.strip() == "reviewbot: config [review]: max_message_mb must " \
        "be positive"


@pytest.mark.parametrize("data", [
    b"",
    b"\n\n",
    b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
    b"From a@b Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\n>From here\r\nbody",
    b"\n\nSubject: x\n\nFrom me, hello\n\nFrom a@b Mon Jan  1 00:00:00 2024\nSubject: y\n\n"
    b">>From z\n\n\n",
    b"Subject: only\n\n\n\nFrom a@b Mon Jan  1 00:00:00 2024\n\n\n",
])
def test_streamed_split_is_the_split_of_the_whole(data):
    """The message-by-message reader yields exactly what splitting the whole file did."""
    import io

    def whole(d: bytes) -> list[bytes]:  # the reader before streaming, kept as the oracle
        import re
        msgs: list[list[bytes]] = []
        cur = None
        prev_blank = True
        for line in d.replace(b"\r\n", b"\n").split(b"\n"):
            if prev_blank and line.startswith(b"From ") and re.match(
                    rb"^From \S+ +\S.*(\d\d:\d\d|\d{4})", line):
                cur = []
                msgs.append(cur)
                prev_blank = False
                continue
            if cur is None:
                cur = []
                msgs.append(cur)
            if re.match(rb"^>+From ", line):
                line = line[1:]
            cur.append(line)
            prev_blank = not line.strip()
        return [b"\n".join(m) for m in msgs if any(x.strip() for x in m)]

    assert list(_messages(io.BytesIO(data), "t", InputCaps())) == whole(data)
    assert _split_mbox(data.replace(b"\r\n", b"\n")) == whole(data)


def test_a_list_archive_is_read_message_by_message(tmp_path):
    """30 MB of replies around a few patches: memory follows one message, not the file
    (reading it whole, split in lines, took five times its size)."""
    quote = "".join(f"> line {i} of the discussion, quoted once more\n" for i in range(150))
    mbox = tmp_path / "list.mbox"
    with open(mbox, "w") as fh:
        for t in range(10):
            pid = f"p{t}@example.org"
            fh.write(_mail(f"[PATCH] widget: open {t}", pid, f"msg {t}\n---\n" +
                           _diff(f"drivers/w{t}.c")))
            for n in range(430):
                fh.write(_mail(f"Re: [PATCH] widget: open {t}", f"r{t}.{n}@example.org",
                               f"Reply.\n\n{quote}", irt=pid))
    assert mbox.stat().st_size > 30_000_000
    r = run(["review", "--no-tree", "-j", "1", "--format", "terse", str(mbox)])
    assert r.rc == 1, r.err
    assert r.out.count("error-path.missing-release") == 10  # every patch reviewed
    assert r.rss_mb < 80, r.rss_mb  # read whole: 139 MB


# ------------------------------------------------------------------ lore


class _Server:
    """127.0.0.1: every t.mbox.gz inflates to `size` bytes of zeros, or stalls."""

    def __init__(self, size: int = 0, stall: bool = False) -> None:
        co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        body = b"".join(co.compress(b"\0" * (1 << 20)) for _ in range(size >> 20)) + co.flush()

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if stall:
                    time.sleep(20)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/widget-devel"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_msgid_gzip_bomb_stops_at_the_configured_inflated_cap(tmp_path):
    srv = _Server(size=256 << 20)  # 256 MiB of zeros, ~250 KB sent
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    try:
        r = run(["review", "--msgid", "a@example.org", "--lore", srv.url, "--config",
                 config(tmp_path, max_decompressed_mb=16)], env=env)
        dflt = run(["review", "--msgid", "a@example.org", "--lore", srv.url], env=env)
    finally:
        srv.close()
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1
    assert "inflates to more than the limit of 16777216 bytes (max_decompressed_mb)" in r.err
    assert r.rss_mb < 130, r.rss_mb
    assert dflt.rc == 2 and "limit of 67108864 bytes" in dflt.err  # 64 MiB by default
    assert dflt.rss_mb < 300, dflt.rss_mb


def test_msgid_timeout_is_configurable(tmp_path):
    srv = _Server(stall=True)
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    try:
        t = time.monotonic()
        r = run(["review", "--msgid", "a@example.org", "--lore", srv.url, "--config",
                 config(tmp_path, timeout=1)], env=env)
        took = time.monotonic() - t
    finally:
        srv.close()
    assert r.rc == 2 and "no complete answer within 1s (deadline)" in r.err, r.err
    assert took < 8, took


# ------------------------------------------------------------------ git objects


def git_bomb(d: Path, declared: int, real: int) -> tuple[Path, Path, str]:
    """(a repository whose drivers/w.c blob is a loose object declaring `declared` bytes
    and inflating to `real`, a patch of that file, the blob id)."""
    repo = d / "repo"
    (repo / "drivers").mkdir(parents=True)
    (repo / "drivers" / "w.c").write_text(C_FILE)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.org",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.org")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True)
    blob = hashlib.sha1(b"blob %d\0" % len(C_FILE) + C_FILE.encode()).hexdigest()
    obj = repo / ".git" / "objects" / blob[:2] / blob[2:]
    co = zlib.compressobj(9)
    parts = [co.compress(b"blob %d\0" % declared)]
    parts += [co.compress(b"A" * (1 << 20)) for _ in range(real >> 20)]
    parts.append(co.flush())
    os.chmod(obj, 0o644)
    obj.write_bytes(b"".join(parts))
    patch = d / "w.patch"
    patch.write_text(_diff("drivers/w.c", blob))
    return repo, patch, blob


def test_git_object_that_inflates_past_its_header_is_refused(tmp_path):
    repo, patch, blob = git_bomb(tmp_path, 3000, 128 << 20)
    r = run(["review", "--tree", str(repo), str(patch)])
    assert r.rc == 2
    [line] = r.err.strip().splitlines()
    obj = repo / ".git" / "objects" / blob[:2] / blob[2:]
    assert line.startswith(f"reviewbot: --tree {repo}: cannot read git object {blob} in "
                           f"{obj}: "), line
    assert r.rss_mb < 120, r.rss_mb


def test_git_object_too_large_by_its_header_is_not_read(tmp_path):
    """Checked through libgit2's header read before the object is looked up (a lookup
    inflates all of it): the file is reviewed on the hunks, said, exit 3."""
    repo, patch, blob = git_bomb(tmp_path, 160 << 20, 160 << 20)
    r = run(["review", "--tree", str(repo), str(patch)])
    assert r.rc == 3, r.err
    assert (f"drivers/w.c (git object {blob} is {160 << 20} bytes by its header, over the "
            "limit of 16777216: not read)") in r.err
    assert r.rss_mb < 120, r.rss_mb  # the lookup alone held all 160 MiB


# ------------------------------------------------------------------ audit


def test_audit_leaves_out_a_c_file_over_the_cap(tmp_path):
    big = tmp_path / "expr.c"
    big.write_text("int x = " + "1 + " * (600 << 10) + "1;\n")  # 2.4 MB, one expression
    small = tmp_path / "w.c"
    small.write_text(C_FILE.replace("\tkfree(p);\n", "\tif (n > 4)\n\t\treturn -EINVAL;\n"
                                    "\tkfree(p);\n"))
    r = run(["audit", "-j", "1", str(big), str(small)])
    assert r.rc == 3, r.err
    assert f"reviewbot: audit: {big}: more than 2 MiB, the limit for one C file: not " \
        "audited" in r.err
    assert "w.c:11: warning: error-path.missing-release" in r.out  # the other is audited
    assert r.rss_mb < 120, r.rss_mb


def test_review_git_refuses_a_blob_too_large_by_its_header(tmp_path):
    """`review --git`: libgit2 inflates whole blobs to make the patch text; their headers
    are read first."""
    repo, _patch, blob = git_bomb(tmp_path, 160 << 20, 160 << 20)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.org",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.org")
    (repo / "drivers" / "w.c").write_text(C_FILE.replace("kfree(p);", "kfree(p); /* */"))
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "edit"], env=env, check=True)
    r = run(["review", "--git", "HEAD", "--repo", str(repo)])
    assert r.rc == 2
    [line] = r.err.strip().splitlines()
    assert line.startswith("reviewbot: --git HEAD: commit ") and line.endswith(
        f": drivers/w.c: git object {blob} is {160 << 20} bytes by its header, over the "
        "limit of 16777216: not read"), line
    assert r.rss_mb < 120, r.rss_mb


def test_a_directory_tree_too_large_by_its_header_is_not_read(tmp_path):
    """The trees on the way to a file are read one by one, each header first (a lookup by
    path inflated every one whole)."""
    repo = tmp_path / "repo"
    (repo / "drivers").mkdir(parents=True)
    (repo / "drivers" / "w.c").write_text(C_FILE)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.org",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.org")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True)
    tree = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD:drivers"],
                          capture_output=True, text=True, check=True).stdout.strip()
    obj = repo / ".git" / "objects" / tree[:2] / tree[2:]
    co = zlib.compressobj(9)
    data = co.compress(b"tree %d\0" % (160 << 20))
    data += b"".join(co.compress(b"A" * (1 << 20)) for _ in range(160)) + co.flush()
    os.chmod(obj, 0o644)
    obj.write_bytes(data)
    patch = tmp_path / "w.patch"
    patch.write_text(_diff("drivers/w.c"))  # a blob id the repository lacks: found by path
    r = run(["review", "--tree", str(repo), str(patch)])
    assert r.rc == 3, r.err
    assert (f"drivers/w.c (git object {tree} is {160 << 20} bytes by its header, over the "
            "limit of 16777216: not read)") in r.err
    assert r.rss_mb < 120, r.rss_mb
