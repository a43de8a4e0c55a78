"""gitread reads what pygit2 reads: loose and packed objects (offset and reference deltas),
abbreviated ids, refs and trees; what it does not read is left to pygit2."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

from reviewbot.context import tree as context
from reviewbot.context.gitread import GitRepo, open_repo
from reviewbot.context.tree import CodeContext

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

V1 = "".join(f"int v{i} = {i * 7};\n" for i in range(1, 200))


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
           "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def history(tmp_path) -> Path:
    """A repository with a few files edited over ten commits, a tag and a branch."""
    repo = tmp_path / "hist"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "fs").mkdir()
    (repo / "fs" / "link.c").symlink_to("a.c")
    for i in range(10):
        for n in ("a", "b", "c"):
            (repo / "fs" / f"{n}.c").write_text(V1.replace(f"v{i + 1} ", f"w{i}_{n} "))
        (repo / "top.h").write_text(f"#define N {i}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"c{i}")
        if i == 4:
            git(repo, "tag", "-a", "-m", "t", "v1")
            git(repo, "branch", "old")
    return repo


def same_as_pygit2(path: Path) -> int:
    """Every object read alike; returns how many were compared."""
    g, r = open_repo(str(path)), pygit2.Repository(str(path))
    assert isinstance(g, GitRepo)
    n = 0
    for oid in r.odb:
        obj = r[oid]
        assert g.read(str(oid)) == (obj.type_str, obj.read_raw())
        kind, data = g.read(str(oid), limit=50)
        assert kind == obj.type_str and (data is None) == (len(obj.read_raw()) > 50)
        n += 1
    for rev in ("HEAD", "main", "old", "v1", "refs/tags/v1", "refs/heads/old"):
        assert g.resolve(rev) == str(r.revparse_single(rev).id), rev
        want = r.revparse_single(rev).peel(pygit2.Tree)
        assert g.peel_to_tree(g.resolve(rev)) == str(want.id)
    head = g.peel_to_tree(g.resolve("HEAD"))
    assert g.tree_entry(head, "fs/a.c") == (0o100644, str(r.revparse_single("HEAD:fs/a.c").id))
    assert g.tree_entry(head, "fs/link.c")[0] == 0o120000
    assert g.tree_entry(head, "fs/nope.c") is None and g.tree_entry(head, "top.h/x") is None
    return n


@needs_git
def test_loose_and_packed_objects_read_like_pygit2(history, tmp_path):
    assert same_as_pygit2(history) > 40  # loose
    git(history, "gc", "-q", "--aggressive")
    assert len(open_repo(str(history)).packs) == 1
    assert same_as_pygit2(history) > 40  # packed, offset deltas
    git(history, "-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-a", "-d", "-f")
    assert same_as_pygit2(history) > 40  # reference deltas
    git(history, "pack-refs", "--all")
    assert not (history / ".git" / "refs" / "tags" / "v1").exists()
    assert same_as_pygit2(history) > 40  # packed refs


@needs_git
def test_abbreviated_ids(history):
    git(history, "gc", "-q")
    g, r = open_repo(str(history)), pygit2.Repository(str(history))
    for oid in r.odb:
        h = str(oid)
        assert g.find(h[:12]) == h and g.find(h.upper()[:8]) == h and g.find(h) == h
    short = {}
    for oid in r.odb:
        short.setdefault(str(oid)[:4], []).append(str(oid))
    for prefix, ids in short.items():
        assert g.find(prefix) == (ids[0] if len(ids) == 1 else None)
    assert g.find("abc") is None and g.find("xyz12") is None and g.find("0" * 40) is None


@needs_git
def test_bare_clone_worktree_and_alternates(history, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", "--no-local", str(history), str(bare))
    assert same_as_pygit2(bare) > 40
    wt = tmp_path / "wt"
    git(history, "worktree", "add", "-q", str(wt), "old")
    g = open_repo(str(wt))
    assert g is not None and (wt / ".git").is_file()
    assert g.resolve("HEAD") == str(pygit2.Repository(str(wt)).head.target)
    shared = tmp_path / "shared"
    git(tmp_path, "clone", "-q", "--shared", str(bare), str(shared))
    assert (shared / ".git" / "objects" / "info" / "alternates").exists()
    ctx = CodeContext(str(shared))
    assert isinstance(ctx.repo, GitRepo)
    assert ctx.read_file("fs/a.c") == (history / "fs" / "a.c").read_text()


@needs_git
def test_what_gitread_does_not_read_goes_to_pygit2(history, monkeypatch):
    ctx = CodeContext(str(history), base="HEAD~3")  # a revision expression
    assert isinstance(ctx.repo, context._Pygit2Repo)
    assert ctx.read_file("top.h") == "#define N 6\n"
    git(history, "config", "extensions.noSuchThing", "true")
    assert open_repo(str(history)) is None
    assert isinstance(CodeContext(str(history)).repo, context._Pygit2Repo)


@needs_git
def test_context_reads_alike_from_gitread_and_pygit2(history, monkeypatch):
    git(history, "gc", "-q")
    native = CodeContext(str(history), base="old")
    assert isinstance(native.repo, GitRepo)
    monkeypatch.setattr(context, "open_repo", lambda path: None)
    viapg = CodeContext(str(history), base="old")
    assert isinstance(viapg.repo, context._Pygit2Repo)
    assert native.base_tree == viapg.base_tree
    assert list(native.iter_files((".c", ".h"))) == list(viapg.iter_files((".c", ".h")))
    assert native.dir_files("fs") == viapg.dir_files("fs") and "fs/link.c" not in \
        native.dir_files("fs")
    assert native.dir_files("top.h") == viapg.dir_files("top.h") == {}
    for path in ("fs/a.c", "top.h", "fs/link.c", "fs", "nope"):
        assert native.read_file(path) == viapg.read_file(path)


def test_unborn_repository(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "empty"))
    blob = str(repo.create_blob(b"int x;\n"))
    ctx = CodeContext(str(tmp_path / "empty"))
    assert isinstance(ctx.repo, GitRepo) and ctx.base_tree is None
    assert ctx._git_blob_by_prefix(blob[:7]) == b"int x;\n"
    with pytest.raises(context.InputError, match="--base"):
        CodeContext(str(tmp_path / "empty"), base="main")
