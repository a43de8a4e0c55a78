"""`reviewbot learn`: each mechanism on small fixtures (tests/fixtures/learn/tree)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reviewbot.knowledge import names
from reviewbot.knowledge.aggregate import THRESHOLDS, finish
from reviewbot.knowledge.learn import file_facts
from reviewbot.knowledge.learned import LearnedKnowledge
from reviewbot.knowledge.tree import learn_tree

TREE = Path(__file__).parent / "fixtures" / "learn" / "tree"


@pytest.fixture(scope="module")
def learned() -> LearnedKnowledge:
    part = learn_tree(TREE, cache=None, jobs=1)
    return finish(part, {"name": "tree"}, "test", "test")


def _pairs(k: LearnedKnowledge) -> dict[tuple[str, str], object]:
    return {(p.acquire, p.release): p for p in k.pairs}


def test_unwind_pair_by_ladder_position(learned):
    p = _pairs(learned)[("widget_lookup", "widget_drop")]
    # names say nothing here (lookup/drop): seen in the ladders of 7 functions
    assert not p.symmetric and p.evidence == "var"
    assert p.acquire_target == "return" and p.release_target == "arg:0"
    assert p.support >= THRESHOLDS["pair_support"]
    acq = learned.acquirer("widget_lookup")
    assert acq is not None and acq.success == "nonnull" and acq.resource == p.resource
    # the unlock in kappa_probe undoes widget_lock (taken after the lookup), not the lookup
    assert ("widget_lookup", "widget_unlock") not in _pairs(learned)


def test_pair_seen_once_is_not_learned(learned):
    assert ("sprocket_find", "sprocket_drop") not in _pairs(learned)
    assert ("gadget_make", "gadget_unmake") not in _pairs(learned)
    assert learned.acquirer("sprocket_find") is None


def test_failure_test_majority(learned):
    assert learned.acquirer("gizmo_get").success == "not_err"


def test_name_symmetry_confirmed_and_not(learned):
    p = _pairs(learned)[("gizmo_get", "gizmo_put")]
    assert p.symmetric and p.support == THRESHOLDS["pair_support_symmetric"]
    # thing_register/thing_unregister: symmetric names, never undone on an error path
    assert names.symmetric("thing_register", "thing_unregister")
    assert all(p.acquire != "thing_register" for p in learned.pairs)


def test_scoped_pair_joins_the_global_acquirer():
    """kzalloc .. a static foo_free of one file: one more release of kzalloc's resource,
    not a second kzalloc acquirer in that file."""
    from reviewbot.knowledge.aggregate import Partial
    from reviewbot.knowledge.learn import CallStats, FuncFacts

    part = Partial()
    for i in range(4):
        part.pairs[("", "kzalloc", "return", "kfree", "arg:0", "var")] += 1
        part.examples[("", "kzalloc", "return", "kfree", "arg:0", "var")] = f"a.c:f{i}"
    part.pairs[("b.c", "kzalloc", "return", "foo_free", "arg:0", "var")] += 3
    part.def_names[("b.c", "foo_free")] += 1
    part.calls["kzalloc"] = CallStats(sites=7, tested=7, tests=[0, 7, 0, 0, 0])
    part.defs.append(("b.c", FuncFacts("foo_free", True, False, (), (), False, "", False,
                                       False)))
    k = finish(part, {}, "", "")
    assert [a.scope for a in k.acquirers if a.name == "kzalloc"] == [""]
    assert k.acquirer("kzalloc", "b.c").resource == "learned:kfree"
    assert k.release("foo_free", "b.c").resources == ("learned:kfree",)
    assert k.release("foo_free", "c.c") is None


def test_symmetric_names():
    assert names.symmetric("clk_prepare_enable", "clk_disable_unprepare")
    assert names.symmetric("pm_runtime_get_sync", "pm_runtime_put")
    assert names.symmetric("of_node_get", "of_node_put")
    assert names.symmetric("iget", "iput")
    assert not names.symmetric("spin_lock_init", "spin_unlock_irqrestore")
    assert not names.symmetric("of_node_get", "of_node_get")
    assert not names.symmetric("clk_enable", "regulator_disable")
    assert not names.is_release_name("input_register_device")
    assert names.is_release_name("iounmap") and names.is_release_name("kfree_skb")


def test_wrappers_acquire_and_release(learned):
    w1 = learned.acquirer("widget_lookup_checked")
    w2 = learned.acquirer("widget_lookup_default")
    base = learned.acquirer("widget_lookup")
    assert w1.wrapper_of == "widget_lookup" and w1.resource == base.resource
    # two levels: a wrapper of the wrapper
    assert w2.wrapper_of == "widget_lookup_checked" and w2.resource == base.resource
    # stored in a list before it is returned: the caller does not own it
    assert learned.acquirer("widget_lookup_listed") is None
    r = learned.release("widget_release")
    assert r.wrapper_of == "widget_drop" and r.target == "arg:0"
    assert r.null_safe  # it returns at once on NULL
    r2 = learned.release("widget_release_twice_removed")
    assert r2.wrapper_of == "widget_release" and r2.target == "fmt:{0}->w"
    assert learned.release("widget_maybe_release") is None  # not on every path
    assert learned.release("widget_cycle") is None  # goes on using the widget


def test_release_callbacks(learned):
    got = {(c.function, c.via): c for c in learned.callbacks}
    assert ("widget_free_ref", "kref_put") in got
    assert ("widget_kobj_release", "kobj_type.release") in got
    assert got[("widget_disable", "devm_action")].releases == ("widget_drop",)
    # a file's .release is a close callback, not a reference release
    assert not any(c.function == "widget_file_close" for c in learned.callbacks)


def test_managed(learned):
    assert learned.is_managed("devm_kzalloc") and learned.is_managed("devm_clk_get")
    kinds = {(m.name, m.kind) for m in learned.managed}
    assert ("kfree", "free-class") in kinds and ("mutex", "guard-class") in kinds
    assert not learned.is_managed("devm_kfree")  # a managed release, not an acquisition
    # undoing a managed acquisition on error is optional: no pair is learned from it
    assert all(not p.acquire.startswith("devm_") for p in learned.pairs)


def test_noreturn(learned):
    assert learned.is_noreturn("panic") and learned.is_noreturn("widget_fatal")
    assert learned.is_noreturn("widget_halt")  # declared __noreturn
    # static: known in its own file only
    assert learned.is_noreturn("widget_fatal_again", "drivers/noreturn.c")
    assert not learned.is_noreturn("widget_fatal_again", "drivers/other.c")
    assert not learned.is_noreturn("widget_sometimes_fatal")


def test_must_check_majority(learned):
    mc = {m.name: m for m in learned.must_check}
    assert "gauge_read" in mc and mc["gauge_read"].success == "nonneg"
    assert mc["gauge_read"].tested == mc["gauge_read"].sites
    assert "meter_read" not in mc  # ignored at most call sites


def test_null_safe_release(learned):
    r = learned.release("widget_drop")
    assert r.null_safe and r.null_evidence >= THRESHOLDS["null_safe_evidence"]
    assert not learned.release("gizmo_put").null_safe


def test_userspace_excluded_by_default(learned):
    assert learned.counts["files"] == len(list((TREE / "drivers").glob("*.c")))


def test_status_call_out_parameter():
    src = b"""
