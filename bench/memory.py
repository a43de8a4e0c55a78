#!/usr/bin/env python3
"""Peak memory where input enters reviewbot: each case must stay under 300 MB.

    .venv/bin/python bench/memory.py [--mbox-mb 200] [--patches-mb 20] [--bomb-gib 1] [--only NAME]

Cases, each one reviewbot process measured by wait4 (bench/_common.run), everything made
in a temporary directory:

- `dev-zero`: `review /dev/zero` stops at the cap for one patch (exit 2, one line);
- `mbox`: a 200 MB list archive (500 one-patch threads, each with 50 replies of ~8 KB),
  `review --no-tree -j 1`: read message by message;
- `mbox-patches`: 20 MB of nothing but small patches (20,000): what a review holds per
  patch until it reports (~4.5 KB each; the patch's text and its findings), not streamed;
- `gzip-bomb`: `review --msgid` against a server on 127.0.0.1 whose t.mbox.gz inflates to
  1 GiB (exit 2 at the inflated cap);
- `msgid-60mb`: `review --msgid` of a real 60 MB thread, just under that cap (b4 parses a
  thread whole);
- `git-bomb-lying` / `git-bomb-huge`: a patch reviewed against a repository whose blob of
  the patched file is a loose object that inflates to 1 GiB behind a header of 3000 bytes
  (exit 2, naming the object), or that declares 1 GiB (refused by its header: exit 3);
- `c-4mb`: `audit` of a 4 MB C file that is one expression (left out: exit 3);
- `c-2mb`: the same just under the 2 MiB cap, parsed and walked (exit 0).

The small versions of these are tests (tests/test_input_limits.py); these stay out of
the suite (a minute or two, and a gigabyte of zeros compressed twice).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

LIMIT_MB = 300.0
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


def _mail(n: int, subject: str, msgid: str, body: str, irt: str = "") -> str:
    head = (f"From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Dev {n} <dev{n}@example.org>\n"
            f"To: list@example.org\nSubject: {subject}\n"
            f"Date: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <{msgid}>\n")
    if irt:
        head += f"In-Reply-To: <{irt}>\nReferences: <{irt}>\n"
    return head + "\n" + body + "\n"


def make_mbox(path: Path, mb: int) -> int:
    """A list archive of about `mb` MB: one-patch threads, each with 50 replies of ~8 KB
    of quoted text. Returns the number of patches."""
    quote = "".join(f"> line {i} of the discussion, quoted once more in the reply\n"
                    for i in range(130))
    threads = 0
    with open(path, "w") as fh:
        while fh.tell() < mb * 1_000_000:
            t = threads
            pid = f"p{t}@example.org"
            fh.write(_mail(t, f"[PATCH] widget: check n in open ({t})", pid,
                           f"Commit message {t}.\n\nSigned-off-by: Dev <d@example.org>\n---\n"
                           + _diff(f"drivers/w{t % 97}.c")))
            for r in range(50):
                fh.write(_mail(r, f"Re: [PATCH] widget: check n in open ({t})",
                               f"r{t}.{r}@example.org", f"Reply {r}.\n\n{quote}", pid))
            threads += 1
    return threads


class _Served:
    """A server on 127.0.0.1 that answers every GET with `body` (gzip), POST with 404."""

    def __init__(self, body: bytes) -> None:

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - b4's search for newer revisions
                self.send_response(404)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/widget-devel"
        self.compressed = len(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def git_bomb(d: Path, declared: int, real: int) -> tuple[Path, Path]:
    """(a repository whose drivers/w.c blob is a loose object declaring `declared` bytes
    and inflating to `real`, a patch of that file)."""
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
    block = b"A" * (1 << 20)
    for _ in range(real >> 20):
        parts.append(co.compress(block))
    parts.append(co.flush())
    os.chmod(obj, 0o644)
    obj.write_bytes(b"".join(parts))
    patch = d / "w.patch"
    patch.write_text(_diff("drivers/w.c", blob))
    return repo, patch


def _case(name: str, cmd: list[str], expect: int, **kw) -> bool:
    r = c.run(cmd, **kw)
    err = r.err.decode(errors="replace").strip().splitlines()
    last = err[-1] if err else ""
    ok = r.maxrss_mb < LIMIT_MB and r.rc == expect
    print(f"{name:15} {r.maxrss_mb:7.0f} MB  {r.wall:6.1f} s  exit {r.rc} (want {expect})"
          f"  {'ok' if ok else 'FAILED'}  {last[:150]}", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mbox-mb", type=int, default=200)
    ap.add_argument("--patches-mb", type=int, default=20)
    ap.add_argument("--bomb-gib", type=float, default=1.0)
    ap.add_argument("--only", help="run only this case")
    a = ap.parse_args()
    bomb = int(a.bomb_gib * (1 << 30))
    rb = c.REVIEWBOT
    cases: dict[str, Callable[[Path], bool]] = {}

    def dev_zero(d: Path) -> bool:
        return _case("dev-zero", [rb, "review", "--no-tree", "/dev/zero"], 2)

    def mbox(d: Path) -> bool:
        path = d / "list.mbox"
        n = make_mbox(path, a.mbox_mb)
        c.log(f"mbox: {path.stat().st_size / 1e6:.0f} MB, {n} patches")
        return _case("mbox", [rb, "review", "--no-tree", "-j", "1", str(path)], 1)

    def mbox_patches(d: Path) -> bool:
        path = d / "patches.mbox"  # every message a patch: each is held until the report
        with open(path, "w") as fh:
            t = 0
            while fh.tell() < a.patches_mb * 1_000_000:
                fh.write(_mail(t, f"[PATCH] widget: check n in open ({t})", f"p{t}@example.org",
                               f"Commit message {t}.\n\n" + "Why it is needed.\n" * 20 +
                               "---\n" + _diff(f"drivers/w{t % 97}.c")))
                t += 1
        c.log(f"mbox-patches: {path.stat().st_size / 1e6:.0f} MB, {t} patches")
        return _case("mbox-patches", [rb, "review", "--no-tree", "-j", "1", str(path)], 1)

    def gzip_bomb(d: Path) -> bool:
        co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = b"\0" * (1 << 20)
        srv = _Served(b"".join(co.compress(block) for _ in range(bomb >> 20)) + co.flush())
        c.log(f"gzip-bomb: {srv.compressed} bytes inflating to {bomb}")
        try:
            env = dict(os.environ, HOME=str(d), XDG_CACHE_HOME=str(d / "cache"))
            return _case("gzip-bomb", [rb, "review", "--msgid", "a@example.org", "--lore",
                                       srv.url], 2, env=env)
        finally:
            srv.close()

    def msgid_thread(d: Path) -> bool:
        path = d / "t.mbox"  # a real thread just under the inflated cap: parsed whole
        make_mbox(path, 60)
        srv = _Served(gzip.compress(path.read_bytes(), 1))
        try:
            env = dict(os.environ, HOME=str(d), XDG_CACHE_HOME=str(d / "cache"))
            return _case("msgid-60mb", [rb, "review", "--no-tree", "--msgid", "p0@example.org",
                                        "--lore", srv.url], 1, env=env)
        finally:
            srv.close()

    def git_lying(d: Path) -> bool:
        repo, patch = git_bomb(d, 3000, bomb)
        return _case("git-bomb-lying", [rb, "review", "--tree", str(repo), str(patch)], 2)

    def git_huge(d: Path) -> bool:
        repo, patch = git_bomb(d, bomb, bomb)
        return _case("git-bomb-huge", [rb, "review", "--tree", str(repo), str(patch)], 3)

    def c_4mb(d: Path) -> bool:
        src = d / "expr.c"
        src.write_text("int x = " + "1 + " * (1 << 20) + "1;\n")
        return _case("c-4mb", [rb, "audit", "-j", "1", str(src)], 3)

    def c_under_cap(d: Path) -> bool:
        src = d / "expr.c"  # just under the 2 MiB cap: parsed and walked
        src.write_text("int x = " + "1 + " * ((2 << 20) // 4 - 4) + "1;\n")
        return _case("c-2mb", [rb, "audit", "-j", "1", str(src)], 0)

    cases = {"dev-zero": dev_zero, "mbox": mbox, "mbox-patches": mbox_patches,
             "gzip-bomb": gzip_bomb,
             "msgid-60mb": msgid_thread,
             "git-bomb-lying": git_lying, "git-bomb-huge": git_huge, "c-4mb": c_4mb,
             "c-2mb": c_under_cap}
    if a.only and a.only not in cases:
        raise SystemExit(f"bench: no case {a.only}; cases: {', '.join(cases)}")
    print(f"peak RSS of each case (limit {LIMIT_MB:.0f} MB)")
    good = True
    for name, fn in cases.items():
        if a.only and name != a.only:
            continue
        with tempfile.TemporaryDirectory(prefix="rb-mem-") as d:
            good &= fn(Path(d))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
