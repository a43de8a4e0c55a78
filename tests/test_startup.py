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


def test_review_parser_alone_parses_like_the_full_parser():
    argv = ["review", "a.patch", "--tree", "t", "--format", "json", "--all"]
    assert vars(cli.build_parser("review").parse_args(argv)) == \
        vars(cli.build_parser().parse_args(argv))


# ------------------------------------------------------------------ plain messages

DIFF = """diff --git a/drivers/x.c b/drivers/x.c
index 1111111..2222222 100644
--- a/drivers/x.c
+++ b/drivers/x.c
@@ -1,3 +1,3 @@
 int a;
-int b;
+int c;
 int d;
"""
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

_NAMES = ["Dev 0", "J. Doe", "O'Brien", '"Quoted, Name"', "=?utf-8?q?J=C3=B6rg?=", "Jörg",
          "A (comment)", "", "Name With  Spaces", "trailing.", "Foo via B4 Relay"]
_SUBJECTS = ["[PATCH v2 1/3] x: y", "=?utf-8?b?W1BBVENIIDEvMl0gw6R0c2No?=",
             "[PATCH 2/2] a\n  folded  subject", "Re: [PATCH] x",
             '[RFC PATCH 0/2] (paren) "q" \\ back', "[PATCH]\n\tx: tab folded"]
_BODIES = [
    ("", "Fix.\n\nSigned-off-by: A <a@ex.org>\n---\n" + DIFF),
    ("", "From: Real Author <real@ex.org>\n\nFix.\n---\n" + DIFF),
    ("", "From: =?utf-8?q?J=C3=B6rg?= <j@ex.org>\n\nFix.\n---\n" + DIFF),
    ("Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n",
     "Fix für ä.\n---\n" + DIFF),
    ("Content-Type: text/plain; charset=\"iso-8859-1\"\n", "Fix f\xfcr.\n---\n" + DIFF),
    ("Content-Type: text/plain; charset=utf-8; format=flowed\n", "Fix.\n---\n" + DIFF),
    ("Content-Transfer-Encoding: quoted-printable\n", "Fix=3D.\n---\n" + DIFF),
    ("Content-Type: multipart/mixed; boundary=b\n",
     "--b\nContent-Type: text/plain\n\nFix.\n---\n" + DIFF + "--b--\n"),
    ("X-Original-From: Orig Author <orig@ex.org>\nList-Id: <x.lists.ex.org>\n",
     "Fix.\n---\n" + DIFF),
    ("Message-ID: <dup@x>\nSubject: second subject\n", "Fix.\n---\n" + DIFF),
    ("", "Fix.\r\nwith a lone \r in it\n---\n" + DIFF + "-- \n2.39.0\n\n"),
]


def _same_as_email(chunk: bytes) -> bool:
    """plain_patch gives what patch_from_message gives (message aside) or declines."""
    from reviewbot.input.sources import _parse_message, patch_from_message, plain_patch

    quick = plain_patch(chunk, source="s")
    if quick is None:
        return False
    full = patch_from_message(_parse_message(chunk), source="s")
    full.message = None
    assert quick == full
    return True


@pytest.mark.parametrize("name", _NAMES)
@pytest.mark.parametrize("subject", _SUBJECTS)
@pytest.mark.parametrize("extra, body", _BODIES)
def test_plain_patch_equals_email_package(name, subject, extra, body):
    fr = f"{name} <a@ex.org>" if name else "a@ex.org"
    raw = (f"From: {fr}\nTo: {fr}, b@c.org, \"X, Y\" <x@y.org>\nCc: {fr}\n  , c@d.org\n"
           f"Subject: {subject}\nMessage-ID: <m@x>\nIn-Reply-To: <p@x> (comment)\n"
           f"References: <r1@x>\n <r2@x>\nDate: Mon, 4 Mar 2024\n  10:00:00 +0000\n"
           f"{extra}\n{body}")
    for data in (raw.encode("utf-8"), raw.encode("latin-1", "replace")):
        _same_as_email(data)


def test_plain_patch_reads_common_patches_and_declines_the_rest():
    plain = ("From: A Dev <a@ex.org>\nTo: b@ex.org\nSubject: [PATCH] x: y\n"
             "Message-ID: <m@x>\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nFix.\n---\n" + DIFF)
    assert _same_as_email(plain.encode())
    assert _same_as_email(plain.replace("To: b@ex.org", "To: B <b@ex.org>,\n\tc@ex.org")
                          .encode())
    for bad in ("Subject: =?utf-8?q?x?=", "Content-Transfer-Encoding: base64",
                "Content-Type: multipart/mixed; boundary=b", "Subject: caf\xe9",
                " continuation first", "Not a header line"):
        text = plain.replace("Subject: [PATCH] x: y", bad) if bad.startswith("Subject") else \
            plain.replace("To: b@ex.org", bad)
        assert not _same_as_email(text.encode("utf-8")), bad


def test_plain_patch_on_examples_and_corpus():
    from reviewbot.input.sources import _mbox_chunks

    files = sorted(EXAMPLES.rglob("*.mbox")) + sorted(CORPUS.glob("cases/*/patch.mbox"))
    read = [_same_as_email(c) for f in files for c in _mbox_chunks(f.read_bytes())]
    assert read and all(read)  # all of them are plain format-patch mails


def test_review_loads_patches_alike_with_and_without_messages(tmp_path):
    from reviewbot.input.sources import load_paths

    mbox = EXAMPLES / "series.mbox"
    with_msgs = load_paths([str(mbox)])
    without = load_paths([str(mbox)], messages=False)
    read = [p for s in with_msgs for p in (*s.patches, *s.replies, s.cover) if p is not None]
    assert len(read) > 2 and all(p.message is not None for p in read)
    for p in read:
        p.message = None
    assert without == with_msgs


def test_text_review_does_not_import_email(tmp_path):
    mbox = EXAMPLES / "series.mbox"
    env = dict(os.environ, REVIEWBOT_SERVER="off", XDG_CACHE_HOME=str(tmp_path))
    code = ("from reviewbot.cli import main\n"
            f"assert main(['review', {str(mbox)!r}, '--tree', {str(EXAMPLES / 'tree')!r}]) == 1")
    mods = _imports_after(code, env)
    assert "email" not in mods and "pygit2" not in mods and "json" not in mods

