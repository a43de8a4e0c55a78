"""A held pointer given by address to a call no pack describes (reviewbot/engine/
transfer.py): the callee may advance it and store it where the caller cannot see
(uvcg_streaming_class_allow_link(): `__uvcg_iter_strm_cls(hdr, &data, &arr, fill)` puts
`data` in the class array), so a leak of it rests on weak evidence and is low."""

from __future__ import annotations

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
