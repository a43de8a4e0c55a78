"""Start-up work a cold `reviewbot review` does without: the pack cache, lazy imports, one
command's parser. Behaviour must be the same with and without each shortcut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewbot import cli, packs
from reviewbot.model import InputError
from reviewbot.packs import cache

PACK = """\
[pack]
name = "extra"

[resources.extra_ref]
kind = "ref"

[calls.extra_get]
acquires = "extra_ref"
target = "return"
success = "nonnull"
"""


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    packs.load_packs.cache_clear()
    yield home
    packs.load_packs.cache_clear()


def _fresh(extra: tuple[str, ...] = ()) -> packs.Packs:
    packs.load_packs.cache_clear()
    return packs.load_packs(extra)


def test_cached_packs_equal_parsed_packs(cache_home, monkeypatch):
    first = _fresh()
    assert list((cache_home / "reviewbot").glob("packs-*.marshal"))
    assert _fresh() == first  # from the cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home / "elsewhere"))
    assert _fresh() == first  # parsed again


def test_cache_follows_edits_new_and_removed_packs(cache_home, tmp_path):
    extra = tmp_path / "packs"
    extra.mkdir()
    (extra / "one.toml").write_text(PACK)
    assert _fresh((str(extra),)).calls["extra_get"].success == "nonnull"
    (extra / "one.toml").write_text(PACK.replace('"nonnull"', '"not_err"'))
    assert _fresh((str(extra),)).calls["extra_get"].success == "not_err"
    (extra / "two.toml").write_text(PACK.replace("extra_get", "extra_get2"))
    assert "extra_get2" in _fresh((str(extra),)).calls
    (extra / "two.toml").unlink()
    assert "extra_get2" not in _fresh((str(extra),)).calls


def test_bad_pack_is_reported_with_or_without_cache(cache_home, tmp_path):
    extra = tmp_path / "packs"
    extra.mkdir()
    (extra / "bad.toml").write_text(PACK.replace('"nonnull"', '"sometimes"'))
    for _ in range(2):  # a pack that fails its checks must fail the same way when cached
        with pytest.raises(InputError, match="unknown success"):
            _fresh((str(extra),))
    (extra / "bad.toml").write_text("[pack\n")
    with pytest.raises(InputError, match="bad.toml"):
        _fresh((str(extra),))


def test_corrupt_or_unwritable_cache_is_ignored(cache_home):
    want = _fresh()
    [cached] = (cache_home / "reviewbot").glob("packs-*.marshal")
    cached.write_bytes(b"\x00garbage")
    assert _fresh() == want
    cached.write_bytes(cached.read_bytes()[:-1] if cached.stat().st_size > 10 else b"")
    assert _fresh() == want


def test_unwritable_cache_is_ignored(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a cache home under a file cannot be created (even by root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    assert _fresh() == packs.load_packs.__wrapped__()
    assert list(tmp_path.iterdir()) == [blocker]


def test_no_cache_directory(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "relative/home")  # no usable home: no cache, same packs
    assert cache._cache_file([packs.packs_dir()]) is None
    assert _fresh() == packs.load_packs.__wrapped__()


def _imports_after(code: str, env: dict[str, str]) -> set[str]:
    code = f"{code}\nimport sys\nprint(*sys.modules, file=sys.stderr)"  # stdout: the code's
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stderr
    return set(out.split())


def test_warm_cache_skips_tomllib(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    code = "from reviewbot.packs import load_packs; load_packs()"
    assert "tomllib" in _imports_after(code, env)  # the first run parses and stores
    assert "tomllib" not in _imports_after(code, env)


def test_warm_cache_skips_the_schema_too(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    code = "from reviewbot.packs import load_packs; load_packs()"
    assert "reviewbot.packs.schema" in _imports_after(code, env)  # parsed and checked
    assert "reviewbot.packs.schema" not in _imports_after(code, env)  # checked when stored


def test_review_parser_alone_parses_like_the_full_parser():
    argv = ["review", "a.patch", "--tree", "t", "--format", "json", "--all"]
    assert vars(cli.build_parser("review").parse_args(argv)) == \
        vars(cli.build_parser().parse_args(argv))


# ------------------------------------------------------------------ lazy imports

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_review_imports_pygit2_for_a_git_tree_only(tmp_path):
    mbox = EXAMPLES / "series.mbox"
    env = dict(os.environ, REVIEWBOT_SERVER="off", XDG_CACHE_HOME=str(tmp_path))
    # the first run reads the learned pack (JSON) into the pack cache; later runs do without
    assert "json" in _imports_after("from reviewbot.packs import load_packs; load_packs()", env)
    code = ("from reviewbot.cli import main\n"
            f"assert main(['review', {str(mbox)!r}, '--tree', {str(EXAMPLES / 'tree')!r}]) == 1")
    mods = _imports_after(code, env)
    assert "pygit2" not in mods and "json" not in mods
    git = tmp_path / "git"
    subprocess.run(["cp", "-R", str(EXAMPLES / "tree"), str(git)], check=True)
    import pygit2

    repo = pygit2.init_repository(str(git))
    repo.index.add_all()
    repo.index.write()
    sig = pygit2.Signature("t", "t@example.org", 1700000000, 0)
    repo.create_commit("HEAD", sig, sig, "base", repo.index.write_tree(), [])
    code = code.replace(repr(str(EXAMPLES / "tree")), repr(str(git)))
    assert "pygit2" in _imports_after(code, env)



def test_warm_server_has_what_a_review_imports(tmp_path):
    """A served review forks from the warm server: the mail parser's and the git reader's
    libraries are imported there once, not in every child."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    mods = _imports_after("from reviewbot.serve.server import _warm\n_warm()", env)
    assert {"email.headerregistry", "email.utils", "pygit2", "tree_sitter"} <= mods
