"""Pairs no pack lists (alloc_netdev/free_netdev, kmem_cache_create/kmem_cache_destroy,
a driver's own ctx_create/ctx_destroy, alloc_skb/kfree_skb), inferred from the function's
own unwind ladder, in code shaped like net/core. Reviewed with the hand-written packs
alone: learned knowledge (which knows most of these calls) is tested in test_learned_use.py."""

from __future__ import annotations

import difflib

import pytest

from reviewbot.model import Patch, Series
from reviewbot.packs import load_packs
from reviewbot.review.pipeline import Reviewer

NET = """static int demo_net_init(struct demo_priv *priv)
{
	struct net_device *netdev;
	struct kmem_cache *cache;
	struct demo_ctx *ctx;
	int err;

	netdev = alloc_netdev(sizeof(*priv), "demo%d", NET_NAME_UNKNOWN, demo_setup);
	if (!netdev)
		return -ENOMEM;

	cache = kmem_cache_create("demo_cache", 64, 0, 0, NULL);
	if (!cache) {
		err = -ENOMEM;
		goto err_free_netdev;
	}

	ctx = demo_ctx_create(priv);
	if (IS_ERR(ctx)) {
		err = PTR_ERR(ctx);
		goto err_destroy_cache;
	}

	err = register_netdev(netdev);
	if (err)
		goto err_destroy_ctx;

	priv->netdev = netdev;
	priv->cache = cache;
	priv->ctx = ctx;
	return 0;

err_destroy_ctx:
	demo_ctx_destroy(ctx);
err_destroy_cache:
	kmem_cache_destroy(cache);
err_free_netdev:
	free_netdev(netdev);
	return err;
}
"""

SKB = """static int demo_send_probe(struct net_device *dev, u32 seq)
{
	struct sk_buff *skb;
	int err;

	skb = alloc_skb(DEMO_PROBE_LEN, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;

	err = demo_fill_probe(skb, seq);
	if (err)
		goto out_free;

	err = demo_xmit(dev, skb);
	if (err)
		goto out_free;
	return 0;

out_free:
	kfree_skb(skb);
	return err;
}
"""

REGISTER_FAILS = "\terr = register_netdev(netdev);\n\tif (err)\n\t\tgoto err_destroy_ctx;"
CTX_FAILS = "\t\terr = PTR_ERR(ctx);\n\t\tgoto err_destroy_cache;"


def _review(tmp_path, path: str, pre: str, post: str):
    assert pre != post, "the case does not change anything"
    f = tmp_path / "tree" / path
    f.parent.mkdir(parents=True)
    f.write_text(pre)
    diff = "".join(difflib.unified_diff(pre.splitlines(True), post.splitlines(True),
                                        f"a/{path}", f"b/{path}"))
    patch = Patch(subject="net: demo", raw_subject="[PATCH] net: demo", message_id="", diff=diff)
    res = Reviewer(str(tmp_path / "tree"), packs=load_packs(learned=False)).review_series(Series("t", 1, "", [patch]))
    return [f for f in res.findings() if f.status == "introduced"]


def _net(tmp_path, post: str):
    return {(f.rule, f.resource, f.confidence) for f in
            _review(tmp_path, "net/core/demo.c", NET, post)}


def test_calls_are_in_no_pack():
    names = set(load_packs(learned=False).calls)
    assert "kfree" in names and "gfs2_glock_put" in names
    for call in ("alloc_netdev", "free_netdev", "kmem_cache_create", "kmem_cache_destroy",
                 "demo_ctx_create", "demo_ctx_destroy", "alloc_skb", "kfree_skb"):
        assert call not in names


@pytest.mark.parametrize("release,resource", [
    ("\tdemo_ctx_destroy(ctx);\n", "ctx"),
    ("\tkmem_cache_destroy(cache);\n", "cache"),
    ("\tfree_netdev(netdev);\n", "netdev"),
])
def test_release_deleted_from_label(tmp_path, release, resource):
    found = _net(tmp_path, NET.replace(release, ""))
    assert ("error-path.missing-release", resource, "low") in found
    assert {r for _, r, _ in found} == {resource}


def test_goto_skips_one_rung(tmp_path):
    post = NET.replace(REGISTER_FAILS, REGISTER_FAILS.replace("err_destroy_ctx", "err_destroy_cache"))
    assert _net(tmp_path, post) == {("error-path.missing-release", "ctx", "low")}


def test_goto_skips_two_rungs(tmp_path):
    post = NET.replace(CTX_FAILS, CTX_FAILS.replace("err_destroy_cache", "err_free_netdev"))
    found = _net(tmp_path, post)
    # reported, though as get-put.leak at the ladder's return rather than as
    # error-path.missing-release at the goto
    assert {(r, c) for _, r, c in found} == {("cache", "low")}


