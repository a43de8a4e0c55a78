"""Leaks by overwrite and untested acquisitions, on real functions of linux-source-6.1
(read from the tree at test time; skipped without one) and on code made by the test."""

from __future__ import annotations

import pytest
from kernel_tree import linux_tree

from reviewbot.review.analysis import analyze_source

OVERWRITE = "get-put.leak-by-overwrite"
DOUBLE = "get-put.double-release"
UAF = "get-put.use-after-release"


def _findings(rel: str, function: str, rule: str) -> list[tuple[int, str]]:
    top = rel.split("/")
    tree = linux_tree("/".join(top[:-1]))
    if tree is None:
        pytest.skip("linux-source-6.1 is not available")
    src = (tree / rel).read_text(errors="replace")
    return [(f.line, f.resource) for f in analyze_source(src, rel, only=[function])
            if f.rule == rule]


# ---------------------------------------------------------------- leak by overwrite


def test_imx7_src_init_loses_the_src_node():
    """arch/arm/mach-imx/src.c, imx7_src_init(): the node of the first lookup is never put
    (of_iomap() takes no reference) and its only name is reused:

        np = of_find_compatible_node(NULL, NULL, "fsl,imx7d-src");
        if (!np)
                return;
        src_base = of_iomap(np, 0);
        if (!src_base)
                return;
        np = of_find_compatible_node(NULL, NULL, "fsl,imx7d-gpc");
    """
    got = _findings("arch/arm/mach-imx/src.c", "imx7_src_init", OVERWRITE)
    assert [r for _, r in got] == ["np"]


def test_s500_smp_prepare_cpus_loses_the_timer_node():
    """arch/arm/mach-actions/platsmp.c, s500_smp_prepare_cpus():

        node = of_find_compatible_node(NULL, NULL, "actions,s500-timer");
        ...
        timer_base_addr = of_iomap(node, 0);
        ...
        node = of_find_compatible_node(NULL, NULL, "actions,s500-sps");
    """
    got = _findings("arch/arm/mach-actions/platsmp.c", "s500_smp_prepare_cpus", OVERWRITE)
    assert [r for _, r in got] == ["node"]


def test_a_mapping_kept_with_an_offset_is_not_lost():
    """arch/powerpc/sysdev/indirect_pci.c, setup_indirect_pci(): the first mapping is kept
    in hose->cfg_addr (with an offset) before the name is reused:

        mbase = ioremap(base, PAGE_SIZE);
        hose->cfg_addr = mbase + (cfg_addr & ~PAGE_MASK);
        if ((cfg_data & PAGE_MASK) != base)
                mbase = ioremap(cfg_data & PAGE_MASK, PAGE_SIZE);
    """
    assert _findings("arch/powerpc/sysdev/indirect_pci.c", "setup_indirect_pci", OVERWRITE) == []


def test_dget_of_a_parameter_keeps_its_other_name():
    """fs/libfs.c, simple_recursive_removal(): `this` is dget(dentry), dropped at the end
    through `dentry` (dput(dentry)); `this = child` loses no reference:

        struct dentry *this = dget(dentry);
        ...
                dput(dentry);
        ...
        this = child;
    """
    assert _findings("fs/libfs.c", "simple_recursive_removal", OVERWRITE) == []


def test_a_pointer_realigned_inside_its_block():
    """net/netfilter/nft_set_pipapo.c, pipapo_realloc_scratch(): the new value points into
    the same allocation:

        scratch_aligned = NFT_PIPAPO_LT_ALIGN(&scratch->map);
        scratch_aligned -= offsetof(struct nft_pipapo_scratch, map);
        ...
        scratch = scratch_aligned;
    """
    assert _findings("net/netfilter/nft_set_pipapo.c", "pipapo_realloc_scratch", OVERWRITE) == []


def test_an_object_freed_through_its_embedded_mark():
    """fs/nfsd/filecache.c, nfsd_file_mark_find_or_create(): a failed add frees `new`
    through its member before the loop allocates again:

        new = kmem_cache_alloc(nfsd_file_mark_slab, GFP_KERNEL);
        ...
        err = fsnotify_add_inode_mark(&new->nfm_mark, inode, 0);
        ...
                fsnotify_put_mark(&new->nfm_mark);
        } while (unlikely(err == -EEXIST));
    """
    assert _findings("fs/nfsd/filecache.c", "nfsd_file_mark_find_or_create", OVERWRITE) == []


def test_buffers_held_through_the_structure_the_call_filled():
    """fs/hpfs/alloc.c, chk_if_allocated(): what hpfs_map_bitmap() returns lives in the
    buffers it put in `qbh`, released by hpfs_brelse4(&qbh) before the next map:

        if (!(bmp = hpfs_map_bitmap(s, sec >> 14, &qbh, "chk"))) goto fail;
        ...
        hpfs_brelse4(&qbh);
        ...
                if (!(bmp = hpfs_map_dnode_bitmap(s, &qbh))) goto fail;
    """
    assert _findings("fs/hpfs/alloc.c", "chk_if_allocated", OVERWRITE) == []


