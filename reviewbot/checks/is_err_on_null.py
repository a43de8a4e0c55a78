"""error-path.is-err-on-null: IS_ERR() of a result that is NULL on failure.

The smallest complete checker, and the example of docs/architecture.md: it declares three
events, keeps one value per path in its slot, and reports. (Coccinelle's
scripts/coccinelle/null/eno.cocci finds the same mistake for the allocators by pattern.)
"""

from __future__ import annotations

from reviewbot.checks import register, rule
from reviewbot.cmodel import Node, norm, strip_parens, text
from reviewbot.engine import Call, Checker, Cond, PathState, Walker
from reviewbot.packs.lookup import LEARNED

IS_ERR_ON_NULL = rule(
    "error-path.is-err-on-null", "warning", "high",
    "IS_ERR() tests the result of a call that returns NULL on failure",
    """
What it finds: `IS_ERR(p)` (or `!IS_ERR(p)`) where, on the path that reaches the test, `p`
holds the untested result of a call the pack says returns NULL on failure
(`success = "nonnull"`: kmalloc(), kzalloc(), sb_bread(), ...; not a pair inferred from
the code nor a learned one, whose success is a guess or a majority), and nothing since has
given `p` a value that could be an error pointer.

Why it matters: IS_ERR(NULL) is false, so the failure is taken for success and the NULL
pointer is used (or returned as if valid) a few lines later.

Example:
    buf = kzalloc(len, GFP_KERNEL);
    if (IS_ERR(buf))            /* kzalloc() returns NULL, never an ERR_PTR */
        return PTR_ERR(buf);

Known false positives: a pack entry whose `success` is wrong for one variant of a call
(a wrapper that returns ERR_PTR under the same name); `p = q` after the call, where q is
known not to be an error pointer, is still reported with the call's name.
Confidence: high.
""")

def _is_err_arg(t: str, names: tuple[str, ...]) -> str:
    """x of `IS_ERR(x)` or `!IS_ERR(x)` (names: the pack's [idioms] is_err), else ""."""
    t = t.removeprefix("!")
    for n in names:
        if t.startswith(n + "(") and t.endswith(")") and len(t) > len(n) + 2:
            return t[len(n) + 1:-1]
    return ""


@register
class IsErrOnNullChecker(Checker):
    name = "is-err-on-null"
    rules = (IS_ERR_ON_NULL,)
    events = frozenset({"call", "assume", "branch"})

    def events_for(self, w: Walker) -> frozenset[str]:
        names = w.packs.idioms.is_err
        if any(n.kind == "cond" and n.ast is not None and any(x in text(n.ast) for x in names)
               for n in w.fn.nodes):
            return self.events
        return frozenset()  # no IS_ERR() test to report on

    # the slot: the results still untested on this path, (key, call, line) each
    def initial(self) -> frozenset[tuple[str, str, int]]:
        return frozenset()

    def on_call(self, w: Walker, st: PathState, call: Call) -> None:
        slot = st.slots[self.name]
        key = call.result
        if not key or key.startswith("#"):
            return
        kept = frozenset(e for e in slot if e[0] != key)  # the key gets a new value
        # (not a pair inferred from the code: its `success` is a guess from a test it found;
        # nor a learned one: most callers' tests, and ext4_find_entry's callers test NULL
        # though it may return an error too)
        if call.spec.success == "nonnull" and not (call.spec.inferred or call.spec.pack == LEARNED):
            kept |= {(key, call.spec.name, call.line)}
        if kept != slot:
            st.set_slot(self.name, kept)

    def on_assume(self, w: Walker, st: PathState, cond: Cond | None) -> None:
        slot = st.slots[self.name]
        if cond is not None and slot and any(e[0] == cond.subject for e in slot):
            st.set_slot(self.name, frozenset(e for e in slot if e[0] != cond.subject))

    def on_branch(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        if not slot or node.ast is None:
            return
        arg = _is_err_arg(norm(text(strip_parens(node.ast))), w.packs.idioms.is_err)
        if not arg:
            return
        key = w.canon(arg, st)
        for k, call, line in slot:
            if k == key and "E" not in st.value(key):
                w.report(
                    IS_ERR_ON_NULL.id, node.line, key,
                    f"IS_ERR({arg}) is never true here: '{key}' holds the result of "
                    f"{call}() at line {line}, which returns NULL on failure, not an ERR_PTR. "
                    f"Should the test be `if (!{arg})`?",
                    st, [(line, f"{key} = {call}()"), (node.line, f"IS_ERR({arg})")],
                    [node.line, line],
                )
