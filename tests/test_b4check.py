"""`reviewbot b4-check`: b4 review's per-patch check protocol, run by b4's own code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reviewbot.commands.b4check import checks_for
from reviewbot.model import Finding, Patch, PatchResult, Series, SeriesResult

CASE = Path("/work/shared/corpus/cases/006-seedC-rev")
EXE = str(Path(sys.executable).parent / "reviewbot")
HEADERS = (
    b"From: Bob Peterson <rpeterso@redhat.com>\n"
    b"Subject: [PATCH] GFS2: put the glock on failure\n"
    b"Message-ID: <c006@corpus.invalid>\n"
    b"Date: Fri, 4 Dec 2015 09:00:00 -0500\n"
    b"\nCommit message.\n\nSigned-off-by: Bob Peterson <rpeterso@redhat.com>\n---\n"
)


def need_case():
    if not (CASE / "patch.patch").is_file():
        pytest.skip("corpus case 006 not available")


def patch_mail() -> bytes:
    need_case()
    return HEADERS + (CASE / "patch.patch").read_bytes()


def result(*findings, context="tree"):
    p = Patch(subject="s", raw_subject="[PATCH] s", message_id="m@x")
    s = Series(subject="s", revision=1, message_id="m@x", patches=[p])
    return SeriesResult(
        series=s, patches=[PatchResult(patch=p, context=context, findings=list(findings))]
    )


def fnd(status="introduced", severity="warning", rule="error-path.missing-release"):
    return Finding(
        rule=rule,
        category=rule.split(".")[0],
        severity=severity,
        confidence="high",
        file="fs/x.c",
        function="f",
        line=10,
        message="'gh' is held\nat this exit.",
        status=status,
    )


def test_mapping_of_findings_to_b4_results():
    # issue 14: a patch reviewed whole with nothing new is a `pass` (b4 shows it, as it
    # shows checkpatch's "passed all checks"), not `[]`
    clean = checks_for(result())
    assert [(e["status"], e["summary"]) for e in clean] == [("pass", "no new findings")]
    assert checks_for(result(fnd(status="preexisting"))) == clean
    warn = checks_for(result(fnd()))
    assert [set(e) for e in warn] == [{"tool", "status", "summary", "url", "details"}]
    assert warn[0]["tool"] == "reviewbot" and warn[0]["status"] == "warn"
    assert warn[0]["summary"] == "1 finding: error-path.missing-release"
    details = json.loads(warn[0]["details"])
    assert details == [
        {
            "status": "warn",
            "description": "fs/x.c:10: f(): 'gh' is held at this exit. "
            "[error-path.missing-release, high confidence]",
        }
    ]
    fail = checks_for(result(fnd(), fnd(severity="error", rule="get-put.double-release")))
    assert fail[0]["status"] == "fail" and fail[0]["summary"].startswith("2 findings:")
    assert checks_for(result(fnd(), context="hunks"))[0]["summary"].endswith("(hunks only)")
    fixed = checks_for(result(fnd(status="fixed")))
    assert fixed[0]["status"] == "pass" and "fixes 1 known defect" in fixed[0]["summary"]


def run_cli(args, data: bytes, cwd=None):
    return subprocess.run(
        [EXE, "b4-check", *args], input=data, capture_output=True, cwd=cwd, timeout=120
    )


def test_cli_with_tree_reports_the_double_put():
    r = run_cli(["--tree", str(CASE / "base")], patch_mail())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out) == 1 and out[0]["status"] == "fail"
    assert "get-put.double-release" in out[0]["summary"]
    assert "fs/gfs2/inode.c:202" in json.loads(out[0]["details"])[0]["description"]


def test_cli_cover_letter_and_bad_tree():
    r = run_cli([], b"From: a <a@b.c>\nSubject: [PATCH 0/2] cover\n\nhello\n")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run_cli(["--tree", "/nonexistent/tree"], patch_mail())
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert out[0]["status"] == "fail" and out[0]["summary"].startswith("cannot check:")


B4_SCRIPT = r"""
import email, email.policy, json, sys
import b4
from b4.review import checks
b4._setup_main_config()
perpatch, _series = checks.load_check_cmds()
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
res = checks.run_perpatch_checks([("c006@corpus.invalid", msg)], perpatch, b4.git_get_toplevel())
print(json.dumps({"cmds": perpatch, "results": res}))
"""


def test_b4_review_runs_it_from_git_config_beside_checkpatch(tmp_path):
    """The documented git config line, run by b4's own check runner in a kernel-like repo
    (b4 runs check commands at the top of the repository, so `--tree .` is that tree)."""
    pytest.importorskip("b4.review.checks")
    need_case()
    repo = tmp_path / "linux"
    (repo / "fs" / "gfs2").mkdir(parents=True)
    shutil.copy(CASE / "base" / "fs" / "gfs2" / "inode.c", repo / "fs" / "gfs2" / "inode.c")
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "GIT_CONFIG_NOSYSTEM": "1",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def git(*a):
        subprocess.run(["git", *a], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    git("config", "--add", "b4.review-perpatch-check-cmd", "_builtin_checkpatch")
    git("config", "--add", "b4.review-perpatch-check-cmd", f"{EXE} b4-check --tree .")
    r = subprocess.run(
        [sys.executable, "-c", B4_SCRIPT],
        input=patch_mail(),
        capture_output=True,
        cwd=repo,
        env=env,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr.decode()
    got = json.loads(r.stdout)
    assert got["cmds"][1] == f"{EXE} b4-check --tree ."
    results = got["results"]["c006@corpus.invalid"]
    tools = {e["tool"]: e for e in results}
    assert "checkpatch" in tools  # b4 kept its own check beside ours
    ours = tools["reviewbot"]
    assert ours["status"] == "fail"
    assert "get-put.double-release" in ours["summary"]
