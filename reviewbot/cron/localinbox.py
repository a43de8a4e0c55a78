"""A throwaway public-inbox archive served on loopback, for tests and the demo.

Everything lives under one directory: HOME, PI_DIR and PI_CONFIG point into it, so
nothing touches the real home directory. The inbox is a v2 inbox (git epochs),
imported with public-inbox's own Perl API (``InboxWritable->import_mbox``, the call
lei uses; public-inbox 1.9 has no mbox-import command), and served by
``public-inbox-httpd`` on 127.0.0.1.

    with LocalInbox(tmpdir, "widget-devel") as ibx:
        ibx.create()
        ibx.import_mbox("examples/list/list.mbox")
        url = ibx.start()          # http://127.0.0.1:PORT/widget-devel
        ...                        # ibx.import_mbox() again while it runs
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

_IMPORT = r"""
use strict;
use PublicInbox::Config;
use PublicInbox::InboxWritable;
my ($name, $mbox, $fmt, $rollover) = @ARGV;
# a tiny epoch size makes every message after the first start a new epoch
require PublicInbox::V2Writable;
$PublicInbox::V2Writable::PACKING_FACTOR = 1024 * 1024 * 1024 if $rollover;
my $ibx = PublicInbox::Config->new->lookup_name($name) or die "no inbox $name\n";
$ibx = PublicInbox::InboxWritable->new($ibx);
open(my $fh, '<', $mbox) or die "open $mbox: $!\n";
$ibx->import_mbox($fh, $fmt);
"""

TOOLS = ("public-inbox-init", "public-inbox-httpd", "perl")


def missing_tools() -> str | None:
    """Why a local inbox cannot run here, or None if it can."""
    for t in TOOLS:
        if shutil.which(t) is None:
            return f"{t} not found (apt-get install public-inbox)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InboxError(RuntimeError):
    pass


class LocalInbox:
    def __init__(self, root: str | os.PathLike, name: str = "test",
                 address: str | None = None, indexlevel: str = "full") -> None:
        self.root = Path(root).resolve()
        self.name = name
        self.address = address or f"{name}@lists.example.org"
        self.indexlevel = indexlevel
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    # -- environment ---------------------------------------------------------
    @property
    def inboxdir(self) -> Path:
        return self.root / "inbox"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
        env.update(HOME=str(self.root / "home"), PI_DIR=str(self.root / "pi"),
                   PI_CONFIG=str(self.root / "pi" / "config"),
                   PI_EMERGENCY=str(self.root / "pi" / "emergency"))
        return env

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.server}/{self.name}"

    def _run(self, *cmd: str) -> str:
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise InboxError(f"{cmd[0]} failed: {(r.stderr or r.stdout).strip()[-500:]}")
        return r.stdout

    # -- archive ---------------------------------------------------------------
    def create(self, port: int | None = None) -> None:
        why = missing_tools()
        if why:
            raise InboxError(why)
        if self.inboxdir.exists():
            raise InboxError(f"{self.inboxdir} already exists")
        for d in ("home", "pi"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._run("public-inbox-init", "-V2", "-L", self.indexlevel, self.name,
                  str(self.inboxdir), self.url, self.address)
        self._run("git", "config", "-f", self.env["PI_CONFIG"], "publicinboxmda.spamcheck", "none")

    def import_mbox(self, mbox: str | os.PathLike | bytes, fmt: str = "mboxrd",
                    rollover: bool = False) -> None:
        """Append the messages of an mbox (a path, or the mbox as bytes); a running
        server sees them at once. rollover=True puts each message after the first
        into a new epoch (to exercise epoch roll-over)."""
        if isinstance(mbox, bytes):
            path = self.root / f"import-{time.time_ns()}.mbox"
            path.write_bytes(mbox)
        else:
            path = Path(mbox).resolve()
        self._run("perl", "-e", _IMPORT, self.name, str(path), fmt, "1" if rollover else "")

    def epochs(self) -> list[int]:
        d = self.inboxdir / "git"
        return sorted(int(p.name.split(".")[0]) for p in d.glob("*.git")) if d.is_dir() else []

    # -- server ----------------------------------------------------------------
    def start(self, timeout: float = 30) -> str:
        if self.port is None:
            raise InboxError("create() the inbox first")
        log = open(self.root / "httpd.log", "ab")
        self.proc = subprocess.Popen(
            ["public-inbox-httpd", "-W0", "-l", f"http://127.0.0.1:{self.port}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = (self.root / "httpd.log").read_text(errors="replace").strip()[-300:]
                self.proc = None
                raise InboxError(f"public-inbox-httpd exited: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_/text/config/raw", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise InboxError(f"no answer from {self.url} after {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def __enter__(self) -> LocalInbox:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
