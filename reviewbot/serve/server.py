"""A warm reviewer for one user: `reviewbot serve` keeps the interpreter, tree-sitter and
the packs loaded, and `reviewbot review` hands its command line to it when it runs.

Why: a single-patch review does ~20 ms of work, but a fresh Python process spends ~80 ms
starting and importing before it (bench/vs_checkpatch.py prints both). b4 runs its check
command once per patch, editors once per save: a warm process makes that cost disappear.

How it is kept safe and boring:
- The socket lives in a directory only the user can enter ($XDG_RUNTIME_DIR/reviewbot, else
  /tmp/reviewbot-UID, created 0700 and refused if anyone else owns it or can enter it), and
  the server checks every caller's uid (SO_PEERCRED).
- Each connection is handled by a child forked from the warm server as soon as it is
  accepted: the child reads the request (within a deadline, 10 s by default, so a client
  that trickles its request or sends nothing holds up nobody but itself) and runs it with
  the caller's working directory, environment and standard input, so no state leaks from
  one request to the next; the output comes back whole, with the exit status.
- At most `--max-children` requests (4 by default) are served at once: a flood of clients
  cannot make the server fork without bound; a caller past the limit is answered "busy" at
  once and runs the review in its own process, as without a server.
- The server exits, and callers run the review themselves, when its code, its packs (the
  shipped ones and the configuration's) or its configuration file change on disk (checked
  per request), after an idle period, or on `reviewbot serve --stop`. A request's own
  `--pack` files are read by its child, fresh each time.
- Nothing changes for a user who never starts it: without the socket, `review` runs in its
  own process as before. REVIEWBOT_SERVER=off ignores a running server; REVIEWBOT_SERVER=auto
  starts one in the background when none runs (for b4's per-patch check command).
"""

from __future__ import annotations

import os
import stat
import struct
import sys

# commands a server may run for a caller: reading patches and printing findings
SERVED = ("review", "b4-check")
_MAX_REQUEST = 64 << 20  # a request carries stdin: an mbox of a long series at most
READ_TIMEOUT = 10.0  # seconds a client has to send its whole request
MAX_CHILDREN = 4  # requests served at once; past that a caller runs its review itself


def socket_dir() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    return os.path.join(base, "reviewbot") if base else f"/tmp/reviewbot-{uid}"


def socket_path() -> str:
    """One socket per installation: a client never talks to another checkout's server."""
    import zlib  # not hashlib: the client must start fast, and this is no secret

    from reviewbot import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    key = zlib.crc32(f"{here}\0{__version__}".encode())
    return os.path.join(socket_dir(), f"server-{key:08x}.sock")


def _private_dir(create: bool) -> str | None:
    """The socket directory if it is the user's own and closed to others."""
    d = socket_dir()
    if create:
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
        except OSError:
            return None
    try:
        st = os.lstat(d)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return d


# ---------------------------------------------------------------------------- framing

def _send(sock, *parts: bytes) -> None:
    sock.sendall(b"".join(struct.pack(">I", len(p)) + p for p in parts))


