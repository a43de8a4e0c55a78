"""The caches kept between runs stay bounded (reviewbot/cachelimit.py): other format
versions go, then the oldest files, at most once an hour; the pack cache keeps its newest
files. Real files in a temporary cache directory; the context-facts cache is filled by the
real extraction of C sources."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reviewbot import cachelimit


def _file(path: Path, size: int, age: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def test_other_versions_then_the_oldest_files_go(tmp_path):
    root = tmp_path / "context"
    old_version = _file(root / "v1" / "aa" / "f.pkl", 5000, 10)
    oldest = _file(root / "v2" / "aa" / "old.pkl", 1000, 300)
    middle = _file(root / "v2" / "bb" / "mid.pkl", 1000, 200)
    newest = _file(root / "v2" / "cc" / "new.pkl", 1000, 100)
    not_a_version = _file(root / "vx" / "keep.pkl", 10, 50)
    got = cachelimit.prune(str(root), 2100, "v2")
    assert got.versions == ("v1",) and not old_version.exists()
    assert not oldest.exists() and middle.exists() and newest.exists()
    assert not_a_version.exists()
    assert got.files == 1 and got.bytes_removed == 1000 and got.bytes_kept == 2010


def test_pruning_is_done_once_an_hour_by_the_first_writer(tmp_path, monkeypatch):
    root = tmp_path / "summaries"
    _file(root / "aa" / "a.marshal", 4000, 100)
    monkeypatch.setenv("REVIEWBOT_CACHE_MAX_MB", str(1000 / 1024 / 1024))
    monkeypatch.setattr(cachelimit, "_done", set())
    got = cachelimit.after_write(str(root))
    assert got is not None and got.files == 1 and (root / cachelimit.STAMP).exists()
    _file(root / "bb" / "b.marshal", 4000, 50)
    monkeypatch.setattr(cachelimit, "_done", set())  # another process, within the hour
    assert cachelimit.after_write(str(root)) is None
    assert (root / "bb" / "b.marshal").exists()
    stamp = root / cachelimit.STAMP
    t = time.time() - cachelimit.EVERY_SECONDS - 1
    os.utime(stamp, (t, t))
    monkeypatch.setattr(cachelimit, "_done", set())  # an hour later
    assert cachelimit.after_write(str(root)).files == 1


def test_the_pack_cache_keeps_its_newest_files(tmp_path):
    for i in range(5):
        _file(tmp_path / f"packs-{i:08x}.marshal", 10, 100 - i)
    _file(tmp_path / "other.marshal", 10, 1000)
    assert cachelimit.keep_newest(str(tmp_path), "packs-", ".marshal", 2) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.marshal", "packs-00000003.marshal", "packs-00000004.marshal"]


def _run_extraction(src: Path, env: dict) -> None:
    code = ("import sys, pathlib\n"
            "from reviewbot.knowledge.ctxfacts import file_facts\n"
            "for p in sorted(pathlib.Path(sys.argv[1]).glob('*.c')):\n"
            "    file_facts(p.read_bytes(), str(p))\n")
    subprocess.run([sys.executable, "-c", code, str(src)], env=env, check=True)


def _sources(src: Path, tag: str) -> None:
    src.mkdir(exist_ok=True)
    for i in range(30):
        (src / f"f{i}.c").write_text(
            f"static int f{i}_{tag}(struct s *p)\n{{\n\tspin_lock(&p->lock);\n\tg{i}(p);\n"
            "\tspin_unlock(&p->lock);\n\treturn 0;\n}\n" * 20)


def test_the_context_cache_of_earlier_runs_is_cut_to_its_limit(tmp_path):
    cache = tmp_path / "cache"
    ctx = cache / "reviewbot" / "context"
    stale = _file(ctx / "v1" / "aa" / "x.pkl", 100, 10)
    limit_mb = 0.02
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "REVIEWBOT_CACHE_MAX_MB": str(limit_mb)}
    env.pop("REVIEWBOT_CONTEXT_CACHE", None)
    src = tmp_path / "src"
    _sources(src, "a")
    _run_extraction(src, env)
    first = set(ctx.rglob("*.pkl"))
    assert not stale.exists() and len(first) == 30  # the other version went at the first write
    assert sum(p.stat().st_size for p in first) > limit_mb * 1024 * 1024
    stamp = ctx / cachelimit.STAMP
    t = time.time() - cachelimit.EVERY_SECONDS - 1
    os.utime(stamp, (t, t))
    for p in first:  # the first run's files, older than the second run's
        os.utime(p, (t, t))
    _sources(src, "b")  # new contents: new entries
    _run_extraction(src, env)
    left = set(ctx.rglob("*.pkl"))
    assert len(left - first) == 30  # this run's own entries are all there
    kept = left & first
    assert len(kept) < 30 and sum(p.stat().st_size for p in kept) <= limit_mb * 1024 * 1024
