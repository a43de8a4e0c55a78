"""Shared fixtures: the public corpus, the bundled example, small git repositories."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture
def corpus_dir() -> Path:
    """/work/shared/corpus (skips the test when it is absent)."""
    if not (CORPUS / "cases").is_dir():
        pytest.skip("shared corpus not present")
    return CORPUS


def git_commit(repo: pygit2.Repository, files: dict[str, str | None], message: str = "c"):
    """Commit `files` (path -> text, None deletes) on top of HEAD; returns the commit id."""
    sig = pygit2.Signature("Test Author", "test@example.org", 1700000000, 0)
    parents = [] if repo.head_is_unborn else [repo.head.target]
    index = pygit2.Index()
    if parents:
        index.read_tree(repo[parents[0]].peel(pygit2.Tree))
    for path, text in files.items():
        if text is None:
            index.remove(path)
        else:
            blob = repo.create_blob(text.encode())
            index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
    tree = index.write_tree(repo)
    return repo.create_commit("HEAD", sig, sig, message, tree, parents)


@pytest.fixture
def commit():
    """commit(repo, files, message) -> commit id (see git_commit)."""
    return git_commit


@pytest.fixture
def make_repo(tmp_path):
    """make_repo(files, bare=False) -> pygit2.Repository with one commit of `files`."""

    def make(files: dict[str, str], bare: bool = False, name: str = "repo"):
        repo = pygit2.init_repository(str(tmp_path / name), bare=bare)
        git_commit(repo, files, "initial")
        return repo

    return make
