from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from reviewbot.context.diff import (
    ApplyError,
    apply_hunks,
    apply_hunks_detailed,
    changed_lines,
    file_paths,
    hunk_images,
    index_blobs,
    parse_diff,
    split_lines,
)
from reviewbot.input.mbox import load_paths
from reviewbot.model import InputError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

CASES = sorted((CORPUS / "cases").glob("*/")) if (CORPUS / "cases").is_dir() else []


def _case_patch(case):
    for name in ("patch.mbox", "patch.patch"):
        if (case / name).exists():
            return case / name
    raise AssertionError(f"no patch in {case}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_applies_to_recorded_blobs(case):
    post = dict(
        (ln.split()[1], ln.split()[0]) for ln in (case / "post.sha1").read_text().splitlines()
    )
    series = load_paths([str(_case_patch(case))])
    assert len(series) == 1 and len(series[0].patches) == 1
    seen = set()
    for pf in series[0].patches[0].patchset:
        pre = (case / "base" / pf.path).read_bytes().decode()
        out = apply_hunks(pre, pf)
        assert str(pygit2.hash(out.encode())) == post[pf.path], pf.path
        seen.add(pf.path)
    assert seen == set(post)


def test_corpus_035_needs_an_offset(corpus_dir):
    case = next((corpus_dir / "cases").glob("035-*"))
    patch = load_paths([str(_case_patch(case))])[0].patches[0]
    offsets = []
    for pf in patch.patchset:
        pre = (case / "base" / pf.path).read_text()
        offsets += apply_hunks_detailed(pre, pf).offsets
    assert any(o != 0 for o in offsets)


BASE = "".join(f"line {i}\n" for i in range(1, 21))

SIMPLE = """diff --git a/f.c b/f.c
index 1111111..2222222 100644
--- a/f.c
+++ b/f.c
@@ -4,3 +4,4 @@
 line 4
-line 5
+line five
+line 5b
 line 6
"""


def test_apply_simple_and_changed_lines():
    pf = parse_diff(SIMPLE)[0]
    res = apply_hunks_detailed(BASE, pf)
    lines = res.post.splitlines()
    assert lines[3:7] == ["line 4", "line five", "line 5b", "line 6"]
    assert len(lines) == 21
    assert res.removed == {5} and res.added == {5, 6}
    assert changed_lines(pf) == ({5}, {5, 6})
    assert index_blobs(pf) == ("1111111", "2222222", "100644")
    assert file_paths(pf) == ("f.c", "f.c")


def test_apply_with_offset():
    pre = "extra a\nextra b\nextra c\n" + BASE  # the hunk's lines moved down by 3
    res = apply_hunks_detailed(pre, parse_diff(SIMPLE)[0])
    assert res.offsets == [3]
    assert res.post.splitlines()[7] == "line five"
    assert res.added == {8, 9}


def test_apply_mismatch_raises():
    pre = BASE.replace("line 5\n", "line FIVE\n")
    with pytest.raises(ApplyError, match="does not apply"):
        apply_hunks(pre, parse_diff(SIMPLE)[0])
    assert issubclass(ApplyError, InputError)


def test_apply_multiple_hunks_in_order():
    diff = """--- a/f.c
+++ b/f.c
@@ -1,2 +1,2 @@
-line 1
+LINE 1
 line 2
@@ -19,2 +19,3 @@
 line 19
 line 20
+line 21
"""
    out = apply_hunks(BASE, parse_diff(diff)[0])
    assert out.startswith("LINE 1\nline 2\n")
    assert out.endswith("line 20\nline 21\n")


def test_new_and_deleted_file():
    diff = """diff --git a/n.c b/n.c
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/n.c
@@ -0,0 +1,2 @@
+int x;
+int y;
diff --git a/d.c b/d.c
deleted file mode 100644
index 3333333..0000000
--- a/d.c
+++ /dev/null
@@ -1,2 +0,0 @@
-int x;
-int y;
"""
    ps = parse_diff(diff)
    assert apply_hunks("", ps[0]) == "int x;\nint y;\n"
    assert file_paths(ps[0]) == (None, "n.c")
    assert index_blobs(ps[0])[0] is None
    assert apply_hunks("int x;\nint y;\n", ps[1]) == ""
    assert file_paths(ps[1]) == ("d.c", None)
    with pytest.raises(ApplyError):
        apply_hunks("int x;\nint z;\n", ps[1])


def test_no_newline_at_end_of_file():
    add_nl = """--- a/f
+++ b/f
@@ -1,2 +1,2 @@
 a
-b
\\ No newline at end of file
+b
"""
    assert apply_hunks("a\nb", parse_diff(add_nl)[0]) == "a\nb\n"
    drop_nl = """--- a/f
+++ b/f
@@ -1,2 +1,2 @@
 a
-b
+c
\\ No newline at end of file
"""
    assert apply_hunks("a\nb\n", parse_diff(drop_nl)[0]) == "a\nc"


def test_form_feed_lines_survive():
    pre = "a\n\x0c\nb\n"
    diff = "--- a/f\n+++ b/f\n@@ -2,2 +2,2 @@\n \x0c\n-b\n+c\n"
    assert apply_hunks(pre, parse_diff(diff)[0]) == "a\n\x0c\nc\n"
    assert split_lines("x\x0cy\nz") == ["x\x0cy\n", "z"]


def test_hunk_images_keep_line_numbers():
    pf = parse_diff(SIMPLE)[0]
    pre, post = hunk_images(pf)
    pre_l, post_l = pre.splitlines(), post.splitlines()
    assert pre_l[4] == "line 5" and pre_l[0] == "" and len(pre_l) == 6
    assert post_l[4] == "line five" and post_l[6] == "line 6" and len(post_l) == 7


@pytest.mark.parametrize(
    "text, msg",
    [
        ("", "no diff"),
        ("just some words\nand more\n", "no diff"),
        (SIMPLE.rsplit("\n", 3)[0] + "\n", "corrupt"),
        ("@@ -1 +1 @@\n-a\n+b\n", "corrupt"),
    ],
    ids=["empty", "not-a-diff", "truncated-hunk", "hunk-without-header"],
)
def test_bad_diffs_raise_input_error(text, msg):
    with pytest.raises(InputError, match=msg):
        parse_diff(text)


ODD = """diff --git a/a.bin b/a.bin
index 1234567..89abcde 100644
Binary files a/a.bin and b/a.bin differ
diff --git a/old.c b/new.c
similarity index 90%
rename from old.c
rename to new.c
index 1111111..2222222 100644
--- a/old.c
+++ b/new.c
@@ -1,2 +1,2 @@
 a
-b
+c
diff --git a/m.sh b/m.sh
old mode 100644
new mode 100755
diff --git a/g.bin b/g.bin
new file mode 100644
index 0000000000000000000000000000000000000000..3ac8d1b0e4fb0c1c8b1bd9b8da7e8cb2ca3c1b5f
GIT binary patch
literal 10
RcmZ?wbhEHbWMp7q0007)000

literal 0
HcmV?d00001

diff --git a/x.c b/y.c
similarity index 100%
copy from x.c
copy to y.c
"""


def test_binary_rename_mode_copy_parse():
    ps = parse_diff(ODD)
    assert [pf.path for pf in ps] == ["a.bin", "new.c", "m.sh", "g.bin", "y.c"]
    assert ps[0].is_binary_file and ps[3].is_binary_file
    assert file_paths(ps[1]) == ("old.c", "new.c")
    assert apply_hunks("a\nb\n", ps[1]) == "a\nc\n"
    assert apply_hunks("#!/bin/sh\n", ps[2]) == "#!/bin/sh\n"  # mode change only
    with pytest.raises(ApplyError, match="binary"):
        apply_hunks("", ps[0])
