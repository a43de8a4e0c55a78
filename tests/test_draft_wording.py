"""Drafts a maintainer sends unedited: one comment per exit naming all it leaves held in the
words of each resource's kind and the label to jump to, grammar checked on every template
path, headers on one line where they fit, a warning when a draft cannot be threaded.

Real parts: a git repository made here (its code written here, not copied from anywhere),
patches made by `git format-patch`, the real review pipeline, the rule fixtures of
tests/fixtures/rules for every rule's own messages."""

from __future__ import annotations

import datetime as dt
import difflib
import email
import email.policy
import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from reviewbot import cli
from reviewbot.checks import all_rules
from reviewbot.input.mail import parse_message, patch_from_message
from reviewbot.mail import draft
from reviewbot.mail import outbox as mailout
from reviewbot.model import Patch, Series, SeriesResult
from reviewbot.review.pipeline import Reviewer

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("REVIEWBOT_REGEN_GOLDEN") == "1"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "rules"
NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CFG = {"mail": {"from": "Rita Reviewer <rita@example.org>"}}
PATH = "drivers/foo/foo.c"

# A driver of our own: a ladder out_unlock -> out_put_device, and a function without labels.
FOO = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/slab.h>
#include <linux/device.h>
#include <linux/mutex.h>

struct foo_priv {
	int state;
};

struct foo_dev {
	struct device *dev;
	struct mutex lock;
	struct foo_priv *priv;
};

int foo_hw_init(struct foo_priv *priv);
int foo_register(struct foo_priv *priv);
int foo_busy(struct foo_dev *fd);
void foo_fill(struct foo_dev *fd, char *buf);

static int foo_probe(struct foo_dev *fd)
{
	struct foo_priv *priv;
	struct device *dev;
	int err;

	priv = kzalloc(sizeof(*priv), GFP_KERNEL);
	if (!priv)
		return -ENOMEM;

	dev = get_device(fd->dev);

	err = foo_hw_init(priv);
	if (err)
		goto out_put_device;

	mutex_lock(&fd->lock);
	err = foo_register(priv);
	if (err)
		goto out_unlock;

	fd->priv = priv;
	mutex_unlock(&fd->lock);
	return 0;

out_unlock:
	mutex_unlock(&fd->lock);
out_put_device:
	put_device(dev);
	kfree(priv);
	return err;
}

