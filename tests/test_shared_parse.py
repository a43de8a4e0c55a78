"""parse_c() is cached by text, so the context facts of a file and a walk of one of its
functions share the same Function objects: reading the facts must not take down a flow
graph someone else built (a walk in progress lost its `continue` nodes when the context
cache was cold, and its results then depended on the cache)."""

from __future__ import annotations

from reviewbot.cmodel import parse_c
from reviewbot.knowledge import ctxfacts

SRC = b"""
static int f(struct d *d)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (d->x[i])
			continue;
		g(d, i);
	}
	return 0;
}

static int h(void)
{
	return 1;
}
"""


def test_reading_context_facts_keeps_a_graph_built_before():
    cf = parse_c(SRC, "drivers/x/shared.c")
    f = next(fn for fn in cf.functions if fn.name == "f")
    f.cfg()
    kinds = sorted(n.kind for n in f.nodes)
    assert "continue" in kinds
    ctxfacts._read(SRC, "drivers/x/shared.c")
    assert parse_c(SRC, "drivers/x/shared.c") is cf  # the same objects
    assert sorted(n.kind for n in f.nodes) == kinds
    assert all(n.succ for n in f.nodes if n.kind == "continue")
    # what the facts built for themselves is still let go
    h = next(fn for fn in cf.functions if fn.name == "h")
    assert h._cfg is None and not h.nodes
