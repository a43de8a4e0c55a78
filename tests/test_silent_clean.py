"""No silent "clean": what cannot be reviewed is named and the exit status says so.

A malformed hunk header (unreviewable patch: exit 3 beside reviewed ones, 2 alone),
`#if 0` code blanked before parsing (its braces cannot hide a leak), a function too
deep for the analyser (exit 3), a resent cover letter (never displaces its series).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewbot.cmodel import parse_c, parse_region
from reviewbot.cmodel.annotations import blank_disabled
from reviewbot.context.diff import parse_diff
from reviewbot.input.mbox import load_paths
from reviewbot.model import InputError

LEAKY = """#include <linux/slab.h>

int widget_open(int n)
{
\tchar *p;

\tp = kmalloc(n, GFP_KERNEL);
\tif (!p)
\t\treturn -ENOMEM;
\tkfree(p);
\treturn 0;
}
"""
LEAK = ("\tkfree(p);\n", "\tif (n > 4)\n\t\treturn -EINVAL;\n\tkfree(p);\n")


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


def repo_and_patch(tmp_path: Path, files: dict[str, str], edit) -> tuple[Path, Path]:
    """(a git repository of `files`, a `git diff` of `edit(path, text)` applied to them)."""
    repo = tmp_path / "repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    for name, text in files.items():
        (repo / name).write_text(edit(name, text))
    patch = tmp_path / "change.diff"
    patch.write_text(git(repo, "diff"))
    git(repo, "checkout", "-q", ".")
    return repo, patch


def review(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reviewbot.cli", "review", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def _mail(subject: str, msgid: str, body: str, irt: str = "") -> str:
    head = ("From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Dev <dev@example.org>\n"
            f"To: list@example.org\nSubject: {subject}\n"
            f"Date: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <{msgid}>\n")
    if irt:
        head += f"In-Reply-To: <{irt}>\nReferences: <{irt}>\n"
    return head + "\n" + body + "\n"


# ------------------------------------------------------------------ malformed hunk headers


@pytest.mark.parametrize("header", ["@@ -55,6 +-5,10 @@", "@@ -x,6 +5,10 @@", "@@ -5,6 @@",
                                    "@@ 5,6 +5,10 @@"])
def test_malformed_hunk_header_is_a_corrupt_diff(header):
    diff = ("diff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n--- a/x.c\n+++ b/x.c\n"
            f"{header} int f(void)\n a\n-b\n+c\n")
    with pytest.raises(InputError, match="malformed hunk header"):
        parse_diff(diff)


@pytest.mark.parametrize("header, body", [("@@ -1 +1 @@", "-b\n+c\n"),
                                          ("@@ -0,0 +1,2 @@", "+b\n+c\n"),
                                          ("@@ -55,2 +55,2 @@ int f(void)", " a\n-b\n+c\n")])
def test_well_formed_hunk_headers_pass(header, body):
    diff = ("diff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n--- a/x.c\n+++ b/x.c\n"
            f"{header}\n{body}")
    [pf] = parse_diff(diff)
    assert len(pf) == 1


def test_malformed_hunk_alone_is_exit_2(tmp_path):
    repo, patch = repo_and_patch(tmp_path, {"drivers/w.c": LEAKY},
                                 lambda n, t: t.replace(*LEAK))
    bad = tmp_path / "bad.diff"
    text = patch.read_text()
    assert "@@ -7,6 +7,8 @@" in text
    bad.write_text(text.replace("@@ -7,6 +7,8 @@", "@@ -55,6 +-5,10 @@"))
    r = review("--tree", str(repo), str(bad))
    assert r.returncode == 2, r.stdout
    assert r.stderr.strip() == (f"reviewbot: {bad}: patch 'bad.diff': corrupt diff: malformed "
                                "hunk header '@@ -55,6 +-5,10 @@'")


def test_malformed_hunk_beside_reviewed_patches_is_exit_3(tmp_path):
    repo, patch = repo_and_patch(tmp_path, {"drivers/w.c": LEAKY, "drivers/v.c": LEAKY},
                                 lambda n, t: t.replace(*LEAK))
    parts = patch.read_text().split("diff --git ")[1:]
    good = next(p for p in parts if p.startswith("a/drivers/v.c"))
    broken = next(p for p in parts if p.startswith("a/drivers/w.c"))
    broken = broken.replace("@@ -7,6 +7,8 @@", "@@ -55,6 +-5,10 @@")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(
        _mail("[PATCH 1/2] v: check n", "p1@x", "msg\n---\ndiff --git " + good) +
        _mail("[PATCH 2/2] w: check n", "p2@x", "msg\n---\ndiff --git " + broken, "p1@x"))
    r = review("--tree", str(repo), str(mbox))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "drivers/v.c:11: warning: error-path.missing-release [introduced]" in r.stdout
    why = f"{mbox}: patch 'w: check n': corrupt diff: malformed hunk header '@@ -55,6 +-5,10 @@'"
    assert f"  [2/2] w: check n  (context: hunks)\n    note: not reviewed: {why}\n" in r.stdout
    assert "[2/2] w: check n  (context: hunks)\n    note: not reviewed: " \
        f"{why}\n    no new findings" not in r.stdout
    assert r.stderr.strip().splitlines()[-1] == (
        f"reviewbot: warning: reviewed incompletely, left out: {why} (exit status 3)")
    js = review("--tree", str(repo), "--format", "json", str(mbox))
    assert js.returncode == 3 and f"not reviewed: {why}" in js.stdout


# ------------------------------------------------------------------ #if 0


@pytest.mark.parametrize("src, want", [
    ("a\n#if 0\nb {\n#endif\nc\n", "a\n\n\n\nc\n"),
    ("a\n#if 0\nb\n#else\nc\n#endif\nd\n", "a\n\n\n\nc\n\nd\n"),
    ("a\n#if 1\nb\n#else\nc {\n#endif\nd\n", "a\n\nb\n\n\n\nd\n"),
    ("a\n#ifdef X\nb\n#elif 0\nc {\n#else\ne\n#endif\n", "a\n#ifdef X\nb\n#elif 0\n\n#else\ne\n"
     "#endif\n"),
    ("a\n#if 0\nb\n#elif X\nc\n#else\ne\n#endif\n", "a\n\n\n#if   X\nc\n#else\ne\n#endif\n"),
    ("a\n#if 0\n#ifdef Y\nb\n#else\nq\n#endif\n#endif\nd\n", "a\n\n\n\n\n\n\n\nd\n"),
    ("a\n#ifdef X\n#if 0\nb\n#endif\nc\n#endif\n", "a\n#ifdef X\n\n\n\nc\n#endif\n"),
    ("a\n  #  if (0) /* old */\nb\n#endif\n", "a\n\n\n\n"),
    ("a\n#if 0 && X\nb\n#endif\n", "a\n#if 0 && X\nb\n#endif\n"),  # not a constant: kept
    ("a\n#if X\nb\n#elif 1\nc\n#else\ne\n#endif\n", "a\n#if X\nb\n#elif 1\nc\n#else\n\n#endif\n"),
    ("a\n#if 0\nb\n", "a\n\n\n"),  # never closed: off to the end
    ("a\n#endif\n#if 0\nb\n#endif\n", "a\n#endif\n\n\n\n"),  # a stray #endif stays
])
def test_blank_disabled(src, want):
    out = blank_disabled(src.encode())
    assert len(out) == len(src)  # offsets and lines stay where they were
    assert "\n".join(ln.rstrip() for ln in out.decode().split("\n")) == want


# each hid the leak before #if 0 was blanked (tree-sitter's recovery from the brace)
HIDDEN_IN_FUNCTION = LEAKY.replace("\tkfree(p);", "#if 0\n\tif (n) {\n#endif\n\tkfree(p);")
HIDDEN_BEFORE_TEST = LEAKY.replace("\tif (!p)", "#if 0\n\t{\n#endif\n\tif (!p)")
HIDDEN_TWICE = HIDDEN_IN_FUNCTION.replace(
    "int widget_open", "#if 0\nstatic int old(void)\n{\n\tif (x) {\n#endif\n\nint widget_open")
HIDDEN_IN_ELSE_OF_IF1 = LEAKY.replace("\tkfree(p);", "#if 1\n\tn++;\n#else\n\tif (n) {\n"
                                      "#endif\n\tkfree(p);")
PADDING = "".join(f"\nint pad{i}(int a)\n{{\n\treturn a + {i};\n}}\n" for i in range(60))


@pytest.mark.parametrize("src", [HIDDEN_IN_FUNCTION, HIDDEN_BEFORE_TEST, HIDDEN_TWICE,
                                 HIDDEN_IN_ELSE_OF_IF1])
@pytest.mark.parametrize("padded", [False, True])  # small files whole, large by region
def test_if0_braces_cannot_hide_a_leak(tmp_path, src, padded):
    text = src + (PADDING if padded else "")
    repo, patch = repo_and_patch(tmp_path, {"drivers/w.c": text},
                                 lambda n, t: t.replace(*LEAK))
    r = review("--tree", str(repo), str(patch))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "error-path.missing-release [introduced] in widget_open()" in r.stdout
    kfree = text.split("\n").index("\tkfree(p);") + 1
    names = {f.name for f in parse_region(text, "w.c", {kfree}).functions}
    assert names == {"widget_open"}


def test_if0_code_is_not_a_function():
    cf = parse_c("#if 0\nint gone(void)\n{\n\treturn 0;\n}\n#endif\nint here(void)\n{\n"
                 "\treturn 1;\n}\n", "x.c")
    assert [(f.name, f.start_line) for f in cf.functions] == [("here", 7)]


# ------------------------------------------------------------------ too deep for the walker


def _chain(n: int) -> str:
    arms = "".join(f"\telse if (n == {i})\n\t\tm = {i};\n" for i in range(n))
    return ("#include <linux/slab.h>\n\nint big(int n)\n{\n\tchar *p;\n\tint m = 0;\n\n"
            "\tp = kmalloc(n, GFP_KERNEL);\n\tif (!p)\n\t\treturn -ENOMEM;\n\tif (n == -1)\n"
            f"\t\tm = 1;\n{arms}\tkfree(p);\n\treturn m;\n}}\n")


def test_a_function_too_deep_is_reported_with_exit_3(tmp_path):
    repo, patch = repo_and_patch(tmp_path, {"drivers/y.c": _chain(1000)},
                                 lambda n, t: t.replace(*LEAK))
    r = review("--tree", str(repo), str(patch))
    assert r.returncode == 3, (r.stdout, r.stderr)
    why = "drivers/y.c: big(): not analysed (too deeply nested for the analyser)"
    assert f"reviewbot: {why}" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"reviewbot: warning: reviewed incompletely, left out: {why} (exit status 3)")
    assert f"note: {why}" in r.stdout
    audit = subprocess.run([sys.executable, "-m", "reviewbot.cli", "audit",
                            str(repo / "drivers" / "y.c")], capture_output=True, text=True,
                           timeout=120)
    assert audit.returncode == 3
    assert "audited incompletely: 1 function(s) not analysed" in audit.stderr
    # a short chain is analysed: the same leak is found
    repo2, patch2 = repo_and_patch(tmp_path / "short", {"drivers/y.c": _chain(20)},
                                   lambda n, t: t.replace(*LEAK))
    r2 = review("--tree", str(repo2), str(patch2))
    assert r2.returncode == 1 and "missing-release [introduced] in big()" in r2.stdout


def test_a_function_too_large_is_reported_with_exit_3(tmp_path):
    """Over 512 KiB the walker would cost hundreds of MB: not analysed, said, exit 3; the
    file's other functions are."""
    note = "/* " + "padding " * 16 + "*/"
    arms = "".join(f"\tn++; {note}\n" for i in range(4500))
    huge = _chain(0).replace("int big", "int huge").replace("\tkfree(p);", arms + "\tkfree(p);")
    src = tmp_path / "z.c"
    src.write_text(huge + "\n" + LEAKY.replace(*LEAK))
    size = huge.rindex("}") + 1 - huge.index("int huge")
    assert size > 512 * 1024
    r = subprocess.run([sys.executable, "-m", "reviewbot.cli", "audit", str(src)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert f"{src}: huge(): not analysed (too large for the analyser: {size} bytes, " \
        "over 524288)" in r.stderr
    assert "missing-release in widget_open()" in r.stdout


# ------------------------------------------------------------------ resent cover letters


@pytest.mark.parametrize("resent_irt", ["", "c1@x"])
def test_a_resent_cover_letter_does_not_displace_its_series(tmp_path, resent_irt):
    repo, patch = repo_and_patch(tmp_path, {"drivers/w.c": LEAKY},
                                 lambda n, t: t.replace(*LEAK))
    body = "msg\n---\n" + patch.read_text()
    mbox = tmp_path / "thread.mbox"
    mbox.write_text(_mail("[PATCH 0/1] widget: fixes", "c1@x", "The cover.\n") +
                    _mail("[PATCH 1/1] widget: check n", "p1@x", body, "c1@x") +
                    _mail("[PATCH 0/1] widget: fixes", "c2@x", "The cover, again.\n",
                          resent_irt))
    [s] = load_paths([str(mbox)])
    assert [p.message_id for p in s.patches] == ["p1@x"] and s.cover.message_id == "c1@x"
    r = review("--tree", str(repo), str(mbox))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "missing-release [introduced] in widget_open()" in r.stdout


def test_a_newer_revision_still_wins_over_an_older_one_with_patches(tmp_path):
    """The resent-cover rule is within one revision: v2's cover alone still is v2."""
    mbox = tmp_path / "t.mbox"
    diff = ("diff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n--- a/x.c\n+++ b/x.c\n"
            "@@ -1,2 +1,2 @@\n a\n-b\n+c\n")
    mbox.write_text(_mail("[PATCH 0/1] widget: fixes", "c1@x", "cover\n") +
                    _mail("[PATCH 1/1] widget: fix", "p1@x", "m\n---\n" + diff, "c1@x") +
                    _mail("[PATCH v2 0/1] widget: fixes", "c2@x", "cover v2\n") +
                    _mail("[PATCH v2 1/1] widget: fix", "q1@x", "m\n---\n" + diff, "c2@x") +
                    _mail("[PATCH v2 0/1] widget: fixes", "c3@x", "cover v2 again\n"))
    [s] = load_paths([str(mbox)])
    assert s.revision == 2 and [p.message_id for p in s.patches] == ["q1@x"]
