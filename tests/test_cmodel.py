"""The C model (reviewbot.cmodel.parse_c) on kernel-style code: annotations, attributes,
iterator macros, switch fall-through, goto labels, do/while(0) and #ifdef in functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.cmodel import Node, parse_c

SRC = r"""// SPDX-License-Identifier: GPL-2.0
#include <linux/mutex.h>

static DEFINE_MUTEX(cm_lock);

static void cm_lock_it(struct cm_dev *cd)
	__acquires(&cd->lock)
{
	spin_lock(&cd->lock);
}

static void cm_unlock_it(struct cm_dev *cd)
	__releases(&cd->lock)
{
	spin_unlock(&cd->lock);
}

static int cm_held(struct cm_dev *cd) __must_hold(&cd->mutex)
{
	return cd->count;
}

static int __init cm_init(void)
{
	return cm_register();
}

static long cm_copy(struct cm_dev *cd, const char __user *ubuf, size_t len)
{
	char *buf __free(kfree) = kzalloc(len, GFP_KERNEL);

	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	guard(mutex)(&cd->mutex);
	return cm_apply(cd, buf, len);
}

static __always_inline int __must_check cm_attr(struct cm_dev *cd)
{
	return cd->flags & CM_FLAG;
}

static int cm_iter(struct cm_dev *cd)
{
	struct cm_item *it, *tmp;
	int n = 0;

	list_for_each_entry(it, &cd->items, node) {
		if (!it->live)
			continue;
		n++;
	}
	list_for_each_entry_safe(it, tmp, &cd->items, node)
		if (it->dead)
			cm_drop(it);
	return n;
}

static int cm_switch(struct cm_dev *cd, int op)
{
	int ret = 0;

	switch (op) {
	case 0:
		cd->a++;
		fallthrough;
	case 1:
		cd->b++;
		/* fall through */
	case 2:
		cd->c++;
		break;
	default:
		ret = -EINVAL;
	}
	return ret;
}

static int cm_ladder(struct cm_dev *cd)
{
	int ret;

	mutex_lock(&cd->mutex);
	ret = cm_a(cd);
	if (ret)
		goto out_unlock;
	ret = cm_b(cd);
	if (ret)
		goto out_undo_a;
	mutex_unlock(&cd->mutex);
	return 0;
out_undo_a:
	cm_undo_a(cd);
out_unlock:
	mutex_unlock(&cd->mutex);
	return ret;
}

static void cm_dowhile(struct cm_dev *cd)
{
	do {
		if (cd->x)
			break;
		cd->y = 1;
	} while (0);
	cd->z = 2;
}

static int cm_ifdef(struct cm_dev *cd)
{
	int ret = 0;

#ifdef CONFIG_CM_DEBUG
	ret = cm_debug(cd);
	if (ret)
		goto out;
#endif
	cd->ready = true;
out:
	return ret;
}

