"""get-put.unbalanced-change: a function compared before and after a patch.

The rule is differential, so each case is a (before, after) pair reviewed as a one-patch
series over a plain-directory tree holding the 'before' file.
"""

from __future__ import annotations

import difflib

import pytest

from reviewbot.model import Patch, Series
from reviewbot.review.pipeline import Reviewer

RULE = "get-put.unbalanced-change"
PATH = "fs/demo/demo.c"


def _all(tmp_path, pre: str, post: str, path: str = PATH):
    assert pre != post, "the case does not change anything"
    tree = tmp_path / "tree"
    f = tree / path
    f.parent.mkdir(parents=True)
    f.write_text(pre)
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{path}", f"b/{path}"))
    patch = Patch(subject="demo: change", raw_subject="[PATCH] demo: change", message_id="",
                  diff=diff)
    return Reviewer(str(tree)).review_series(Series("t", 1, "", [patch])).findings()


def _review(tmp_path, pre: str, post: str):
    return [f for f in _all(tmp_path, pre, post) if f.status == "introduced"]


def _unbalanced(found):
    return [(f.resource, f.line) for f in found if f.rule == RULE]


GLOCK_TOUCH = """static int demo_touch(struct gfs2_sbd *sdp, u64 no)
{
	struct gfs2_glock *gl;
	int error;

	error = gfs2_glock_get(sdp, no, &gfs2_inode_glops, CREATE, &gl);
	if (error)
		return error;
	error = demo_poke(gl);
	gfs2_glock_put(gl);
	return error;
}
"""

QUEUE_DELETE = """static void demo_kick(struct gfs2_sbd *sdp, u64 no)
{
	struct gfs2_glock *gl;

	if (gfs2_glock_get(sdp, no, &gfs2_iopen_glops, CREATE, &gl))
		return;
	if (!gfs2_queue_delete_work(gl, 0))
		gfs2_glock_put(gl);
}
"""

I_GL_FILL = """static int demo_attach_gl(struct gfs2_inode *ip, struct gfs2_sbd *sdp, u64 no)
{
	int error;

	error = gfs2_glock_get(sdp, no, &gfs2_inode_glops, CREATE, &ip->i_gl);
	if (error)
		return error;
	error = demo_fill(ip);
	if (error)
		gfs2_glock_put(ip->i_gl);
	return error;
}
"""

TRANS = """static int demo_tx(struct gfs2_sbd *sdp, struct gfs2_inode *ip)
{
	int error;

	error = gfs2_trans_begin(sdp, RES_DINODE, 0);
	if (error)
		return error;
	demo_dirty(ip);
	gfs2_trans_end(sdp);
	return 0;
}
"""

KBUF = """static int demo_cmd(struct demo_dev *dd, size_t len)
{
	char *buf;
	int ret;

	buf = kmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = demo_xfer(dd, buf, len);
	kfree(buf);
	return ret;
}
"""

DENTRY = """static void demo_visit(struct dentry *a, struct dentry *b)
{
	struct dentry *d;

	d = dget(a);
	demo_walk(d);
	dput(d);
}
"""

IGET = """static struct inode *demo_iget(struct super_block *sb, struct gfs2_sbd *sdp, u64 no)
{
	struct inode *inode;
	struct gfs2_inode *ip;
	int error;

	inode = iget_locked(sb, no);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	ip = GFS2_I(inode);
	error = gfs2_glock_get(sdp, no, &gfs2_inode_glops, CREATE, &ip->i_gl);
	if (error)
		goto fail;
	error = demo_fill(ip);
	if (error)
		goto fail_put;
	unlock_new_inode(inode);
	return inode;
fail_put:
	gfs2_glock_put(ip->i_gl);
	ip->i_gl = NULL;
fail:
	iget_failed(inode);
	return ERR_PTR(error);
}
"""

DOUBLE_PUT = """static void demo_drop(struct gfs2_sbd *sdp, u64 no)
{
	struct gfs2_glock *gl;

	if (gfs2_glock_get(sdp, no, &gfs2_iopen_glops, CREATE, &gl))
		return;
	demo_poke(gl);
	gfs2_glock_put(gl);
	demo_note(sdp);
	gfs2_glock_put(gl);
}
"""

DOUBLE_KFREE = """static int demo_cmd2(struct demo_dev *dd, size_t len)
{
	char *buf;
	int ret;

	buf = kmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = demo_xfer(dd, buf, len);
	if (ret)
		kfree(buf);
	kfree(buf);
	return ret;
}
"""

LOCKED = """static int demo_bump(struct demo_dev *dd)
{
	int ret = 0;

	mutex_lock(&dd->lock);
	if (dd->dead)
		ret = -ENODEV;
	else
		dd->count++;
	mutex_unlock(&dd->lock);
	return ret;
}
"""

NEW_ENT = """static struct demo_ent *demo_new(struct demo_dev *dd)
{
	struct demo_ent *e;

	e = demo_cache_get(dd);
	if (!e)
		return NULL;
	e->dev = dd;
	return e;
}
"""

