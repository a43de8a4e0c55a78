"""Issue 14: with no --tree, the git repository the command runs in is the tree (when the
patch is for it); files reviewed on their hunks only warn and exit 3; b4-check answers
pass, warn or fail. Each test makes a real git repository (the bundled example's tree)."""

from __future__ import annotations

import json
import mailbox
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES

from reviewbot.status import EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE

EXE = str(Path(sys.executable).parent / "reviewbot")
MBOX = EXAMPLES / "series.mbox"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1",
            "REVIEWBOT_SERVER": "off", "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config")}


@pytest.fixture
def kernel(tmp_path) -> Path:
    """A git work tree with the example's drivers/misc/demo.c committed (git itself)."""
    repo = tmp_path / "linux"
    shutil.copytree(EXAMPLES / "tree", repo)
    env = _env(tmp_path)
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "b"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def review(tmp_path, *args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "review", *args], cwd=cwd, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


def test_review_inside_the_repository_uses_it_and_finds_the_leak(kernel, tmp_path):
    r = review(tmp_path, str(MBOX), cwd=kernel / "drivers")  # a subdirectory of it
    assert r.returncode == EXIT_FINDINGS, r.stderr
    assert f"reviewing against the git repository {kernel.resolve()} (HEAD)" in r.stderr
    assert "(context: tree)" in r.stdout and "(context: hunks)" not in r.stdout
    assert "error-path.direct-return [introduced] in demo_probe()" in r.stdout
    assert "warning" not in r.stderr
    # the same patch on its hunks only misses it: that is what the tree is for
    hunks = review(tmp_path, str(MBOX), "--no-tree", cwd=kernel)
    assert hunks.returncode == EXIT_CLEAN and "direct-return" not in hunks.stdout
    assert hunks.stderr == ""


def test_a_repository_the_patch_is_not_for_is_not_used(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "README").write_text("nothing of the kernel's\n")
    env = _env(tmp_path)
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "b"]):
        subprocess.run(["git", *args], cwd=other, env=env, check=True, capture_output=True)
    r = review(tmp_path, str(MBOX), cwd=other)
    assert "reviewing against" not in r.stderr
    assert r.returncode == EXIT_INCOMPLETE
    assert "reviewed incompletely, on the hunks only: drivers/misc/demo.c " \
           "(no source tree: hunks only)" in r.stderr
    assert r.stderr.count("drivers/misc/demo.c") == 1  # named once, not once per patch


def test_wrong_tree_warns_and_exits_3_even_with_findings(kernel, tmp_path):
    wrong = tmp_path / "wrong"
    (wrong / "drivers" / "misc").mkdir(parents=True)
    r = review(tmp_path, str(MBOX), "--tree", str(wrong), "--format", "json", cwd=tmp_path)
    assert r.returncode == EXIT_INCOMPLETE
    assert "reviewed incompletely" in r.stderr and \
        f"drivers/misc/demo.c (not found in the tree ({wrong}))" in r.stderr
    doc = json.loads(r.stdout)  # the output is still written, whole
    assert [p["context"] for p in doc["series"][0]["patches"]] == ["hunks", "hunks"]
    # a tree the second patch does not apply to: 3 outranks the findings' 1
    (kernel / "drivers" / "misc" / "demo.c").write_text(
        (kernel / "drivers" / "misc" / "demo.c").read_text().replace("priv->dev = parent;", "priv->dev = NULL;"))
    plain = tmp_path / "plain"
    shutil.copytree(kernel, plain, ignore=shutil.ignore_patterns(".git"))
    r = review(tmp_path, str(MBOX), "--tree", str(plain), cwd=tmp_path)
    assert r.returncode == EXIT_INCOMPLETE, r.stdout
    assert "patch does not apply to the tree" in r.stderr


