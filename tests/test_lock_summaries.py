"""Lock summaries across functions (reviewbot/knowledge/lock_summaries.py): what a function
takes on every path, keeps, drops for its caller, and how a callee's lock is named with the
caller's arguments."""

from __future__ import annotations

from reviewbot.knowledge.callgraph import build_callgraph
from reviewbot.knowledge.lock_summaries import canon, fill, qualify, summaries, template, tidy
from reviewbot.packs import load_packs

SRC = """
static DEFINE_MUTEX(g_mutex);

static void takes(struct d *p) { mutex_lock(&p->lock); p->n++; mutex_unlock(&p->lock); }
static void takes_member(struct c *c) { spin_lock(&c->dev->slock); spin_unlock(&c->dev->slock); }
static void some_paths(struct d *p, int x) { if (x) { mutex_lock(&p->lock); mutex_unlock(&p->lock); } }
static void drops_first(struct d *p) { mutex_unlock(&p->lock); mutex_lock(&p->lock); }
static void keeps(struct d *p) { mutex_lock(&p->lock); }
static void global(void) { mutex_lock(&g_mutex); mutex_unlock(&g_mutex); }
static void local(void) { struct d *q = get(); mutex_lock(&q->lock); mutex_unlock(&q->lock); }
static void through(struct d *p) { takes(p); }
static int tries(struct d *p) { if (!mutex_trylock(&p->lock)) return -EBUSY; mutex_unlock(&p->lock); return 0; }
"""


def _graph():
    packs = load_packs()
    g = build_callgraph({"x.c": SRC}, packs.context, read_header=lambda _p: None)
    s = summaries(g, packs)
    return {r.name: s.of(r) for r in g.records if r.body.kind == "function"}


def test_names_of_locks():
    assert tidy("&(p)->lock") == "p->lock"
    assert tidy("(&p->a)->b") == "p->a.b"
    assert canon("&dev->lock", {"dev": "p->dev"}) == "p->dev->lock"
    assert template("p->dev->lock", ("c", "p"), {}) == "{1}->dev->lock"
    assert qualify("g_mutex", ("p",), {}, "x.c") == "g_mutex@x.c"  # a global: with its file
    assert template("g_mutex@x.c", ("p",), {}) == "g_mutex@x.c"
    assert qualify("p->lock", ("p",), {}, "x.c") == "p->lock"
    assert template("q->lock", ("p",), {"q": "get()"}) is None  # a local's: no caller names it
    assert fill("{0}->lock", ("e",), {}) == "e->lock"
    assert fill("{0}->lock", ("NULL",), {}) is None
    assert fill("{1}->lock", ("e",), {}) is None  # fewer arguments than the template needs


def test_what_functions_take_keep_and_drop():
    s = _graph()
    assert set(s["takes"].first) == {"{0}->lock"} and not s["takes"].keeps
    assert set(s["takes_member"].first) == {"{0}->dev->slock"}
    assert not s["some_paths"].first  # not on every path
    assert not s["drops_first"].first and s["drops_first"].drops == {"{0}->lock"}
    assert set(s["keeps"].keeps) == {"{0}->lock"}
    assert set(s["global"].first) == {"g_mutex@x.c"}
    assert not s["local"].first
    assert set(s["through"].first) == {"{0}->lock"}
    assert s["through"].first["{0}->lock"].via.chain()[-1].callee == "mutex_lock"
    assert not s["tries"].first  # a trylock does not wait


def test_a_callee_taking_two_locks_gives_its_caller_no_order_between_them():
    src = """
static void both(struct d *p) { mutex_lock(&p->big); mutex_lock(&p->small); }
static void caller(struct d *p) { mutex_lock(&p->outer); both(p); }
"""
    packs = load_packs()
    g = build_callgraph({"y.c": src}, packs.context, read_header=lambda _p: None)
    s = summaries(g, packs)
    rec = {r.name: s.of(r) for r in g.records}
    assert {(o.outer, o.inner) for o in rec["both"].orders} == {("p->big", "p->small")}
    assert {(o.outer, o.inner) for o in rec["caller"].orders} == {
        ("p->outer", "p->big"), ("p->outer", "p->small")}


def test_two_files_static_locks_of_one_name_are_two_locks():
    """drivers/irqchip: irq-hip04.c and irq-gic-common.c each have a static
    irq_controller_lock; hip04_irq_set_type() holds its own while gic_configure_irq()
    takes the other's: no double lock. The same lock in one file is one."""
    a = """
static DEFINE_RAW_SPINLOCK(ctl_lock);
static void set_type(int irq) { raw_spin_lock(&ctl_lock); configure(irq); raw_spin_unlock(&ctl_lock); }
static void local_twice(int irq) { raw_spin_lock(&ctl_lock); take_local(); raw_spin_unlock(&ctl_lock); }
static void take_local(void) { raw_spin_lock(&ctl_lock); raw_spin_unlock(&ctl_lock); }
"""
    b = """
static DEFINE_RAW_SPINLOCK(ctl_lock);
void configure(int irq) { unsigned long f; raw_spin_lock_irqsave(&ctl_lock, f); raw_spin_unlock_irqrestore(&ctl_lock, f); }
"""
    packs = load_packs()
    g = build_callgraph({"d/a.c": a, "d/b.c": b}, packs.context, read_header=lambda _p: None)
    s = summaries(g, packs)
    rec = {r.name: s.of(r) for r in g.records}
    assert set(rec["configure"].first) == {"ctl_lock@d/b.c"}
    assert not rec["set_type"].nests
    assert [n.lock for n in rec["local_twice"].nests] == ["ctl_lock@d/a.c"]