static int foo_peek(struct foo_dev *fd)
{
	struct device *dev;
	char *buf;

	dev = get_device(fd->dev);
	buf = kmalloc(16, GFP_KERNEL);
	if (!buf) {
		put_device(dev);
		return -ENOMEM;
	}
	foo_fill(fd, buf);
	kfree(buf);
	put_device(dev);
	return 0;
}
"""

EARLY_RETURN = ("\terr = foo_hw_init(priv);\n\tif (err)\n\t\tgoto out_put_device;",
                "\terr = foo_hw_init(priv);\n\tif (err)\n\t\treturn err;")
WRONG_LABEL = ("\tif (err)\n\t\tgoto out_unlock;", "\tif (err)\n\t\tgoto out_put_device;")
LOCKED_RETURN = ("\tif (err)\n\t\tgoto out_unlock;", "\tif (err)\n\t\treturn err;")
PEEK_BUSY = ("\tfoo_fill(fd, buf);", "\tif (foo_busy(fd))\n\t\treturn 0;\n\tfoo_fill(fd, buf);")


def line_of(needle: str, text: str = FOO) -> int:
    """The line of `text` (foo.c as committed) that holds `needle`."""
    return next(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)


# --------------------------------------------------------------------------- grammar


def grammar_problems(text: str) -> list[str]:
    """Slips a reader notices, in the prose of a draft (quoted lines and the footer left
    out), found mechanically."""
    out = []
    prose: list[str] = []
    runs: list[list[str]] = [[]]  # prose paragraphs with no quoted line between them
    for block in text.split("\n-- \n")[0].split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        words = [ln for ln in lines if not ln.startswith(">") and ln.strip() != "[...]"]
        if len(words) < len(lines):
            runs.append([])  # a quote (or [...]) between comments
        if words:
            prose.append(" ".join(" ".join(words).split()))
            runs[-1].append(prose[-1])
    items = []  # (text, is a list item or a heading: need not end a sentence)
    for p in prose:
        parts = re.split(r"(?:^| )- (?=\S)", p)  # the bullets of a list
        items += [(x, i > 0 or x.startswith("[")) for i, x in enumerate(parts) if x]
    start = re.compile(r"[A-Z('\[]|[\w./-]+\.[ch]:\d+ [\w$]+\(\): (?:[A-Z'(]|[a-z_]+\w*\()"
                       r"|[a-z_]\w*\(|(?:goto|return)\b")  # a sentence, a file:line, code
    for p, listed in items:
        if not start.match(p):
            out.append(f"starts in lower case: {p[:60]!r}")
        if not listed and not re.search(r"[.?!:]\)?$", p):
            out.append(f"does not end a sentence: {p[-60:]!r}")
        for s in re.split(r"(?<=[.?!])\s+(?=\S)", p)[1:]:
            if not start.match(s):
                out.append(f"sentence starts in lower case: {s[:60]!r}")
        checks = {
            r"\s[,.;:?!](?:\s|$)": "space before punctuation",
            r"[.?!][.?!](?<!\.\.\.)": "doubled punctuation",
            r"\b(\w+) \1\b": "repeated word",
            r"\bis still present since\b|\bstill present since\b": "present with since",
            r"\b1 (?!of\b)\w+s\b": "1 with a plural",
            r"\ban? (?:error|the)\b(?! path| exit| variable| code| code\b| pointer)": "article",
            r"\bleaves '[^']+' held\b": "'held' for any kind",
            r"\?\s*\?": "two question marks",
            r"(?:^|\s)i\s": "lower-case I",
        }
        for pat, what in checks.items():
            m = re.search(pat, p)
            if m and not (what == "article" and m.group(0).startswith("an error")):
                out.append(f"{what}: {p[max(m.start() - 30, 0):m.end() + 30]!r}")
        if p.count("(") != p.count(")"):
            out.append(f"unbalanced parentheses: {p[:60]!r}")
    for run in runs:  # under one quoted line: what one exit's findings used to give
        for a, b in itertools.combinations(run, 2):
            same_start = a.split()[:6] == b.split()[:6]
            if same_start and difflib.SequenceMatcher(None, a, b).ratio() > 0.8:
                out.append(f"near-identical paragraphs: {a[:50]!r} / {b[:50]!r}")
    return out


def test_the_grammar_checks_catch_the_slips_of_earlier_drafts():
    old = ("It looks like this 'return err' leaves 'priv' held: it was acquired by kzalloc() at"
           " line 25, and the function's unwind code releases it, but this early return skips"
           " it. Should it go through the error labels instead?\n\n"
           "It looks like this 'return err' leaves 'dev' held: it was acquired by get_device() "
           "at line 29, and the function's unwind code releases it, but this early return skips"
           " it. Should it go through the error labels instead?\n\n"
           "This is still present since v1.\n\nthe author wrote:\n> x\n\nfound 1 issues.\n\n"
           "At line 3, outside the lines this patch touches, i may be misreading this.")
    got = " | ".join(grammar_problems(old))
    for what in ("'held' for any kind", "near-identical", "present with since",
                 "starts in lower case", "1 with a plural", "lower-case I"):
        assert what in got, what


# --------------------------------------------------------------------------- helpers


def ids():
    n = itertools.count(1)
    return lambda: f"<draft.{next(n)}@reviewbot.invalid>"


def build(result: SeriesResult, cfg=CFG, warn=None):
    return draft.build_drafts(result, cfg, now=NOW, msgid_factory=ids(), warn=warn)


def body_of(msg) -> str:
    m = email.message_from_bytes(mailout.as_bytes(msg), policy=email.policy.default)
    return m.get_body(("plain",)).get_content()


def comments_of(body: str) -> list[str]:
    """The comment paragraphs: prose between the attribution and the footer, not notes."""
    text = body.split("\n-- \n")[0]
    paras = [" ".join(p.split()) for p in text.split("\n\n")[1:]]
    return [p for p in paras if p and not p.startswith((">", "[...]", "(Note:"))]


def header_block(msg) -> list[str]:
    return mailout.as_bytes(msg).decode().split("\n\n", 1)[0].split("\n")


def check_headers(msg) -> None:
    """Each header on one line when `Name: value` fits in 78 columns; never folded right
    after the colon; every line within 998 octets."""
    check_header_lines(header_block(msg))


def check_header_lines(lines: list[str]) -> None:
    fields: list[list[str]] = []
    for ln in lines:
        if ln[:1] in (" ", "\t"):
            fields[-1].append(ln)
        else:
            fields.append([ln])
    for f in fields:
        assert not re.fullmatch(r"[\w-]+:", f[0]), f"folded right after the colon: {f}"
        one = " ".join(x.strip() for x in f)
        if len(one) <= 78:
            assert len(f) == 1, f"fits in 78 columns but folded: {f}"
        assert all(len(x.encode()) <= 998 for x in f)


def git(repo: Path, *argv: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Alice Developer", GIT_AUTHOR_EMAIL="alice@example.org",
               GIT_COMMITTER_NAME="Alice Developer", GIT_COMMITTER_EMAIL="alice@example.org",
               GIT_AUTHOR_DATE="2024-05-06T09:00:00+00:00",
               GIT_COMMITTER_DATE="2024-05-06T09:00:00+00:00", GIT_CONFIG_NOSYSTEM="1",
               HOME=str(repo.parent))
    return subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True,
                          text=True, env=env).stdout


@pytest.fixture
def foo_repo(tmp_path) -> Path:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / PATH).parent.mkdir(parents=True)
    (repo / PATH).write_text(FOO)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "foo: a driver")
    return repo


def make_patch(repo: Path, subject: str, *edits: tuple[str, str], thread: bool = True) -> Path:
    """A patch made by git format-patch from the edits (old, new) of foo.c; the repository
    is left at the base."""
    text = FOO
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    (repo / PATH).write_text(text)
    git(repo, "commit", "-q", "-am", subject)
    out = repo.parent / f"patches-{len(list(repo.parent.glob('patches-*')))}"
    git(repo, "format-patch", "-q", "-1", "-o", str(out), *(["--thread"] if thread else []))
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    (p,) = out.glob("*.patch")
    return p


def review_file(path: Path, repo: Path, msgid: str | None = None) -> tuple[Patch, SeriesResult]:
    raw = path.read_bytes()
    if msgid is not None:  # git's is made from the time: a fixed one for golden files
        raw = re.sub(rb"(?im)^Message-Id: <[^>]+>$", f"Message-Id: <{msgid}>".encode(), raw)
    patch = patch_from_message(parse_message(raw))
    assert msgid is None or patch.message_id == msgid
    s = Series(subject=patch.subject, revision=1, message_id=patch.message_id, patches=[patch])
    return patch, Reviewer(str(repo)).review_series(s)


def golden(msg, name: str) -> None:
    data = mailout.as_bytes(msg)
    path = GOLDEN / name
    if REGEN or not path.exists():
        path.write_bytes(data)
        if not REGEN:
            pytest.fail(f"golden file {name} was missing and has been written; check it in")
    assert data.decode() == path.read_text(), f"draft differs from {path}"


# --------------------------------------------------------------- one comment per exit


def test_one_comment_per_exit_in_the_words_of_each_kind_and_the_label(foo_repo):
    p = make_patch(foo_repo, "foo: return early", EARLY_RETURN)
    patch, res = review_file(p, foo_repo, "20240506090000.1-alice@example.org")
    intro = res.findings("introduced")
    assert sorted(f.resource for f in intro) == ["dev", "priv"]  # two findings, one exit
    (msg,) = build(res)
    body = body_of(msg)
    (c,) = comments_of(body)
    assert body.count("\n> +\t\treturn err;\n\n") == 1  # under the line, once
    assert "this 'return err' skips the unwind code" in c
    assert f"'priv' (kzalloc() at line {line_of('kzalloc(')}) leaks" in c  # memory leaks
    assert ("the reference to 'dev' (get_device() at line "
            f"{line_of('dev = get_device')}) is not dropped") in c
    assert c.endswith("Should this be goto out_put_device?")
    assert "held" not in c
    assert msg["In-Reply-To"] == "<20240506090000.1-alice@example.org>"
    assert grammar_problems(body) == []
    check_headers(msg)
    golden(msg, "error-path-exit-label.eml")


def test_a_jump_to_the_wrong_label_names_the_right_one(foo_repo):
    p = make_patch(foo_repo, "foo: unwind from register", WRONG_LABEL)
    _patch, res = review_file(p, foo_repo, "20240506090000.2-alice@example.org")
    (f,) = res.findings("introduced")
    assert f.rule == "error-path.missing-release" and f.resource == "fd->lock"
    (msg,) = build(res)
    (c,) = comments_of(body_of(msg))
    assert "the error exit through out_put_device does not release everything it should" in c
    assert f"'fd->lock' (mutex_lock() at line {line_of('mutex_lock(')}) stays held" in c
    assert c.endswith("Should this be goto out_unlock?")
    assert "Is a release missing" not in c
    assert grammar_problems(body_of(msg)) == []
    golden(msg, "error-path-wrong-label.eml")


def test_an_exit_that_skips_three_kinds(foo_repo):
    p = make_patch(foo_repo, "foo: return with the lock", LOCKED_RETURN)
    _patch, res = review_file(p, foo_repo)
    assert len(res.findings("introduced")) == 3
    (msg,) = build(res)
    (c,) = comments_of(body_of(msg))
    assert re.search(r"'priv' \(kzalloc\(\) at line \d+\) leaks, the reference to 'dev' "
                     r"\(get_device\(\) at line \d+\) is not dropped and 'fd->lock' "
                     r"\(mutex_lock\(\) at line \d+\) stays held\. Should this be goto "
                     r"out_unlock\?$", c), c
    assert grammar_problems(body_of(msg)) == []


def test_get_put_leak_in_a_function_without_labels(foo_repo):
    p = make_patch(foo_repo, "foo: do not fill a busy device", PEEK_BUSY)
    _patch, res = review_file(p, foo_repo, "20240506090000.4-alice@example.org")
    intro = res.findings("introduced")
    assert {f.rule for f in intro} == {"get-put.leak"} and len(intro) == 2
    (msg,) = build(res)
    (c,) = comments_of(body_of(msg))
    assert "this return does not release everything it should" in c
    assert "the reference to 'dev'" in c and "is not dropped" in c and "leaks" in c
    assert "label" not in c  # the function has none to name
    assert c.endswith("Is a release missing here, as on the function's other paths?")
    assert grammar_problems(body_of(msg)) == []
    check_headers(msg)
    golden(msg, "get-put-leak.eml")


def test_ops_mismatch_golden():
    src = (FIXTURES / "ops-mismatch.gfs2-glops.c").read_text()
    res = new_file_review("fs/gfs2/demo_glops.c", src)
    intro = res.findings("introduced")
    assert intro and {f.rule for f in intro} == {"ops-mismatch.gfs2-glops"}
    (msg,) = build(res)
    body = body_of(msg)
    assert len(comments_of(body)) == len(intro)
    assert all(c.endswith("?") for c in comments_of(body))
    assert grammar_problems(body) == []
    check_headers(msg)
    golden(msg, "ops-mismatch.eml")


# ------------------------------------------------------------ every template path


def new_file_diff(path: str, text: str) -> str:
    lines = text.splitlines()
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n"
            + "".join(f"+{ln}\n" for ln in lines))


def patch_of(diff: str, n: int = 1) -> Patch:
    return Patch(subject=f"demo: change {n}", raw_subject=f"[PATCH {n}/2] demo: change {n}",
                 message_id=f"demo.{n}@example.org", author_name="Alice Developer",
                 author_email="alice@example.org", date="Mon, 6 May 2024 09:00:00 +0000",
                 to=["demo-devel@lists.example.org"], diff=diff)


def new_file_review(path: str, text: str) -> SeriesResult:
    p = patch_of(new_file_diff(path, text))
    return Reviewer(None).review_series(Series(p.subject, 1, p.message_id, [p]))


def fixture_results() -> list[tuple[str, SeriesResult]]:
    """Each rule fixture as a patch that adds it: every rule's real messages, introduced."""
    out = []
    for f in sorted(FIXTURES.glob("*.c")):
        out.append((f.name, new_file_review(f"fs/demo/{f.stem}.c", f.read_text())))
    for d in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for before in sorted(d.glob("*.before.c"))[:3]:
            after = before.with_name(before.name.replace(".before.c", ".after.c"))
            pre, post = before.read_text(), after.read_text()
            diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                                "a/fs/demo/demo.c", "b/fs/demo/demo.c"))
            tree = Path(os.environ.get("TMPDIR", "/tmp")) / f"reviewbot-wording-{os.getpid()}"
            (tree / "fs/demo").mkdir(parents=True, exist_ok=True)
            (tree / "fs/demo/demo.c").write_text(pre)
            p = patch_of(diff)
            out.append((f"{d.name}/{before.name}",
                        Reviewer(str(tree)).review_series(Series(p.subject, 1, "", [p]))))
    return out