def _recv_exact(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def _recv(sock, limit: int = _MAX_REQUEST) -> bytes:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > limit:
        raise ConnectionError("request too large")
    return _recv_exact(sock, n)


# ---------------------------------------------------------------------------- client

def try_client(argv: list[str]) -> int | None:
    """Run `argv` in a running server; None when there is none (or it declines), and the
    caller then runs the command itself."""
    mode = os.environ.get("REVIEWBOT_SERVER", "")
    if not argv or argv[0] not in SERVED or mode == "off":
        return None
    path = socket_path()
    if not os.path.exists(path):
        if mode == "auto":
            _spawn()  # for the next call; this one runs here
        return None
    if _private_dir(create=False) is None:
        return None
    import json
    import socket

    stdin = b""
    if argv[0] == "b4-check" or "-" in argv[1:]:  # b4-check reads its patch from stdin
        stdin = sys.stdin.buffer.read(_MAX_REQUEST + 1)  # never more: stdin may not end
        # if the server declines, the command runs here and must still find its input:
        # what was read, then the rest
        import io

        from reviewbot.input.limits import PrefixedStream

        rest = io.BufferedReader(PrefixedStream(stdin, sys.stdin.buffer))
        sys.stdin = io.TextIOWrapper(rest, encoding="utf-8", errors="surrogateescape")
        if len(stdin) > _MAX_REQUEST:
            return None  # too much to send: the command reads it here, within its caps
    req = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(path)
            s.settimeout(None)  # a review may take its time
            _send(s, req, stdin)
            status = _recv(s)
            if status != b"ok":
                return None  # stale: the server is going away; run here
            out, err, rc = _recv(s), _recv(s), _recv(s)
    except (OSError, ConnectionError, struct.error):
        return None
    try:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    except BrokenPipeError:  # `reviewbot review ... | head`: as a local run, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.buffer.write(err)
    sys.stderr.flush()
    return int(rc)


def _spawn() -> None:
    """Start `reviewbot serve` in the background, detached from this process and terminal
    (REVIEWBOT_SERVER=auto: b4 runs its check once per patch; the first one pays)."""
    import subprocess

    try:
        subprocess.Popen([sys.executable, "-m", "reviewbot.cli", "serve"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError:
        pass  # no server then: every call runs by itself, as without one


# ---------------------------------------------------------------------------- server

def _fingerprint(user_packs: tuple[str, ...] = ()) -> tuple:
    """What the server's answers depend on, on disk: its modules, the packs it loaded (the
    shipped ones and the configuration's) and the configuration file naming them. A
    request's own --pack files are read by its child, so they are never stale."""
    from reviewbot.config import config_path
    from reviewbot.packs import pack_paths

    files = sorted({m.__file__ for name, m in list(sys.modules.items())
                    if name.startswith("reviewbot") and getattr(m, "__file__", None)})
    files += pack_paths(user_packs)
    files += [str(config_path())] if config_path() else []
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((f, 0, 0))
    return tuple(out)


def _warm() -> tuple[str, ...]:
    """Import and load everything a review uses, once; the configuration's user packs."""
    from reviewbot import cli  # noqa: F401
    from reviewbot.cmodel import parse_c
    from reviewbot.commands import b4check, review  # noqa: F401
    from reviewbot.input import mbox  # noqa: F401
    from reviewbot.input.mail import parse_message, patch_from_message
    from reviewbot.packs import load_packs, user_pack_paths
    from reviewbot.review import pipeline, report  # noqa: F401

    user = user_pack_paths()
    load_packs(user)
    parse_c("static int f(void)\n{\n\treturn 0;\n}\n", "warm.c").functions[0].cfg()
    _warm_review()
    # the email package and its header classes, imported on first use
    patch_from_message(parse_message(b"From: A <a@b.c>\nTo: d@e.f\nSubject: [PATCH] w\n\nw\n"))
    try:
        import pygit2  # noqa: F401 - a --tree is usually a git repository
    except ImportError:
        pass
    return user


# a patch whose review runs every checker once: their modules, compiled patterns and
# per-process tables are then in the server, not paid again by each forked child
_WARM_PATCH = """\
From: warm <warm@localhost>
Subject: [PATCH] warm

---
 w.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/w.c b/w.c
--- a/w.c
+++ b/w.c
@@ -1,16 +1,17 @@
 static int w(struct device *dev, struct w_priv *p)
 {
 \tchar *buf = kmalloc(16, GFP_KERNEL);
 \tint ret;
\x20
 \tif (!buf)
 \t\treturn -ENOMEM;
 \tmutex_lock(&p->lock);
+\tspin_lock(&p->slock);
 \tret = w_setup(dev, buf);
 \tif (ret)
 \t\tgoto out;
 \tdev_set_drvdata(dev, p);
 out:
 \tmutex_unlock(&p->lock);
 \tkfree(buf);
 \treturn ret;
 }
"""


def _warm_review() -> None:
    import io
    import tempfile

    from reviewbot import cli

    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "warm.patch")
            with open(path, "w") as f:
                f.write(_WARM_PATCH)
            out, err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = io.StringIO()
            try:
                cli.main(["review", path, "--no-tree", "--format", "json"], served=True)
            finally:
                sys.stdout, sys.stderr = out, err
    except OSError:
        pass  # no temporary directory: the children pay for the warm-up, nothing else


def _run_child(conn, req: dict, stdin: bytes) -> None:
    """In a forked child: run the command as the caller would have, send what it printed."""
    import io
    import signal

    from reviewbot import cli

    # the server's own signal handling is not the command's: a review of many series waits
    # for its worker processes, which an ignored SIGCHLD would reap behind its back
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in req["env"].items()})
    out, err = io.BytesIO(), io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape",
                                  write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace",
                                  write_through=True)
    try:
        rc = cli.main(list(req["argv"]), served=True)
    except SystemExit as e:  # argparse usage errors
        rc = e.code if isinstance(e.code, int) else 2
    sys.stdout.flush()
    sys.stderr.flush()
    _send(conn, b"ok", out.getvalue(), err.getvalue(), str(int(rc)).encode())


