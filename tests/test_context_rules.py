"""The context rules on real trees: a patch that moves blocking work into reach of an evict
path (reviewed against a git repository made here), the call graph's facts through header
inlines and macros, its cache, and the real findings on fs/gfs2 of linux-source-6.1."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest
from kernel_tree import linux_tree

from reviewbot.knowledge.callgraph import build_callgraph
from reviewbot.knowledge.ctxfacts import blob_id, file_facts
from reviewbot.model import Patch, Series
from reviewbot.packs import load_packs
from reviewbot.review.pipeline import Reviewer

KERNEL = linux_tree("fs/gfs2") or Path("/nonexistent/linux-source-6.1")
RECLAIM = "context.blocking-in-reclaim"
ATOMIC = "context.sleep-in-atomic"

SUPER = """\
#include "mini.h"

static void mini_evict_inode(struct inode *inode)
{
	struct mini_inode *mi = MINI_I(inode);

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	mini_forget(mi);
}

static void mini_sync_fs(struct super_block *sb)
{
	mini_sync_cluster(sb->s_fs_info);
}

const struct super_operations mini_super_ops = {
	.evict_inode	= mini_evict_inode,
	.sync_fs	= mini_sync_fs,
};
"""

LOCKING = """\
#include "mini.h"

int mini_sync_cluster(struct mini_sb *msb)
{
	return dlm_lock(msb->ls, 5, &msb->lksb, 0, NULL, 0, 0, NULL, NULL, NULL);
}

void mini_forget(struct mini_inode *mi)
{
	gfs2_glock_queue_put(mi->gl);
}

void mini_stats(struct mini_sb *msb)
{
	mini_lock(msb);
	msb->count++;
	mini_unlock(msb);
}
"""

HEADER = """\
static inline void mini_lock(struct mini_sb *msb)
{
	spin_lock(&msb->stat_lock);
}

static inline void mini_unlock(struct mini_sb *msb)
{
	spin_unlock(&msb->stat_lock);
}

#define mini_check(msb, cond) \\
	({ if (!(cond)) mini_withdraw(msb); })
"""

WITHDRAW = """\
#include "mini.h"

