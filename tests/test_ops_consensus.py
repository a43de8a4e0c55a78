"""ops-mismatch.gfs2-glops by tree consensus: a use the pack does not declare (here
demo_inspect(gl)) is checked against what the other files of the directory do with it."""

from __future__ import annotations

import difflib

from reviewbot.model import Patch, Series
from reviewbot.review.pipeline import Reviewer

RULE = "ops-mismatch.gfs2-glops"
PATH = "fs/demo/check.c"

PRE = """static int demo_check(struct gfs2_sbd *sdp, u64 no)
{
	struct gfs2_glock *gl;
	int error;

	error = gfs2_glock_get(sdp, no, &gfs2_iopen_glops, CREATE, &gl);
	if (error)
		return error;
	demo_inspect(gl);
	gfs2_glock_put(gl);
	return 0;
}
"""
POST = PRE.replace("&gfs2_iopen_glops", "&gfs2_inode_glops")


def other(name: str, table: str = "gfs2_iopen_glops") -> str:
    return f"""static void {name}(struct gfs2_sbd *sdp, u64 no)
{{
	struct gfs2_glock *gl;

	if (gfs2_glock_get(sdp, no, &{table}, CREATE, &gl))
		return;
	demo_inspect(gl);
	gfs2_glock_put(gl);
}}
"""


def _review(tmp_path, others: dict[str, str], pre: str = PRE, post: str = POST,
            tree: bool = True):
    root = tmp_path / "tree"
    for path, text in {PATH: pre, **others}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{PATH}", f"b/{PATH}"))
    patch = Patch(subject="demo: check", raw_subject="[PATCH] demo: check", message_id="",
                  diff=diff)
    rv = Reviewer(str(root) if tree else None)
    return [f for f in rv.review_series(Series("t", 1, "", [patch])).findings()
            if f.rule == RULE]


def test_two_other_files_agree(tmp_path):
    found = _review(tmp_path, {"fs/demo/a.c": other("demo_a"), "fs/demo/b.c": other("demo_b")})
    assert [(f.status, f.resource, f.line, f.confidence) for f in found] == [
        ("introduced", "gl", 9, "medium")]
    msg = found[0].message
    assert "all 2 other places" in msg
    assert "demo_inspect()" in msg
    assert "&gfs2_iopen_glops" in msg and "&gfs2_inode_glops" in msg


def test_count_of_agreeing_places(tmp_path):
    found = _review(tmp_path, {"fs/demo/a.c": other("demo_a1") + "\n" + other("demo_a2"),
                               "fs/demo/b.c": other("demo_b")})
    assert [f.status for f in found] == ["introduced"]
    assert "all 3 other places" in found[0].message


def test_one_other_place_is_not_a_consensus(tmp_path):
    assert _review(tmp_path, {"fs/demo/a.c": other("demo_a")}) == []


def test_divided_tree(tmp_path):
    others = {"fs/demo/a.c": other("demo_a"), "fs/demo/b.c": other("demo_b"),
              "fs/demo/c.c": other("demo_c", "gfs2_inode_glops")}
    assert _review(tmp_path, others) == []


def test_without_tree(tmp_path):
    others = {"fs/demo/a.c": other("demo_a"), "fs/demo/b.c": other("demo_b")}
    assert _review(tmp_path, others, tree=False) == []


def test_other_directory_does_not_vote(tmp_path):
    others = {"fs/other/a.c": other("demo_a"), "fs/other/b.c": other("demo_b")}
    assert _review(tmp_path, others) == []


def test_tree_agrees_with_the_patch(tmp_path):
    others = {"fs/demo/a.c": other("demo_a", "gfs2_inode_glops"),
              "fs/demo/b.c": other("demo_b", "gfs2_inode_glops")}
    found = _review(tmp_path, others)
    # the patch brings the function in line with the tree
    assert [(f.status, f.resource) for f in found] == [("fixed", "gl")]


def test_unrelated_change(tmp_path):
    others = {"fs/demo/a.c": other("demo_a"), "fs/demo/b.c": other("demo_b")}
    post = PRE.replace("\tdemo_inspect(gl);\n", "\tdemo_inspect(gl);\n\tdemo_log(sdp);\n")
    assert _review(tmp_path, others, post=post) == []