# (id, before, old text, new text, resource, line of the acquisition in 'after')
MUST_FIRE = [
    # the put when the delete work was not queued is dropped: the reference leaks then
    ("deleted-put-after-queue", QUEUE_DELETE,
     "\tif (!gfs2_queue_delete_work(gl, 0))\n\t\tgfs2_glock_put(gl);\n",
     "\tgfs2_queue_delete_work(gl, 0);\n", "gl", 5),
    # the only put of a glock stored in ip->i_gl is deleted
    ("deleted-put-of-stored-glock", I_GL_FILL,
     "\tif (error)\n\t\tgfs2_glock_put(ip->i_gl);\n", "", "ip->i_gl", 5),
    # the transaction is no longer ended
    ("deleted-trans-end", TRANS, "\tgfs2_trans_end(sdp);\n", "", "sdp", 5),
    # a second glock is taken and never put, while the first one is
    ("added-glock-get", GLOCK_TOUCH,
     "\terror = demo_poke(gl);\n",
     "\terror = demo_poke(gl);\n"
     "\tif (gfs2_glock_get(sdp, no + 1, &gfs2_iopen_glops, CREATE, &io_gl))\n"
     "\t\treturn -EIO;\n\tdemo_poke(io_gl);\n", "io_gl", 10),
    ("added-glock-hold", GLOCK_TOUCH,
     "\terror = demo_poke(gl);\n",
     "\terror = demo_poke(gl);\n\tgfs2_glock_hold(sdp->sd_rename_gl);\n"
     "\tdemo_poke(sdp->sd_rename_gl);\n", "sdp->sd_rename_gl", 10),
    ("added-kzalloc", KBUF, "\tkfree(buf);\n",
     "\tkfree(buf);\n\ttmp = kzalloc(len, GFP_KERNEL);\n\tdemo_log(tmp);\n", "tmp", 11),
    ("added-dget", DENTRY, "\tdput(d);\n", "\tdput(d);\n\tdemo_walk(dget(b));\n", "b", 8),
]

MUST_NOT = [
    ("moved-put", GLOCK_TOUCH, "\terror = demo_poke(gl);\n\tgfs2_glock_put(gl);\n",
     "\tgfs2_glock_put(gl);\n\terror = demo_poke(NULL);\n"),
    ("put-made-async", GLOCK_TOUCH, "\tgfs2_glock_put(gl);\n", "\tgfs2_glock_put_async(gl);\n"),
    ("removed-get-and-put", GLOCK_TOUCH,
     "\terror = gfs2_glock_get(sdp, no, &gfs2_inode_glops, CREATE, &gl);\n\tif (error)\n"
     "\t\treturn error;\n\terror = demo_poke(gl);\n\tgfs2_glock_put(gl);\n",
     "\terror = demo_poke_no(sdp, no);\n"),
    # iget_failed() drops GFS2_I(inode)->i_gl through evict: the explicit put goes
    ("put-left-to-consuming-call", IGET,
     "fail_put:\n\tgfs2_glock_put(ip->i_gl);\n\tip->i_gl = NULL;\n", "fail_put:\n"),
    ("fixed-double-put", DOUBLE_PUT, "\tdemo_note(sdp);\n\tgfs2_glock_put(gl);\n",
     "\tdemo_note(sdp);\n"),
    ("fixed-double-kfree", DOUBLE_KFREE, "\tif (ret)\n\t\tkfree(buf);\n", ""),
    ("added-alloc-released", KBUF, "\tkfree(buf);\n",
     "\tkfree(buf);\n\ttmp = kzalloc(len, GFP_KERNEL);\n\tdemo_log(tmp);\n\tkfree(tmp);\n"),
    # returned to the caller, and the function releases nothing of its kind
    ("added-alloc-returned", NEW_ENT, "\te = demo_cache_get(dd);\n",
     "\te = kzalloc(sizeof(*e), GFP_KERNEL);\n"),
    ("unlock-duplicated-into-branch", LOCKED,
     "\tif (dd->dead)\n\t\tret = -ENODEV;\n\telse\n\t\tdd->count++;\n",
     "\tif (dd->dead) {\n\t\tmutex_unlock(&dd->lock);\n\t\treturn -ENODEV;\n\t}\n"
     "\tdd->count++;\n"),
    ("unrelated-change", GLOCK_TOUCH, "demo_poke(gl)", "demo_poke(gl) ?: demo_check(sdp)"),
]


@pytest.mark.parametrize("pre,old,new,resource,line",
                         [pytest.param(*c[1:], id=c[0]) for c in MUST_FIRE])
def test_unbalanced_change_found(tmp_path, pre, old, new, resource, line):
    post = pre.replace(old, new, 1)
    found = _review(tmp_path, pre, post)
    assert _unbalanced(found) == [(resource, line)], found


@pytest.mark.parametrize("pre,old,new", [pytest.param(*c[1:], id=c[0]) for c in MUST_NOT])
def test_unbalanced_change_not_reported(tmp_path, pre, old, new):
    post = pre.replace(old, new, 1)
    found = _review(tmp_path, pre, post)
    assert _unbalanced(found) == [], found


def test_deleted_only_put_reported_once(tmp_path):
    """One finding names the resource: the path rule, or (when the reference was handed to
    a call that may keep it, `error = demo_poke(gl)`) the change rule, never both."""
    found = _review(tmp_path, GLOCK_TOUCH, GLOCK_TOUCH.replace("\tgfs2_glock_put(gl);\n", ""))
    assert [f.resource for f in found] == ["gl"]
    assert found[0].rule in ("get-put.leak", "get-put.unbalanced-change")


def test_fixed_double_put_is_reported_fixed(tmp_path):
    post = DOUBLE_PUT.replace("\tdemo_note(sdp);\n\tgfs2_glock_put(gl);\n", "\tdemo_note(sdp);\n")
    found = _all(tmp_path, DOUBLE_PUT, post)
    assert [(f.status, f.rule) for f in found] == [("fixed", "get-put.double-release")]
