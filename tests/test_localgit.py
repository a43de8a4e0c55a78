"""`reviewbot review --git A..B`: local commits reviewed against their own repository."""

from __future__ import annotations

import json
import subprocess
import sys

import pygit2
import pytest

from reviewbot.input.localgit import series_from_range
from reviewbot.model import InputError

GOOD = """static int demo_probe(struct demo *d)
{
	int ret;

	mutex_lock(&d->lock);
	d->buf = kzalloc(64, GFP_KERNEL);
	if (!d->buf) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = demo_hw_init(d);
	if (ret)
		goto out_free;
	mutex_unlock(&d->lock);
	return 0;

out_free:
	kfree(d->buf);
out_unlock:
	mutex_unlock(&d->lock);
	return ret;
}
"""


def _commit(repo, path, text, msg, parents):
    blob = repo.create_blob(text.encode())
    tb = repo.TreeBuilder()
    sub = repo.TreeBuilder()
    sub.insert(path.split("/")[1], blob, pygit2.enums.FileMode.BLOB)
    tb.insert(path.split("/")[0], sub.write(), pygit2.enums.FileMode.TREE)
    sig = pygit2.Signature("Dev", "dev@example.org", 1700000000, 0)
    return repo.create_commit("refs/heads/main", sig, sig, msg, tb.write(), parents)


@pytest.fixture
def repo(tmp_path):
    r = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    c1 = _commit(r, "drivers/demo.c", GOOD, "demo: add probe\n", [])
    c2 = _commit(r, "drivers/demo.c", GOOD.replace("\t\tgoto out_free;", "\t\treturn ret;"),
                 "demo: return early\n\nSimplify.\n", [c1])
    return r, c1, c2


def test_range_becomes_a_series(repo):
    r, c1, c2 = repo
    s, path, base = series_from_range(f"{c1}..{c2}", r.path)
    assert [p.subject for p in s.patches] == ["demo: return early"]
    assert base == str(c1) and "drivers/demo.c" in s.patches[0].diff


def test_cli_reviews_local_commits(repo):
    r, c1, c2 = repo
    out = subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", "--git",
                          f"{c1}..{c2}", "--repo", r.path, "--format", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    findings = json.loads(out.stdout)["series"][0]["patches"][0]["findings"]
    assert {(f["rule"], f["resource"]) for f in findings if f["status"] == "introduced"} >= {
        ("error-path.direct-return", "d->lock")}


def test_bad_range_is_one_line(repo):
    r, _c1, _c2 = repo
    with pytest.raises(InputError):
        series_from_range("nope..alsonope", r.path)
    out = subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", "--git", "x..y",
                          "--repo", r.path], capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
