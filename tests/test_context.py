from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pygit2
import pytest

from reviewbot.context.diff import index_blobs
from reviewbot.context.tree import CodeContext, safe_relpath
from reviewbot.input.mbox import load_paths
from reviewbot.model import InputError, Patch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

V1 = "".join(f"int v{i};\n" for i in range(1, 31))
V2 = V1.replace("int v10;\n", "int v10; /* changed at base */\n")


def patch_of(diff: str) -> Patch:
    return Patch(subject="t", raw_subject="t", message_id="", diff=diff)


def make_diff(repo, a, b) -> str:
    return repo.diff(a, b).patch


@pytest.fixture
def repo_setup(make_repo, commit):
    """A repo whose HEAD has V2, an older commit with V1, and a diff made against V1."""
    repo = make_repo({"drivers/a.c": V1, "README": "hi\n"})
    c1 = repo.head.target
    # a commit that is not in HEAD's history: the patch's own change
    sig = pygit2.Signature("T", "t@example.org", 1700000000, 0)
    idx = pygit2.Index()
    idx.read_tree(repo[c1].peel(pygit2.Tree))
    idx.add(pygit2.IndexEntry("drivers/a.c", repo.create_blob(
        V1.replace("int v20;\n", "int v20_new;\n").encode()), pygit2.enums.FileMode.BLOB))
    side = repo.create_commit(None, sig, sig, "side", idx.write_tree(repo), [c1])
    diff = make_diff(repo, c1, side)
    c2 = commit(repo, {"drivers/a.c": V2})
    return repo, c1, c2, diff


def test_index_blob_by_abbreviated_id(repo_setup):
    repo, c1, c2, diff = repo_setup
    assert "index " in diff and len(diff.split("index ")[1].split("..")[0]) < 40
    ctx = CodeContext(repo.workdir)
    [im] = ctx.images(patch_of(diff), {})
    assert im.context == "tree" and im.resolved
    assert im.pre == V1  # from the blob named on the index line, not from HEAD (V2)
    assert "int v20_new;\n" in im.post and "changed at base" not in im.post
    assert im.changed_post == {20} and im.changed_pre == {20}


def test_base_fallback_when_blob_unknown(repo_setup):
    repo, c1, c2, diff = repo_setup
    diff = diff.replace(diff.split("index ")[1].split("..")[0], "abcdef0")
    [im] = CodeContext(repo.workdir).images(patch_of(diff), {})
    assert im.context == "tree" and im.pre == V2  # the file at HEAD
    assert "changed at base" in im.post and "int v20_new;" in im.post
    [im1] = CodeContext(repo.workdir, base=str(c1)).images(patch_of(diff), {})
    assert im1.pre == V1


def test_bad_base_and_missing_tree(repo_setup, tmp_path):
    repo = repo_setup[0]
    with pytest.raises(InputError, match="--base"):
        CodeContext(repo.workdir, base="no-such-branch")
    with pytest.raises(InputError, match="no such"):
        CodeContext(str(tmp_path / "absent"))


def test_bare_repository(make_repo, commit):
    repo = make_repo({"x.c": V1}, bare=True, name="bare.git")
    assert repo.is_bare
    c1 = repo.head.target
    c2 = commit(repo, {"x.c": V1.replace("int v3;", "int v3_b;")})
    diff = make_diff(repo, c1, c2)
    [im] = CodeContext(repo.path).images(patch_of(diff), {})
    assert im.context == "tree" and "int v3_b;" in im.post
    ctx = CodeContext(repo.path)
    assert ctx.read_file("x.c").startswith("int v1;")
    assert [p for p, _ in ctx.iter_files((".c",))] == ["x.c"]


def test_not_applying_falls_back_to_hunks(repo_setup):
    repo, c1, c2, diff = repo_setup
    diff = diff.replace("-int v20;", "-int v20_other;").replace(
        diff.split("index ")[1].split("..")[0], "abcdef0")
    [im] = CodeContext(repo.workdir).images(patch_of(diff), {})
    assert im.context == "hunks" and not im.resolved
    assert "does not apply" in im.note
    assert im.post.splitlines()[19] == "int v20_new;"


def test_file_not_in_tree(tmp_path):
    (tmp_path / "t").mkdir()
    diff = "--- a/gone.c\n+++ b/gone.c\n@@ -2,1 +2,1 @@\n-x\n+y\n"
    [im] = CodeContext(str(tmp_path / "t")).images(patch_of(diff), {})
    assert not im.resolved and im.context == "hunks" and "not found" in im.note
    assert im.post == "\ny\n"