def test_no_tree_and_tree_together_is_bad_usage(tmp_path):
    r = review(tmp_path, str(MBOX), "--no-tree", "--tree", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "contradict" in r.stderr


def test_git_config_reviewbot_tree_is_used(kernel, tmp_path):
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    env = _env(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=elsewhere, env=env, check=True)
    subprocess.run(["git", "config", "reviewbot.tree", str(kernel)], cwd=elsewhere, env=env,
                   check=True)
    r = review(tmp_path, str(MBOX), cwd=elsewhere)
    assert r.returncode == EXIT_FINDINGS, r.stderr
    assert "direct-return" in r.stdout and "(context: hunks)" not in r.stdout


def test_configuration_file_tree_wins_over_git_config(kernel, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[review]\ntree = "{tmp_path / "empty"}"\n')
    (tmp_path / "empty").mkdir()
    env = _env(tmp_path)
    subprocess.run(["git", "config", "reviewbot.tree", str(kernel)], cwd=kernel, env=env,
                   check=True)
    assert review(tmp_path, str(MBOX), cwd=kernel).returncode == EXIT_FINDINGS
    r = review(tmp_path, str(MBOX), "--config", str(cfg), cwd=kernel)
    assert r.returncode == EXIT_INCOMPLETE and "not found in the tree" in r.stderr
    # and the command line wins over both
    r = review(tmp_path, str(MBOX), "--config", str(cfg), "--tree", str(kernel), cwd=tmp_path)
    assert r.returncode == EXIT_FINDINGS, r.stderr


def test_git_config_pack_is_loaded(tmp_path):
    from test_packs_user import FROB_C, FROB_PACK

    repo = tmp_path / "linux"
    repo.mkdir()
    (repo / "frob.toml").write_text(FROB_PACK)
    lines = FROB_C.splitlines()[:20]
    patch = tmp_path / "frob.patch"
    patch.write_text(
        "From: A Dev <a@example.org>\nSubject: [PATCH] frob: add frob_probe\n\n---\n"
        "diff --git a/drivers/frob.c b/drivers/frob.c\nnew file mode 100644\n"
        "index 0000000..1111111\n--- /dev/null\n+++ b/drivers/frob.c\n"
        f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))
    env = _env(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    assert review(tmp_path, str(patch), cwd=repo).returncode == EXIT_CLEAN
    subprocess.run(["git", "config", "--add", "reviewbot.pack", "frob.toml"], cwd=repo,
                   env=env, check=True)
    r = review(tmp_path, str(patch), cwd=repo)
    assert r.returncode == EXIT_FINDINGS, r.stderr
    assert "error-path.missing-release [introduced] in frob_probe()" in r.stdout
    rules = subprocess.run([EXE, "rules", "--packs"], cwd=repo, env=env, capture_output=True,
                           text=True)
    assert str(repo / "frob.toml") in rules.stdout


def _messages() -> list[bytes]:
    return [m.as_bytes() for m in mailbox.mbox(str(MBOX))]


def b4_check(tmp_path, data: bytes, *args, cwd) -> list[dict]:
    r = subprocess.run([EXE, "b4-check", *args], input=data, cwd=cwd, env=_env(tmp_path),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_b4_check_pass_warn_and_fail(kernel, tmp_path):
    _cover, clean, leaky = _messages()
    ok = b4_check(tmp_path, clean, cwd=kernel)  # b4 runs it at the top of the repository
    assert [(e["tool"], e["status"], e["summary"]) for e in ok] == \
        [("reviewbot", "pass", "no new findings")]
    warn = b4_check(tmp_path, leaky, cwd=kernel)
    assert warn[0]["status"] == "warn" and warn[0]["summary"] == \
        "3 findings: error-path.direct-return"  # the lock, priv and the parent device
    details = json.loads(warn[0]["details"])
    assert {d["status"] for d in details} == {"warn"}
    assert details[0]["description"].startswith("drivers/misc/demo.c:59: demo_probe(): ")  # patch 1 not applied
    # no tree for it: a warning with the reason, never a silent pass
    away = tmp_path / "away"
    away.mkdir()
    inc = b4_check(tmp_path, clean, cwd=away)
    assert inc[0]["status"] == "warn"
    assert inc[0]["summary"] == ("reviewed incompletely: drivers/misc/demo.c on the hunks "
                                 "only; no new findings")
    assert json.loads(inc[0]["details"]) == [
        {"status": "warn",
         "description": "drivers/misc/demo.c: reviewed on the hunks only: no source tree: "
                        "hunks only"}]
    assert b4_check(tmp_path, clean, "--no-tree", cwd=away)[0]["status"] == "pass"
    # an error-severity finding fails
    mangled = leaky.replace(b"+\t\treturn ret;", b"+\t\tput_device(parent);\n+\t\tput_device(parent);\n+\t\treturn ret;")
    assert mangled != leaky
    fail = b4_check(tmp_path, mangled, cwd=kernel)
    assert fail[0]["status"] == "fail", fail
