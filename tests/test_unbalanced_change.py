"""get-put.unbalanced-change: a function compared before and after a patch.

The rule is differential, so each case is a (before, after) pair of fixture files in
tests/fixtures/rules/get-put.unbalanced-change/ (see tests/rule_pairs.py), reviewed as a
one-patch series over a plain-directory tree holding the 'before' file.
"""

from __future__ import annotations

import pytest
from rule_pairs import pair, pairs, review

RULE = "get-put.unbalanced-change"


def _review(tmp_path, pre: str, post: str):
    return [f for f in review(tmp_path, pre, post) if f.status == "introduced"]


def _unbalanced(found):
    return [(f.resource, f.line) for f in found if f.rule == RULE]


MUST_FIRE = [p for p in pairs(RULE) if p.fires]
MUST_NOT = [p for p in pairs(RULE) if not p.fires]


def test_cases_on_both_sides():
    assert len(MUST_FIRE) >= 6 and len(MUST_NOT) >= 6
    assert all(e.resource for p in MUST_FIRE for e in p.fires)
    assert all(p.ok == [RULE] for p in MUST_NOT)


@pytest.mark.parametrize("case", [pytest.param(p, id=p.name) for p in MUST_FIRE])
def test_unbalanced_change_found(tmp_path, case):
    found = _review(tmp_path, case.before, case.after)
    assert _unbalanced(found) == [(e.resource, e.line) for e in case.fires], found


@pytest.mark.parametrize("case", [pytest.param(p, id=p.name) for p in MUST_NOT])
def test_unbalanced_change_not_reported(tmp_path, case):
    found = _review(tmp_path, case.before, case.after)
    assert _unbalanced(found) == [], found


def test_deleted_only_put_reported_once(tmp_path):
    """One finding names the resource: the path rule, or (when the reference was handed to
    a call that may keep it, `error = demo_poke(gl)`) the change rule, never both."""
    glock_touch = pair(RULE, "moved-put").before
    found = _review(tmp_path, glock_touch, glock_touch.replace("\tgfs2_glock_put(gl);\n", ""))
    assert [f.resource for f in found] == ["gl"]
    assert found[0].rule in ("get-put.leak", "get-put.unbalanced-change")


def test_fixed_double_put_is_reported_fixed(tmp_path):
    case = pair(RULE, "fixed-double-put")
    found = review(tmp_path, case.before, case.after)
    assert [(f.status, f.rule) for f in found] == [("fixed", "get-put.double-release")]


def test_reference_taken_inside_the_call_of_a_keeping_helper(tmp_path):
    """`ret = demo_add_dep(job, dma_fence_get(fence))` where the same-file helper stores
    the fence or puts it when it fails: the helper's summary takes the reference that the
    call's argument acquires, so neither a path rule nor the change rule reports it."""
    case = pair(RULE, "acquisition-into-consuming-helper")
    assert _review(tmp_path, case.before, case.after) == []


def test_put_of_a_member_taken_through_an_alias(tmp_path):
    """`dd = &db->dd; .. put_device(&dd->dev)`: the device's release callback frees the
    object the member is in (db), so the kfree()s the patch removes are not missing."""
    case = pair(RULE, "put-of-member-through-alias")
    assert _review(tmp_path, case.before, case.after) == []