def test_no_tree_hunks_only():
    diff = "--- a/f.c\n+++ b/f.c\n@@ -3,2 +3,2 @@\n ctx\n-x\n+y\n"
    [im] = CodeContext(None).images(patch_of(diff), {})
    assert im.context == "hunks" and not im.resolved and "no source tree" in im.note
    assert im.post.splitlines() == ["", "", "ctx", "y"]
    assert im.changed_post == {4} and im.changed_pre == {4}


def test_plain_directory_and_example_series_cumulative():
    tree = EXAMPLES / "tree"
    ctx = CodeContext(str(tree))
    assert ctx.kind == "dir"  # inside this git checkout, but opened as a plain directory
    [series] = load_paths([str(EXAMPLES / "series.mbox")])
    overlay: dict[str, str | None] = {}
    [im1] = ctx.images(series.patches[0], overlay)
    assert im1.context == "tree" and im1.resolved
    assert "#define DEMO_BUF_SIZE 128" in im1.post
    assert overlay["drivers/misc/demo.c"] == im1.post
    [im2] = ctx.images(series.patches[1], overlay)
    assert im2.pre == im1.post  # patch 2 sees patch 1 applied
    assert "DEMO_BUF_SIZE 128" in im2.post and "-EPROBE_DEFER" in im2.post
    lines = im2.post.splitlines()
    assert {lines[n - 1].strip() for n in im2.changed_post} >= {"return ret;"}
    # the index lines name the real blobs
    base_blob = str(pygit2.hash((tree / "drivers/misc/demo.c").read_bytes()))
    assert f"index {base_blob[:7]}.." in series.patches[0].diff
    assert f"..{str(pygit2.hash(im2.post.encode()))[:7]} " in series.patches[1].diff


