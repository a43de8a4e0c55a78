"""Many series at once (pipeline.review_all): the series are reviewed a directory at a
time (pipeline._groups), in worker processes or not, and reported in the order given."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from test_silent_clean import LEAKY

from reviewbot.model import Patch, Series
from reviewbot.review.pipeline import GROUP_MAX, _groups


def _series(path: str) -> Series:
    diff = f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n+b\n"
    return Series(path, 1, path, [Patch(path, path, path, diff=diff)])


def test_groups_are_directories_in_pieces_with_every_series_once():
    paths = ["fs/a/x.c", "fs/b/y.c", "fs/a/z.c", "fs/b/x.c"] + ["fs/c/w.c"] * (GROUP_MAX + 3)
    groups = _groups([_series(p) for p in paths])
    assert sorted(i for g in groups for i in g) == list(range(len(paths)))
    dirs = [{paths[i].rsplit("/", 1)[0] for i in g} for g in groups]
    assert all(len(d) == 1 for d in dirs)  # one directory per task
    assert [g for g, d in zip(groups, dirs, strict=True) if d == {"fs/a"}] == [[0, 2]]
    assert max(len(g) for g in groups) == GROUP_MAX  # a long run is cut


def test_interleaved_directories_report_in_the_order_given(tmp_path):
    """Twelve one-patch mails that alternate between two directories: the same report,
    in the mbox's order, with one process and with two."""
    tree = tmp_path / "tree"
    mbox = ""
    for i in range(12):
        d = "drivers/a" if i % 2 else "drivers/b"
        name = f"f{i}"
        (tree / d).mkdir(parents=True, exist_ok=True)
        (tree / d / f"{name}.c").write_text(LEAKY.replace("widget_open", name))
        at = LEAKY.split("\n").index("\tkfree(p);") + 1
        diff = (f"--- a/{d}/{name}.c\n+++ b/{d}/{name}.c\n@@ -{at},2 +{at},4 @@\n"
                "+\tif (n > 4)\n+\t\treturn -EINVAL;\n \tkfree(p);\n \treturn 0;\n")
        mbox += (f"From x@y Mon Sep 17 00:00:00 2001\nFrom: Dev <dev@example.org>\n"
                 f"Subject: [PATCH] {name}: return early\nMessage-ID: <m{i}@example.org>\n"
                 f"Date: Mon, 4 Mar 2024 10:00:{i:02d} +0000\n\nWhy.\n---\n{diff}\n")
    box = tmp_path / "many.mbox"
    box.write_text(mbox)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), REVIEWBOT_SERVER="off")
    outs = []
    for jobs in ("1", "2"):
        r = subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", str(box), "--tree",
                            str(tree), "--format", "json", "-j", jobs], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 1, r.stderr
        doc = json.loads(r.stdout)
        doc.pop("version", None)
        outs.append(doc)
        shutil.rmtree(tmp_path / "cache" / "reviewbot" / "results", ignore_errors=True)
    assert outs[0] == outs[1]
    funcs = [f["function"] for s in outs[0]["series"] for p in s["patches"]
             for f in p["findings"]]
    assert funcs == [f"f{i}" for i in range(12)]
