"""get-put.unchecked on setup calls (issue 12), on real functions of linux-source-6.1.

The files are read from the tree at test time (tests/kernel_tree.py); the docstrings quote
the lines that matter. Which calls count as setup calls whose result must be tested is
learned from the tree's callers (the shipped learned pack).
"""

from __future__ import annotations

from pathlib import Path

from kernel_tree import tree_file

from reviewbot.cmodel import parse_region
from reviewbot.review.analysis import analyze_cfile

RULE = "get-put.unchecked"


def _unchecked(rel: str, function: str) -> dict[str, str]:
    """callee -> confidence of each unchecked-result finding in `function`."""
    path: Path = tree_file(rel)
    cf = parse_region(path.read_bytes(), rel, set(), {function})
    return {f.message.split("of ", 1)[1].split("(", 1)[0]: f.confidence
            for f in analyze_cfile(cf, rel, only=[function]) if f.rule == RULE}


def test_optional_leds_registered_untested_toshiba():
    """drivers/platform/x86/toshiba_acpi.c toshiba_acpi_add():

        if (dev->illumination_supported) {
            ...
            led_classdev_register(&acpi_dev->dev, &dev->led_dev);
        }

    The LEDs are registered without a test while later failures `goto error`, and
    toshiba_acpi_remove() unregisters every LED whose `*_supported` flag is set, registered
    or not. Medium: the function itself unwinds its later failures."""
    assert _unchecked("drivers/platform/x86/toshiba_acpi.c",
                      "toshiba_acpi_add") == {"led_classdev_register": "medium"}


def test_relock_for_write_untested_ocfs2():
    """fs/ocfs2/inode.c ocfs2_read_locked_inode():

        if (can_lock) {
            ocfs2_inode_unlock(inode, lock_level);
            lock_level = 1;
            ocfs2_inode_lock(inode, NULL, lock_level);
        }
        ...
    bail:
        if (can_lock)
            ocfs2_inode_unlock(inode, lock_level);

    A failed relock (a cluster lock can fail: -ERESTARTSYS, -EIO) leaves the lock not
    held, and `bail:` unlocks it. Low: nothing in the function but the tree's callers (who
    test ocfs2_inode_lock()) says so."""
    assert _unchecked("fs/ocfs2/inode.c", "ocfs2_read_locked_inode") == {
        "ocfs2_inode_lock": "low"}


def test_every_registration_tested_asus_laptop():
    """drivers/platform/x86/asus-laptop.c asus_led_init(): each
    `r = asus_led_register(..)` / `r = led_classdev_register(..)` is followed by
    `if (r) goto error;` (or reaches `error: if (r) asus_led_exit(asus);`)."""
    assert _unchecked("drivers/platform/x86/asus-laptop.c", "asus_led_init") == {}


def test_lock_result_tested_ocfs2_bmap():
    """fs/ocfs2/aops.c ocfs2_bmap():

        err = ocfs2_inode_lock(inode, NULL, 0);
        if (err) {
            if (err != -ENOENT)
                mlog_errno(err);
            goto bail;
        }
    """
    assert _unchecked("fs/ocfs2/aops.c", "ocfs2_bmap") == {}