def test_example_applies_with_git(tmp_path):
    work = tmp_path / "w"
    subprocess.run(["cp", "-R", str(EXAMPLES / "tree"), str(work)], check=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    r = subprocess.run(["git", "-C", str(work), "apply", "--check", str(EXAMPLES / "series.mbox")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cumulative_overlay_required(tmp_path):
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.c").write_text("a\nb\nc\n")
    p1 = patch_of("--- a/d/f.c\n+++ b/d/f.c\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
    p2 = patch_of("--- a/d/f.c\n+++ b/d/f.c\n@@ -1,3 +1,3 @@\n a\n-B\n+BB\n c\n")
    ctx = CodeContext(str(root))
    overlay: dict[str, str | None] = {}
    ctx.images(p1, overlay)
    [im] = ctx.images(p2, overlay)
    assert im.resolved and im.post == "a\nBB\nc\n"
    [alone] = ctx.images(p2, {})
    assert not alone.resolved and alone.context == "hunks"
    assert (root / "d" / "f.c").read_text() == "a\nb\nc\n"  # nothing written


def test_new_deleted_renamed_with_overlay(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "old.c").write_text("x\ny\n")
    (root / "gone.c").write_text("z\n")
    diff = (
        "diff --git a/old.c b/new.c\nsimilarity index 60%\nrename from old.c\nrename to new.c\n"
        "--- a/old.c\n+++ b/new.c\n@@ -1,2 +1,2 @@\n x\n-y\n+Y\n"
        "diff --git a/gone.c b/gone.c\ndeleted file mode 100644\n--- a/gone.c\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-z\n"
        "diff --git a/n.h b/n.h\nnew file mode 100644\n--- /dev/null\n+++ b/n.h\n"
        "@@ -0,0 +1 @@\n+int n;\n"
    )
    overlay: dict[str, str | None] = {}
    ims = CodeContext(str(root)).images(patch_of(diff), overlay)
    by = {im.path: im for im in ims}
    assert by["new.c"].old_path == "old.c" and by["new.c"].post == "x\nY\n"
    assert by["gone.c"].post is None and by["gone.c"].pre == "z\n"
    assert by["n.h"].pre is None and by["n.h"].post == "int n;\n"
    assert overlay == {"new.c": "x\nY\n", "old.c": None, "gone.c": None, "n.h": "int n;\n"}
    # a later patch touching the deleted file cannot resolve it
    later = patch_of("--- a/gone.c\n+++ b/gone.c\n@@ -1 +1 @@\n-z\n+w\n")
    [im] = CodeContext(str(root)).images(later, overlay)
    assert not im.resolved and "deleted by an earlier patch" in im.note


def test_binary_and_non_c_files(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "notes.txt").write_text("one\ntwo\n")
    diff = (
        "diff --git a/fw.bin b/fw.bin\nindex 1234567..89abcde 100644\n"
        "Binary files a/fw.bin and b/fw.bin differ\n"
        "diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n"
        "@@ -1,2 +1,2 @@\n one\n-two\n+three\n"
    )
    ims = CodeContext(str(root)).images(patch_of(diff), {})
    assert "binary" in ims[0].note and ims[0].post is None
    assert ims[1].post == "one\nthree\n" and ims[1].context == "tree"


@pytest.mark.parametrize("bad", ["../outside.c", "a/../../outside.c", "/etc/passwd"])
def test_path_traversal_rejected(tmp_path, bad):
    root = tmp_path / "t"
    root.mkdir()
    (tmp_path / "outside.c").write_text("secret\n")
    diff = f"--- {bad}\n+++ {bad}\n@@ -1 +1 @@\n-secret\n+public\n"
    [im] = CodeContext(str(root)).images(patch_of(diff), {})
    assert not im.resolved and "unsafe" in im.note
    assert im.context == "hunks"


def test_git_style_traversal_rejected(repo_setup):
    repo = repo_setup[0]
    diff = "diff --git a/../x.c b/../x.c\n--- a/../x.c\n+++ b/../x.c\n@@ -1 +1 @@\n-a\n+b\n"
    [im] = CodeContext(repo.workdir).images(patch_of(diff), {})
    assert not im.resolved and "unsafe" in im.note


def test_symlink_leaving_tree_not_read(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (tmp_path / "secret.c").write_text("secret\n")
    os.symlink(tmp_path / "secret.c", root / "link.c")
    (root / "ok.c").write_text("fine\n")
    os.symlink(root / "ok.c", root / "inner.c")
    diff = "--- a/link.c\n+++ b/link.c\n@@ -1 +1 @@\n-secret\n+public\n"
    ctx = CodeContext(str(root))
    [im] = ctx.images(patch_of(diff), {})
    assert not im.resolved and "not found" in im.note
    assert ctx.read_file("link.c") is None
    assert ctx.read_file("inner.c") == "fine\n"  # a link that stays inside is fine
    assert dict(ctx.iter_files((".c",))) == {"inner.c": "fine\n", "ok.c": "fine\n"}


def test_safe_relpath():
    assert safe_relpath("a/./b.c") == "a/b.c"
    for bad in ("", "/x", "../x", "a/../../x", "a\\b", ".git/config", "a\x00b"):
        assert safe_relpath(bad) is None


def test_read_file_and_iter_files_git(repo_setup):
    repo = repo_setup[0]
    ctx = CodeContext(repo.workdir)
    assert ctx.read_file("drivers/a.c") == V2
    assert ctx.read_file("missing.c") is None
    assert ctx.read_file("../etc/passwd") is None
    assert [p for p, _ in ctx.iter_files()] == ["drivers/a.c"]
    assert sorted(p for p, _ in ctx.iter_files(("", ))) == ["README", "drivers/a.c"]
    assert CodeContext(None).read_file("x.c") is None
    assert list(CodeContext(None).iter_files()) == []


def test_quilt_style_prefixes_are_stripped(tmp_path):
    root = tmp_path / "t"
    (root / "fs").mkdir(parents=True)
    (root / "fs" / "x.c").write_text("a\nb\n")
    diff = "--- linux.orig/fs/x.c\n+++ linux/fs/x.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    overlay: dict[str, str | None] = {}
    [im] = CodeContext(str(root)).images(patch_of(diff), overlay)
    assert im.resolved and im.path == "fs/x.c" and im.post == "a\nc\n"
    assert list(overlay) == ["fs/x.c"]


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CASES = sorted((CORPUS / "cases").glob("*/")) if (CORPUS / "cases").is_dir() else []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_through_git_tree(case, make_repo, commit):
    files = {
        str(p.relative_to(case / "base")): p.read_text()
        for p in (case / "base").rglob("*") if p.is_file()
    }
    repo = make_repo({"MAINTAINERS": "x\n"})
    commit(repo, files)
    post = dict(ln.split()[::-1] for ln in (case / "post.sha1").read_text().splitlines())
    base = dict(ln.split()[::-1] for ln in (case / "base.sha1").read_text().splitlines())
    patch_file = next(p for p in (case / "patch.mbox", case / "patch.patch") if p.exists())
    [series] = load_paths([str(patch_file)])
    named = {pf.path: index_blobs(pf)[0] for pf in series.patches[0].patchset}
    by_index = all(base[f].startswith(b) for f, b in named.items())
    if by_index:  # the index lines name the base blobs: HEAD may move on
        commit(repo, {k: "/* moved on */\n" + v for k, v in files.items()})
    ims = CodeContext(repo.workdir).images(series.patches[0], {})
    assert {im.path for im in ims} == set(post)
    for im in ims:
        assert im.context == "tree" and im.resolved, im.note
        assert str(pygit2.hash(im.post.encode())) == post[im.path]
        assert not im.pre.startswith("/* moved on */")  # the index blob, not HEAD
    if not by_index:  # case 035: other blobs named, found at HEAD with an offset
        assert any(b is not None for b in named.values())
