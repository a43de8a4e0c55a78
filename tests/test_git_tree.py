"""Git trees read through pygit2: loose and packed objects (offset and reference deltas),
abbreviated blob ids, refs and revision expressions, bare repositories, worktrees and
alternates; a corrupt pack or an unresolvable --base is one line and exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest

from reviewbot.context.tree import CodeContext
from reviewbot.model import InputError, Patch

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

V1 = "".join(f"int v{i} = {i * 7};\n" for i in range(1, 200))
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
       "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
       "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env={**ENV, "HOME": str(repo)},
                          check=True, capture_output=True, text=True, input=stdin).stdout


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


def reads_like_git(path: Path) -> int:
    """What CodeContext reads at each ref is what `git show` prints; every blob is found
    by its abbreviated id. Returns how many blobs were looked up."""
    for rev in ("HEAD", "main", "old", "v1", "refs/tags/v1", "refs/heads/old", "HEAD~3"):
        ctx = CodeContext(str(path), base=rev)
        assert ctx.kind == "git"
        for f in ("fs/a.c", "fs/b.c", "top.h"):
            assert ctx.read_file(f) == git(path, "show", f"{rev}:{f}"), (rev, f)
        assert ctx.read_file("fs/link.c") is None  # a symlink is not a regular file
        assert ctx.read_file("fs") is None and ctx.read_file("fs/nope.c") is None
        assert ctx.read_file("top.h/x") is None
        assert [p for p, _ in ctx.iter_files((".c", ".h"))] == ["fs/a.c", "fs/b.c", "fs/c.c",
                                                               "top.h"]
        assert set(ctx.dir_files("fs")) == {"fs/a.c", "fs/b.c", "fs/c.c"}
        assert ctx.dir_files("top.h") == {} and ctx.dir_files("nope") == {}
        assert ctx.dir_files("") == {} and set(ctx.dir_files("", (".h",))) == {"top.h"}
    ctx = CodeContext(str(path))
    listing = git(path, "cat-file", "--batch-all-objects",
                  "--batch-check=%(objectname) %(objecttype)").split("\n")
    blobs = [ln.split()[0] for ln in listing if ln.endswith(" blob")]
    for b in blobs:
        data = subprocess.run(["git", "-C", str(path), "cat-file", "blob", b], check=True,
                              capture_output=True).stdout
        assert ctx._git_blob_by_prefix(b[:12]) == data
        assert ctx._git_blob_by_prefix(b[:8].upper()) == data and ctx._git_blob(b) == data
    return len(blobs)


@needs_git
def test_loose_and_packed_objects(history):
    assert reads_like_git(history) > 20  # loose
    git(history, "gc", "-q", "--aggressive")
    assert len(list((history / ".git" / "objects" / "pack").glob("*.pack"))) == 1
    assert reads_like_git(history) > 20  # packed, offset deltas
    git(history, "-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-a", "-d", "-f")
    assert reads_like_git(history) > 20  # reference deltas
    git(history, "pack-refs", "--all")
    assert not (history / ".git" / "refs" / "tags" / "v1").exists()
    assert reads_like_git(history) > 20  # packed refs


def test_abbreviated_ids(make_repo):
    repo = make_repo({"x.c": "int x;\n"})
    blobs = {str(repo.create_blob(f"blob {i}\n".encode())): f"blob {i}\n".encode()
             for i in range(600)}
    ctx = CodeContext(repo.workdir)
    by4: dict[str, list[str]] = {}
    for h in blobs:
        by4.setdefault(h[:4], []).append(h)
    ambiguous = [p for p, ids in by4.items() if len(ids) > 1]
    assert ambiguous  # 600 blobs: some share their first four digits
    for prefix, ids in by4.items():
        assert ctx._git_blob_by_prefix(prefix) == (blobs[ids[0]] if len(ids) == 1 else None)
    for h, data in blobs.items():
        assert ctx._git_blob_by_prefix(h[:12]) == data and ctx._git_blob_by_prefix(h) == data
    assert ctx._git_blob_by_prefix("abc") is None  # too short to name anything
    assert ctx._git_blob_by_prefix("xyz12") is None and ctx._git_blob_by_prefix("0" * 40) is None
    commit_id = str(repo.head.target)
    assert ctx._git_blob_by_prefix(commit_id[:10]) is None  # not a blob


@needs_git
def test_bare_clone_worktree_and_alternates(history, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", "--no-local", str(history), str(bare))
    assert reads_like_git(bare) > 20
    wt = tmp_path / "wt"
    git(history, "worktree", "add", "-q", str(wt), "old")
    assert (wt / ".git").is_file()
    ctx = CodeContext(str(wt))
    assert ctx.kind == "git" and ctx.read_file("top.h") == "#define N 4\n"  # HEAD is `old`
    shared = tmp_path / "shared"
    git(tmp_path, "clone", "-q", "--shared", str(bare), str(shared))
    assert (shared / ".git" / "objects" / "info" / "alternates").exists()
    ctx = CodeContext(str(shared))
    assert ctx.kind == "git" and ctx.read_file("fs/a.c") == (history / "fs" / "a.c").read_text()


def test_unborn_repository(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "empty"))
    blob = str(repo.create_blob(b"int x;\n"))
    ctx = CodeContext(str(tmp_path / "empty"))
    assert ctx.kind == "git" and ctx.base_tree is None
    assert ctx._git_blob_by_prefix(blob[:7]) == b"int x;\n"
    assert ctx.read_file("x.c") is None and list(ctx.iter_files()) == []
    with pytest.raises(InputError, match="--base"):
        CodeContext(str(tmp_path / "empty"), base="main")


# ------------------------------------------------------------------ bad repositories

def _review(patch: Path, tree: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REVIEWBOT_SERVER="off")
    return subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", str(patch),
                           "--tree", str(tree), *extra], capture_output=True, text=True, env=env)


@pytest.fixture
def patched(history, tmp_path) -> tuple[Path, Path]:
    """(a format-patch of HEAD, the repository reset to its parent)."""
    git(history, "format-patch", "-q", "-1", "-o", str(tmp_path / "out"))
    git(history, "reset", "-q", "--hard", "HEAD~1")
    [patch] = (tmp_path / "out").iterdir()
    return patch, history


@needs_git
def test_unresolvable_base_is_one_line(patched):
    patch, repo = patched
    assert _review(patch, repo).returncode == 0
    out = _review(patch, repo, "--base", "no-such-branch")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"reviewbot: --base no-such-branch: does not resolve in {repo}"]


def _corrupt(pack: Path) -> None:
    data = bytearray(pack.read_bytes())
    for i in range(12, len(data) - 20):  # past the header, up to the checksum
        data[i] ^= 0x55
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))


@needs_git
def test_corrupt_pack_is_one_line(patched, tmp_path):
    patch, repo = patched
    whole = tmp_path / "whole"
    shutil.copytree(repo, whole, symlinks=True)
    pre_blob = git(repo, "rev-parse", "HEAD:fs/a.c").strip()
    assert patch.read_text().count(f"index {pre_blob[:7]}") == 1
    # the blob the patch names alone in a pack (commits and trees stay loose), then broken
    git(repo, "pack-objects", "-q", ".git/objects/pack/pack", stdin=pre_blob + "\n")
    git(repo, "prune-packed")
    [pack] = (repo / ".git" / "objects" / "pack").glob("*.pack")
    _corrupt(pack)
    out = _review(patch, repo)
    assert out.returncode == 2, out.stdout
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"reviewbot: --tree {repo}: cannot read git object"), line
    with pytest.raises(InputError, match="cannot read git object"):
        CodeContext(str(repo))._git_blob(pre_blob)
    # every object in one broken pack: even the base commit cannot be read, and the line
    # says so, naming the commit and the pack (not "does not resolve", issue 15)
    git(whole, "repack", "-q", "-a", "-d")
    [pack] = (whole / ".git" / "objects" / "pack").glob("*.pack")
    _corrupt(pack)
    head = git(repo, "rev-parse", "HEAD").strip()
    out = _review(patch, whole)
    [line] = out.stderr.strip().splitlines()
    assert out.returncode == 2 and line.startswith(
        f"reviewbot: --base HEAD: cannot be read in {whole}: object {head} in {pack}: "), line
    # the blob's own error names its pack too
    with pytest.raises(InputError, match=f"cannot read git object {pre_blob} in .*\\.pack: "):
        CodeContext(str(repo))._git_blob(pre_blob)


def test_patch_from_unknown_blob_falls_back_to_base(make_repo):
    """A blob id the repository lacks is looked for no further: the file at --base is read."""
    repo = make_repo({"x.c": "a\nb\n"})
    diff = ("diff --git a/x.c b/x.c\nindex 0123456..89abcde 100644\n--- a/x.c\n+++ b/x.c\n"
            "@@ -1,2 +1,2 @@\n a\n-b\n+c\n")
    [im] = CodeContext(repo.workdir).images(Patch(subject="t", raw_subject="t", message_id="",
                                                  diff=diff), {})
    assert im.context == "tree" and im.pre == "a\nb\n" and im.post == "a\nc\n"
