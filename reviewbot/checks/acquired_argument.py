"""get-put.acquired-argument: a looked-up reference passed straight into another call.

`syscon_node_to_regmap(of_get_parent(np))`: the reference of_get_parent() returns is never
named, so nothing can drop it; unless the outer call takes it over, it leaks on every call.
"""

from __future__ import annotations

import re

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, args, callee, line_of, strip_parens
from reviewbot.engine import Checker, FunctionContext, Raw
from reviewbot.packs import CallSpec, Packs
from reviewbot.packs.lookup import LEARNED

ACQUIRED_ARGUMENT = rule(
    "get-put.acquired-argument", "warning", "medium",
    "the reference a lookup returns is passed straight to a call that does not take it, and never dropped",
    """
What it finds: a call that returns a new reference (`of_get_parent()`,
`of_find_node_by_path()`, `of_parse_phandle()`) used directly as an argument of
another call: `regmap = syscon_node_to_regmap(of_get_parent(np))`. The result has no name,
so nothing in the function can release it.

Why it matters: the reference leaks on every call; for device-tree nodes the node can never
be freed (overlays, dynamic nodes).

Example:
    -       parent = of_get_parent(np);
    -       ilp->regmap = syscon_node_to_regmap(parent);
    -       of_node_put(parent);
    +       ilp->regmap = syscon_node_to_regmap(of_get_parent(np));

Not reported when the outer call is the release itself, a call a pack or the tree's
summaries say stores, consumes or releases that argument, when the outer call's value is
returned (a conversion that hands the reference on: `return of_fwnode_handle(of_get_parent
(...))`), or for gets that return their own argument with a new reference (`of_node_get`,
`get_device`, `*_get(x)`, `get_*(x)`): passing those is how a reference is handed over.

Known false positives: an outer call no pack or summary describes that keeps the reference
(it should say so in its documentation; the tree's summaries see only the reviewed
directory).

Confidence: medium when the acquiring call is in a hand-written pack or learned from at
least five functions of the tree; low otherwise.
""")

# a get of its own argument: `of_node_get(np)`, `kobject_get(k)`, `get_device(dev)`
_IDENTITY_GET = re.compile(r"(?:^|_)(?:get|hold|grab|ref)$|^get_[a-z]+$")
_PUT = re.compile(r"(?:^|_)(?:put|unref)(?:_|$)")
MIN_LEARNED_SUPPORT = 5


def _acquirer(packs: Packs, name: str) -> CallSpec | None:
    spec = packs.calls.get(name)
    if spec is None or not spec.acquires or spec.inferred or spec.alias:
        return None
    if spec.returns_arg is not None or not any(t.how == "return" for t in spec.targets):
        return None
    return spec if any(_counted(packs, r) for r in spec.acquires) else None


def _counted(packs: Packs, rid: str) -> bool:
    """A counted reference (`of_node_put`, `put_device`, `clk_put`), not an allocation: one
    passed straight on (`skb_queue_tail(q, alloc_skb(..))`, `xa_store(.., kzalloc(..))`) is
    nearly always handed over. Learned resources are named by their release."""
    kind = packs.resources.get(rid)
    if kind is None:
        return False
    if kind.pack == LEARNED:
        return _PUT.search(rid.split(":", 1)[-1]) is not None
    return kind.kind == "ref"


def _takes_it(packs: Packs, outer: str, index: int, acquired: CallSpec) -> bool:
    """The outer call releases, stores or consumes the argument at `index`."""
    spec = packs.calls.get(outer)
    if spec is not None:
        if set(spec.releases) & set(acquired.acquires):
            return True
        if any(t.how == "arg" and t.index == index for t in spec.targets):
            return True  # it acquires or releases through that argument
        if any(t is not None and t.index == index for t in (spec.escapes, spec.maybe_consumes)):
            return True
        if any(re.match(rf"^\{{{index}\}}", fmt) for _rid, fmt in spec.consumes):
            return True
    summ = packs.summaries.get(outer)
    return summ is not None and (index in summ.hands_over or index in summ.releases_fields)


def check_function(fn: Function, packs: Packs) -> list[Raw]:
    raws: list[Raw] = []
    for outer in fn.of_type("call_expression"):
        oname = callee(outer)
        parent = outer.parent
        if parent is not None and parent.type == "return_statement" and _acquirer(packs, oname) is None:
            continue  # a conversion's value goes to the caller, the reference perhaps with it
        for i, a in enumerate(args(outer)):
            inner = strip_parens(a)
            while inner is not None and inner.type == "cast_expression":
                inner = strip_parens(inner.child_by_field_name("value"))
            if inner is None or inner.type != "call_expression":
                continue
            name = callee(inner)
            spec = _acquirer(packs, name)
            if spec is None or _IDENTITY_GET.search(name) or _takes_it(packs, oname, i, spec):
                continue
            if name.isupper() or oname.isupper():
                continue  # a macro may expand to anything
            learned = spec.pack == LEARNED
            confidence = "low" if learned and (spec.support < MIN_LEARNED_SUPPORT
                                                or spec.contradictions * 4 > spec.support) else "medium"
            line = line_of(inner)
            raws.append(Raw(
                ACQUIRED_ARGUMENT.id, line, f"{name}()",
                f"{name}() returns a reference that is passed straight to {oname}() and "
                f"never dropped: nothing names it, so nothing can release it. Should it be "
                f"kept in a variable and released after the call?",
                [(line, f"{name}() passed to {oname}()")], [line], confidence))
    return raws


@register
class AcquiredArgumentChecker(Checker):
    name = "get-put.acquired-argument"
    rules = (ACQUIRED_ARGUMENT,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        return check_function(ctx.fn, ctx.packs)