@pytest.fixture
def fixtures_reviewed() -> list[tuple[str, SeriesResult]]:
    return fixture_results()  # afresh for each test: the variants change the results


def test_every_rule_is_drafted_and_every_draft_reads_well(fixtures_reviewed):
    seen = set()
    for name, res in fixtures_reviewed:
        intro = res.findings("introduced")
        msgs = build(res)
        assert len(msgs) == (1 if intro else 0), name
        for m in msgs:
            body = body_of(m)
            assert grammar_problems(body) == [], name
            check_headers(m)
            seen |= {f.rule for f in intro}
            # one comment per exit: never more comments than findings, and fewer when
            # several findings share an exit
            exits = {(f.function, f.line, f.trace[-1].line if f.trace else 0) for f in intro}
            assert len(comments_of(body)) <= len(exits), name
    assert seen == set(all_rules()), set(all_rules()) - seen


@pytest.mark.parametrize("variant", ["low-confidence", "revision-note", "outside-hunks",
                                     "low-outside-hunks", "acknowledge-fixed",
                                     "cover-summary", "unthreaded"])
def test_every_template_path_reads_well(fixtures_reviewed, variant):
    warnings: list[str] = []
    for name, res in fixtures_reviewed:
        intro = res.findings("introduced")
        if not intro:
            continue
        cfg = CFG
        if variant == "low-confidence":
            for f in intro:
                f.confidence = "low"
        elif variant == "revision-note":
            for f in intro:
                f.still_present_since = 1
        elif variant in ("outside-hunks", "low-outside-hunks"):
            # the same findings on a patch that touches one other line only
            pr = res.patches[0]
            pr.patch = patch_of(new_file_diff("fs/demo/other.c", "int x;\n"))
            for f in intro:
                f.confidence = "low" if variant.startswith("low") else f.confidence
        elif variant == "acknowledge-fixed":
            for f in intro:
                f.status = "fixed"
            cfg = {"mail": dict(CFG["mail"], acknowledge_fixed=True)}
        elif variant == "cover-summary":
            res.series.cover = patch_of("", 0)
            res.series.cover.raw_subject = "[PATCH 0/2] demo: changes"
            cfg = {"mail": dict(CFG["mail"], summary=True)}
        elif variant == "unthreaded":
            p = res.patches[0].patch
            p.message_id, p.author_name, p.author_email, p.to = "", "", "", []
        msgs = build(res, cfg, warn=warnings.append)
        assert msgs, name
        for m in msgs:
            body = body_of(m)
            assert grammar_problems(body) == [], (variant, name, body)
            check_headers(m)
            text = " ".join(body.split())
            if variant == "revision-note":
                n = len(comments_of(body))
                assert text.count("This was already pointed out in the review of v1.") == n
            if variant == "low-confidence":
                assert "I may be misreading this, but it looks like" in text
            if variant.endswith("outside-hunks"):
                assert "outside the lines this patch touches" in text
            if variant == "low-outside-hunks":
                assert "touches, I may be misreading this, but it looks like" in text
            if variant == "unthreaded":
                assert m["In-Reply-To"] is None and m["To"] is None
                assert "(Note: this reply is not threaded under the patch: the patch is a " \
                       "plain diff" in text and "(Note: this reply has no To: address" in text
    if variant == "unthreaded":
        assert warnings and all("not threaded" in w or "has no To:" in w for w in warnings)
    else:
        assert warnings == []


