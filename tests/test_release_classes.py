"""Releases across calls on real code: get-put.release-not-taken and get-put.use-after-unlock
on functions of linux-source-6.1 and of ../shared/corpus-real (read where they lie at test
time; nothing is copied into the repository). Each test quotes the lines that matter."""

from __future__ import annotations

from pathlib import Path

from kernel_tree import corpus_real_file, tree_file

from reviewbot.cmodel import parse_c
from reviewbot.model import Finding
from reviewbot.review.analysis import analyze_cfile

NOT_TAKEN = "get-put.release-not-taken"
AFTER_UNLOCK = "get-put.use-after-unlock"






def _findings(path: Path, function: str, rule: str) -> list[Finding]:
    cf = parse_c(path.read_bytes(), str(path))
    assert any(f.name == function for f in cf.functions), f"{function} not in {path}"
    return [f for f in analyze_cfile(cf, str(path), only={function}, effort="audit")
            if f.rule == rule]


# ---------------------------------------------------------------- release-not-taken

CACHEINFO = "drivers/base/cacheinfo.c"


def test_cacheinfo_teardown_puts_the_token_setup_never_kept():
    """corpus-real 039 (the pre-fix file), cache_shared_cpu_map_remove():

        if (of_have_populated_dt())
            of_node_put(this_leaf->fw_token);

    while cache_setup_of_node() stores and drops the node itself:

        this_leaf->fw_token = np;
        ...
        of_node_put(np);
    """
    path = corpus_real_file("039-cacheinfo-fw-token-double-put", CACHEINFO)
    got = _findings(path, "cache_shared_cpu_map_remove", NOT_TAKEN)
    assert [(f.resource, f.confidence) for f in got] == [("this_leaf->fw_token", "high")]
    assert "of_node_put(this_leaf->fw_token)" in got[0].message


def test_cacheinfo_setup_that_gets_and_puts_its_node_is_quiet():
    """The same file, cache_setup_of_node(): np comes from of_cpu_device_node_get() and
    of_find_next_cache_node(), both references:

        np = of_cpu_device_node_get(cpu);
        ...
            np = of_find_next_cache_node(np);
            of_node_put(prev);
        ...
        of_node_put(np);
    """
    path = corpus_real_file("039-cacheinfo-fw-token-double-put", CACHEINFO)
    assert _findings(path, "cache_setup_of_node", NOT_TAKEN) == []


def test_the_fixed_cacheinfo_teardown_is_quiet():
    """corpus-real 040's base is the fixed 6.1.192 file: cache_shared_cpu_map_remove() no
    longer puts fw_token."""
    path = corpus_real_file("040-cacheinfo-fw-token-double-put-rev", CACHEINFO)
    assert _findings(path, "cache_shared_cpu_map_remove", NOT_TAKEN) == []


def test_omap2430_probe_puts_the_device_node_it_borrowed():
    """linux-source-6.1 drivers/usb/musb/omap2430.c, omap2430_probe():

        struct device_node *np = pdev->dev.of_node;
        ...
        ret = platform_device_add(musb);
        ...
        of_node_put(np);
        return 0;
    err3: ...
    err2:
        of_node_put(np);
    """
    got = _findings(tree_file("drivers/usb/musb/omap2430.c"), "omap2430_probe", NOT_TAKEN)
    assert {f.resource for f in got} == {"np"}
    assert "pdev->dev.of_node" in got[0].message
    assert len(got[0].lines) >= 2  # both puts, the normal one and the unwind one


def test_a_destroy_that_tears_down_the_device_it_reads_is_quiet():
    """linux-source-6.1 drivers/usb/dwc3/dwc3-qcom.c: the create function parks the
    reference of fwnode_get_named_child_node() in the platform device it makes, and

        struct fwnode_handle *fwh = urs_usb->dev.fwnode;

        platform_device_unregister(urs_usb);
        fwnode_handle_put(fwh);

    drops it when the device goes: the owner is torn down in the function."""
    got = _findings(tree_file("drivers/usb/dwc3/dwc3-qcom.c"),
                    "dwc3_qcom_destroy_urs_usb_platdev", NOT_TAKEN)
    assert got == []


# ---------------------------------------------------------------- use-after-unlock

