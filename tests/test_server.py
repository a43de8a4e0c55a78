"""`reviewbot serve`: a real server on a Unix socket, real client processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("reviewbot")


@pytest.fixture
def runtime():
    # a short directory: a Unix socket path must fit in 108 bytes, pytest's tmp_path may not
    d = tempfile.mkdtemp(prefix="rb-", dir="/tmp")
    os.chmod(d, 0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=d)
    env.pop("REVIEWBOT_SERVER", None)
    yield env
    shutil.rmtree(d, ignore_errors=True)


def _start(env, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(BIN), "serve", *extra], env=env, stderr=subprocess.PIPE,
                            text=True)
    run = Path(env["XDG_RUNTIME_DIR"]) / "reviewbot"
    for _ in range(300):
        if list(run.glob("server-*.sock")):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read()}")


def _stop(proc: subprocess.Popen, env) -> str:
    subprocess.run([str(BIN), "serve", "--stop"], env=env, check=False)
    try:
        _out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err


def _review(env, *args: str, stdin: bytes | None = None, cwd=None):
    return subprocess.run([str(BIN), "review", *args], env=env, input=stdin,
                          capture_output=True, cwd=cwd)


def _case(corpus_dir) -> Path:
    case = corpus_dir / "cases" / "006-seedC-rev"
    if not case.is_dir():
        pytest.skip("case 006 not in the corpus")
    return case


def test_served_review_prints_what_a_local_one_prints(runtime, corpus_dir, tmp_path) -> None:
    case = _case(corpus_dir)
    local = _review(dict(runtime, REVIEWBOT_SERVER="off"), str(case / "patch.patch"),
                    "--tree", str(case / "base"), "--format", "json")
    assert local.returncode == 1 and b'"introduced"' in local.stdout
    local_piped = _review(dict(runtime, REVIEWBOT_SERVER="off"), "-", "--tree",
                          str(case / "base"), "--format", "json",
                          stdin=(case / "patch.patch").read_bytes())
    proc = _start(runtime)
    try:
        served = _review(runtime, "patch.patch", "--tree", str(case / "base"), "--format",
                         "json", cwd=case)  # a relative path: the caller's directory counts
        piped = _review(runtime, "-", "--tree", str(case / "base"), "--format", "json",
                        stdin=(case / "patch.patch").read_bytes())
        bad = _review(runtime, str(tmp_path / "missing.patch"))
        b4 = subprocess.run([str(BIN), "b4-check", "--tree", str(case / "base")], env=runtime,
                            input=(case / "patch.patch").read_bytes(), capture_output=True)
    finally:
        log = _stop(proc, runtime)
    assert (served.returncode, served.stdout) == (local.returncode, local.stdout)
    assert (piped.returncode, piped.stdout) == (local_piped.returncode, local_piped.stdout)
    assert bad.returncode == 2 and b"missing.patch" in bad.stderr and not bad.stdout
    b4_local = subprocess.run([str(BIN), "b4-check", "--tree", str(case / "base")],
                              env=dict(runtime, REVIEWBOT_SERVER="off"),
                              input=(case / "patch.patch").read_bytes(), capture_output=True)
    assert (b4.returncode, b4.stdout) == (b4_local.returncode, b4_local.stdout)
    assert b"double" in b4.stdout  # b4-check reads its patch from stdin: it was passed on
    assert log.count("reviewbot: review for") == 3  # all were answered by the server
    assert log.count("reviewbot: b4-check for") == 1
    assert proc.returncode == 0
    assert not list((Path(runtime["XDG_RUNTIME_DIR"]) / "reviewbot").glob("*.sock"))


def test_a_changed_pack_makes_the_server_step_aside(runtime, corpus_dir) -> None:
    from reviewbot.packs import packs_dir

    case = _case(corpus_dir)
    pack = packs_dir() / "gfs2.toml"
    st = pack.stat()
    proc = _start(runtime)
    try:
        os.utime(pack, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        r = _review(runtime, str(case / "patch.patch"), "--tree", str(case / "base"))
        proc.wait(timeout=10)
    finally:
        os.utime(pack, ns=(st.st_atime_ns, st.st_mtime_ns))
        if proc.poll() is None:
            proc.kill()
    assert r.returncode == 1 and b"introduced" in r.stdout  # reviewed here instead
    assert "changed on disk" in proc.stderr.read()


def test_no_server_in_a_directory_others_can_enter(tmp_path, corpus_dir) -> None:
    d = tmp_path / "open"
    d.mkdir()
    (d / "reviewbot").mkdir(mode=0o755)
    os.chmod(d / "reviewbot", 0o755)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(d))
    r = subprocess.run([str(BIN), "serve"], env=env, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"not a private directory" in r.stderr
    # a socket planted there is not trusted either: the client reviews by itself
    case = _case(corpus_dir)
    from reviewbot.serve import server

    (d / "reviewbot" / Path(server.socket_path()).name).write_text("")
    r = _review(env, str(case / "patch.patch"), "--tree", str(case / "base"))
    assert r.returncode == 1 and b"introduced" in r.stdout


def test_idle_server_exits_by_itself(runtime) -> None:
    proc = _start(runtime, "--idle", "0.01")
    assert proc.wait(timeout=20) == 0
    assert not list((Path(runtime["XDG_RUNTIME_DIR"]) / "reviewbot").glob("*.sock"))


def test_auto_starts_a_server_for_the_next_call(runtime, corpus_dir) -> None:
    case = _case(corpus_dir)
    env = dict(runtime, REVIEWBOT_SERVER="auto")
    run = Path(runtime["XDG_RUNTIME_DIR"]) / "reviewbot"
    first = _review(env, str(case / "patch.patch"), "--tree", str(case / "base"))
    assert first.returncode == 1 and b"introduced" in first.stdout  # answered here
    for _ in range(300):
        if run.is_dir() and list(run.glob("server-*.sock")):
            break
        time.sleep(0.05)
    try:
        assert list(run.glob("server-*.sock")), "no server was started"
        second = _review(env, str(case / "patch.patch"), "--tree", str(case / "base"))
        assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    finally:
        subprocess.run([str(BIN), "serve", "--stop"], env=runtime, check=False)
    for _ in range(200):
        if not list(run.glob("server-*.sock")):
            break
        time.sleep(0.05)
    assert not list(run.glob("server-*.sock"))


def test_served_review_of_many_series_uses_its_workers(runtime, tmp_path) -> None:
    # twelve one-patch series: review_all takes the multiprocessing path (>= 8 series)
    mbox = tmp_path / "many.mbox"
    parts = []
    for i in range(12):
        parts.append(
            f"From {i:040x} Mon Sep 17 00:00:00 2001\n"
            f"From: Dev <dev{i}@example.org>\nSubject: [PATCH] x: change {i}\n"
            f"Message-ID: <m{i}@example.org>\nDate: Mon, 1 Jan 2024 00:00:{i:02d} +0000\n\n"
            f"change {i}\n---\n"
            f"diff --git a/f{i}.c b/f{i}.c\n--- a/f{i}.c\n+++ b/f{i}.c\n"
            f"@@ -1,3 +1,4 @@\n int f{i}(void)\n {{\n+\tkfree(p);\n \treturn 0;\n"
            f"-- \n2.39.5\n\n")
    mbox.write_text("".join(parts))
    local = _review(dict(runtime, REVIEWBOT_SERVER="off"), str(mbox), "--format", "json",
                    "--no-tree")
    assert local.returncode in (0, 1) and local.stdout.count(b'"subject": "x: change') == 24
    proc = _start(runtime)
    try:
        served = subprocess.run([str(BIN), "review", str(mbox), "--format", "json", "--no-tree"],
                                env=runtime, capture_output=True, timeout=60)
    finally:
        log = _stop(proc, runtime)
    assert (served.returncode, served.stdout) == (local.returncode, local.stdout)
    assert "reviewbot: review for" in log


def test_a_slow_or_silent_client_blocks_no_other(runtime, corpus_dir) -> None:
    import socket

    from reviewbot.serve import server

    case = _case(corpus_dir)
    local = _review(dict(runtime, REVIEWBOT_SERVER="off"), str(case / "patch.patch"),
                    "--tree", str(case / "base"))
    proc = _start(runtime, "--read-timeout", "2")
    path = str(Path(runtime["XDG_RUNTIME_DIR"]) / "reviewbot" / Path(
        server.socket_path()).name)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    trickle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        idle.connect(path)  # connects and sends nothing
        trickle.connect(path)
        trickle.sendall(b"\0")  # the first byte of a length, the rest never comes
        t = time.monotonic()
        served = _review(runtime, str(case / "patch.patch"), "--tree", str(case / "base"))
        took = time.monotonic() - t
        assert (served.returncode, served.stdout) == (local.returncode, local.stdout)
        assert took < 2, took  # answered while the other two still hold their connections
        # each slow client is dropped at its read deadline (2 s), not kept for ever
        for s in (idle, trickle):
            s.settimeout(10)
            t = time.monotonic()
            assert s.recv(1) == b""
            assert time.monotonic() - t < 3
    finally:
        idle.close()
        trickle.close()
        log = _stop(proc, runtime)
    assert log.count("reviewbot: review for") == 1 and proc.returncode == 0


def test_children_past_the_limit_are_told_busy_and_review_themselves(runtime, corpus_dir
                                                                     ) -> None:
    """A flood of clients cannot make the server fork without bound: past --max-children
    live requests the caller is answered "busy" at once and runs its own review."""
    import socket

    from reviewbot.serve import server

    case = _case(corpus_dir)
    args = (str(case / "patch.patch"), "--tree", str(case / "base"))
    local = _review(dict(runtime, REVIEWBOT_SERVER="off"), *args)
    proc = _start(runtime, "--read-timeout", "4", "--max-children", "2")
    path = str(Path(runtime["XDG_RUNTIME_DIR"]) / "reviewbot" / Path(
        server.socket_path()).name)
    holders = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for h in holders:  # two children, each waiting for a request that never comes
            h.connect(path)
        time.sleep(0.3)
        late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        late.connect(path)
        late.settimeout(3)
        assert late.recv(8) == b"\0\0\0\x04busy"  # at once, not after the holders' 4 s
        late.close()
        t = time.monotonic()
        ran = _review(runtime, *args)  # refused by the server: runs in its own process
        assert (ran.returncode, ran.stdout) == (local.returncode, local.stdout)
        assert time.monotonic() - t < 4
        for h in holders:  # dropped at their read deadline: the places are free again
            h.settimeout(10)
            assert h.recv(1) == b""
        time.sleep(0.2)
        served = _review(runtime, *args)
        assert (served.returncode, served.stdout) == (local.returncode, local.stdout)
    finally:
        for h in holders:
            h.close()
        log = _stop(proc, runtime)
    assert log.count("reviewbot: review for") == 1 and proc.returncode == 0


def test_max_children_must_be_positive(runtime) -> None:
    out = subprocess.run([str(BIN), "serve", "--max-children", "0"], env=runtime,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == "reviewbot: serve: --max-children must be at least 1"


def test_endless_stdin_is_not_read_whole_by_the_client(runtime) -> None:
    """`review -` with a server running: the client reads stdin up to the request limit
    only, then runs the command itself, which stops at its own cap (one line, exit 2)."""
    proc = _start(runtime)
    try:
        with open("/dev/zero", "rb") as zero:
            t = time.monotonic()
            out = subprocess.run([str(BIN), "review", "--no-tree", "-"], env=runtime,
                                 stdin=zero, capture_output=True, text=True, timeout=60)
        assert time.monotonic() - t < 30
    finally:
        log = _stop(proc, runtime)
    assert out.returncode == 2
    assert out.stderr.strip() == ("reviewbot: standard input: more than 64 MiB, the limit "
                                  "for one patch (max_message_mb in [review] of the "
                                  "configuration)")
    assert "reviewbot: review for" not in log  # never sent to the server


def test_the_warm_up_patch_walks_the_path_checkers(tmp_path) -> None:
    """The server's warm-up review must reach the path checkers (a finding proves the walk
    ran): otherwise each forked child would import and compile them again."""
    from reviewbot.serve.server import _WARM_PATCH

    p = tmp_path / "warm.patch"
    p.write_text(_WARM_PATCH)
    out = subprocess.run([str(BIN), "review", str(p), "--no-tree", "--format", "terse"],
                         capture_output=True, text=True,
                         env=dict(os.environ, REVIEWBOT_SERVER="off"))
    assert "error-path.missing-release" in out.stdout, out.stdout + out.stderr