def test_a_release_the_learned_pair_does_not_list():
    """fs/f2fs/data.c, f2fs_find_data_page(): f2fs_put_page() drops the page (the learned
    pair of find_get_page() does not list it) before the name is reused:

        page = find_get_page(mapping, index);
        if (page && PageUptodate(page))
                return page;
        f2fs_put_page(page, 0);

        page = f2fs_get_read_data_page(inode, index, 0, false, next_pgofs);
    """
    assert _findings("fs/f2fs/data.c", "f2fs_find_data_page", OVERWRITE) == []


# ---------------------------------------------------------------- untested acquisitions


def test_kasan_double_kzfree_is_a_double_release():
    """mm/kasan/kasan_test.c, kmalloc_double_kzfree(): the result is checked only by a
    KUnit assertion the walker does not read as a test, then freed twice (on purpose: the
    test makes KASAN report it):

        ptr = kmalloc(size, GFP_KERNEL);
        KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ptr);
        kfree_sensitive(ptr);
        KUNIT_EXPECT_KASAN_FAIL(test, kfree_sensitive(ptr));
    """
    got = _findings("mm/kasan/kasan_test.c", "kmalloc_double_kzfree", DOUBLE)
    assert [r for _, r in got] == ["ptr"]


def test_kasan_memset_after_kfree_is_a_use_after_release():
    """mm/kasan/kasan_test.c, kmalloc_uaf_memset():

        ptr = kmalloc(size, GFP_KERNEL);
        KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ptr);
        kfree(ptr);
        KUNIT_EXPECT_KASAN_FAIL(test, memset(ptr, 0, size));
    """
    got = _findings("mm/kasan/kasan_test.c", "kmalloc_uaf_memset", UAF)
    assert [r for _, r in got] == ["ptr"]


def test_pages_released_piecewise_through_a_moving_pointer():
    """drivers/parisc/sba_iommu.c, sba_alloc_pdir(): `new_pdir += pdir_size` names the next
    piece of the block each round; each piece is freed once:

        while (pdir_order < (19-12)) {
                new_pdir += pdir_size;
                free_pages(new_pdir, pdir_order);
    """
    rel = "drivers/parisc/sba_iommu.c"
    assert _findings(rel, "sba_alloc_pdir", DOUBLE) == []
    assert _findings(rel, "sba_alloc_pdir", UAF) == []


def test_an_iterator_macro_read_as_a_definition_is_a_loop():
    """drivers/net/ethernet/intel/ice/ice_main.c, ice_create_q_channels(): the parser reads
    `ice_for_each_chnl_tc(i) {` after the declarations as a definition; the body is a loop
    whose failure branch frees `ch` and leaves, not one statement:

        ch = kzalloc(sizeof(*ch), GFP_KERNEL);
        if (!ch) { ... goto err_free; }
        ...
        if (ret) { ...; kfree(ch); goto err_free; }
        list_add_tail(&ch->list, &vsi->ch_list);
    """
    assert _findings("drivers/net/ethernet/intel/ice/ice_main.c", "ice_create_q_channels",
                     UAF) == []


def test_a_late_predicate_on_an_untested_buffer_is_not_its_test():
    """fs/ntfs/logfile.c, ntfs_empty_logfile(): `buffer_uptodate(bh)` much later is not the
    test of sb_getblk()'s result (BUG_ON(!bh) is not a branch): the leak on `goto io_err`
    (a real one, docs/triage-6.1.md) stays reported."""
    got = _findings("fs/ntfs/logfile.c", "ntfs_empty_logfile", "get-put.leak")
    assert [r for _, r in got] == ["bh"]


# ---------------------------------------------------------------- made by the test

UNTESTED = """
static int f(struct d *dd)
{
	char *a, *b;

	a = kmalloc(16, GFP_KERNEL);
	b = kmalloc(16, GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	kfree(a);
	kfree(b);
	kfree(a);
	return 0;
}
"""


def test_an_untested_result_leaks_on_an_error_exit_and_frees_twice():
    fs = analyze_source(UNTESTED, "f.c")
    got = sorted((f.rule, f.line, f.resource) for f in fs)
    assert ("error-path.missing-release", 9, "a") in got
    assert (DOUBLE, 12, "a") in got
    assert not any(r == "b" for _, _, r in got)


def test_the_overwrite_message_names_the_acquisition():
    src = """
static void g(void)
{
	char *x;

	x = kzalloc(16, GFP_KERNEL);
	x = kzalloc(32, GFP_KERNEL);
	kfree(x);
}
"""
    [f] = [f for f in analyze_source(src, "g.c") if f.rule == OVERWRITE]
    assert (f.line, f.resource, f.confidence) == (7, "x", "medium")
    assert "kzalloc() returned at line 6 (its result was not tested)" in f.message
    assert [s.line for s in f.trace] == [6, 7]
