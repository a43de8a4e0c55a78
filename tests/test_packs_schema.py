"""Strict pack checks: each mistake is refused with one line naming the file, the key and
what was expected, from the loader and from every command that loads packs (exit 2)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reviewbot import cli
from reviewbot.packs import load_packs
from reviewbot.packs.schema import PackError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

GOOD = """\
[pack]
name = "frob"

[resources.frob-ref]
kind = "ref"
doc = "a frob reference"

[calls.frob_get]
acquires = "frob-ref"
target = "return"
success = "nonnull"

[calls.frob_put]
releases = "frob-ref"
target = "arg:0"
"""


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("REVIEWBOT_SERVER", "off")
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/reviewbot/config.toml
    load_packs.cache_clear()
    yield
    load_packs.cache_clear()


def _pack(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _refused(tmp_path: Path, text: str) -> str:
    p = _pack(tmp_path, text)
    with pytest.raises(PackError) as e:
        load_packs((str(p),))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"pack {p}: "), msg
    return msg


MISTAKES = {
    # (what is wrong, the pack) -> what the one line must say
    "unknown key": (GOOD.replace("acquires =", "acquire ="),
                    "calls.frob_get: unknown key 'acquire' (expected acquires, releases",
                    "did you mean 'acquires'?"),
    "unknown kind": (GOOD.replace('kind = "ref"', 'kind = "refcount"'),
                     "resources.frob-ref.kind: unknown kind 'refcount' (expected one of "
                     "memory, ref, lock, holder, state", ""),
    "unknown resource": (GOOD.replace('releases = "frob-ref"', 'releases = "frob-reff"'),
                         "calls.frob_put.releases: unknown resource 'frob-reff' (expected a "
                         "resource id from [resources] of a loaded pack",
                         "did you mean 'frob-ref'?"),
    "wrong target": (GOOD.replace('target = "arg:0"', 'target = "arg0"'),
                     'calls.frob_put.target: expected a target ("return", "arg:N", "out:N" '
                     "or \"fmt:TEXT\") or a list of them, got 'arg0'", ""),
    "wrong success": (GOOD.replace('"nonnull"', '"sometimes"'),
                      "calls.frob_get.success: unknown success 'sometimes' (expected one of "
                      "zero, nonnull, not_err", ""),
    "wrong bool": (GOOD.replace('kind = "ref"', 'kind = "ref"\nnull_ok = "yes"'),
                   "resources.frob-ref.null_ok: expected true or false, got 'yes'", ""),
    "wrong int": (GOOD + '[calls.frob_dup]\nreturns_arg = "0"\n',
                  "calls.frob_dup.returns_arg: expected a non-negative integer, got '0'", ""),
    "wrong ids": (GOOD.replace('acquires = "frob-ref"', "acquires = 3"),
                  "calls.frob_get.acquires: expected a resource id or a list of them, got 3",
                  ""),
    "not a table": (GOOD + "[calls]\nfrob_x = 1\n",
                    "calls.frob_x: expected a table, got 1", ""),
    "unknown section": (GOOD + "[call.frob_x]\nalias = true\n",
                        "unknown key 'call' (expected pack, resources, calls, assign, test, ops",
                        "did you mean 'calls'?"),
    "target needed": (GOOD.replace('target = "return"\n', ""),
                      "calls.frob_get: acquires, releases and tests need a target", ""),
    "unknown consumed resource": (
        GOOD + '[calls.frob_free]\nconsumes = [{ resource = "frob", target = "{0}->f" }]\n',
        "calls.frob_free.consumes[0].resource: unknown resource 'frob'", ""),
    "consume without target": (
        GOOD + '[calls.frob_free]\nconsumes = [{ resource = "frob-ref" }]\n',
        "calls.frob_free.consumes[0]: missing key 'target'", ""),
    "assign without release": (GOOD + '[[assign]]\nlhs = "*->f"\nvalue = "null"\n',
                               "assign[0]: value = 'null' takes releases", ""),
    "assign of unknown resource": (
        GOOD + '[[assign]]\nlhs = "*->f"\nacquires = "frob-rf"\n',
        "assign[0].acquires: unknown resource 'frob-rf'", "did you mean 'frob-ref'?"),
    "test of unknown resource": (GOOD + '[[test]]\nexpr = "f->held"\nresource = "frb"\n',
                                 "test[0].resource: unknown resource 'frb'", ""),
    "ops without getter": (GOOD + "[ops.frobops]\nops_arg = 1\n",
                           "ops.frobops: missing key 'getter'", ""),
    "ops use of unknown table": (
        GOOD + '[ops.frobops]\ngetter = "frob_get"\nops_arg = 1\ntables = ["a_ops"]\n'
        '[[ops.frobops.use]]\npattern = "{obj}->x"\nrequires = "b_ops"\n',
        "ops.frobops.use[0].requires: unknown table 'b_ops' (expected one of ops.frobops."
        "tables", ""),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_a_mistake_is_refused_with_one_line(tmp_path, case):
    text, says, hint = MISTAKES[case]
    msg = _refused(tmp_path, text)
    assert says in msg
    assert hint in msg


def test_the_good_pack_loads_after_the_shipped_ones(tmp_path):
    p = load_packs((str(_pack(tmp_path, GOOD)),))
    assert p.names == ["learned", "kernel-core", "gfs2", "ocfs2", "frob"]
    assert p.calls["frob_get"].acquires == ("frob-ref",) and p.calls["frob_get"].pack == "frob"
    assert p.calls["frob_put"].targets[0].how == "arg"
    assert [s.layer for s in p.sources] == ["learned", "shipped", "shipped", "shipped", "user"]


def test_a_toml_syntax_error_names_the_file(tmp_path):
    p = _pack(tmp_path, "[calls.frob\n")
    with pytest.raises(Exception, match=f"pack {p}: ") as e:
        load_packs((str(p),))
    assert "\n" not in str(e.value)


def test_a_missing_user_pack_or_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(Exception, match="no such file or directory"):
        load_packs((str(tmp_path / "nope.toml"),))
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no .toml files"):
        load_packs((str(tmp_path / "empty"),))


# ------------------------------------------------------------------ every command

def _commands(tmp_path: Path, pack: Path) -> dict[str, list[str]]:
    c_file = tmp_path / "a.c"
    c_file.write_text("int f(void)\n{\n\treturn 0;\n}\n")
    corpus = tmp_path / "corpus"
    (corpus / "cases").mkdir(parents=True)
    return {
        "review": ["review", str(EXAMPLES / "series.mbox"), "--pack", str(pack)],
        "audit": ["audit", str(c_file), "--pack", str(pack)],
        "eval": ["eval", str(corpus), "--pack", str(pack)],
        "b4-check": ["b4-check", "--pack", str(pack)],
        "poll": ["poll", "--list", "x", "--lore", "file:///nonexistent", "--state",
                 str(tmp_path / "s.db"), "--outbox", str(tmp_path / "out"), "--pack",
                 str(pack)],
        "rules": ["rules", "--packs", "--pack", str(pack)],
    }


@pytest.mark.parametrize("command", ["review", "audit", "eval", "b4-check", "poll", "rules"])
def test_every_command_refuses_a_bad_pack_with_exit_2(tmp_path, monkeypatch, capsys, command):
    pack = _pack(tmp_path, GOOD.replace("acquires =", "acquire ="))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        (EXAMPLES / "series.mbox").read_bytes())))
    rc = cli.main(_commands(tmp_path, pack)[command])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err == f"reviewbot: pack {pack}: calls.frob_get: unknown key 'acquire' (expected " \
        f"{err.split('(expected ', 1)[1]}"
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["review", "audit", "eval", "b4-check", "poll", "rules"])
def test_every_command_reads_packs_from_the_configuration(tmp_path, monkeypatch, capsys,
                                                          command):
    (tmp_path / "packs").mkdir()
    pack = _pack(tmp_path / "packs", GOOD.replace('kind = "ref"', 'kind = "refcount"'))
    cfg = tmp_path / "config.toml"
    cfg.write_text('[packs]\npaths = ["packs"]\n')  # relative to the configuration file
    monkeypatch.setenv("REVIEWBOT_CONFIG", str(cfg))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    argv = _commands(tmp_path, pack)[command]
    rc = cli.main(argv[:argv.index("--pack")])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err == f"reviewbot: pack {pack}: resources.frob-ref.kind: unknown kind 'refcount' " \
        "(expected one of memory, ref, lock, holder, state)\n"


def test_a_bad_packs_section_of_the_configuration_is_refused(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[packs]\npath = ["packs"]\n')
    monkeypatch.setenv("REVIEWBOT_CONFIG", str(cfg))
    assert cli.main(["rules", "--packs"]) == 2
    assert capsys.readouterr().err == \
        f"reviewbot: config {cfg}: [packs]: unknown key 'path' (expected paths)\n"
    cfg.write_text('[packs]\npaths = "packs"\n')
    assert cli.main(["rules", "--packs"]) == 2
    assert "paths: expected a list of strings" in capsys.readouterr().err


def test_serve_refuses_a_bad_configured_pack(tmp_path):
    """The warm server loads the configuration's packs before it listens: a broken one is
    one line and exit 2, and no socket is left behind."""
    pack = _pack(tmp_path, GOOD.replace('"nonnull"', '"sometimes"'))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[packs]\npaths = ["{pack}"]\n')
    run = tempfile.mkdtemp(prefix="rb-", dir="/tmp")  # short: a socket path has 108 bytes
    try:
        env = dict(os.environ, XDG_RUNTIME_DIR=run, REVIEWBOT_CONFIG=str(cfg),
                   XDG_CACHE_HOME=str(tmp_path / "cache"))
        r = subprocess.run([sys.executable, "-m", "reviewbot.cli", "serve"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr == (
            f"reviewbot: pack {pack}: calls.frob_get.success: unknown success 'sometimes' "
            "(expected one of zero, nonnull, not_err, nonnull_not_err, true, nonneg, always)\n")
        assert not list(Path(run).rglob("*.sock"))
    finally:
        shutil.rmtree(run, ignore_errors=True)
