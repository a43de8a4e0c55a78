"""Lock classes (reviewbot/knowledge/lock_classes.py) and get-put.lock-order across the
functions of a directory by class (reviewbot/checks/lock_calls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_tree import linux_tree

from reviewbot.checks.lock_calls import AcrossFunctions
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


# ---------------------------------------------------------------------- real functions


def _directory(rel_dir: str) -> tuple:
    """The lock summaries of a directory of linux-source-6.1 (its .c files and the local
    headers they include), read at test time."""
    tree = linux_tree(rel_dir)
    if tree is None:
        pytest.skip("linux-source-6.1 not available")
    group = {f"{rel_dir}/{p.name}": p.read_bytes() for p in sorted((tree / rel_dir).glob("*.c"))}

    def header(path: str) -> bytes | None:
        p = tree / path
        return p.read_bytes() if p.is_file() else None

    packs = load_packs()
    g = build_callgraph(group, packs.context, read_header=header)
    return g, summaries(g, packs)


def _orders_found(rel_dir: str, *names: str) -> dict[str, list]:
    """get-put.lock-order across functions of the functions named, by name."""
    g, s = _directory(rel_dir)
    out: dict[str, list] = {}
    for r in g.records:
        if r.name in names and r.body.kind == "function":
            out[r.name] = [x for x in AcrossFunctions().raws(s, r) if x.rule == "get-put.lock-order"]
    return out


def test_real_callee_that_drops_the_callers_lock_before_its_own_take_is_quiet():
    """fs/super.c: sget_fc() holds sb_lock when it calls grab_super(old), and grab_super()
    (`__releases(sb_lock)`) drops it before it takes s_umount:

        static int grab_super(struct super_block *s) __releases(sb_lock)
        {
                s->s_count++;
                spin_unlock(&sb_lock);
                down_write(&s->s_umount);
                ...
        sget_fc():
                spin_lock(&sb_lock);
                ...
                hlist_for_each_entry(old, &fc->fs_type->fs_supers, s_instances) {
                        ...
                        if (!grab_super(old))
                                goto retry;

    so sb_lock is not held at the take: no sb_lock -> s_umount order (the first version of
    the classes reported it against grab_super()'s own s_umount -> sb_lock, put_super(),
    in sget_fc, sget, get_active_super and grab_super)."""
    got = _orders_found("fs", "sget_fc", "sget", "get_active_super", "grab_super")
    assert set(got) == {"sget_fc", "sget", "get_active_super", "grab_super"}
    assert all(v == [] for v in got.values()), got


def test_real_switch_whose_cases_all_unlock_is_quiet():
    """fs/ocfs2/dlm/dlmrecovery.c, dlm_finalize_reco_handler(): both cases of
    `switch (stage)` drop dlm->spinlock before the dlm_put() below (which takes the global
    dlm_domain_lock); the switch's edge past every case reaches dlm_put() first in the
    flow, with the lock still held, before the cases' paths join it:

        spin_lock(&dlm->spinlock);
        ...
        switch (stage) {
                case 1:
                        ...
                        spin_unlock(&dlm->spinlock);
                        break;
                case 2:
                        ...
                        spin_unlock(&dlm->spinlock);
                        dlm_kick_recovery_thread(dlm);
                        break;
        }
        ...
        dlm_put(dlm);

    The order is read from the flow's final states: no dlm->spinlock -> dlm_domain_lock
    order, so no cycle with dlm_mark_domain_leaving() (dlmdomain.c: dlm_domain_lock, then
    dlm->spinlock), which the first version reported with five other handlers."""
    got = _orders_found("fs/ocfs2/dlm", "dlm_finalize_reco_handler", "dlm_mark_domain_leaving",
                        "dlm_query_join_handler")
    assert len(got) == 3 and all(v == [] for v in got.values()), got


def test_real_reader_on_both_sides_is_low():
    """drivers/bus/mhi/host: mhi_pm_m0_transition() (pm.c) holds the rwlock_t pm_lock as a
    reader and takes the command ring's lock; mhi_send_cmd() (main.c) holds the command
    ring's lock and takes pm_lock as a reader:

        mhi_pm_m0_transition():
                read_lock_bh(&mhi_cntrl->pm_lock);
                ...
                        struct mhi_cmd *mhi_cmd =
                                &mhi_cntrl->mhi_cmd[PRIMARY_CMD_RING];
                        ...
                        spin_lock_irq(&mhi_cmd->lock);
        mhi_send_cmd():
                spin_lock_bh(&mhi_cmd->lock);
                ...
                read_lock_bh(&mhi_cntrl->pm_lock);

    One class pair in both orders (struct mhi_cmd.lock, struct mhi_controller.pm_lock),
    but pm_lock is a reader on both sides: readers do not wait for readers, and with
    bottom halves off a queued rwlock reader does not wait for a queued writer either, so
    the cycle does not close. Reported low, not at default confidence."""
    got = _orders_found("drivers/bus/mhi/host", "mhi_pm_m0_transition", "mhi_send_cmd")
    assert [x.confidence for x in got["mhi_pm_m0_transition"]] == ["low"]
    assert [x.confidence for x in got["mhi_send_cmd"]] == ["low"]
    assert "mhi_send_cmd()" in got["mhi_pm_m0_transition"][0].message


def test_real_dc_lock_then_hpd_lock_against_hpd_lock_then_dc_lock():
    """drivers/gpu/drm/amd/display/amdgpu_dm/amdgpu_dm.c: the hpd_rx offload work holds
    the device's dc_lock and, for a DP automated test whose timing changed, calls
    force_connector_state(), which takes the connector's hpd_lock:

        static void force_connector_state(
                struct amdgpu_dm_connector *aconnector, ...)
        {
                ...
                mutex_lock(&aconnector->hpd_lock);
                drm_kms_helper_connector_hotplug_event(connector);
                mutex_unlock(&aconnector->hpd_lock);
        }
        dm_handle_hpd_rx_offload_work():
                mutex_lock(&adev->dm.dc_lock);
                if (offload_work->data.bytes.device_service_irq.bits.AUTOMATED_TEST) {
                        dc_link_dp_handle_automated_test(dc_link);
                        if (aconnector->timing_changed) {
                                force_connector_state(aconnector, DRM_FORCE_OFF);

    while the long-pulse HPD handler of the same connector takes them the other way:

        handle_hpd_irq_helper():
                mutex_lock(&aconnector->hpd_lock);
                ...
                } else {
                        mutex_lock(&adev->dm.dc_lock);
                        ret = dc_link_detect(aconnector->dc_link, DETECT_REASON_HPD);

    The two run on different workqueues (the link's offload queue, the DM IRQ work), so
    an HPD long pulse during the test's reconnect deadlocks them: struct
    amdgpu_device.dm.dc_lock and struct amdgpu_dm_connector.hpd_lock in both orders.
    Low: one side is through force_connector_state()'s lock summary."""
    got = _orders_found("drivers/gpu/drm/amd/display/amdgpu_dm",
                        "dm_handle_hpd_rx_offload_work", "handle_hpd_irq_helper",
                        "force_connector_state")
    (work,) = got["dm_handle_hpd_rx_offload_work"]
    assert (work.line, work.confidence, work.lines) == (1372, "low", [1372, 1366])
    assert "force_connector_state() -> mutex_lock()" in work.message
    assert "struct amdgpu_device.dm.dc_lock" in work.message
    assert any("handle_hpd_irq_helper()" in note and "line 3328" in note
               for _line, note in work.trace)
    (irq,) = got["handle_hpd_irq_helper"]
    assert (irq.line, irq.confidence) == (3328, "low")
    assert got["force_connector_state"] == []  # it takes one lock only


def test_real_node_list_then_neigh_list_against_the_reverse():
    """net/netrom/nr_route.c: nr_del_node() holds nr_node_list_lock when it drops the last
    route of a neighbour, and nr_remove_neigh() takes nr_neigh_list_lock:

        static void nr_remove_neigh(struct nr_neigh *nr_neigh)
        {
                spin_lock_bh(&nr_neigh_list_lock);
                ...
        nr_del_node():
                spin_lock_bh(&nr_node_list_lock);
                nr_node_lock(nr_node);
                for (i = 0; i < nr_node->count; i++) {
                        if (nr_node->routes[i].neighbour == nr_neigh) {
                                ...
                                if (nr_neigh->count == 0 && !nr_neigh->locked)
                                        nr_remove_neigh(nr_neigh);

    while a device going down takes them the other way:

        void nr_rt_device_down(struct net_device *dev)
        {
                ...
                spin_lock_bh(&nr_neigh_list_lock);
                nr_neigh_for_each_safe(s, nodet, &nr_neigh_list) {
                        if (s->dev == dev) {
                                spin_lock_bh(&nr_node_list_lock);

    An SIOCDELRT on a route (nr_rt_ioctl() -> nr_del_node()) racing with the device's
    NETDEV_DOWN deadlocks (two globals of one file, one side through nr_remove_neigh()'s
    summary: low). nr_dec_obs() (node list, then nr_remove_neigh()) and nr_rt_free()
    (neigh list, then node list, directly) are the same two orders."""
    got = _orders_found("net/netrom", "nr_del_node", "nr_rt_device_down", "nr_dec_obs",
                        "nr_rt_free", "nr_remove_neigh")
    (d,) = got["nr_del_node"]
    assert (d.line, d.confidence, d.resource) == (342, "low", "nr_neigh_list_lock")
    assert "nr_remove_neigh() -> spin_lock_bh()" in d.message
    (down,) = got["nr_rt_device_down"]
    assert (down.line, down.confidence, down.resource) == (517, "low", "nr_node_list_lock")
    assert [x.line for x in got["nr_dec_obs"]] == [472]
    assert [x.line for x in got["nr_rt_free"]] == [974]
    assert got["nr_remove_neigh"] == []


def test_real_cmdlock_then_lock_against_lock_then_cmdlock():
    """sound/sparc/dbri.c: dbri_cmdlock() returns holding dbri->cmdlock, and every caller
    but one holds dbri->lock around it ("Lock must be held before calling this", says
    dbri_cmdsend()); xmit_fixed() takes the command lock first and dbri->lock after:

        static s32 *dbri_cmdlock(struct snd_dbri *dbri, int len)
        {
                ...
                spin_lock(&dbri->cmdlock);
        xmit_fixed():
                cmd = dbri_cmdlock(dbri, 3);
                ...
                spin_lock_irqsave(&dbri->lock, flags);
                dbri_cmdsend(dbri, cmd, 3);
        dbri_initialize():
                spin_lock_irqsave(&dbri->lock, flags);
                ...
                spin_lock(&dbri->cmdlock);

    xmit_descs(), run under dbri->lock from the interrupt handler, takes the command
    lock through dbri_cmdlock(): with xmit_fixed() holding cmdlock (interrupts on), two
    CPUs deadlock, or one, if the interrupt lands on the CPU that holds cmdlock. struct
    snd_dbri.lock and .cmdlock in both orders; low (dbri_cmdlock()'s summary)."""
    got = _orders_found("sound/sparc", "xmit_fixed", "dbri_initialize", "xmit_descs",
                        "dbri_cmdlock")
    (x,) = got["xmit_fixed"]
    assert (x.line, x.confidence, x.resource) == (1039, "low", "dbri->lock")
    assert "dbri_initialize()" in x.message and "'dbri->cmdlock' is held (line 1033)" in x.message
    assert [f.line for f in got["dbri_initialize"]] == [781]
    assert [f.line for f in got["xmit_descs"]] == [1728]
    assert got["dbri_cmdlock"] == []


def test_two_files_of_one_directory_make_a_low_cycle():
    """Two back-ends of one struct (amdgpu's gfx_v7_0.c takes grbm_idx_mutex then
    srbm_mutex, amdgpu_amdkfd_gfx_v9.c srbm_mutex then grbm_idx_mutex, each on its own
    hardware generation): direct in both, but in two files, so low."""
    packs = load_packs()
    a = ("struct dv;\nstatic void v7_init(struct dv *adev)\n{\n\tmutex_lock(&adev->grbm);\n"
         "\tmutex_lock(&adev->srbm);\n\tmutex_unlock(&adev->srbm);\n"
         "\tmutex_unlock(&adev->grbm);\n}\n")
    b = a.replace("v7_init", "v9_lock").replace("grbm", "TMP").replace("srbm", "grbm") \
        .replace("TMP", "srbm")
    g = build_callgraph({"d/a.c": a, "d/b.c": b}, packs.context, read_header=lambda _p: None)
    s = summaries(g, packs)
    got = {r.name: AcrossFunctions().raws(s, r) for r in g.records if r.body.kind == "function"}
    assert [(x.rule, x.line, x.confidence) for x in got["v7_init"]] == \
        [("get-put.lock-order", 5, "low")]
    assert [x.confidence for x in got["v9_lock"]] == ["low"]
    one = build_callgraph({"d/a.c": a + b}, packs.context, read_header=lambda _p: None)
    s1 = summaries(one, packs)
    assert {x.confidence for r in one.records for x in AcrossFunctions().raws(s1, r)} == \
        {"medium"}  # the same two in one file
