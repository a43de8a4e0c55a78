"""Correlated conditions (issue 11, part 4): an acquisition and its release under the same
condition, or a flag set on acquisition and tested at the release, are one path; a branch
that cannot be taken on this path is not walked. The same shape with a release under a
different test, and an exit between, is still a leak."""

from __future__ import annotations

from reviewbot.review.analysis import analyze_source

SRC = """
int x_flagged(struct x_dev *d, int flags)
{
	bool locked = false;
	int ret;

	if (flags & X_LOCK) {
		mutex_lock(&d->lock);
		locked = true;
	}
	ret = x_do(d);
	if (ret)
		goto out;
	ret = x_more(d);
out:
	if (locked)
		mutex_unlock(&d->lock);
	return ret;
}

int x_same_test(struct x_dev *d, int flags)
{
	char *buf = NULL;
	int ret;

	if (flags & X_COPY) {
		buf = kmalloc(64, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}
	ret = x_do(d);
	if (ret)
		goto out;
	ret = x_more(d, buf);
out:
	if (flags & X_COPY)
		kfree(buf);
	return ret;
}

int x_early_exit(struct x_dev *d, int flags)
{
	int ret;

	if (flags & X_LOCK)
		mutex_lock(&d->lock);
	ret = x_do(d);
	if (ret)
		return ret;
	ret = x_more(d);
	if (flags & X_LOCK)
		mutex_unlock(&d->lock);
	return ret;
}
"""


def test_flag_and_repeated_test_pair_the_release_with_its_acquisition():
    got = {(f.function, f.rule, f.resource) for f in analyze_source(SRC, "drivers/x/m.c")}
    assert got == {("x_early_exit", "error-path.missing-release", "d->lock")}


def test_a_different_test_at_the_release_is_not_the_same_condition():
    other = SRC.replace("out:\n\tif (flags & X_COPY)\n", "out:\n\tif (flags & X_ZERO)\n")
    got = {(f.function, f.rule, f.resource) for f in analyze_source(other, "drivers/x/m.c")}
    assert ("x_same_test", "error-path.missing-release", "buf") in got
