"""Learned knowledge used by the engine: the learned layer under the hand-written packs
(reviewbot/packs/learned_layer.py), noreturn calls, and the confidence of findings that
rest on learned pairs (reviewbot/engine/evidence.py)."""

from __future__ import annotations

from reviewbot.knowledge.learned import (
    Acquirer,
    LearnedKnowledge,
    Managed,
    Noreturn,
    Release,
    shipped_path,
)
from reviewbot.packs import load_packs
from reviewbot.packs.learned_layer import layer
from reviewbot.review.analysis import analyze_source


def _acq(name: str, release: str, support: int = 20, contra: int = 0, scope: str = "",
         wrapper_of: str = "") -> Acquirer:
    return Acquirer(name, f"learned:{release}", "return", "nonnull", support, contra, 100, 90,
                    False, wrapper_of, scope)


def _rel(name: str, support: int = 20) -> Release:
    return Release(name, (f"learned:{name}",), "arg:0", support, True, 3, 0, "", "")


def _knowledge(**tables) -> LearnedKnowledge:
    return LearnedKnowledge("test", "", {}, {}, {}, **{k: tuple(v) for k, v in tables.items()})


def _packs(**tables):
    return layer(load_packs(learned=False), [("test.json", _knowledge(**tables))])


def _found(src: str, packs, path: str = "drivers/x/x.c"):
    return {(f.rule, f.resource, f.confidence) for f in analyze_source(src, path, packs=packs)}


# a widget taken by a learned acquirer; the second failure returns without the unwind
LOCAL = """int demo_probe(struct demo *priv)
{
	struct widget *w;
	int err;

	w = widget_get(priv->dev);
	if (!w)
		return -ENOMEM;
	err = demo_step1(priv);
	if (err)
		goto err_put;
	err = demo_step2(priv);
	if (err)
		return err;
	priv->w = w;
	return 0;
err_put:
	widget_put(w);
	return err;
}
"""

# the widget is never released by this function: only the ladder of the buffer says that
# the exit unwinds, so the finding rests on the learned pair alone
UNWOUND = """int demo_setup(struct demo *priv)
{
	struct widget *w;
	char *buf;
	int err;

	w = widget_get(priv->dev);
	if (!w)
		return -ENOMEM;
	buf = kmalloc(64, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	err = demo_step1(priv, buf);
	if (err)
		goto err_free;
	priv->w = w;
	priv->buf = buf;
	return 0;
err_free:
	kfree(buf);
	return err;
}
"""


def test_a_learned_pair_from_unwind_code_finds_a_skipped_release():
    packs = _packs(acquirers=[_acq("widget_get", "widget_put")], releases=[_rel("widget_put")])
    assert packs.calls["widget_get"].acquires == ("learned:widget_put",)
    # the learned pair finds it; the function's own ladder is not evidence enough for more
    # than low (docs/triage-6.1.md: callees that consume on failure, ownership out of sight)
    assert _found(LOCAL, packs) == {("error-path.direct-return", "w", "low")}
    # without the learned pair, it is only inferred from this one function: low as well
    assert _found(LOCAL, load_packs(learned=False)) == {("error-path.direct-return", "w", "low")}


def test_a_release_the_patch_removed_is_evidence():
    from reviewbot.cmodel import parse_c
    from reviewbot.review.analysis import analyze_cfile

    packs = _packs(acquirers=[_acq("widget_get", "widget_put")], releases=[_rel("widget_put")])
    before = LOCAL.replace("\t\treturn err;\n\tpriv->w", "\t\tgoto err_put;\n\tpriv->w")
    # the patch turns the second failure's `goto err_put` into a plain return
    after = LOCAL
    got = analyze_cfile(parse_c(after, "drivers/x/x.c"), "drivers/x/x.c", packs=packs,
                        infer_from=parse_c(before, "drivers/x/x.c"))
    # both images release w once: nothing removed, still low
    assert {(f.rule, f.confidence) for f in got} == {("error-path.direct-return", "low")}
    # the patch removes the release itself: the pre-image is the evidence
    after2 = before.replace("err_put:\n\twidget_put(w);\n", "err_put:\n")
    got = analyze_cfile(parse_c(after2, "drivers/x/x.c"), "drivers/x/x.c", packs=packs,
                        infer_from=parse_c(before, "drivers/x/x.c"))
    assert ("error-path.missing-release", "w", "high") in {
        (f.rule, f.resource, f.confidence) for f in got}