# --------------------------------------------------------------------------- threading


def test_a_series_without_thread_ids_and_a_plain_diff_warn(foo_repo, capsys):
    p = make_patch(foo_repo, "foo: return early", EARLY_RETURN, thread=False)
    assert "Message-ID" not in p.read_text()
    rc = cli.main(["review", str(p), "--tree", str(foo_repo), "--format", "email"])
    assert rc == 1
    out = capsys.readouterr()
    assert out.err.count("reviewbot: warning: draft for '[PATCH] foo: return early': this "
                         "reply is not threaded under the patch: the patch has no Message-ID") == 1
    assert "\nIn-Reply-To:" not in out.out
    assert "(Note: this reply is not threaded" in " ".join(out.out.split())
    # the command's own path keeps what the label advice reads (the post-image)
    assert "Should this be goto out_put_device?" in " ".join(out.out.split())

    plain = foo_repo.parent / "plain.diff"
    plain.write_text(p.read_text()[p.read_text().index("diff --git"):])
    rc = cli.main(["review", str(plain), "--tree", str(foo_repo), "--format", "email"])
    out = capsys.readouterr()
    assert "the patch is a plain diff, with no Message-ID" in out.err
    assert "this reply has no To: address" in out.err
    assert "\nTo:" not in out.out.split("\n\n")[0]
    assert out.out.split("\n\n", 1)[1].startswith("The author wrote:")


