"""Issue 14: audit baselines (stable fingerprints, only new findings printed), ignore
rules (--ignore, [[ignore]], git config reviewbot.ignore) and inline markers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES

from reviewbot import cli
from reviewbot.review import baseline
from reviewbot.review.ignore import markers

DEMO = (EXAMPLES / "tree" / "drivers" / "misc" / "demo.c").read_text()
EARLY = "\tmutex_lock(&demo_lock);\n"
LEAK = EARLY + "\n\tif (!parent->p)\n\t\treturn -EINVAL;\n"


def sources() -> str:
    """demo_probe (clean) and demo_probe2, which already leaks on one exit."""
    second = DEMO[DEMO.index("static int demo_probe("):DEMO.index("MODULE_LICENSE")]
    second = second.replace("demo_probe(", "demo_probe2(").replace(EARLY, LEAK)
    return DEMO.replace("MODULE_LICENSE", second + "MODULE_LICENSE")


def audit(capsys, path: Path, *extra: str) -> tuple[int, list[str], str]:
    rc = cli.main(["audit", str(path), "--terse", "--min-confidence", "low", *extra])
    out = capsys.readouterr()
    return rc, out.out.splitlines(), out.err


def test_baseline_prints_only_the_new_leak_and_ignores_line_shifts(tmp_path, capsys):
    src = tmp_path / "drivers" / "demo.c"
    src.parent.mkdir()
    src.write_text(sources())
    base = tmp_path / "baseline.json"
    rc, first, err = audit(capsys, src.parent, "--baseline", str(base))
    assert rc == 1 and first and all("demo_probe2" not in ln or "direct-return" in ln
                                     for ln in first)
    assert f"baseline {base} written: {len(first)} finding(s)" in err
    doc = json.loads(base.read_text())
    assert doc["version"] == 1 and sum(e["count"] for e in doc["fingerprints"]) == len(first)
    assert all(e["function"] == "demo_probe2" for e in doc["fingerprints"])
    assert not any(ch.isdigit() for e in doc["fingerprints"] for ch in e["message"])
    # the same tree again: nothing new, exit 0
    assert audit(capsys, src.parent, "--baseline", str(base))[:2] == (0, [])
    # move code: twenty lines above everything, and the two functions swapped
    text = sources()
    a, b = text.index("static int demo_probe("), text.index("static int demo_probe2(")
    end = text.index("MODULE_LICENSE")
    moved = "/*\n" + " * moved\n" * 20 + " */\n" + text[:a] + text[b:end] + text[a:b] + text[end:]
    src.write_text(moved)
    rc, lines, _ = audit(capsys, src.parent, "--baseline", str(base))
    assert (rc, lines) == (0, [])
    # a leak added to one function: only its findings are new
    at = moved.index("static int demo_probe(")
    src.write_text(moved[:at] + moved[at:].replace(EARLY, LEAK, 1))
    changed = src.read_text()
    assert changed.count("parent->p") == 2
    rc, new, _ = audit(capsys, src.parent, "--baseline", str(base))
    assert rc == 1 and new
    assert all("direct-return" in ln for ln in new)
    full = audit(capsys, src.parent)[1]
    assert len(full) == len(first) + len(new)  # the old ones are there, just not new
    assert all(ln.startswith(f"{src}:") for ln in new)
    assert set(full) - set(new) != set() and not set(new) - set(full)
    cli.main(["audit", str(src.parent), "--format", "json", "--min-confidence", "low",
              "--baseline", str(base)])
    assert {f["function"] for f in json.loads(capsys.readouterr().out)["findings"]} == \
        {"demo_probe"}  # the changed function's, none of demo_probe2's
    # text output says how many were known
    cli.main(["audit", str(src.parent), "--min-confidence", "low", "--baseline", str(base)])
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{len(new)} new finding(s) in 1 file(s): ")
    assert last.endswith(f"({len(first)} known, in baseline {base})")


def test_fingerprint_ignores_numbers_and_moves():
    from reviewbot.model import Finding

    f = Finding("get-put.leak", "get-put", "warning", "high", "./fs/x.c", "f", 10,
                "'p' acquired at line 12  is\nnot released", resource="p")
    g = Finding("get-put.leak", "get-put", "warning", "high", "fs/x.c", "f", 99,
                "'p' acquired at line 101 is not released", resource="p")
    assert baseline.fingerprint(f) == baseline.fingerprint(g)
    other = Finding("get-put.leak", "get-put", "warning", "high", "fs/x.c", "f", 99,
                    "'q' acquired at line 101 is not released", resource="q")
    assert baseline.new_findings([f, g, other], {baseline.fingerprint(f): 1}) == [g, other]


def test_bad_baseline_is_one_line(tmp_path, capsys):
    bad = tmp_path / "b.json"
    bad.write_text("{\"version\": 7}")
    src = tmp_path / "demo.c"
    src.write_text(DEMO)
    assert cli.main(["audit", str(src), "--baseline", str(bad)]) == 2
    assert capsys.readouterr().err == f"reviewbot: --baseline {bad}: not a reviewbot " \
                                      "baseline (version 1)\n"


def test_ignore_rules_and_markers(tmp_path, capsys):
    src = tmp_path / "demo.c"
    src.write_text(sources())
    rc, all_, _ = audit(capsys, src)
    assert rc == 1 and all_
    for spec in ("direct-return", "error-path", "error-path.direct-return",
                 f"direct-return:{tmp_path}/*", "direct-return:*:demo_probe2"):
        assert audit(capsys, src, "--ignore", spec)[:2] == (0, []), spec
    assert audit(capsys, src, "--ignore", "direct-return:*:other_fn")[1] == all_
    # the configuration file's [[ignore]]
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[ignore]]\nrule = "direct-return"\nfunction = "demo_probe*"\n')
    assert audit(capsys, src, "--config", str(cfg))[:2] == (0, [])
    cfg.write_text('[[ignore]]\nrule = "direct-return"\nfunktion = "x"\n')
    assert cli.main(["audit", str(src), "--config", str(cfg)]) == 2
    assert "unknown key 'funktion'" in capsys.readouterr().err
    # a marker in the function's body silences its findings of that rule
    marked = sources().replace("\t\treturn -EINVAL;\n",
                               "\t\treturn -EINVAL;\t/* reviewbot: ignore direct-return */\n")
    src.write_text(marked)
    assert audit(capsys, src)[:2] == (0, [])
    # a marker above the function, for another rule: nothing silenced
    src.write_text(sources().replace("static int demo_probe2(",
                                     "/* reviewbot: ignore get-put.leak */\n"
                                     "static int demo_probe2("))
    assert len(audit(capsys, src)[1]) == len(all_)
    src.write_text(sources().replace("static int demo_probe2(",
                                     "/* reviewbot: ignore direct-return */\n"
                                     "static int demo_probe2("))
    assert audit(capsys, src)[:2] == (0, [])


def test_marker_spans_are_functions():
    text = ("int a;\n\n/* reviewbot: ignore leak */\nstatic int f(void)\n{\n\treturn 0;\n}\n"
            "\nstatic int g(void)\n{\n\treturn 1; /* reviewbot: ignore unchecked, leak */\n}\n")
    got = [(m.first, m.last, m.rules) for m in markers(text)]
    assert (3, 7, ("leak",)) in got  # the comment above f covers f
    assert (11, 11, ("unchecked", "leak")) in got and (9, 12, ("unchecked", "leak")) in got
    assert not any(m[0] <= 1 <= m[1] for m in got)


def test_git_config_ignore_and_pack(tmp_path):
    import sys

    exe = str(Path(sys.executable).parent / "reviewbot")
    repo = tmp_path / "linux"
    repo.mkdir()
    (repo / "demo.c").write_text(sources())
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1",
           "REVIEWBOT_SERVER": "off"}
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)

    def run():
        return subprocess.run([exe, "audit", "demo.c", "--terse", "--min-confidence", "low"],
                              cwd=repo, env=env, capture_output=True, text=True)

    assert run().returncode == 1
    subprocess.run(["git", "config", "--add", "reviewbot.ignore", "direct-return"], cwd=repo,
                   env=env, check=True)
    r = run()
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    # a malformed entry is named, exit 2
    subprocess.run(["git", "config", "--add", "reviewbot.ignore", "a:b:c:d"], cwd=repo,
                   env=env, check=True)
    r = run()
    assert r.returncode == 2 and "git config reviewbot.ignore: 'a:b:c:d'" in r.stderr
    subprocess.run(["git", "config", "--unset-all", "reviewbot.ignore"], cwd=repo, env=env,
                   check=True)
    subprocess.run(["git", "config", "--add", "reviewbot.pack", "nosuch.toml"], cwd=repo,
                   env=env, check=True)
    r = run()
    assert r.returncode == 2 and "nosuch.toml" in r.stderr


@pytest.mark.parametrize("spec", ["", ":x"])
def test_bad_ignore_spec(spec, capsys, tmp_path):
    (tmp_path / "a.c").write_text("int x;\n")
    assert cli.main(["audit", str(tmp_path / "a.c"), "--ignore", spec]) == 2
    assert "expected RULE[:PATH_GLOB[:FUNCTION]]" in capsys.readouterr().err


def test_git_config_is_read_only_when_a_file_may_set_reviewbot_keys(tmp_path, monkeypatch):
    from reviewbot import config

    home = tmp_path / "home"
    home.mkdir()
    for var in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG", "GIT_DIR",
                "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    system_mentions = config._may_have_keys(str(tmp_path))  # /etc/gitconfig of this machine
    if not system_mentions:
        assert not config._may_have_keys(str(repo))
        calls = []
        with monkeypatch.context() as m:  # no git subprocess on this path
            m.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
            assert config.git_config(str(repo)) == {} and calls == []
    subprocess.run(["git", "config", "--add", "reviewbot.ignore", "leak"], cwd=repo, env=env,
                   check=True)
    subprocess.run(["git", "config", "--add", "reviewbot.ignore", "unchecked:fs/*"], cwd=repo,
                   env=env, check=True)
    assert config._may_have_keys(str(repo))
    assert config.git_config(str(repo))["reviewbot.ignore"] == ["leak", "unchecked:fs/*"]
    # the user's file: read from anywhere
    (home / ".gitconfig").write_text("[reviewbot]\n\ttree = /src/linux\n")
    assert config.git_config(str(tmp_path))["reviewbot.tree"] == ["/src/linux"]