void mini_withdraw(struct mini_sb *msb)
{
	wait_for_completion(&msb->done);
}
"""


def _patch(path: str, pre: str, post: str) -> Patch:
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{path}", f"b/{path}"))
    return Patch(subject="mini: change", raw_subject="[PATCH] mini: change", message_id="",
                 diff=diff)


@pytest.fixture
def mini(make_repo) -> Path:
    repo = make_repo({"fs/mini/super.c": SUPER, "fs/mini/locking.c": LOCKING,
                      "fs/mini/mini.h": HEADER, "fs/mini/withdraw.c": WITHDRAW})
    return Path(repo.workdir)


def _review(tree: str | None, path: str, pre: str, post: str):
    return [f for f in Reviewer(tree).review_series(
        Series("t", 1, "", [_patch(path, pre, post)])).findings() if f.rule.startswith("context.")]


def test_a_patch_moving_a_dlm_call_into_the_evict_path_is_told_where_it_did(mini):
    post = SUPER.replace("\tmini_forget(mi);\n", "\tmini_forget(mi);\n"
                         "\tmini_sync_cluster(inode->i_sb->s_fs_info);\n")
    found = _review(str(mini), "fs/mini/super.c", SUPER, post)
    assert [(f.rule, f.status, f.function, f.line) for f in found] == [
        (RECLAIM, "introduced", "mini_evict_inode", 10)]
    msg = found[0].message
    assert "mini_evict_inode() -> mini_sync_cluster() (locking.c:5) -> dlm_lock()" in msg
    assert ".evict_inode of struct super_operations" in msg
    # the same call from .sync_fs is no reclaim path
    post2 = SUPER.replace("\tmini_sync_cluster(sb->s_fs_info);\n",
                          "\tmini_sync_cluster(sb->s_fs_info);\n\tmini_sync_cluster(NULL);\n")
    assert _review(str(mini), "fs/mini/super.c", SUPER, post2) == []


def test_a_helper_reached_from_evict_that_stops_queuing_its_put_is_reported(mini):
    post = LOCKING.replace("gfs2_glock_queue_put(mi->gl)", "gfs2_glock_put(mi->gl)")
    found = _review(str(mini), "fs/mini/locking.c", LOCKING, post)
    assert [(f.rule, f.status, f.function) for f in found] == [
        (RECLAIM, "introduced", "mini_forget")]
    assert "gfs2_glock_queue_put()" in found[0].message  # the remedy the pack names
    # without the tree only the patch's own functions count: nothing reaches mini_forget
    assert _review(None, "fs/mini/locking.c", LOCKING, post) == []


NOTE = "void mini_note(struct mini_sb *msb)\n{\n\tmsb->count++;\n}\n"


@pytest.mark.parametrize("body,confidence", [
    ("\tkfree(kmalloc(16, GFP_KERNEL));\n", "low"),
    ("\tdown_write(&msb->sd_log_flush_lock);\n\tkfree(kmalloc(16, GFP_KERNEL));\n"
     "\tup_write(&msb->sd_log_flush_lock);\n", "medium"),
    ("\tkfree(kmalloc(16, GFP_NOFS));\n", None),
    ("\tdown_write(&msb->sd_log_flush_lock);\n\tkfree(kmalloc(16, GFP_NOFS));\n"
     "\tup_write(&msb->sd_log_flush_lock);\n", None),
], ids=["gfp-kernel", "gfp-kernel-under-a-reclaim-lock", "gfp-nofs", "gfp-nofs-under-it"])
def test_an_allocation_in_reclaim_is_low_unless_a_lock_reclaim_takes_is_held(
        make_repo, body, confidence):
    """GFP_KERNEL reached from .evict_inode may recurse into filesystem reclaim: low alone,
    the rule's confidence when the chain holds a lock the pack says reclaim itself takes
    (gfs2's sd_log_flush_lock, [context] reclaim_locks); GFP_NOFS never. kfree() of what
    the allocation returns is not an allocation itself."""
    evict = SUPER.replace("\tmini_forget(mi);\n",
                          "\tmini_forget(mi);\n\tmini_note(inode->i_sb->s_fs_info);\n")
    repo = make_repo({"fs/mini/super.c": evict, "fs/mini/locking.c": LOCKING + NOTE,
                      "fs/mini/mini.h": HEADER, "fs/mini/withdraw.c": WITHDRAW})
    post = LOCKING + NOTE.replace("\tmsb->count++;\n", body)
    found = [(f.rule, f.function, f.confidence, "sd_log_flush_lock is held" in f.message)
             for f in _review(repo.workdir, "fs/mini/locking.c", LOCKING + NOTE, post)]
    if confidence is None:
        assert found == []
    else:
        assert found == [(RECLAIM, "mini_note", confidence, confidence == "medium")]


def test_sleep_under_a_lock_an_inline_takes_through_a_macro_of_the_header(mini):
    post = LOCKING.replace("\tmsb->count++;\n", "\tmsb->count++;\n\tmini_check(msb, msb->count);\n")
    found = _review(str(mini), "fs/mini/locking.c", LOCKING, post)
    assert [(f.rule, f.status, f.function, f.line, f.resource) for f in found] == [
        (ATOMIC, "introduced", "mini_stats", 17, "&msb->stat_lock")]
    assert "taken by mini_lock() at line 15" in found[0].message
    assert "mini_check() (mini.h:11) -> mini_withdraw() (withdraw.c:5) -> " \
           "wait_for_completion()" in found[0].message
    # after the unlock: nothing
    later = LOCKING.replace("\tmini_unlock(msb);\n", "\tmini_unlock(msb);\n"
                            "\tmini_check(msb, msb->count);\n")
    assert _review(str(mini), "fs/mini/locking.c", LOCKING, later) == []


def test_file_facts_are_cached_by_git_blob_id(tmp_path):
    f = tmp_path / "a.c"
    f.write_text(LOCKING)
    want = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert blob_id(LOCKING.encode()) == want
    assert file_facts(LOCKING, "x/a.c") is file_facts(LOCKING.encode(), "x/a.c")
    assert file_facts(LOCKING + "\n", "x/a.c") is not file_facts(LOCKING, "x/a.c")


def test_facts_of_header_inlines_and_macros(tmp_path):
    d = tmp_path / "fs"
    d.mkdir()
    (d / "mini.h").write_text(HEADER)
    (d / "withdraw.c").write_text(WITHDRAW)
    src = {str(d / "locking.c"): LOCKING, str(d / "withdraw.c"): WITHDRAW}
    g = build_callgraph(src, load_packs().context)
    lock = g.resolve("mini_lock", str(d / "locking.c"))
    assert lock.body.kind == "inline" and [f.cls for f in lock.acquires] == ["stat_lock"]
    assert g.resolve("mini_unlock", str(d / "locking.c")).releases == {"@&{0}->stat_lock"}
    check = g.resolve("mini_check", str(d / "locking.c"))
    assert check.body.kind == "macro" and check.sleeps.callee == "mini_withdraw"
    assert g.resolve("mini_stats", str(d / "locking.c")).sleeps is None


def _audit(directory: str) -> list[dict]:
    import json

    from reviewbot import cli

    out = subprocess.run([str(Path(cli.__file__).parents[1] / ".venv" / "bin" / "reviewbot"),
                          "audit", directory, "--format", "json", "--min-confidence", "low"],
                         cwd=KERNEL, capture_output=True, text=True)
    return [f for f in json.loads(out.stdout)["findings"] if f["rule"].startswith("context.")]


@pytest.mark.skipif(not (KERNEL / "fs" / "gfs2").is_dir(), reason="linux-source-6.1 absent")
def test_gfs2_of_6_1_its_sleep_under_the_log_lock_and_its_queued_puts():
    found = _audit("fs/gfs2")
    atomic = {(f["file"], f["line"], f["function"]) for f in found if f["rule"] == ATOMIC}
    # the withdraw check under the log spinlock, on the frozen-filesystem error branch
    assert ("fs/gfs2/trans.c", 272, "gfs2_trans_add_meta") in atomic
    # each a withdraw under the log spinlock, a strong chain (it ends in a wait of
    # gfs2_withdraw(); reported at low until strong chains are medium); the flag arguments that switch the withdraw or the wait off
    # (gfs2_io_error_bh()'s withdraw = false, gfs2_recover_journal(jd, false)) leave nothing
    assert {(f["file"], f["function"], "medium" if "strong evidence" in f["message"]
             else f["confidence"]) for f in found if f["rule"] == ATOMIC} == {
        ("fs/gfs2/trans.c", "gfs2_trans_add_meta", "medium"),
        ("fs/gfs2/trans.c", "gfs2_trans_remove_revoke", "medium"),
        ("fs/gfs2/trans.c", "gfs2_trans_add_data", "medium"),
        ("fs/gfs2/log.c", "log_refund", "medium"),
        ("fs/gfs2/log.c", "gfs2_flush_revokes", "medium")}
    meta = next(f for f in found if f["line"] == 272)
    assert "gfs2_log_lock() at line 243" in meta["message"]
    assert "gfs2_assert_withdraw() (util.h:" in meta["message"]
    # the evict path defers its puts under PF_MEMALLOC: nothing of it is reported; what is
    # left is the quota shrinker's plain put (docs/triage-gfs2-6.1.md)
    reclaim = {(f["file"], f["function"]) for f in found if f["rule"] == RECLAIM}
    assert reclaim == {("fs/gfs2/quota.c", "gfs2_qd_dispose")}


def _facts(g) -> dict:
    return {(r.path, r.name): (r.acquires, r.releases, r.sleeps, r.sleep_drops, r.blocks,
                               r.allocs, r.param_puts, r.returns, g.in_reclaim(r))
            for r in g.records}


@pytest.mark.skipif(not (KERNEL / "fs" / "gfs2").is_dir(), reason="linux-source-6.1 absent")
def test_a_derived_graph_has_the_facts_of_a_graph_built_afresh():
    d = KERNEL / "fs" / "gfs2"
    src = {str(p): p.read_bytes() for p in sorted(d.glob("*.c"))}
    ctx = load_packs().context
    base = build_callgraph(src, ctx)
    before = _facts(base)  # its reclaim facts computed first, as a review's pre-image asks
    trans = str(d / "trans.c")
    util = str(d / "util.c")
    # the patch of a review: the withdraw no longer sleeps, the assertion is gone
    edited = {trans: src[trans].replace(b"gfs2_assert_withdraw(sdp, 0);", b"BUG();"),
              util: src[util].replace(b"wait_for_completion(&sdp->sd_wdack);", b";")
              .replace(b"wait_on_bit(&sdp->sd_flags", b"test_bit(0")}
    derived = base.derive([file_facts(t, p) for p, t in edited.items()])
    fresh = build_callgraph({**src, **edited}, ctx)
    assert _facts(derived) == _facts(fresh)
    assert _facts(derived) != before


@pytest.mark.skipif(not (KERNEL / "fs" / "gfs2").is_dir(), reason="linux-source-6.1 absent")
def test_a_lazy_graph_computes_what_is_asked_as_the_full_graph_does():
    d = KERNEL / "fs" / "gfs2"
    src = {str(p): p.read_bytes() for p in sorted(d.glob("*.c"))}
    ctx = load_packs().context
    full = build_callgraph(src, ctx)
    lazy = build_callgraph(src, ctx, lazy=True)
    trans, log = str(d / "trans.c"), str(d / "log.c")

    def seen(g, name, path):
        r = g.record(name, path)
        return (r.acquires, r.releases, r.sleeps, r.sleep_drops, tuple(r.locked_calls),
                g.in_reclaim(r))

    asked = [("gfs2_trans_add_meta", trans), ("gfs2_flush_revokes", log)]
    assert [seen(lazy, *a) for a in asked] == [seen(full, *a) for a in asked]
    assert lazy._solved is not None and len(lazy._solved) < len(lazy.records)
    edited = src[log].replace(b"gfs2_withdraw(sdp);", b";")
    derived = lazy.derive([file_facts(edited, log)])
    fresh = build_callgraph({**src, log: edited}, ctx)
    assert [seen(derived, *a) for a in asked] == [seen(fresh, *a) for a in asked]


ARGS_FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "context.sleep-in-atomic.arguments.c"


def test_confidence_through_callees_is_the_evidence_of_the_chain():
    """Through callees, a strong chain ("medium": said in the message while strong chains
    are reported at low) needs a primitive that always sleeps, reached on no
    condition the call cannot see; a final put, a WARN_ON() branch, a flag nobody bound,
    debugging code, an allocation or a rare sleep leave it low; a primitive called here is
    high."""
    from reviewbot.review.analysis import analyze_source

    got = {f.function: ("medium" if "strong evidence" in f.message else f.confidence)
           for f in analyze_source(ARGS_FIXTURE.read_text(), ARGS_FIXTURE.name)
           if f.rule == ATOMIC}
    assert got == {
        "fx_recover_wait": "medium",  # wait_on_bit() under `if (wait)`, wait = true
        "fx_ail_flush": "medium",  # the macro passes withdraw = true
        "fx_assert_now": "medium",  # delayed = false, the value the body gives it too
        "fx_assert_both": "low",  # delayed = true is not kept: the body may change it
        "fx_add_lease": "low",  # an allocation far down
        "fx_drop_some": "high",  # GFP_KERNEL passed here: an allocation of this function
        "fx_peek": "low",  # only if the put is the last, and only on a WARN_ON() branch
        "fx_drop_cookie": "low",  # `zero = atomic_dec_and_test()`; if (zero)
        "fx_checked": "low",  # only on a WARN_ON() branch
        "fx_update_iface": "low",  # only if `--server->count > 0` is false
        "fx_sync_super": "low",  # only with FX_DEBUG defined
        "fx_four_down": "medium",  # mutex_lock() four functions down
        "fx_five_down": "low",  # five down: too far to be strong evidence
        "fx_revive_ctrl": "medium",  # ctrl->state = new_state, then == FX_CTRL_LIVE
        "fx_add_entry_locked": "medium",  # the request's ->waiting is the true passed
        "fx_wake_and_wait": "medium",  # wait_ms = 10: `wait_ms > 0` holds
        "fx_tdls_teardown": "medium",  # FX_TDLS_TEARDOWN, one of the two that wait
        "fx_set_key_sync": "medium",  # the command's .flags = FX_CMD_SYNC: it waits
    }


COND_FIXTURE = Path(__file__).parent / "fixtures" / "rules" / \
    "context.sleep-in-atomic.conditional.c"


def test_a_lock_held_only_under_a_test_is_weaker_where_the_path_does_not_show_it():
    """A wrapper that takes a spinlock for some clients and a mutex for the others: a sleep
    on a path that tests nothing is one step less sure (high to medium, a chain low); on a
    path under the wrapper's own test it is as sure as any; the page-table lock of
    pte_offset_map_lock() is a lock like another."""
    from reviewbot.review.analysis import analyze_source

    got = {f.function: ("medium" if "strong evidence" in f.message else f.confidence)
           for f in analyze_source(COND_FIXTURE.read_text(), COND_FIXTURE.name)
           if f.rule == ATOMIC}
    assert got == {
        "fx_hold_then_wait": "high",  # fx_maybe_lock(dev, true): held, no test left
        "fx_client_write": "low",  # a strong chain, but under a lock of some clients only
        "fx_client_wait": "medium",  # msleep() here, the same lock
        "fx_client_nosleep_wait": "high",  # under `c->no_sleep`: the spinlock's clients
        "fx_walk_pte": "high",
        "fx_wait_ctx": "high",  # the context found: its lock is held
        "fx_nanosleep": "medium",  # the helper retakes the lock, then sleeps
        "fx_act_busy": "high",  # the flag changes between the two tests
    }
    msg = next(f.message for f in analyze_source(COND_FIXTURE.read_text(), COND_FIXTURE.name)
               if f.function == "fx_client_write")
    assert "only when c->no_sleep and static_branch_unlikely(&fx_no_sleep_enabled)" in msg


def test_lock_facts_say_the_tests_a_lock_is_held_under(tmp_path):
    src = COND_FIXTURE.read_text()
    path = str(tmp_path / "cond.c")
    g = build_callgraph({path: src}, load_packs().context)
    assert g.resolve("fx_unlist", path).acquires == ()  # `if (lock)` twice: let go
    spin = [f for f in g.resolve("fx_client_lock", path).acquires if f.spin]
    assert [(f.cls, f.when) for f in spin] == [
        ("spinlock", (("{0}->no_sleep", True),
                      ("static_branch_unlikely(&fx_no_sleep_enabled)", True)))]
    assert [f.when for f in g.resolve("fx_maybe_lock", path).acquires] == [(("{1}", True),)]