def test_a_threaded_series_gets_one_line_threading_headers_and_no_warning(foo_repo, capsys):
    p = make_patch(foo_repo, "foo: return early", EARLY_RETURN, thread=True)
    mid = re.search(r"^Message-ID: <([^>]+)>", p.read_text(), re.M | re.I).group(1)
    assert len(f"In-Reply-To: <{mid}>") > 78  # git's ids do not fit: one line all the same
    rc = cli.main(["review", str(p), "--tree", str(foo_repo), "--format", "email"])
    assert rc == 1
    out = capsys.readouterr()
    assert "warning" not in out.err
    head = out.out.split("\n\n", 1)[0].split("\n")
    assert f"In-Reply-To: <{mid}>" in head and f"References: <{mid}>" in head
    assert "Subject: Re: [PATCH] foo: return early" in head


# ------------------------------------------------------------------------ header folding


def test_headers_fold_at_spaces_never_after_the_colon_nor_encoded_when_ascii():
    ref = "20240506-widget-firmware-loading-on-open-v3-{}-0123456789ab@kernel.org"
    p = patch_of(new_file_diff("fs/demo/x.c", "int x;\n"))
    p.raw_subject = ("[PATCH v3 07/12] drivers/gpu/drm/amd/display/dc/core/"
                     "dc_link_dp_training_fixed_vs_pe_retimer_for_everything_now.c: fix it")
    p.message_id = ref.format(1)
    p.references = [ref.format(0)]
    p.author_name = "Seed 47c99a1f maintainers of a long name"
    p.author_email = "maintainers@users.noreply.r-seed-47c99a1f.example"
    res = SeriesResult(series=Series("s", 1, "", [p]))
    from reviewbot.model import Finding, PatchResult

    f = Finding("get-put.double-release", "get-put", "warning", "high", "fs/demo/x.c", "f", 1,
                "'x' is dropped twice on this path. Is one of the two releases redundant?",
                status="introduced")
    res.patches = [PatchResult(patch=p, context="tree", findings=[f])]
    (msg,) = build(res)
    check_headers(msg)
    head = "\n".join(header_block(msg))
    assert "=?" not in head  # ASCII values are never encoded to be split
    assert f"In-Reply-To: <{ref.format(1)}>" in head
    assert f"References: <{ref.format(0)}>\n <{ref.format(1)}>" in head
    assert "To: Seed 47c99a1f maintainers of a long name\n <maintainers@" in head or (
        "To: Seed 47c99a1f maintainers of a long name <maintainers@" in head)
    subj = re.search(r"^Subject: .*(?:\n .*)*", head, re.M).group(0)
    assert " ".join(subj.split()) == "Subject: Re: " + p.raw_subject
    # and what a mail reader parses back is what was meant
    m = email.message_from_bytes(mailout.as_bytes(msg), policy=email.policy.default)
    assert m["Subject"] == "Re: " + p.raw_subject and m["In-Reply-To"] == f"<{ref.format(1)}>"
    assert m["To"].addresses[0].addr_spec == p.author_email


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.eml")))
def test_every_golden_file_reads_well(name):
    """The golden drafts of each rule family (error-path, get-put, ops-mismatch), checked
    for the points above, not only compared."""
    data = (GOLDEN / name).read_bytes()
    check_header_lines(data.decode().split("\n\n", 1)[0].split("\n"))
    m = email.message_from_bytes(data, policy=email.policy.default)
    assert m["In-Reply-To"] and m["References"].split()[-1] == m["In-Reply-To"]
    body = m.get_body(("plain",)).get_content()
    assert grammar_problems(body) == []
    assert "still present since" not in body and "(Note:" not in body


def test_the_golden_files_cover_each_rule_family():
    families = set()
    for p in GOLDEN.glob("*.eml"):
        m = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        families |= set(re.findall(r"\b(error-path|get-put|ops-mismatch)\.[\w-]+",
                                   m.get_body(("plain",)).get_content().split("\n-- \n")[1]))
    assert families == {"error-path", "get-put", "ops-mismatch"}


def test_a_goto_past_a_failed_lock_names_the_next_label(foo_repo):
    p = make_patch(foo_repo, "foo: interruptible lock", (
        "\tmutex_lock(&fd->lock);\n",
        "\terr = mutex_lock_interruptible(&fd->lock);\n\tif (err)\n\t\tgoto out_unlock;\n"))
    _patch, res = review_file(p, foo_repo)
    rules = {f.rule for f in res.findings("introduced")}
    assert "error-path.extra-release" in rules, rules
    (msg,) = build(res)
    body = body_of(msg)
    (c,) = [c for c in comments_of(body) if "was never acquired" in c]
    assert c.endswith("so it was never acquired; should the goto jump to out_put_device "
                      "instead?"), c
    assert grammar_problems(body) == []
