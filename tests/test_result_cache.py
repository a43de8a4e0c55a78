"""Findings kept between runs (reviewbot/review/result_cache.py): a second review of the
same patch reads them; a change of what the review read (the tree's files of the
directory, the packs) makes it review again; what a kept review said on stderr is said
again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_silent_clean import _chain

MAIN = """#include <linux/spinlock.h>

int update(struct dev *d)
{
\tspin_lock(&d->lock);
\td->count++;
\tspin_unlock(&d->lock);
\treturn 0;
}
"""
HELPER = "void settle(struct dev *d)\n{\n\tmsleep(10);\n}\n"


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A directory tree (drivers/x: main.c, helper.c) and a patch that calls helper.c's
    settle() under main.c's spinlock."""
    tree = tmp_path / "tree"
    (tree / "drivers" / "x").mkdir(parents=True)
    (tree / "drivers" / "x" / "main.c").write_text(MAIN)
    (tree / "drivers" / "x" / "helper.c").write_text(HELPER)
    post = MAIN.replace("\td->count++;\n", "\td->count++;\n\tsettle(d);\n")
    patch = tmp_path / "p.patch"
    patch.write_text("--- a/drivers/x/main.c\n+++ b/drivers/x/main.c\n"
                     "@@ -4,6 +4,7 @@\n {\n \tspin_lock(&d->lock);\n \td->count++;\n"
                     "+\tsettle(d);\n \tspin_unlock(&d->lock);\n \treturn 0;\n }\n")
    assert post.count("settle") == 1
    return tree, patch


def _review(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), REVIEWBOT_SERVER="off")
    return subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", "--format",
                           "terse", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "reviewbot" / "results").glob("*/*.marshal"))