static int cm_last(void)
{
	return 0;
}
"""

LINES = SRC.splitlines()


def line_of(needle: str, nth: int = 0) -> int:
    hits = [i for i, ln in enumerate(LINES, start=1) if needle in ln]
    assert len(hits) > nth, needle
    return hits[nth]


@pytest.fixture(scope="module")
def cfile():
    return parse_c(SRC, "cm.c")


@pytest.fixture(scope="module")
def fns(cfile):
    return cfile.by_name()


def reachable(entry: Node) -> set[Node]:
    seen: set[int] = set()
    out: list[Node] = []
    stack = [entry]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        out.append(n)
        stack.extend(n.succ)
    return out


def reachable_lines(fn) -> set[int]:
    return {n.line for n in reachable(fn.cfg())}


EXPECTED = [
    "cm_lock_it", "cm_unlock_it", "cm_held", "cm_init", "cm_copy", "cm_attr", "cm_iter",
    "cm_switch", "cm_ladder", "cm_dowhile", "cm_ifdef", "cm_last",
]


def test_all_functions_found_in_order(cfile):
    assert [f.name for f in cfile.functions] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_start_and_end_lines(fns, name):
    fn = fns[name]
    start = line_of(f" {name}(")
    # the definition starts on its signature line and ends on the closing brace
    assert fn.start_line == start
    assert LINES[fn.end_line - 1] == "}"
    # the next "}" at column 0 after the start
    assert fn.end_line == next(i for i in range(start, len(LINES) + 1) if LINES[i - 1] == "}")


def test_function_at(cfile):
    assert cfile.function_at(line_of("cd->ready = true;")).name == "cm_ifdef"
    assert cfile.function_at(line_of("static DEFINE_MUTEX")) is None


@pytest.mark.parametrize("name,note", [
    ("cm_lock_it", "__acquires"),
    ("cm_unlock_it", "__releases"),
    ("cm_held", "__must_hold"),
])
def test_lock_annotations(fns, name, note):
    anns = [a for a in fns[name].annotations if a.name == note]
    assert len(anns) == 1
    assert anns[0].arg.replace(" ", "") in ("&cd->lock", "&cd->mutex")
    assert anns[0].line == line_of(note)


LOCK_NOTES = ("__acquires", "__releases", "__must_hold")


@pytest.mark.parametrize("name,own", [
    ("cm_unlock_it", ["__releases"]),
    ("cm_held", ["__must_hold"]),
    ("cm_init", []),
    ("cm_copy", []),
])
def test_annotation_not_leaked_into_next_function(fns, name, own):
    assert [a.name for a in fns[name].annotations if a.name in LOCK_NOTES] == own


def test_params(fns):
    assert fns["cm_copy"].params == ["cd", "ubuf", "len"]
    assert fns["cm_switch"].params == ["cd", "op"]
    assert fns["cm_init"].params == []


def test_static(fns):
    assert all(f.is_static for f in fns.values())


def test_free_vars(fns):
    fv = fns["cm_copy"].free_vars
    assert "buf" in fv
    assert "@guard:cd->mutex" in fv
    assert fns["cm_ladder"].free_vars == set()


def test_labels(fns):
    fn = fns["cm_ladder"]
    fn.cfg()
    assert set(fn.labels) == {"out_undo_a", "out_unlock"}
    assert fn.labels["out_undo_a"].line == line_of("out_undo_a:")
    assert fn.labels["out_unlock"].line == line_of("out_unlock:")


def test_label_after_ifdef(fns):
    fn = fns["cm_ifdef"]
    fn.cfg()
    assert set(fn.labels) == {"out"}
    assert line_of("ret = cm_debug(cd);") in reachable_lines(fn)
    assert line_of("cd->ready = true;") in reachable_lines(fn)


def test_no_labels(fns):
    fn = fns["cm_switch"]
    fn.cfg()
    assert fn.labels == {}


def test_goto_edges(fns):
    fn = fns["cm_ladder"]
    nodes = reachable(fn.cfg())
    gotos = [n for n in nodes if n.kind == "goto"]
    assert {n.line for n in gotos} == {line_of("goto out_unlock;"), line_of("goto out_undo_a;")}
    for g in gotos:
        assert any(s.kind == "label" for s in g.succ)
    # fall-through from out_undo_a into out_unlock
    assert line_of("cm_undo_a(cd);") in reachable_lines(fn)


@pytest.mark.parametrize("name,needles", [
    ("cm_iter", ["continue;", "n++;", "cm_drop(it);", "return n;"]),
    ("cm_switch", ["cd->a++;", "cd->b++;", "cd->c++;", "ret = -EINVAL;", "return ret;"]),
    ("cm_dowhile", ["\t\t\tbreak;", "cd->y = 1;", "cd->z = 2;"]),
    ("cm_copy", ["return -ENOMEM;", "return -EFAULT;", "return cm_apply"]),
    ("cm_attr", ["return cd->flags"]),
])
def test_every_statement_reachable(fns, name, needles):
    lines = reachable_lines(fns[name])
    for needle in needles:
        assert line_of(needle) in lines, needle


def test_iterator_macro_is_a_loop(fns):
    nodes = reachable(fns["cm_iter"].cfg())
    assert any(n.loop for n in nodes)


def test_switch_fallthrough_edges(fns):
    nodes = reachable(fns["cm_switch"].cfg())
    by_line = {}
    for n in nodes:
        by_line.setdefault(n.line, []).append(n)

    def succ_lines(needle):
        return {s.line for n in by_line[line_of(needle)] for s in n.succ}

    # case 0 falls into case 1, case 1 into case 2
    assert line_of("cd->b++;") in succ_lines("fallthrough;") | succ_lines("cd->a++;")
    assert line_of("cd->c++;") in succ_lines("cd->b++;")


def test_source_with_only_macros_parses():
    cf = parse_c("static DEFINE_SPINLOCK(x_lock);\nMODULE_LICENSE(\"GPL\");\n", "m.c")
    assert cf.functions == []


# ------------------------------------------------------------------ layout

PACKAGE = Path(__file__).resolve().parents[1] / "reviewbot"


@pytest.mark.parametrize("sub", ["cmodel", "input", "context"])
def test_modules_stay_small(sub):
    sizes = {f.name: len(f.read_text().splitlines()) for f in (PACKAGE / sub).glob("*.py")}
    assert len(sizes) > 2 and max(sizes.values()) <= 600, sizes


def test_package_names_are_the_layers_objects():
    import importlib

    import reviewbot.cmodel as cm

    for name in cm.__all__:
        obj = getattr(cm, name)
        home = importlib.import_module(getattr(obj, "__module__", None) or "reviewbot.cmodel")
        if home.__name__ != "reviewbot.cmodel":  # a constant has no home of its own
            assert home.__name__.startswith("reviewbot.cmodel.") and getattr(home, name) is obj
    assert not hasattr(cm, "functions_touching")


def test_function_caches_are_declared_fields():
    """What a Function finds on first use is kept in its declared fields, not in hidden
    instance attributes."""
    import dataclasses

    [fn] = [f for f in parse_c(SRC, "cm.c").functions if f.name == "cm_unlock_it"]
    assert fn.callees() == {"spin_unlock"} and fn.of_type("call_expression")
    assert fn.of_type("return_statement") == [] and fn.free_vars == set()
    fn.cfg()
    fn.drop_cfg()
    assert set(vars(fn)) <= {f.name for f in dataclasses.fields(fn)}
