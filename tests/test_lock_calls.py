"""The lock rules across functions (reviewbot/checks/lock_calls.py) on real functions of
linux-source-6.1, read at test time (never copied into the repository)."""

from __future__ import annotations

from kernel_tree import tree_file

from reviewbot.model import Finding
from reviewbot.review.analysis import analyze_source


def _findings(rel: str, fn: str) -> list[Finding]:
    path = tree_file(rel)
    return [f for f in analyze_source(path.read_text(errors="replace"), rel, only=[fn])
            if f.rule in ("get-put.double-lock", "get-put.lock-order")]


def test_real_double_lock_through_a_callee_of_the_same_file():
    """drivers/iommu/exynos-iommu.c, exynos_iommu_domain_free(): each client's data->lock
    is held when __sysmmu_disable(data) is called, and __sysmmu_disable() takes that same
    spinlock first thing:

        list_for_each_entry_safe(data, next, &domain->clients, domain_node) {
                spin_lock(&data->lock);
                __sysmmu_disable(data);
        ...
        static void __sysmmu_disable(struct sysmmu_drvdata *data)
        {
                ...
                clk_enable(data->clk_master);

                spin_lock_irqsave(&data->lock, flags);

    A spinlock is not recursive: a domain freed with clients still attached (the path
    the function's own WARN_ON(!list_empty(&domain->clients)) says is possible) hangs
    here. exynos_iommu_detach_device() calls __sysmmu_disable() without the lock."""
    fs = _findings("drivers/iommu/exynos-iommu.c", "exynos_iommu_domain_free")
    assert [(f.rule, f.line, f.confidence, f.resource) for f in fs] == [
        ("get-put.double-lock", 888, "medium", "data->lock")]
    assert "__sysmmu_disable() -> spin_lock_irqsave()" in fs[0].message
    assert fs[0].lines == [888, 887]


def test_real_caller_without_the_lock_is_quiet():
    """drivers/iommu/exynos-iommu.c, exynos_iommu_detach_device(): the same callee, with
    only owner->rpm_lock held (a mutex __sysmmu_disable() does not take):

        mutex_lock(&owner->rpm_lock);

        list_for_each_entry(data, &owner->controllers, owner_node) {
                pm_runtime_get_noresume(data->sysmmu);
                if (pm_runtime_active(data->sysmmu))
                        __sysmmu_disable(data);
    """
    assert _findings("drivers/iommu/exynos-iommu.c", "exynos_iommu_detach_device") == []