int f(struct device *dev)
{
	const struct firmware *fw;
	int ret;

	ret = request_firmware(&fw, "x.bin", dev);
	if (ret)
		return ret;
	ret = load(dev, fw);
	if (ret < 0)
		goto out;
	return 0;
out:
	release_firmware(fw);
	return ret;
}
"""
    ff = file_facts(src, "f.c")
    [p] = ff.pairs
    assert (p.acquire, p.acq_target, p.release, p.rel_target, p.shared) == \
        ("request_firmware", "out:0", "release_firmware", "arg:0", "out")


def test_cache_reuse(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(TREE, tree)
    cache = tmp_path / "cache"
    first = learn_tree(tree, cache, jobs=1)
    assert first.extracted == first.files > 0 and first.cached == 0
    again = learn_tree(tree, cache, jobs=1)
    assert again.extracted == 0 and again.cached == first.files
    assert finish(again, {}, "", "") == finish(first, {}, "", "")
    # a changed file is the only one parsed again
    f = tree / "drivers" / "ladder2.c"
    f.write_text(f.read_text() + "\nint extra(void) { return 0; }\n")
    third = learn_tree(tree, cache, jobs=1)
    assert third.extracted == 1 and third.cached == first.files - 1


def test_a_file_that_fails_is_counted_not_fatal(tmp_path, monkeypatch):
    from reviewbot.knowledge import tree as tree_mod

    real = tree_mod.file_facts

    def flaky(data: bytes, rel: str):
        if rel.endswith("ladder2.c"):
            raise AttributeError("'NoneType' object has no attribute 'type'")
        return real(data, rel)

    monkeypatch.setattr(tree_mod, "file_facts", flaky)
    part = learn_tree(TREE, cache=None, jobs=1)
    assert part.failed == 1 and part.files == len(list((TREE / "drivers").glob("*.c"))) - 1