def test_new_check_with_wrong_label(tmp_path):
    post = NET.replace("\terr = register_netdev(netdev);",
                       "\terr = demo_hw_reset(priv);\n\tif (err)\n\t\tgoto err_destroy_cache;\n\n"
                       "\terr = register_netdev(netdev);")
    assert _net(tmp_path, post) == {("error-path.missing-release", "ctx", "low")}


def test_return_past_the_ladder(tmp_path):
    post = NET.replace(REGISTER_FAILS, "\terr = register_netdev(netdev);\n\tif (err)\n\t\treturn err;")
    assert _net(tmp_path, post) == {("error-path.direct-return", r, "low")
                                    for r in ("netdev", "cache", "ctx")}


def test_return_past_the_ladder_early(tmp_path):
    post = NET.replace(CTX_FAILS, "\t\treturn PTR_ERR(ctx);")
    assert _net(tmp_path, post) == {("error-path.direct-return", r, "low")
                                    for r in ("netdev", "cache")}


@pytest.mark.parametrize("old,new", [
    ('"demo_cache", 64', '"demo_cache", 128'),
    ("\tpriv->ctx = ctx;\n", "\tpriv->ctx = ctx;\n\tdemo_stats_reset(priv);\n"),
    ("\terr = register_netdev(netdev);",
     "\terr = demo_hw_reset(priv);\n\tif (err)\n\t\tgoto err_destroy_ctx;\n\n"
     "\terr = register_netdev(netdev);"),
], ids=["constant", "statement-added", "new-check-right-label"])
def test_unrelated_or_correct_change(tmp_path, old, new):
    assert _net(tmp_path, NET.replace(old, new)) == set()


def test_skb_release_deleted(tmp_path):
    found = _review(tmp_path, "net/core/probe.c", SKB, SKB.replace("\tkfree_skb(skb);\n", ""))
    assert [(f.rule, f.resource, f.confidence) for f in found] == [
        ("error-path.missing-release", "skb", "low")]


def test_skb_direct_return(tmp_path):
    post = SKB.replace("\terr = demo_fill_probe(skb, seq);\n\tif (err)\n\t\tgoto out_free;",
                       "\terr = demo_fill_probe(skb, seq);\n\tif (err)\n\t\treturn err;")
    found = _review(tmp_path, "net/core/probe.c", SKB, post)
    assert [(f.rule, f.resource, f.confidence) for f in found] == [
        ("error-path.direct-return", "skb", "low")]


def test_skb_unrelated(tmp_path):
    post = SKB.replace("DEMO_PROBE_LEN", "DEMO_PROBE_LEN + 16")
    assert _review(tmp_path, "net/core/probe.c", SKB, post) == []


CLOCK = """static int demo_get_desc(int id, struct demo_desc *cd);
static void demo_put_desc(struct demo_desc *cd);

static int demo_settime(int id, const struct timespec64 *ts)
{
	struct demo_desc cd;
	int err;

	err = demo_get_desc(id, &cd);
	if (err)
		return err;

	if ((cd.fp->f_mode & FMODE_WRITE) == 0) {
		err = -EACCES;
		goto out;
	}
	err = cd.clk->ops.settime(cd.clk, ts);
out:
	demo_put_desc(&cd);
	return err;
}
"""
CLOCK_EARLY = CLOCK.replace("\terr = cd.clk->ops.settime(cd.clk, ts);",
                            "\tif (!demo_valid(ts))\n\t\treturn -EINVAL;\n"
                            "\terr = cd.clk->ops.settime(cd.clk, ts);")


def test_a_local_structure_filled_and_emptied_by_mirrored_calls(tmp_path):
    """pc_clock_settime() of 6.1's kernel/time/posix-clock.c (corpus-real 092): the
    address of a local `struct posix_clock_desc cd` pairs get_clock_desc / put_clock_desc
    (inferred: low, like every inferred pair)."""
    found = _review(tmp_path, "kernel/time/demo.c", CLOCK, CLOCK_EARLY)
    assert [(f.rule, f.resource, f.confidence) for f in found] == [
        ("error-path.direct-return", "cd", "low")]


def test_a_local_structure_pairs_only_calls_that_share_more_than_a_prefix(tmp_path):
    pre = CLOCK.replace("demo_put_desc", "demo_free_all")
    post = CLOCK_EARLY.replace("demo_put_desc", "demo_free_all")
    assert _review(tmp_path, "kernel/time/demo.c", pre, post) == []


def test_the_address_of_a_scalar_pairs_nothing(tmp_path):
    pre = CLOCK.replace("struct demo_desc cd;", "int cd;")
    post = CLOCK_EARLY.replace("struct demo_desc cd;", "int cd;")
    assert _review(tmp_path, "kernel/time/demo.c", pre, post) == []
