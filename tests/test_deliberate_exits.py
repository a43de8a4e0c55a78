"""Three shapes where the code says more than the pair (session 8, issue 11): a pointer a
call returns into a buffer it was given, stored (autofs_wait()); a failure skipped on
purpose beside one the function itself zeroes (ext4_fc_replay_create()); a flag that
decides whether the consuming callee puts (gfs2_create_inode())."""

from __future__ import annotations

from reviewbot.cmodel import parse_c
from reviewbot.review.analysis import analyze_cfile


def _found(src: str, path: str):
    cf = parse_c(src, path)
    return {(f.rule, f.resource, f.confidence) for f in analyze_cfile(cf, path)}


INTERIOR = """
int x_wait(struct x_sb *sbi, struct dentry *dentry)
{
	struct x_queue *wq;
	struct qstr qstr;
	char *name;

	name = kmalloc(NAME_MAX + 1, GFP_KERNEL);
	if (!name)
		return -ENOMEM;
	if (x_direct(sbi)) {
		qstr.name = name;
	} else {
		char *p = dentry_path_raw(dentry, name, NAME_MAX);
		if (IS_ERR(p)) {
			kfree(name);
			return -ENOENT;
		}
		STORE;
	}
	wq = kmalloc(sizeof(*wq), GFP_KERNEL);
	if (!wq) {
		kfree(name);
		return -ENOMEM;
	}
	memcpy(&wq->name, &qstr, sizeof(struct qstr));
	if (x_notify(sbi, wq)) {
		kfree(wq);
		return -EIO;
	}
	x_queue_add(sbi, wq);
	return 0;
}
"""


def test_a_pointer_into_the_buffer_stored_stores_the_buffer():
    for store in ("qstr.name = ++p", "qstr.name = p + 1", "qstr.name = p"):
        got = _found(INTERIOR.replace("STORE", store), "fs/x/waitq.c")
        assert ("error-path.missing-release", "name", "high") not in got, store
    # not stored: the buffer is still the function's on the exit after the notification
    got = _found(INTERIOR.replace("STORE", "qstr.len = strlen(p)"), "fs/x/waitq.c")
    assert ("error-path.missing-release", "name", "high") in got


SKIPPED = """
int x_replay(struct super_block *sb, struct x_args *a)
{
	struct inode *inode, *dir;
	int ret;

	ret = x_mark_used(sb, a->ino);
	if (ret)
		goto out;
	inode = x_iget(sb, a->ino);
	if (IS_ERR(inode)) {
		inode = NULL;
		ret = -EINVAL;
		goto out;
	}
	dir = x_iget(sb, a->parent);
	if (IS_ERR(dir))
		goto out;
	ret = x_init_dir(dir, inode);
	iput(dir);
	if (ret) {
		ZERO
		goto out;
	}
	ret = x_link(sb, a, inode);
out:
	iput(inode);
	return ret;
}
"""


def test_a_failure_beside_one_the_function_zeroes_on_purpose_is_low():
    src = SKIPPED.replace("x_iget", "ext4_iget")
    deliberate = _found(src.replace("ZERO", "ret = 0;"), "fs/x/replay.c")
    plain = _found(src.replace("ZERO", "x_warn(sb);"), "fs/x/replay.c")
    assert ("error-path.missing-errno", "ret", "low") in deliberate
    assert ("error-path.missing-errno", "ret", "medium") in plain


FLAG = """
int x_create(struct inode *dir, struct dentry *dentry)
{
	struct gfs2_inode *ip;
	struct inode *inode;
	int free_vfs_inode = 1;
	int error;

	inode = new_inode(dir->i_sb);
	if (!inode)
		return -ENOMEM;
	ip = GFS2_I(inode);
	error = gfs2_glock_get(GFS2_SB(dir), 7, &gfs2_inode_glops, CREATE, &ip->i_gl);
	if (error)
		goto fail_free_inode;
	error = x_alloc(ip);
	if (error)
		goto fail_free_inode;
	free_vfs_inode = 0;
	error = x_more(ip);
	if (error)
		goto fail_free_inode;
	return 0;

fail_free_inode:
	if (free_vfs_inode)
		gfs2_glock_put(ip->i_gl);
	RECORD;
	iget_failed(inode);
	return error;
}
"""


def test_a_flag_the_object_records_decides_who_puts():
    told = _found(FLAG.replace("RECORD", "set_bit(free_vfs_inode ? GIF_FREE_VFS_INODE : "
                                         "GIF_ALLOC_FAILED, &ip->i_flags)"), "fs/gfs2/inode.c")
    untold = _found(FLAG.replace("RECORD", "set_bit(GIF_ALLOC_FAILED, &ip->i_flags)"),
                    "fs/gfs2/inode.c")
    assert {c for r, _k, c in told if r == "get-put.double-release"} == {"low"}
    assert {c for r, _k, c in untold if r == "get-put.double-release"} == {"high"}


SLOT = """
static int x_read_super(struct x_sb_info *sbi, struct x_super **raw_super)
{
	struct buffer_head *bh;
	struct x_super *super;
	int block, err = 0;

	super = kzalloc(sizeof(*super), GFP_KERNEL);
	if (!super)
		return -ENOMEM;
	for (block = 0; block < 2; block++) {
		bh = sb_bread(sbi->sb, block);
		if (!bh) {
			err = -EIO;
			continue;
		}
		if (!*raw_super) {
			memcpy(super, bh->b_data, sizeof(*super));
			*raw_super = super;
		}
		brelse(bh);
	}
	if (!*raw_super)
		kfree(super);
	else
		err = 0;
	return err;
}
"""


def test_an_out_parameter_slot_tested_before_it_is_filled_starts_empty():
    assert _found(SLOT, "fs/x/super.c") == set()
    # a slot the function never fills is the caller's: its value is unknown, and a full
    # slot leaks the allocation
    never = SLOT.replace("\t\t\t*raw_super = super;\n", "\t\t\tx_use(super);\n")
    assert ("get-put.leak", "super", "medium") in _found(never, "fs/x/super.c")


def test_only_a_pointer_slot_tested_for_null_starts_empty():
    from reviewbot.engine.entry import empty_slots

    def slots(src: str) -> list[str]:
        return empty_slots(parse_c(src, "fs/x/super.c").functions[0])

    assert slots(SLOT) == ["*raw_super"]
    # an in-out count tested for non-zero (`&& *len`) and given a count is no empty slot
    count = ("static int f(struct x *c, u32 *len, int fl)\n{\n\tu32 n;\n\n\tif (fl && *len)\n"
             "\t\tn = g(c);\n\tif (n != *len)\n\t\t*len = n;\n\treturn 0;\n}\n")
    assert slots(count) == []
    assert slots(SLOT.replace("if (!*raw_super) {", "if (*raw_super) {")) == []
