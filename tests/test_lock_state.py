"""Lock state (reviewbot/checks/lock_state.py): confidences the fixtures do not check, and
real functions of linux-source-6.1 read at test time (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_tree import linux_tree, tree_file

from reviewbot.checks import all_rules
from reviewbot.model import Finding
from reviewbot.review.analysis import analyze_source

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
LOCK_RULES = {"get-put.double-lock", "get-put.unlock-unheld", "get-put.lock-order",
              "get-put.double-release", "get-put.lock-imbalance"}


def _fixture(name: str) -> dict[tuple[str, int], Finding]:
    path = FIXTURES / name
    return {(f.function, f.line): f for f in analyze_source(path.read_text(), path.name)}


def _real(rel: str, fn: str) -> list[Finding]:
    tree = linux_tree(str(Path(rel).parent))
    if tree is None:
        pytest.skip("linux-source-6.1 not available")
    return [f for f in analyze_source((tree / rel).read_text(errors="replace"), rel, only=[fn])
            if f.rule in LOCK_RULES]


def _shown(fs: list[Finding]) -> list[Finding]:
    """What a review prints by default (medium and up)."""
    return [f for f in fs if f.confidence != "low"]


# ---------------------------------------------------------------------- confidences


def test_double_lock_confidence_by_side_and_what_lies_between():
    got = _fixture("get-put.double-lock.c")
    assert got[("dl_plain", 11)].confidence == "high"
    assert got[("dl_read_then_write", 57)].confidence == "high"  # write after read
    assert got[("dl_rwsem_read_twice", 72)].confidence == "medium"  # rwsem reads do not nest
    # a call no pack describes between the two may have dropped the lock
    assert got[("dl_interruptible", 85)].confidence == "low"
    assert not any(f.rule == "get-put.double-lock" and f.function == "dl_ok_read_nesting"
                   for f in got.values())


def test_unlock_unheld_confidences():
    got = _fixture("get-put.unlock-unheld.c")
    assert got[("uu_trylock", 11)].confidence == "high"
    assert got[("uu_early_exit", 63)].confidence == "medium"
    assert got[("uu_early_exit", 63)].lines == [63, 66]  # the unlock, the first lock


def test_lock_imbalance_tells_inconsistent_returns_from_returning_locked():
    got = _fixture("get-put.lock-imbalance.returns.c")
    for fn, line in (("lir_same_value", 17), ("lir_void", 28), ("lir_error_sibling", 45),
                     ("lir_label", 60), ("lir_bool", 68), ("lir_null", 90)):
        assert got[(fn, line)].confidence == "medium", (fn, got[(fn, line)].message)
    assert "other error returns unlock it" in got[("lir_error_sibling", 45)].message
    paths = _fixture("get-put.lock-imbalance.paths.c")
    # `return 0` locked, `return 1` unlocked: maybe a conditional-lock contract
    assert paths[("li_spin_irqsave", 25)].confidence == "low"


def test_lock_order_trace_names_both_orders():
    got = _fixture("get-put.lock-order.c")
    f = got[("lo_two_paths", 17)]
    assert f.confidence == "medium" and f.lines == [17, 10]
    notes = [s.note for s in f.trace]
    assert any("queue_lock' taken while 'ld->state_lock' is held" in n for n in notes)


def test_rule_docs_name_the_public_checkers():
    rules = all_rules()
    for rid in LOCK_RULES:
        assert "Known false positives" in rules[rid].doc and "Confidence" in rules[rid].doc
    for rid in ("get-put.double-lock", "get-put.unlock-unheld", "get-put.double-release",
                "get-put.lock-imbalance"):
        assert "check_locking.c" in rules[rid].doc, rid
    assert "PthreadLock" in rules["get-put.lock-order"].doc


# ---------------------------------------------------------------------- real functions


def test_real_returns_locked_on_purpose_is_not_an_imbalance():
    """fs/crypto/keysetup_v1.c, find_and_lock_process_key(): the success return hands the
    key back with its semaphore held, the error exit drops it:

        down_read(&key->sem);
        ukp = user_key_payload_locked(key);
        if (!ukp)
            goto invalid;
        ...
        *payload_ret = payload;
        return key;
    invalid:
        up_read(&key->sem);
        key_put(key);
        return ERR_PTR(-ENOKEY);

    At most a low lock-imbalance (a success path that lost its unlock looks the same)."""
    fs = _real("fs/crypto/keysetup_v1.c", "find_and_lock_process_key")
    assert _shown(fs) == [] and all(f.rule == "get-put.lock-imbalance" for f in fs)


def test_real_trylock_then_lock_returns_locked_on_purpose():
    """fs/btrfs/delayed-ref.c, btrfs_delayed_ref_lock(): every success return holds
    head->mutex (by trylock or by the lock after dropping the spinlock), the -EAGAIN
    return drops it:

        if (mutex_trylock(&head->mutex))
            return 0;
        ...
        mutex_lock(&head->mutex);
        spin_lock(&delayed_refs->lock);
        if (RB_EMPTY_NODE(&head->href_node)) {
            mutex_unlock(&head->mutex);
            btrfs_put_delayed_ref_head(head);
            return -EAGAIN;
        }
        btrfs_put_delayed_ref_head(head);
        return 0;
    """
    assert _shown(_real("fs/btrfs/delayed-ref.c", "btrfs_delayed_ref_lock")) == []


def test_real_helper_that_drops_the_lock_is_not_a_double_lock():
    """fs/notify/fanotify/fanotify_user.c, fanotify_release(): finish_permission_event()
    drops group->notification_lock (it is annotated __releases), so the loop takes it
    again:

        spin_lock(&group->notification_lock);
        while (!list_empty(&group->fanotify_data.access_list)) {
            ...
            finish_permission_event(group, event, FAN_ALLOW);
            spin_lock(&group->notification_lock);
        }

    The walker does not see into the helper: at most a low finding, never a default one."""
    fs = _real("fs/notify/fanotify/fanotify_user.c", "fanotify_release")
    assert _shown(fs) == []


def test_real_alias_by_comparison_is_not_a_default_imbalance():
    """fs/afs/dir.c, afs_rename_edit_dir(): orig_dvnode and new_dvnode may be one
    directory; the lock is dropped and retaken only when they differ, and the final
    unlock names new_dvnode:

        down_write(&orig_dvnode->validate_lock);
        ...
        if (new_dvnode != orig_dvnode) {
            up_write(&orig_dvnode->validate_lock);
            down_write(&new_dvnode->validate_lock);
        }
        ...
        up_write(&new_dvnode->validate_lock);
    """
    fs = _real("fs/afs/dir.c", "afs_rename_edit_dir")
    assert _shown(fs) == []


def test_real_status_decides_the_lock_is_not_a_default_imbalance():
    """fs/nfsd/nfs4state.c, nfsd4_lock_ol_stateid(): `return ret` holds the mutex when
    ret is nfs_ok and not otherwise; the same expression is not the same value:

        mutex_lock_nested(&stp->st_mutex, LOCK_STATEID_MUTEX);
        ret = nfsd4_verify_open_stid(&stp->st_stid);
        if (ret != nfs_ok)
            mutex_unlock(&stp->st_mutex);
        return ret;
    """
    fs = _real("fs/nfsd/nfs4state.c", "nfsd4_lock_ol_stateid")
    assert _shown(fs) == []


def test_real_unlock_under_its_own_record_is_not_a_default_unlock_unheld():
    """drivers/spi/spi.c, spi_write_then_read(): a failed trylock sends the path to a
    kmalloc()ed buffer, and the unlock is guarded by which buffer was used, a record the
    walker does not relate to the trylock:

        if ((n_tx + n_rx) > SPI_BUFSIZ || !mutex_trylock(&lock)) {
            local_buf = kmalloc(...);
            ...
        } else {
            local_buf = buf;
        }
        ...
        if (x[0].tx_buf == buf)
            mutex_unlock(&lock);
        else
            kfree(local_buf);
    """
    fs = _real("drivers/spi/spi.c", "spi_write_then_read")
    assert _shown(fs) == []
    # both kept at low: the unlock after the failed trylock, the return that keeps it
    assert {f.rule for f in fs} == {"get-put.unlock-unheld", "get-put.lock-imbalance"}


# ---------------------------------------------------------------------- the directory's summaries


def _all(rel: str, fn: str) -> list[Finding]:
    """Every lock finding of `fn`, at any confidence (the file's own graph: its helpers)."""
    path = tree_file(rel)
    return [f for f in analyze_source(path.read_text(errors="replace"), rel, only=[fn])
            if f.rule in LOCK_RULES]


def test_real_helper_the_summaries_say_drops_the_lock_gives_no_finding_at_all():
    """fs/notify/fanotify/fanotify_user.c: finish_permission_event() ends in an unlock of
    group->notification_lock (it is annotated `__releases(&group->notification_lock)`), so
    its lock summary drops {0}->notification_lock, and its callers go on without it:

        process_access_response():
            spin_lock(&group->notification_lock);
            list_for_each_entry(event, &group->fanotify_data.access_list,
                                fae.fse.list) {
                    ...
                    finish_permission_event(group, event, response);
                    wake_up(&group->fanotify_data.access_waitq);
                    return 0;
            }
            spin_unlock(&group->notification_lock);
        fanotify_read(), in its loop:
            spin_lock(&group->notification_lock);
            finish_permission_event(group,
                    FANOTIFY_PERM(event), FAN_DENY);

    The return "with the lock held" (a low lock-imbalance before) and the double locks
    (low before) are not reported at all now."""
    rel = "fs/notify/fanotify/fanotify_user.c"
    assert not [f for f in _all(rel, "fanotify_read") if f.rule == "get-put.double-lock"]
    assert not [f for f in _all(rel, "fanotify_release") if f.rule == "get-put.double-lock"]
    assert not [f for f in _all(rel, "process_access_response")
                if f.rule == "get-put.lock-imbalance"]


def test_real_helper_that_drops_the_outer_lock_is_not_a_lock_order():
    """fs/fs-writeback.c, wb_writeback(): inode_sleep_on_writeback() (same file) drops
    inode->i_lock (`spin_unlock(&inode->i_lock)` before it schedules), and the loop then
    takes wb->list_lock before i_lock again:

        inode = wb_inode(wb->b_more_io.prev);
        spin_lock(&inode->i_lock);
        spin_unlock(&wb->list_lock);
        /* This function drops i_lock... */
        inode_sleep_on_writeback(inode);
        spin_lock(&wb->list_lock);

    No lock order (low before); __mark_inode_dirty()'s double lock of i_lock around
    locked_inode_to_wb_and_lock_list() (which drops it) goes the same way."""
    rel = "fs/fs-writeback.c"
    assert not [f for f in _all(rel, "wb_writeback") if f.rule == "get-put.lock-order"]
    assert not [f for f in _all(rel, "__mark_inode_dirty") if f.rule == "get-put.double-lock"]


def test_real_continue_of_an_upper_case_loop_macro_is_not_a_double_unlock():
    """net/ncsi/ncsi-manage.c, ncsi_kick_channels(): NCSI_FOR_EACH_CHANNEL is
    list_for_each_entry_rcu() under an upper-case name; read as anything but a loop, its
    `continue` falls through to the unlock below:

        NCSI_FOR_EACH_CHANNEL(np, nc) {
                spin_lock_irqsave(&nc->lock, flags);
                ...
                if (nc->state != NCSI_CHANNEL_ACTIVE) {
                        ...
                        spin_unlock_irqrestore(&nc->lock, flags);
                        continue;
                }

                spin_unlock_irqrestore(&nc->lock, flags);

    (a double unlock at high before)."""
    fs = _all("net/ncsi/ncsi-manage.c", "ncsi_kick_channels")
    assert not [f for f in fs if f.rule == "get-put.double-release"]
