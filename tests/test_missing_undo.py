"""error-path.missing-undo and get-put.unchecked on setup calls, on real functions read at
test time (linux-source-6.1, ../shared/corpus-real), and the learning of setup calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_tree import corpus_real_file, tree_file

from reviewbot.cmodel import parse_region
from reviewbot.knowledge.aggregate import THRESHOLDS, finish
from reviewbot.knowledge.tree import learn_tree
from reviewbot.review.analysis import analyze_cfile, analyze_source

UNDO = "error-path.missing-undo"
FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def _findings(path: Path, rel: str, function: str, rule: str) -> list:
    src = path.read_bytes()
    cf = parse_region(src, rel, set(), {function})
    return [f for f in analyze_cfile(cf, rel, only=[function]) if f.rule == rule]






# ---------------------------------------------------------------------- fires


def test_count_from_caller_not_dropped_ksmbd():
    """fs/smb/server/transport_tcp.c (6.1.192, corpus-real 058 base), the count of
    active_num_conn is taken by the caller, ksmbd_kthread_fn():

        t = alloc_transport(client_sk);
        if (!t) {
            sock_release(client_sk);
            if (server_conf.max_connections)
                atomic_dec(&active_num_conn);
            return -ENOMEM;
        }
        csin = KSMBD_TCP_PEER_SOCKADDR(KSMBD_TRANS(t)->conn);
        if (kernel_getpeername(client_sk, csin) < 0) {
            ...
            goto out_error;            <- the count is never dropped
        }
        handler = kthread_run(...);
        if (IS_ERR(handler)) {
            ...
            ksmbd_tcp_disconnect(KSMBD_TRANS(t));   <- drops it (free_transport + dec)
        }
        return rc;
    out_error:
        free_transport(t);
        return rc;
    """
    rel = "fs/smb/server/transport_tcp.c"
    got = _findings(corpus_real_file("058-", rel), rel, "ksmbd_tcp_new_connection", UNDO)
    assert [(f.resource, f.line) for f in got] == [("active_num_conn", 211)]
    assert got[0].confidence == "medium" and 203 in got[0].lines
    # the exit through ksmbd_tcp_disconnect() (a helper of the file) is not reported
    assert all(ln not in (220, 223) for ln in got[0].lines)


def test_count_from_caller_before_the_fix_ksmbd():
    """The pre-fix file (corpus-real 057 base): the kthread_run() failure calls
    free_transport(t), which does not drop active_num_conn, and returns rc:

        if (IS_ERR(handler)) {
            pr_err("cannot start conn thread\\n");
            rc = PTR_ERR(handler);
            free_transport(t);         <- the fix: ksmbd_tcp_disconnect()
        }
        return rc;
    """
    rel = "fs/smb/server/transport_tcp.c"
    got = _findings(corpus_real_file("057-", rel), rel, "ksmbd_tcp_new_connection", UNDO)
    assert len(got) == 1 and got[0].resource == "active_num_conn"
    assert {210, 222} <= set(got[0].lines)  # the goto out_error and the kthread exit


def test_count_up_not_dropped_on_a_later_failure_hdpvr():
    """drivers/media/usb/hdpvr/hdpvr-core.c hdpvr_probe(): dev_nr is counted up for the
    device, dropped when it is over the limit and in hdpvr_disconnect(), but not when the
    video device fails to register (a failed probe gets no disconnect):

        dev_num = atomic_inc_return(&dev_nr);
        if (dev_num >= HDPVR_MAX) {
            ...
            atomic_dec(&dev_nr);
            retval = -ENODEV;
            goto reg_fail;
        }
        retval = hdpvr_register_videodev(dev, &interface->dev, video_nr[dev_num]);
        if (retval < 0) {
            v4l2_err(&dev->v4l2_dev, "registering videodev failed\n");
            goto reg_fail;             <- dev_nr stays counted up
        }
    """
    rel = "drivers/media/usb/hdpvr/hdpvr-core.c"
    got = _findings(tree_file(rel), rel, "hdpvr_probe", UNDO)
    assert [(f.resource, f.line) for f in got] == [("dev_nr", 386)]
    assert {373, 377} <= set(got[0].lines)  # counted up, and down on the other exit


def test_drvdata_left_on_a_freed_object_virtio_ccw():
    """drivers/s390/virtio/virtio_ccw.c virtio_ccw_online(): the device's driver data is
    set before the transport revision is negotiated (the interrupt handler reads it with
    dev_get_drvdata()); when that fails the object is freed and the pointer stays:

        dev_set_drvdata(&cdev->dev, vcdev);
        ...
        ret = virtio_ccw_set_transport_rev(vcdev);
        if (ret)
            goto out_free;             <- cdev->dev's driver data still vcdev
        ...
    out_put:
        dev_set_drvdata(&cdev->dev, NULL);   <- the sibling exit clears it
        ...
    out_free:
        ...
        kfree(vcdev);
    """
    rel = "drivers/s390/virtio/virtio_ccw.c"
    got = _findings(tree_file(rel), rel, "virtio_ccw_online", UNDO)
    assert [(f.resource, f.line, f.confidence) for f in got] == [("cdev->dev", 1343, "medium")]
    assert {1336, 1354} <= set(got[0].lines)  # published, and undone on the other exit
    assert "kfree() at line 1363" in got[0].message


def test_pointer_stored_in_the_device_left_on_free_acpi_pci_root():
    """drivers/acpi/pci_root.c acpi_pci_root_add(): the root is stored in the ACPI device
    (acpi_pci_find_root() reads it back with acpi_driver_data()); the DMAR failure frees
    it with the pointer in place, while the failure after it clears the pointer first:

        device->driver_data = root;
        if (hotadd && dmar_device_add(handle)) {
            result = -ENXIO;
            goto end;                  <- device->driver_data still root
        }
        ...
        if (!root->bus) {
            ...
            device->driver_data = NULL;
            result = -ENODEV;
            goto remove_dmar;
        }
        ...
    end:
        kfree(root);
    """
    rel = "drivers/acpi/pci_root.c"
    got = _findings(tree_file(rel), rel, "acpi_pci_root_add", UNDO)
    assert [(f.resource, f.line) for f in got] == [("device->driver_data", 702)]
    assert {698, 737} <= set(got[0].lines)


# ---------------------------------------------------------------------- must not fire


def test_object_of_an_earlier_loop_round_be2iscsi():
    """drivers/scsi/be2iscsi/be_main.c hba_setup_cid_tbls(): each round stores a new
    object; the free in a later round is of that round's object, never stored:

        for (ulp_num = 0; ulp_num < BEISCSI_ULP_COUNT; ulp_num++) {
            ...
                ptr_cid_info = kzalloc(sizeof(struct ulp_cid_info), GFP_KERNEL);
                ...
                if (!ptr_cid_info->cid_array) {
                    kfree(ptr_cid_info);       <- not the one stored last round
                    ptr_cid_info = NULL;
                    ...
                    goto free_memory;
                }
                ...
                phba->cid_array_info[ulp_num] = ptr_cid_info;
    """
    rel = "drivers/scsi/be2iscsi/be_main.c"
    assert _findings(tree_file(rel), rel, "hba_setup_cid_tbls", UNDO) == []



def test_failed_idr_alloc_tested_after_a_first_test_nbd():
    """drivers/block/nbd.c nbd_dev_add(): the first test of idr_alloc()'s result decides
    nothing (`err == -ENOSPC` not taken still holds other errors); `err < 0` does:

        err = idr_alloc(&nbd_index_idr, nbd, index, index + 1, GFP_KERNEL);
        if (err == -ENOSPC)
            err = -EEXIST;
        ...
        if (err < 0)
            goto out_free_tags;        <- kfree(nbd): never entered
    """
    rel = "drivers/block/nbd.c"
    assert _findings(tree_file(rel), rel, "nbd_dev_add", UNDO) == []


def test_failed_idr_alloc_published_nothing_gpio_aggregator():
    """drivers/gpio/gpio-aggregator.c new_device_store(): the free after a failed
    idr_alloc() is right (nothing was entered), and later failures go through remove_idr:

        id = idr_alloc(&gpio_aggregator_idr, aggr, 0, 0, GFP_KERNEL);
        ...
        if (id < 0) {
            res = id;
            goto free_table;           <- kfree(aggr) with nothing in the idr
        }
    """
    rel = "drivers/gpio/gpio-aggregator.c"
    assert _findings(tree_file(rel), rel, "new_device_store", UNDO) == []


def test_failed_xa_store_published_nothing_ksmbd_rpc():
    """fs/smb/server/mgmt/user_session.c ksmbd_session_rpc_open(): xa_store() tested with
    xa_is_err(); the later failure erases the entry itself:

        old = xa_store(&sess->rpc_handle_list, id, entry, GFP_KERNEL);
        if (xa_is_err(old)) {
            up_write(&sess->rpc_lock);
            goto free_id;              <- kfree(entry): never stored
        }
        resp = ksmbd_rpc_open(sess, id);
        if (!resp) {
            xa_erase(&sess->rpc_handle_list, entry->id);
            ...
    """
    rel = "fs/smb/server/mgmt/user_session.c"
    assert _findings(tree_file(rel), rel, "ksmbd_session_rpc_open", UNDO) == []


def test_count_set_by_the_function_is_its_own_btrfs():
    """fs/btrfs/extent_io.c read_extent_buffer_subpage(): the function sets io_pages
    itself and drops it when the submit fails; the later -EIO is after the I/O ran:

        atomic_set(&eb->io_pages, 1);
        ...
        if (ret) {
            atomic_dec(&eb->io_pages);
        }
        ...
        if (!test_bit(EXTENT_BUFFER_UPTODATE, &eb->bflags))
            ret = -EIO;
        return ret;
    """
    rel = "fs/btrfs/extent_io.c"
    assert _findings(tree_file(rel), rel, "read_extent_buffer_subpage", UNDO) == []


def test_statistics_counter_in_a_success_branch_ubifs():
    """fs/ubifs/tnc.c dirty_cow_znode(): the decrements are bookkeeping of a branch that
    returns the znode, not a sibling error exit:

        if (!test_and_set_bit(DIRTY_ZNODE, &znode->flags)) {
            atomic_long_inc(&c->dirty_zn_cnt);
            atomic_long_dec(&c->clean_zn_cnt);
            ...
        }
        return znode;
    """
    rel = "fs/ubifs/tnc.c"
    assert _findings(tree_file(rel), rel, "dirty_cow_znode", UNDO) == []


# ---------------------------------------------------------------------- unchecked setup calls


def _fixture_findings(name: str) -> dict[str, str]:
    src = (FIXTURES / name).read_text()
    return {f.function: f.confidence for f in analyze_source(src, name)
            if f.rule == "get-put.unchecked"}


def test_unchecked_setup_confidence_follows_local_evidence():
    got = _fixture_findings("get-put.unchecked.setup.c")
    # a later failure unwinds, or the same call is tested elsewhere in the function
    assert got["us_probe"] == got["us_two_inputs"] == got["us_netdev"] == "medium"
    # the tree's callers alone (learned) say it must be checked: low
    assert got["us_add_dev"] == got["us_class"] == "low"
    assert "us_probe_ok" not in got and "us_register" not in got


def _thing_tree(root: Path, tested: int, ignored: int, name: str) -> None:
    for i in range(tested + ignored):
        body = (f"\tret = {name}(&d->t{i});\n\tif (ret)\n\t\treturn ret;\n" if i < tested
                else f"\t{name}(&d->t{i});\n")
        (root / f"f{i}.c").write_text(
            f"int caller_{name}_{i}(struct dev *d)\n{{\n\tint ret;\n\n{body}\treturn 0;\n}}\n")


@pytest.mark.parametrize("name,tested,ignored,must", [
    ("thing_register", 9, 1, True),    # a setup call most callers test: must-check
    ("thing_register", 6, 3, False),   # a third ignore it: no verdict
    ("thing_lookup", 9, 1, False),     # no setup verb: needs the general 20 sites
])
def test_setup_calls_learned_with_fewer_sites(tmp_path, name, tested, ignored, must):
    assert tested + ignored < THRESHOLDS["must_check_sites"]
    _thing_tree(tmp_path, tested, ignored, name)
    k = finish(learn_tree(tmp_path, cache=None, jobs=1), {"name": "t"}, "test", "test")
    assert (name in {m.name for m in k.must_check}) is must
