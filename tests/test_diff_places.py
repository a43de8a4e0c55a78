"""The differential status of a defect found in more (or fewer) places after a patch.

Findings are matched by rule, file, function and resource, never by line, and one finding
stands for every place in a function where its rule saw the same defect on the same
resource (registry policy 2). A patch that adds one more such place (a new error exit that
leaks what an old exit already leaks) introduces the defect there; one that removes a
place fixes it there. Reviewed end to end: a case directory (base/ and a patch) made by
the test, and corpus-real 057/058 read where they lie.
"""

from __future__ import annotations

from pathlib import Path

from kernel_tree import CORPUS_REAL

from reviewbot.review.evaluation import review_case

SETUP = """\
#include <linux/slab.h>

int step_one(struct thing *t);
int step_two(struct thing *t);
int step_three(struct thing *t);

int thing_setup(struct thing *t)
{
\tchar *buf;
\tint err;

\tbuf = kmalloc(64, GFP_KERNEL);
\tif (!buf)
\t\treturn -ENOMEM;
\terr = step_one(t);
\tif (err)
\t\treturn err;
\terr = step_two(t);
\tif (err)
\t\tgoto out_free;
%s\tt->buf = buf;
\treturn 0;

out_free:
\tkfree(buf);
\treturn err;
}
"""
THIRD = "\terr = step_three(t);\n\tif (err)\n\t\treturn err;\n"


def _case(tmp: Path, before: str, after: str) -> Path:
    """A case directory: base/drv.c is `before`, patch.patch makes it `after`."""
    import difflib

    (tmp / "base").mkdir(parents=True)
    (tmp / "base" / "drv.c").write_text(before)
    diff = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                "a/drv.c", "b/drv.c")
    (tmp / "patch.patch").write_text("".join(diff))
    return tmp


def _seen(findings) -> list[tuple[str, int, str]]:
    return sorted((f.status, f.line, f.resource) for f in findings
                  if f.rule == "error-path.direct-return")


def test_a_new_exit_with_a_leak_already_known_is_introduced(tmp_path):
    got = review_case(_case(tmp_path, SETUP % "", SETUP % THIRD))
    # the new `return err` after step_three() leaks buf (line 23 of the post-image); the
    # old one after step_one() (17) already did
    assert _seen(got) == [("introduced", 23, "buf"), ("preexisting", 17, "buf")]
    new = next(f for f in got if f.status == "introduced")
    assert new.lines[0] == 23 and any(t.line == 23 for t in new.trace)
    assert "return err" in new.message


def test_an_exit_with_the_leak_removed_is_fixed(tmp_path):
    got = review_case(_case(tmp_path, SETUP % THIRD, SETUP % ""))
    # fixed at the pre-image's line 23; the exit at 17 still leaks
    assert _seen(got) == [("fixed", 23, "buf"), ("preexisting", 17, "buf")]


def test_the_same_places_moved_are_preexisting(tmp_path):
    moved = SETUP.replace("\terr = step_one(t);\n\tif (err)\n\t\treturn err;\n", "") % THIRD
    got = review_case(_case(tmp_path, SETUP % "", moved))
    # one leaking exit before (after step_one), one after (after step_three): same count
    assert _seen(got) == [("preexisting", 20, "buf")]


def _corpus_case(name: str) -> Path:
    import pytest

    hits = sorted(CORPUS_REAL.glob(f"{name}*"))
    if not hits:
        pytest.skip(f"corpus-real case {name} not present")
    return hits[0]


def _undo(findings) -> list[tuple[str, int]]:
    return sorted((f.status, f.line) for f in findings
                  if f.rule == "error-path.missing-undo" and f.resource == "active_num_conn")


def test_ksmbd_kthread_exit_leaks_the_count_again():
    """corpus-real 058 (the inverse of stable fix 77ffbcac4e56): in
    ksmbd_tcp_new_connection() the kthread_run() failure goes back to

        rc = PTR_ERR(handler);
        free_transport(t);          (was ksmbd_tcp_disconnect(KSMBD_TRANS(t)))
    }
    return rc;

    free_transport() does not drop active_num_conn. The same file's kernel_getpeername()
    failure (`goto out_error`, line 210) already leaks the count; the patch adds the
    kthread exit (line 222) as a second place: introduced there."""
    got = review_case(_corpus_case("058-ksmbd-new-conn-active-num-rev"))
    assert _undo(got) == [("introduced", 222), ("preexisting", 210)]


def test_ksmbd_fix_is_acknowledged():
    """corpus-real 057 (the fix itself): the kthread exit's leak (pre-image line 222) is
    fixed, the goto out_error one (211) is still there."""
    got = review_case(_corpus_case("057-ksmbd-new-conn-active-num"))
    assert _undo(got) == [("fixed", 222), ("preexisting", 211)]
