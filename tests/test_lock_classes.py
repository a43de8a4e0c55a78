"""Lock classes (reviewbot/knowledge/lock_classes.py) and get-put.lock-order across the
functions of a directory by class (reviewbot/checks/lock_calls.py)."""

from __future__ import annotations

from pathlib import Path

from reviewbot.cmodel import parse_c
from reviewbot.knowledge.callgraph import build_callgraph
from reviewbot.knowledge.lock_classes import declared_types, lock_class
from reviewbot.knowledge.lock_summaries import summaries
from reviewbot.packs import load_packs
from reviewbot.review.analysis import analyze_source

FIXTURES = Path(__file__).parent / "fixtures" / "rules"

DECLS = b"""
static int f(struct foo *p, struct bar b, baz_t *q, int n, const struct qux *const r)
{
	struct gfs2_sbd *sdp = GFS2_SB(inode), *s2;
	unsigned long flags;
	spinlock_t *lk = &p->lock;
	if (n) {
		struct foo *x;
	} else {
		struct bar *x;
	}
	return 0;
}
"""


def test_declared_types_of_parameters_and_locals():
    t = declared_types(parse_c(DECLS, "x.c").functions[0])
    assert t["p"] == "struct foo" and t["b"] == "struct bar" and t["q"] == "baz_t"
    assert t["r"] == "struct qux" and t["sdp"] == t["s2"] == "struct gfs2_sbd"
    assert "n" not in t and "flags" not in t  # primitive types: no lock is reached from them
    assert "x" not in t  # two scopes, two types: which one is meant is not known


def test_class_of_a_lock_expression():
    fn = parse_c(DECLS, "x.c").functions[0]
    t, al = declared_types(fn), {"lk": "&p->lock", "sdp": "GFS2_SB(inode)"}
    assert lock_class("p->lock", t, al) == lock_class("&p->lock", t, al) == "struct foo.lock"
    assert lock_class("lk", t, al) == "struct foo.lock"  # through the one value it is given
    assert lock_class("sdp->sd_log_lock", t, al) == "struct gfs2_sbd.sd_log_lock"
    assert lock_class("b.lock", t, al) == "struct bar.lock"
    assert lock_class("q->a[3].l", t, al) == "baz_t.a[].l"
    assert lock_class("container_of(x,structzz,m)->lock", t, al) == "struct zz.lock"
    assert lock_class("((structyy*)x)->lock", t, al) == "struct yy.lock"
    assert lock_class("inode->i_sb->s_umount", {"inode": "struct inode"}, {}) == \
        "struct inode.i_sb.s_umount"
    assert lock_class("undeclared->lock", t, al) == ""
    assert lock_class("n", t, al) == ""  # a lock pointer without a known origin
    assert lock_class("get_dev(p)->lock", t, al) == ""  # a call in the chain


SRC = """
struct cd;
static void take_b(struct cd *d) { mutex_lock(&d->b); d->n++; mutex_unlock(&d->b); }
static void ab(struct cd *x) { mutex_lock(&x->a); take_b(x); mutex_unlock(&x->a); }
static void ba(struct cd *y) { mutex_lock(&y->b); mutex_lock(&y->a); mutex_unlock(&y->a); mutex_unlock(&y->b); }
static void dl(void *v) { struct cd *z = v; spinlock_t *l = &z->s; spin_lock(l); mutex_lock(&z->a); mutex_unlock(&z->a); spin_unlock(l); }
"""


def test_orders_carry_the_classes_and_whether_they_are_direct():
    packs = load_packs()
    g = build_callgraph({"x.c": SRC}, packs.context, read_header=lambda _p: None)
    s = summaries(g, packs)
    orders = {r.name: s.of(r).orders for r in g.records if r.body.kind == "function"}
    (ab,) = orders["ab"]
    assert (ab.outer_cls, ab.inner_cls) == ("struct cd.a", "struct cd.b")
    assert not ab.direct  # b is taken by take_b(): through its summary
    (ba,) = orders["ba"]
    assert (ba.outer_cls, ba.inner_cls, ba.direct) == ("struct cd.b", "struct cd.a", True)
    (d,) = orders["dl"]
    assert (d.outer_cls, d.inner_cls) == ("struct cd.s", "struct cd.a")


def _fixture(name: str) -> dict[str, list]:
    path = FIXTURES / name
    out: dict[str, list] = {}
    for f in analyze_source(path.read_text(), path.name):
        if f.rule == "get-put.lock-order":
            out.setdefault(f.function, []).append(f)
    return out


def test_cycle_by_class_confidence_and_both_traces():
    got = _fixture("get-put.lock-order.classes.c")
    (ab,) = got["lc_ab"]
    assert ab.confidence == "medium" and ab.lines == [15, 13]
    assert "lc_ba()" in ab.message and "struct lc_dev.a_lock" in ab.message
    notes = [t.note for t in ab.trace]
    assert "'p->a_lock' held" in notes[0]
    assert any("the other order, in lc_ba()" in n and "'q->b_lock' held (line 22)" in n
               and "'q->a_lock' taken at line 24" in n for n in notes)
    # one side through a callee's lock summary: low
    assert [f.confidence for f in got["lc_ef"]] == ["low"]
    assert [f.confidence for f in got["lc_fe"]] == ["low"]
    # a reader on both sides of one lock: low
    assert [f.confidence for f in got["lc_rw_then_s"]] == ["low"]
    assert [f.confidence for f in got["lc_s_then_rw"]] == ["low"]
    # one finding per function and pair of classes
    assert all(len(v) == 1 for v in got.values())
    for quiet in ("lc_other_ba", "lc_hand_back", "lc_lk_try", "lc_nm_by_address", "lc_big_qp",
                  "lc_sr", "lc_other_hg_nested"):
        assert quiet not in got, quiet
