"""Function summaries over recursive helpers (issue 11, part 2: bottom-up over the call
graph, to a fixed point for recursion): a helper that frees its argument at the end of a
recursion, and two helpers that call each other until one frees or stores the object."""

from __future__ import annotations

from reviewbot.cmodel import parse_c
from reviewbot.knowledge.tree_summaries import summarize
from reviewbot.packs import load_packs
from reviewbot.review.analysis import analyze_cfile

HELPERS = """
void x_free_chain(struct x_node *n)
{
	if (!n)
		return;
	x_free_chain(n->next);
	kfree(n);
}

void x_step_a(struct x_obj *o, int depth);

void x_step_b(struct x_obj *o, int depth)
{
	if (depth)
		x_step_a(o, depth - 1);
}

void x_step_a(struct x_obj *o, int depth)
{
	if (!depth) {
		kfree(o);
		return;
	}
	x_step_b(o, depth);
}

int x_depth(struct x_obj *o, int n)
{
	if (!n)
		return o->level;
	return x_depth(o, n - 1) + 1;
}

void x_store_a(struct x_dev *d, struct x_obj *o, int n);

void x_store_b(struct x_dev *d, struct x_obj *o, int n)
{
	if (n)
		x_store_a(d, o, n - 1);
	else
		list_add(&o->node, &d->objs);
}

void x_store_a(struct x_dev *d, struct x_obj *o, int n)
{
	x_store_b(d, o, n);
}
"""

# a caller whose error exit hands the object to one of the mutually recursive helpers
CALLER = """
int x_make(struct x_dev *d, int depth)
{
	struct x_obj *o;
	int err;

	o = kzalloc(sizeof(*o), GFP_KERNEL);
	if (!o)
		return -ENOMEM;
	err = x_setup(d);
	if (err) {
		x_step_b(o, depth);
		return err;
	}
	err = x_more(d);
	if (err) {
		kfree(o);
		return err;
	}
	x_store_a(d, o, depth);
	return 0;
}
"""


def _table(files: dict[str, str]):
    return summarize([(p, parse_c(t, p)) for p, t in files.items()], load_packs())


def test_recursive_and_mutually_recursive_helpers_reach_a_fixed_point():
    t = _table({"drivers/x/helpers.c": HELPERS}).for_file("drivers/x/helpers.c")
    assert t["x_free_chain"].releases == {0}
    # neither of the pair frees on its own: each gets it from the other, around the cycle
    assert t["x_step_a"].releases == t["x_step_b"].releases == {0}
    assert t["x_store_a"].stores == t["x_store_b"].stores == {1}
    assert not t["x_store_a"].releases and not t["x_step_b"].stores


def _findings(src: str, summaries) -> set[tuple[str, str]]:
    cf = parse_c(src, "drivers/x/main.c")
    return {(f.rule, f.resource)
            for f in analyze_cfile(cf, "drivers/x/main.c", summaries=summaries)}


def test_a_caller_of_the_recursive_helpers_is_judged_by_their_summaries():
    leak = ("error-path.missing-release", "o")
    # without summaries, the sibling exit's kfree() makes x_step_b()'s exit look leaky
    # (neither name says it releases)
    assert leak in _findings(CALLER, None)
    table = _table({"drivers/x/helpers.c": HELPERS, "drivers/x/main.c": CALLER})
    assert _findings(CALLER, table) == set()
    # a recursive helper that only reads the object: that exit still holds it
    reads = CALLER.replace("x_step_b(o, depth);", "x_depth(o, depth);")
    table = _table({"drivers/x/helpers.c": HELPERS, "drivers/x/main.c": reads})
    assert _findings(reads, table) == {leak}
