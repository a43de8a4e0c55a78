"""The checker interface and registry: how rule families are found, called and merged."""

from __future__ import annotations

import dataclasses

from reviewbot.checks import all_rules, registry
from reviewbot.cmodel import parse_c
from reviewbot.engine import FUNCTION_EVENTS, HOOKS, PATH_EVENTS, Checker, PathState, Raw, Walker
from reviewbot.packs import load_packs


def test_registry_finds_every_family_without_a_hand_list():
    names = [c.name for c in registry.checkers()]
    assert names == ["get-put.acquired-argument", "sleep-in-atomic", "blocking-in-reclaim",
                     "double-free-field", "error-path", "get-put.exit-consistency",
                     "get-put.field-release", "get-put", "get-put.change", "is-err-on-null",
                     "leak-by-overwrite", "lock-state", "lost-errno", "lost-errno.change",
                     "missing-undo", "ops-mismatch", "release-not-taken",
                     "get-put.scoped-release", "siblings", "use-after-unlock"]
    claimed = {r.id for c in registry.checkers() for r in c.rules}
    assert claimed == set(all_rules())


def test_checkers_implement_exactly_the_events_they_declare():
    for c in registry.checkers():
        assert c.events and c.events <= set(PATH_EVENTS) | set(FUNCTION_EVENTS), c.name
        for event, hook in HOOKS.items():
            overridden = getattr(type(c), hook) is not getattr(Checker, hook)
            assert overridden == (event in c.events), (c.name, event)


def test_path_state_carries_no_checker_fields():
    fields = {f.name for f in dataclasses.fields(PathState)}
    assert fields == {"res", "values", "alias", "seq", "trail", "labels", "after_label",
                      "from_call", "fresh", "slots"}


def test_same_event_policy_keeps_the_unwind_rule():
    a = Raw("get-put.double-release", 9, "gl", "m1", [])
    b = Raw("error-path.extra-release", 9, "gl", "m2", [])
    other = Raw("get-put.double-release", 12, "gl", "m3", [])
    assert registry.same_event([a, b, other]) == [b, other]
    assert registry.same_event([a]) == [a]


def test_merge_function_folds_lines_and_keeps_the_first_family():
    raws = [Raw("get-put.leak", 20, "buf", "late", []), Raw("get-put.leak", 10, "buf", "early", []),
            Raw("error-path.missing-release", 10, "buf", "other family", [])]
    got = registry.merge_function(raws)
    assert [(r.rule, r.line, r.lines) for r in got] == [("get-put.leak", 10, [20])]


SRC = """static int f(struct d *dd)
{
	char *buf;

	buf = kzalloc(8, GFP_KERNEL);
	if (!buf)
		goto out;
	kfree(buf);
out:
	return 0;
}
"""


class _Counter(Checker):
    """Counts, per path, the labels it passes: a slot value is per path, not shared."""

    name = "counter"
    events = frozenset({"label", "exit"})
    seen: list[int]

    def __init__(self) -> None:
        self.seen = []

    def initial(self) -> int:
        return 0

    def on_label(self, w, st, node) -> None:
        st.set_slot(self.name, st.slots[self.name] + 1)

    def on_exit(self, w, st, ex) -> None:
        self.seen.append(st.slots[self.name])


def test_slots_are_per_path():
    fn = parse_c(SRC, "f.c").functions[0]
    c = _Counter()
    Walker(fn, load_packs(), [c]).run()
    assert sorted(c.seen) == [1, 1]  # both paths pass `out:` once, counted apart


MY_ERR = """static int f(struct d *dd, size_t len)
{
	char *buf;

	buf = kzalloc(len, GFP_KERNEL);
	if (MY_IS_ERR(buf))
		return -ENOMEM;
	kfree(buf);
	return 0;
}
"""


def test_error_pointer_tests_are_pack_data(tmp_path):
    """A user pack's [idioms] adds an IS_ERR-like macro; the engine and the checkers use it."""
    from reviewbot.review.analysis import analyze_source

    def rules(packs):
        return [(f.rule, f.line) for f in analyze_source(MY_ERR, "f.c", packs=packs)]

    assert rules(load_packs()) == []
    mine = tmp_path / "mine.toml"
    mine.write_text('[idioms]\nis_err = ["IS_ERR", "MY_IS_ERR"]\n')
    packs = load_packs((str(mine),))
    assert packs.idioms.is_err == ("IS_ERR", "MY_IS_ERR")
    assert packs.idioms.err_ptr == ("ERR_PTR",)  # a key left out keeps kernel-core's
    assert rules(packs) == [("error-path.is-err-on-null", 6)]
    assert [o.entry for s in packs.sources for o in s.overrides] == ["idioms.is_err"]


def test_a_bad_idiom_pattern_is_refused_with_one_line(tmp_path):
    import pytest

    from reviewbot.packs.schema import PackError

    bad = tmp_path / "bad.toml"
    bad.write_text('[idioms]\nrelease_name = "(free"\n')
    with pytest.raises(PackError) as e:
        load_packs((str(bad),))
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "idioms.release_name" in msg
    assert "regular expression" in msg


def test_the_example_in_architecture_md_is_the_module():
    """docs/architecture.md shows reviewbot/checks/is_err_on_null.py: its declarations and
    hooks must be the module's own lines."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "architecture.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    module = (root / "reviewbot" / "checks" / "is_err_on_null.py").read_text()
    shown = [ln.strip() for ln in block.splitlines()
             if re.match(r"\s*(def |class |@register|name = |rules = |events = |if |for |return|"
                         r"kept|key = |slot = |st\.set_slot)", ln)]
    assert len(shown) > 15
    missing = [ln for ln in shown if ln not in {m.strip() for m in module.splitlines()}]
    assert not missing, missing