def serve(idle_minutes: float = 15.0, ready=None, read_timeout: float = READ_TIMEOUT,
          max_children: int = MAX_CHILDREN) -> int:
    """Serve until idle for `idle_minutes`, stopped, or out of date; a client has
    `read_timeout` seconds to send its whole request; at most `max_children` requests
    are served at once (a caller past that is told "busy" and runs its own review)."""
    import signal
    import socket

    d = _private_dir(create=True)
    if d is None:
        sys.stderr.write(f"reviewbot: {socket_dir()}: not a private directory of this user\n")
        return 2
    path = socket_path()
    from reviewbot.model import InputError

    try:
        user_packs = _warm()
    except InputError as e:  # a broken pack or configuration: one line, as a command
        sys.stderr.write(f"reviewbot: {e}\n")
        return 2
    stamp = _fingerprint(user_packs)
    if os.path.exists(path):
        try:  # another server answering? then leave it be
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(path)
            sys.stderr.write(f"reviewbot: a server is already running on {path}\n")
            return 2
        except OSError:
            os.unlink(path)  # left over from a server that died
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
    except OSError as e:  # e.g. a path longer than a Unix socket address allows
        sys.stderr.write(f"reviewbot: cannot listen on {path}: {e.strerror or e}\n")
        srv.close()
        return 2
    os.chmod(path, 0o600)
    srv.listen(16)
    srv.settimeout(idle_minutes * 60 if idle_minutes > 0 else None)
    children: set[int] = set()  # reaped before each fork: the limit counts live ones
    stop = False

    def on_term(_sig, _frame) -> None:
        nonlocal stop
        stop = True
        srv.close()

    signal.signal(signal.SIGTERM, on_term)
    if ready is not None:
        ready()
    sys.stderr.write(f"reviewbot: serving on {path}\n")
    sys.stderr.flush()
    try:
        while not stop:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                break  # idle
            except OSError:
                break  # closed by SIGTERM
            with conn:
                if not _same_user(conn):
                    continue
                _reap(children)
                if len(children) >= max_children:
                    _busy(conn)
                    continue
                # the request is read in the child: a client that is slow to send it (or
                # sends nothing) holds up nobody but itself
                pid = os.fork()
                if pid:
                    children.add(pid)
                else:
                    code = 0
                    try:
                        srv.close()
                        _answer(conn, user_packs, stamp, read_timeout)
                    except BaseException:  # noqa: BLE001 - the caller sees a closed connection
                        code = 1
                    finally:
                        os._exit(code)
    finally:
        srv.close()
        try:
            if os.path.exists(path):
                os.unlink(path)
        except OSError:
            pass
    return 0


def _reap(children: set[int]) -> None:
    """Forget the children that have ended (and collect their exit status)."""
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def _busy(conn) -> None:
    """Tell a caller past the limit to run its review itself (as "stale" does)."""
    try:
        conn.settimeout(1.0)
        _send(conn, b"busy")
    except OSError:
        pass  # it finds the connection closed and runs the review itself all the same


def _recv_within(conn, end: float) -> bytes:
    """One framed part, all of it before the monotonic time ``end``."""
    import time

    def exact(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("request not received in time")
            conn.settimeout(left)
            chunk = conn.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return bytes(buf)

    (n,) = struct.unpack(">I", exact(4))
    if n > _MAX_REQUEST:
        raise ConnectionError("request too large")
    return exact(n)


def _answer(conn, user_packs: tuple[str, ...], stamp: tuple, read_timeout: float) -> None:
    """In a child of the server: read the request within ``read_timeout`` seconds in
    all, then answer it; a stop request, or code or packs changed on disk, end the
    server (SIGTERM to it)."""
    import signal
    import time

    server = os.getppid()
    end = time.monotonic() + read_timeout
    try:
        req_raw = _recv_within(conn, end)
        stdin = _recv_within(conn, end)
    except (OSError, ConnectionError, struct.error):
        return
    conn.settimeout(None)
    if req_raw == b"stop":
        os.kill(server, signal.SIGTERM)
        return
    if _fingerprint(user_packs) != stamp:
        _send(conn, b"stale")
        sys.stderr.write("reviewbot: code or packs changed on disk; exiting\n")
        sys.stderr.flush()
        os.kill(server, signal.SIGTERM)  # the next caller runs fresh code
        return
    _dispatch(conn, req_raw, stdin)


def _dispatch(conn, req_raw: bytes, stdin: bytes) -> None:
    import json

    try:
        req = json.loads(req_raw)
        if not (isinstance(req, dict) and isinstance(req.get("argv"), list)
                and req["argv"] and req["argv"][0] in SERVED):
            raise ValueError("not a request")
    except ValueError:
        return
    sys.stderr.write(f"reviewbot: {req['argv'][0]} for {req.get('cwd', '?')}"
                     f" (worker {os.getpid()})\n")
    sys.stderr.flush()
    _run_child(conn, req, stdin)


def _same_user(conn) -> bool:
    import socket

    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def stop() -> bool:
    """Ask a running server to exit; False if none answered."""
    import socket

    path = socket_path()
    if _private_dir(create=False) is None or not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(path)
            _send(s, b"stop", b"")
        return True
    except OSError:
        return False
