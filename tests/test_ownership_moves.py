"""Ownership moved where the walk (reviewbot/engine/transfer.py) does not see a store:
a held pointer given by address to a call no pack describes, which may advance it and
store it (uvcg_streaming_class_allow_link(): `__uvcg_iter_strm_cls(hdr, &data, &arr,
fill)` puts `data` in the class array), so a leak of it rests on weak evidence and is low;
a put through a copy of a member's name (fcntl_dirnotify(), read at test time); pointers
into a counted array stored in a loop over its count (it87_gpio_init())."""

from __future__ import annotations

import pytest
from kernel_tree import linux_tree

from reviewbot.review.analysis import analyze_source

SRC = """
int x_link(struct x_dev *xd, int size)
{
	void *data, *data_save;
	int ret;

	data = data_save = kzalloc(size, GFP_KERNEL);
	if (!data)
		return -ENOMEM;
	ret = x_iter(xd, CALL);
	if (ret) {
		kfree(data_save);
		return ret;
	}
	xd->linked++;
	return 0;
}
"""


def _leaks(src: str) -> dict[str, str]:
    return {f.resource: f.confidence for f in analyze_source(src, "drivers/x/x.c")
            if f.rule == "get-put.leak"}


def test_a_pointer_given_by_address_makes_its_leak_low():
    assert _leaks(SRC.replace("CALL", "NULL")) == {"data_save": "medium"}
    assert _leaks(SRC.replace("CALL", "&data")) == {"data_save": "low"}


def test_a_put_through_a_copy_of_a_member_name_puts_the_container():
    """fs/notify/dnotify/dnotify.c fcntl_dirnotify(): `new_fsn_mark = &new_dn_mark->
    fsn_mark; .. fsn_mark = new_fsn_mark; new_fsn_mark = NULL; .. fsnotify_put_mark(
    fsn_mark)`: clearing the first name does not unname the member, and the put of
    fsn_mark is the put of the mark that frees new_dn_mark (reported as leaked before)."""
    rel = "fs/notify/dnotify/dnotify.c"
    tree = linux_tree("fs/notify/dnotify")
    if tree is None:
        pytest.skip("linux-source-6.1 not available")
    got = [f for f in analyze_source((tree / rel).read_text(errors="replace"), rel,
                                     only=["fcntl_dirnotify"]) if f.resource == "new_dn_mark"]
    assert got == []


NAMES = """
int x_names(struct x_chip *chip)
{
	char *labels, *label;
	const char **table;
	int i, rc;

	labels = kcalloc(chip->n, 8, GFP_KERNEL);
	table = kcalloc(chip->n, sizeof(char *), GFP_KERNEL);
	if (!labels || !table) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < BOUND; i++) {
		label = &labels[i * 8];
		sprintf(label, "x%d", i);
		table[i] = label;
	}
	chip->names = table;
	rc = x_add(chip);
	if (rc)
		goto out_free;
	return 0;
out_free:
	kfree(table);
	kfree(labels);
	return rc;
}
"""


def test_pointers_into_a_counted_array_stored_in_a_loop_over_its_count():
    """`label = &labels[i * 8]; table[i] = label` stores labels with table; when the loop
    over chip->n runs zero times, labels = kcalloc(chip->n, ..) has no elements (a
    ZERO_SIZE_PTR owns nothing). A loop over another bound leaves labels unstored."""
    assert [f.resource for f in analyze_source(NAMES.replace("BOUND", "chip->n"),
                                               "drivers/x/x.c")] == []
    assert {(f.rule, f.resource, f.confidence) for f in analyze_source(
        NAMES.replace("BOUND", "chip->m"), "drivers/x/x.c")} == {
        ("get-put.leak", "labels", "medium")}
