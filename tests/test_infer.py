"""Pairs no pack lists, inferred from the function's own unwind code (ocfs2/spi shapes)."""

from __future__ import annotations

from reviewbot.model import Patch, Series
from reviewbot.review.pipeline import Reviewer

OCFS2 = """static int ocfs2_do_thing(struct ocfs2_super *osb, struct inode *inode)
{
	handle_t *handle;
	struct buffer_head *bh = NULL;
	int status;

	handle = ocfs2_start_trans(osb, OCFS2_INODE_UPDATE_CREDITS);
	if (IS_ERR(handle)) {
		status = PTR_ERR(handle);
		goto bail;
	}

	status = ocfs2_journal_access_di(handle, INODE_CACHE(inode), bh, 0);
	if (status < 0)
		goto bail_commit;

	ocfs2_journal_dirty(handle, bh);

bail_commit:
	ocfs2_commit_trans(osb, handle);
bail:
	return status;
}
"""

SPI = """static int demo_spi_probe(struct platform_device *pdev)
{
	struct spi_master *master;
	int ret;

	master = spi_alloc_master(&pdev->dev, sizeof(struct demo));
	if (!master)
		return -ENOMEM;

	ret = demo_hw_init(master);
	if (ret)
		goto err_put;

	ret = devm_spi_register_master(&pdev->dev, master);
	if (ret)
		goto err_put;
	return 0;

err_put:
	spi_master_put(master);
	return ret;
}
"""


def _review(tmp_path, path: str, pre: str, post: str):
    import difflib

    f = tmp_path / "tree" / path
    f.parent.mkdir(parents=True)
    f.write_text(pre)
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{path}", f"b/{path}"))
    patch = Patch(subject="test", raw_subject="test", message_id="", diff=diff)
    res = Reviewer(str(tmp_path / "tree")).review_series(Series("t", 1, "", [patch]))
    return [f for f in res.findings() if f.status == "introduced"]


def test_direct_return_past_ladder_without_pack(tmp_path):
    post = OCFS2.replace("\t\tgoto bail_commit;", "\t\treturn status;")
    found = _review(tmp_path, "fs/ocfs2/x.c", OCFS2, post)
    assert [(f.rule, f.resource, f.confidence) for f in found] == [
        ("error-path.direct-return", "handle", "low")]


def test_deleted_release_from_label_without_pack(tmp_path):
    post = SPI.replace("\tspi_master_put(master);\n", "")
    found = _review(tmp_path, "drivers/spi/x.c", SPI, post)
    assert any(f.rule == "error-path.missing-release" and f.resource == "master" for f in found)


def test_wrong_label_without_pack(tmp_path):
    pre = SPI
    post = SPI.replace("\tret = demo_hw_init(master);\n\tif (ret)\n\t\tgoto err_put;",
                       "\tret = demo_hw_init(master);\n\tif (ret)\n\t\treturn ret;")
    found = _review(tmp_path, "drivers/spi/x.c", pre, post)
    assert any(f.resource == "master" for f in found)


def test_unchanged_function_reports_nothing(tmp_path):
    post = SPI.replace("sizeof(struct demo)", "sizeof(struct demo) + 8")
    assert _review(tmp_path, "drivers/spi/x.c", SPI, post) == []


def test_release_names_and_error_tests_come_from_the_pack():
    """[idioms] of kernel-core: without its unwind_release_name nothing pairs; with
    IS_ERR unknown the pair's success is no longer not_err."""
    import dataclasses

    from reviewbot.cmodel import parse_c
    from reviewbot.knowledge.infer import infer_pairs
    from reviewbot.packs import load_packs

    packs = load_packs()
    fn = parse_c(OCFS2, "f.c").functions[0]
    got = infer_pairs(fn, packs)
    assert got["ocfs2_start_trans"].success == "not_err"
    assert got["ocfs2_commit_trans"].releases == ("inferred:ocfs2_start_trans",)
    quiet = dataclasses.replace(packs, idioms=dataclasses.replace(packs.idioms,
                                                                  unwind_release_name=""))
    assert infer_pairs(fn, quiet) == {}
    no_is_err = dataclasses.replace(packs, idioms=dataclasses.replace(packs.idioms, is_err=()))
    assert "ocfs2_start_trans" not in infer_pairs(fn, no_is_err)