XILLYBUS = "drivers/char/xillybus/xillybus_class.c"


def test_xillybus_find_inode_reads_the_unit_after_the_unlock():
    """corpus-real 097 (the pre-fix file), xillybus_find_inode():

        mutex_lock(&unit_mutex);
        list_for_each_entry(iter, &unit_list, list_entry)
            if (iter->major == major && ...) {
                unit = iter;
                break;
            }
        mutex_unlock(&unit_mutex);
        if (!unit)
            return -ENODEV;
        *private_data = unit->private_data;

    High: xillybus_cleanup_chrdev() takes units off the list and frees them under
    unit_mutex (list_del(&unit->list_entry); kfree(unit);)."""
    path = corpus_real_file("097-xillybus-find-inode-unlock-order", XILLYBUS)
    got = _findings(path, "xillybus_find_inode", AFTER_UNLOCK)
    assert [(f.resource, f.confidence) for f in got] == [("unit", "high")]
    assert "unit->private_data" in got[0].message


def test_the_fixed_xillybus_find_inode_is_quiet():
    """corpus-real 098's base (6.1.192): the unlock moved after the last use, with one on
    the `!unit` exit:

        if (!unit) {
            mutex_unlock(&unit_mutex);
            return -ENODEV;
        }
        *private_data = unit->private_data;
        *index = minor - unit->lowest_minor;
        mutex_unlock(&unit_mutex);
    """
    path = corpus_real_file("098-xillybus-find-inode-unlock-order-rev", XILLYBUS)
    assert _findings(path, "xillybus_find_inode", AFTER_UNLOCK) == []


def test_a_removal_that_unlinks_under_the_lock_is_quiet():
    """linux-source-6.1 drivers/char/ipmi/kcs_bmc_serio.c, kcs_bmc_serio_remove_device():
    the entry found under the lock is taken off the list there, so it is the function's own
    after the unlock:

        list_for_each_entry(pos, &kcs_bmc_serio_instances, entry) {
            if (pos->client.dev == kcs_bmc) {
                priv = pos;
                list_del(&pos->entry);
                break;
            }
        }
        spin_unlock_irq(&kcs_bmc_serio_instances_lock);
        ...
        serio_unregister_port(priv->port);
    """
    got = _findings(tree_file("drivers/char/ipmi/kcs_bmc_serio.c"),
                    "kcs_bmc_serio_remove_device", AFTER_UNLOCK)
    assert got == []


def test_ext4_es_stats_read_the_inode_found_under_the_list_lock():
    """linux-source-6.1 fs/ext4/extents_status.c, ext4_seq_es_shrinker_info_show(): the
    inode with the most extents is picked under s_es_lock and printed after it:

        spin_lock(&sbi->s_es_lock);
        list_for_each_entry(ei, &sbi->s_es_list, i_es_list) {
            ...
                max = ei;
        }
        spin_unlock(&sbi->s_es_lock);
        ...
            max->vfs_inode.i_ino, max->i_es_all_nr, max->i_es_shk_nr,

    Low: the file removes inodes from the list (ext4_es_list_del) but frees them elsewhere
    (eviction), so the removal evidence of the file is missing."""
    got = _findings(tree_file("fs/ext4/extents_status.c"), "ext4_seq_es_shrinker_info_show",
                    AFTER_UNLOCK)
    assert [(f.resource, f.confidence) for f in got] == [("max", "low")]
    assert "max->vfs_inode" in got[0].message


def test_objects_pinned_by_a_count_taken_under_the_lock_are_quiet():
    """linux-source-6.1 fs/super.c, iterate_supers_type(): the superblock is pinned before
    the unlock,

        hlist_for_each_entry(sb, &type->fs_supers, s_instances) {
            sb->s_count++;
            spin_unlock(&sb_lock);
            down_read(&sb->s_umount);

    and fs/jffs2/compr.c, jffs2_selected_compress(): `this->usecount++;` before
    `spin_unlock(&jffs2_compressor_list_lock);` and `this->compress(...)`."""
    assert _findings(tree_file("fs/super.c"), "iterate_supers_type", AFTER_UNLOCK) == []
    assert _findings(tree_file("fs/jffs2/compr.c"), "jffs2_selected_compress",
                     AFTER_UNLOCK) == []
