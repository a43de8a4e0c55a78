"""Shared helpers for the benchmarks in bench/ (not part of the package).

- kernel_tree(): extract the needed parts of Debian's linux-source-6.1 tarball once into a
  cache directory and make it a git repository (so `--tree` resolves `index` blob ids).
- run(): run a command as a whole process; wall time and the child's own peak RSS (wait4).
- make_patches(): real-looking edits of fs/ C functions with goto labels, as
  git format-patch style mails with correct `index` lines.

Nothing from the kernel tree or /work/shared is copied into the repository: everything is
read from where it is or generated under the cache directory.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
REVIEWBOT = str(VENV_BIN / "reviewbot") if (VENV_BIN / "reviewbot").exists() else "reviewbot"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
TARBALL = Path(os.environ.get("LINUX_SOURCE_TARBALL", "/usr/src/linux-source-6.1.tar.xz"))
TOP = "linux-source-6.1"
# only what the benchmarks need
MEMBERS = [f"{TOP}/fs/*", f"{TOP}/scripts/checkpatch.pl", f"{TOP}/scripts/spelling.txt",
           f"{TOP}/scripts/const_structs.checkpatch"]


def cache_dir() -> Path:
    base = os.environ.get("REVIEWBOT_BENCH_CACHE")
    if base:
        d = Path(base)
    elif os.environ.get("XDG_CACHE_HOME"):
        d = Path(os.environ["XDG_CACHE_HOME"]) / "reviewbot-bench"
    else:
        d = Path("/tmp/reviewbot-bench")
    d.mkdir(parents=True, exist_ok=True)
    return d


def drop_kept_results(env: dict | None = None) -> None:
    """Remove the findings reviewbot keeps between runs (review/result_cache.py) in the cache
    directory `env` (default: this process's) names: the next review is of a patch never
    reviewed before, with the packs and the tree's summaries still cached."""
    import shutil

    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = env.get("HOME", "")
        if not os.path.isabs(home):
            return
        base = os.path.join(home, ".cache")
    shutil.rmtree(os.path.join(base, "reviewbot", "results"), ignore_errors=True)


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def _git(tree: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.org",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.org",
               GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    r = subprocess.run(["git", "-C", str(tree), *args], env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"git {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def kernel_tree() -> Path:
    """The extracted subset of linux-source-6.1 (fs/ + checkpatch files) as a git work tree."""
    root = cache_dir() / "kernel"
    tree = root / TOP
    done = root / ".complete"
    if done.exists():
        return tree
    if not TARBALL.exists():
        raise SystemExit(f"{TARBALL} not found: apt-get install -y linux-source-6.1 "
                         "(or set LINUX_SOURCE_TARBALL)")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log(f"bench: extracting fs/ and scripts/checkpatch.pl from {TARBALL} into {root} (once)")
    t = time.perf_counter()
    subprocess.run(["tar", "-xJf", str(TARBALL), "-C", str(root), "--wildcards", *MEMBERS],
                   check=True)
    _git(tree, "init", "-q", "-b", "master")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "linux-source-6.1 subset (fs/, checkpatch)")
    done.write_text("ok\n")
    log(f"bench: tree ready in {time.perf_counter() - t:.1f} s")
    return tree


# -- processes ----------------------------------------------------------------------------

@dataclass
class Run:
    wall: float          # seconds
    maxrss_mb: float     # the child's own peak resident set size
    rc: int
    out: bytes
    err: bytes = b""


# Runs the measured command from a small process (python -S): a child forked from the large
# benchmark process would count the pages it shares with it in its peak RSS until it execs,
# so every small command would look as big as the benchmark. Reports on the fd it is given.
_MEASURE = """
import os, sys, time
fd, cwd, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.chdir(cwd)
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t
os.write(fd, f"{wall} {ru.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""


def run(cmd: list[str], *, cwd: str | Path | None = None, capture: bool = False,
        env: dict | None = None) -> Run:
    """Run cmd as a whole process: its wall time (from its fork to its exit) and its own peak
    RSS (os.wait4 in a small measuring process). stdout and stderr go to temporary files (no
    pipe to drain while timing)."""
    import tempfile
    r, w = os.pipe()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen([sys.executable, "-S", "-c", _MEASURE, str(w),
                              str(cwd or os.getcwd()), *map(str, cmd)], stdout=fo if capture else subprocess.DEVNULL,
                             stderr=fe, stdin=subprocess.DEVNULL, env=env, pass_fds=(w,))
        os.close(w)
        with os.fdopen(r, "rb") as report:
            got = report.read().split()
        p.wait()
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if len(got) != 3:
        raise SystemExit(f"bench: could not measure {' '.join(map(str, cmd))[:200]}")
    wall, maxrss_kb, rc = float(got[0]), int(got[1]), int(got[2])
    if rc not in (0, 1):
        log(f"bench: {' '.join(map(str, cmd))[:200]} exited {rc}: "
            f"{err.decode(errors='replace').strip()[-500:]}")
    return Run(wall, maxrss_kb / 1024.0, rc, out, err)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- patch generation ---------------------------------------------------------------------

def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


_GOTO = re.compile(r"^(\s+)goto (\w+);\s*$")
_ERRVAR = re.compile(r"^\s+int\s+(?:[\w\s,*=0-9-]*?\b)?(ret|err|error|rc|retval|status)\b")
_LABEL = re.compile(r"^(\w+):\s*$")
_CALL = re.compile(r"^\s+\w+\(.*\);\s*$")


def _functions(lines: list[str]) -> list[tuple[int, int]]:
    """(open, close) line indexes of kernel-style function bodies ('{' / '}' in column 0)."""
    out, start = [], None
    for i, ln in enumerate(lines):
        if ln.startswith("{"):
            start = i
        elif ln.startswith("}") and start is not None:
            out.append((start, i))
            start = None
    return out


def _fname(lines: list[str], open_idx: int) -> str:
    for j in range(open_idx - 1, max(open_idx - 6, -1), -1):
        m = re.search(r"(\w+)\s*\(", lines[j])
        if m:
            return m.group(1)
    return "function"


def candidate_edits(path: str, text: str) -> list[tuple[str, int, str | None, str]]:
    """Edits that make a real-looking error-path change: (kind, line index, new line or
    None to delete, function name)."""
    lines = text.split("\n")
    edits = []
    for a, b in _functions(lines):
        body = lines[a:b + 1]
        if not any(_LABEL.match(ln) for ln in body):
            continue
        fn = _fname(lines, a)
        var = None
        for ln in body[:30]:
            m = _ERRVAR.match(ln)
            if m:
                var = m.group(1)
                break
        for i in range(a + 1, b):
            m = _GOTO.match(lines[i])
            if m and var:
                edits.append(("goto-to-return", i, f"{m.group(1)}return {var};", fn))
            if _LABEL.match(lines[i]) and i + 1 < b and _CALL.match(lines[i + 1]) \
                    and not lines[i + 1].lstrip().startswith(("return", "goto")):
                edits.append(("drop-release", i + 1, None, fn))
    return edits


def _hunk(old: list[str], idx: int, new_line: str | None, ctx: int = 3) -> str:
    """The one hunk of a one-line replacement (new_line) or deletion (None) at old[idx]."""
    lo, hi = max(0, idx - ctx), min(len(old), idx + 1 + ctx)
    ol = hi - lo
    nl = ol if new_line is not None else ol - 1
    out = [f"@@ -{lo + 1},{ol} +{lo + 1},{nl} @@\n"]
    out += [f" {ln}\n" for ln in old[lo:idx]]
    out.append(f"-{old[idx]}\n")
    if new_line is not None:
        out.append(f"+{new_line}\n")
    out += [f" {ln}\n" for ln in old[idx + 1:hi]]
    return "".join(out)


def make_patch(path: str, old_text: str, kind: str, idx: int, new_line: str | None,
               fn: str, serial: int) -> str:
    old = old_text.split("\n")
    new = list(old)
    if new_line is None:
        del new[idx]
    else:
        new[idx] = new_line
    new_text = "\n".join(new)
    a, b = blob_id(old_text.encode()), blob_id(new_text.encode())
    # without the trailing "" that split leaves after the final newline
    body = _hunk(old[:-1] if old and old[-1] == "" else old, idx, new_line)
    # subsystem/file prefix keeps subjects unique (same-subject mails would be taken as
    # revisions of one series and only the newest reviewed)
    parts = path[:-2].split("/")
    sub = "/".join(parts[1:]) if len(parts) > 2 else parts[-1]
    what = ("return directly instead of jumping to the exit label" if kind == "goto-to-return"
            else "drop a redundant release on the error path")
    minute, sec = divmod(serial, 60)
    hour, minute = divmod(minute, 60)
    return (
        f"From {a} Mon Sep 17 00:00:00 2001\n"
        f"From: Bench Dev <bench{serial % 37}@example.org>\n"
        f"Date: Mon, 1 Jan 2024 {hour % 24:02d}:{minute:02d}:{sec:02d} +0000\n"
        f"Subject: [PATCH] {sub}: {fn}: {what}\n"
        f"Message-ID: <bench-{serial}-{a[:8]}@example.org>\n"
        f"\n"
        f"Simplify the error handling of {fn}() in {path}.\n"
        f"\n"
        f"Signed-off-by: Bench Dev <bench{serial % 37}@example.org>\n"
        f"---\n"
        f"diff --git a/{path} b/{path}\n"
        f"index {a[:12]}..{b[:12]} 100644\n"
        f"--- a/{path}\n"
        f"+++ b/{path}\n"
        f"{body}"
        f"-- \n2.39.5\n\n"
    )


def make_patches(tree: Path, n: int, seed: int = 1, subdir: str = "fs") -> list[str]:
    """n single-patch mails, each one edit of a different function (spread over files)."""
    rng = random.Random(seed)
    files = sorted(str(p.relative_to(tree)) for p in (tree / subdir).rglob("*.c"))
    rng.shuffle(files)
    per_file: list[tuple[str, str, list]] = []
    for f in files:
        text = (tree / f).read_text(errors="surrogateescape")
        eds = candidate_edits(f, text)
        if eds:
            rng.shuffle(eds)
            per_file.append((f, text, eds))
    out, serial, seen = [], 0, set()
    # round-robin over files: one edit from each file per round, distinct functions
    rnd = 0
    while len(out) < n:
        progressed = False
        for f, text, eds in per_file:
            if rnd < len(eds):
                kind, idx, new_line, fn = eds[rnd]
                if (f, fn) in seen and rnd < 3:
                    continue
                seen.add((f, fn))
                out.append(make_patch(f, text, kind, idx, new_line, fn, serial))
                serial += 1
                progressed = True
                if len(out) >= n:
                    break
        if not progressed:
            break
        rnd += 1
    if len(out) < n:
        log(f"bench: only {len(out)} edits found under {subdir}/")
    return out


def fmt_mb(x: float) -> str:
    return f"{x:.0f} MB"