def test_support_alone_never_raises_confidence():
    well = _packs(acquirers=[_acq("widget_get", "widget_put", 20, 2)],
                  releases=[_rel("widget_put")])
    weak = _packs(acquirers=[_acq("widget_get", "widget_put", 3, 0)],
                  releases=[_rel("widget_put")])
    leak = ("error-path.missing-release", "w")
    assert {(r, k) for r, k, _c in _found(UNWOUND, well)} == {leak}
    assert _found(UNWOUND, well) == {(*leak, "low")}
    assert _found(UNWOUND, weak) == {(*leak, "low")}


def test_a_learned_wrapper_acquires_what_it_wraps():
    packs = _packs(acquirers=[_acq("widget_get", "widget_put"),
                              _acq("demo_widget_get", "widget_put", 2, wrapper_of="widget_get")],
                   releases=[_rel("widget_put")])
    src = LOCAL.replace("widget_get(priv->dev)", "demo_widget_get(priv)")
    assert _found(src, packs) == {("error-path.direct-return", "w", "low")}


def test_a_managed_acquisition_never_leaks():
    packs = _packs(acquirers=[_acq("devm_widget_get", "widget_put")],
                   releases=[_rel("widget_put")], managed=[Managed("devm_widget_get", "call", 9)])
    assert packs.calls["devm_widget_get"].acquires_nothing
    src = LOCAL.replace("widget_get(priv->dev)", "devm_widget_get(priv->dev)")
    assert _found(src, packs) == set()


def test_a_noreturn_call_ends_the_path():
    packs = _packs(acquirers=[_acq("widget_get", "widget_put")], releases=[_rel("widget_put")],
                   noreturn=[Noreturn("demo_die", "ends-in:panic", 4, 0, "")])
    early = LOCAL.replace("\t\treturn err;\n\tpriv->w", "\t\tgoto err_put;\n\tpriv->w")
    assert _found(early, packs) == set()
    for stop in ("BUG();", "panic(\"demo\");", "demo_die(priv);"):
        src = early.replace("\tpriv->w = w;\n",
                            f"\tif (demo_broken(priv)) {{\n\t\t{stop}\n\t\treturn -EIO;\n\t}}\n"
                            "\tpriv->w = w;\n")
        assert _found(src, packs) == set(), stop
    # a function that only looks like one does not end the path
    src = early.replace("\tpriv->w = w;\n", "\tif (demo_broken(priv)) {\n\t\tdemo_warn(priv);"
                                            "\n\t\treturn -EIO;\n\t}\n\tpriv->w = w;\n")
    assert _found(src, packs) == {("error-path.direct-return", "w", "low")}


def test_hand_written_entries_win_over_learned_ones():
    packs = _packs(acquirers=[_acq("kmalloc", "widget_put"), _acq("widget_alloc", "kfree")],
                   releases=[_rel("widget_put"), Release("kfree", ("learned:widget_put",),
                                                         "arg:0", 50, True, 9, 0, "", "")])
    hand = load_packs(learned=False)
    assert packs.calls["kmalloc"] == hand.calls["kmalloc"]
    assert packs.calls["kfree"] == hand.calls["kfree"]
    # a learned acquirer whose release a hand-written pack describes holds that resource
    assert packs.calls["widget_alloc"].acquires == hand.calls["kfree"].releases
    assert packs.calls["widget_alloc"].pack == "learned"


def test_scoped_entries_apply_in_their_file_only():
    packs = _packs(acquirers=[_acq("widget_get", "widget_put", scope="drivers/x/x.c")],
                   releases=[_rel("widget_put")])
    assert "widget_get" not in packs.calls
    assert _found(LOCAL, packs, "drivers/x/x.c") == {("error-path.direct-return", "w", "low")}
    assert _found(LOCAL, packs, "drivers/y/y.c") == set()


def test_the_shipped_learned_pack_is_the_lowest_layer():
    packs = load_packs()
    assert packs.sources[0].layer == "learned" and packs.sources[0].path == str(shipped_path())
    assert packs.calls["of_parse_phandle"].pack == "learned"
    assert packs.calls["of_node_put"].pack == "kernel-core"
    assert {"BUG", "panic", "do_exit"} <= packs.noreturn