def test_a_second_review_reads_the_kept_findings(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # for load() and store()
    tree, patch = _tree(tmp_path)
    first = _review(tmp_path, str(patch), "--tree", str(tree))
    assert first.returncode == 1, first.stderr
    assert "context.sleep-in-atomic: settle() may sleep" in first.stdout
    (entry,) = _entries(tmp_path)
    # what the next review prints is the entry: change its message, and it is printed
    from reviewbot.review import result_cache

    key = entry.stem
    kept = result_cache.load(key)
    assert kept is not None and [f.function for f in kept.findings] == ["update"]
    assert set(kept.reads) >= {"c:drivers/x"}  # the directory the callee came from
    kept.findings[0].message = "kept from the run before"
    result_cache.store(key, kept)
    second = _review(tmp_path, str(patch), "--tree", str(tree))
    assert second.returncode == 1
    assert "context.sleep-in-atomic: kept from the run before" in second.stdout


def test_a_changed_file_of_the_directory_is_reviewed_again(tmp_path):
    tree, patch = _tree(tmp_path)
    assert _review(tmp_path, str(patch), "--tree", str(tree)).returncode == 1
    # the callee no longer sleeps: the kept finding must not be printed
    (tree / "drivers" / "x" / "helper.c").write_text(HELPER.replace("msleep", "udelay"))
    again = _review(tmp_path, str(patch), "--tree", str(tree))
    assert again.returncode == 0, again.stdout
    assert "sleep-in-atomic" not in again.stdout
    assert len(_entries(tmp_path)) == 1  # the same key: the entry is replaced
    # and back: reviewed again, the first finding again
    (tree / "drivers" / "x" / "helper.c").write_text(HELPER)
    assert _review(tmp_path, str(patch), "--tree", str(tree)).returncode == 1


def test_another_pack_is_another_review(tmp_path):
    tree, patch = _tree(tmp_path)
    assert _review(tmp_path, str(patch), "--tree", str(tree)).returncode == 1
    pack = tmp_path / "local.toml"
    pack.write_text('[pack]\nname = "local"\n')
    with_pack = _review(tmp_path, str(patch), "--tree", str(tree), "--pack", str(pack))
    assert with_pack.returncode == 1, with_pack.stderr
    assert len(_entries(tmp_path)) == 2


def test_a_kept_review_says_again_what_it_could_not_analyse(tmp_path):
    tree = tmp_path / "tree"
    (tree / "drivers").mkdir(parents=True)
    src = _chain(1000)
    (tree / "drivers" / "y.c").write_text(src)
    at = src.split("\n").index("\tkfree(p);") + 1
    patch = tmp_path / "p.patch"
    patch.write_text(f"--- a/drivers/y.c\n+++ b/drivers/y.c\n@@ -{at},2 +{at},4 @@\n"
                     "+\tif (n > 4)\n+\t\treturn -EINVAL;\n \tkfree(p);\n \treturn m;\n")
    runs = [_review(tmp_path, str(patch), "--tree", str(tree)) for _ in range(2)]
    why = "drivers/y.c: big(): not analysed (too deeply nested for the analyser)"
    for r in runs:
        assert r.returncode == 3, r.stderr
        assert f"reviewbot: {why}\n" in r.stderr
    assert runs[0].stderr == runs[1].stderr and runs[0].stdout == runs[1].stdout
    assert len(_entries(tmp_path)) == 1


def test_a_header_read_for_one_file_is_a_dependency_of_the_next(tmp_path, monkeypatch):
    """Two files of one directory call a sleeping inline of its header under a spinlock:
    the call graph that read the header is built once, for the first file; the second
    file's kept result must still depend on the header."""
    tree = tmp_path / "tree"
    d = tree / "drivers" / "x"
    d.mkdir(parents=True)
    header = "static inline void settle(struct dev *d)\n{\n\tmsleep(10);\n}\n"
    (d / "x.h").write_text(header)
    body = MAIN.replace("#include <linux/spinlock.h>\n", '#include <linux/spinlock.h>\n'
                        '#include "x.h"\n')
    hunk = ("@@ -5,6 +5,7 @@\n {\n \tspin_lock(&d->lock);\n \td->count++;\n"
            "+\tsettle(d);\n \tspin_unlock(&d->lock);\n \treturn 0;\n }\n")
    text = ""
    for name in ("a.c", "b.c"):
        (d / name).write_text(body.replace("update", f"update_{name[0]}"))
        text += f"--- a/drivers/x/{name}\n+++ b/drivers/x/{name}\n{hunk}"
    patch = tmp_path / "p.patch"
    patch.write_text(text)
    first = _review(tmp_path, str(patch), "--tree", str(tree))
    assert first.returncode == 1, first.stderr
    assert first.stdout.count("context.sleep-in-atomic") == 2, first.stdout
    from reviewbot.review import result_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for entry in _entries(tmp_path):
        kept = result_cache.load(entry.stem)
        assert kept is not None and "h:drivers/x" in kept.reads
    (d / "x.h").write_text(header.replace("msleep", "udelay"))
    again = _review(tmp_path, str(patch), "--tree", str(tree))
    assert again.returncode == 0 and "sleep-in-atomic" not in again.stdout, again.stdout


def test_an_internal_error_is_not_kept(tmp_path, monkeypatch, capsys):
    """A function the analyser failed on (here a checker that raises) is said and left out;
    the next run, without the fault, analyses it and finds what it finds."""
    from reviewbot import cli
    from reviewbot.review import analysis

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("REVIEWBOT_SERVER", "off")
    tree, patch = _tree(tmp_path)
    args = ["review", str(patch), "--tree", str(tree), "--format", "terse"]

    def broken(*_a, **_k):
        raise RuntimeError("checker fault")

    with monkeypatch.context() as m:
        m.setattr(analysis, "analyze_function", broken)
        assert cli.main(args) == 3
    assert "update(): not analysed (internal error: RuntimeError: checker fault)" in \
        capsys.readouterr().err
    assert _entries(tmp_path) == []
    assert cli.main(args) == 1
    assert "context.sleep-in-atomic" in capsys.readouterr().out
    assert len(_entries(tmp_path)) == 1
