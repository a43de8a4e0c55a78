"""get-put.param-release-skipped: exits that return the same value must leave a parameter
in the same state.

The caller cannot tell apart two `return false;` of a function: if one drops the
reference it was given and the other keeps it, the caller's cleanup is wrong after one of
them. The rule reads the function's flow graph (no path walk): which parameters each
return has released on every path to it, on some path, or on none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node as TSNode

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, Node, args, callee, norm, text
from reviewbot.engine import Checker, FunctionContext, Raw
from reviewbot.engine.keys import walk
from reviewbot.knowledge.facts import _LOGGING
from reviewbot.packs import Packs

PARAM_RELEASE_SKIPPED = rule(
    "get-put.param-release-skipped", "warning", "medium",
    "an exit keeps a parameter that the other exits returning the same value release",
    """
What it finds: a function that releases a parameter it was given (`dput(dentry)`,
`kfree_skb(skb)`, a helper of the directory that releases it) before at least two of its
`return VALUE;` exits, on every path to them, and has another exit returning the same
constant (`false`, `NULL`, `0`, `-ENOMEM`) on which no path releases it.

Why it matters: the caller sees only the value; it either drops the parameter after that
value or it does not. One of the exits is then a leak or the others a double release; in
practice the odd one out is the bug (an early exit added before the function took over
the reference).

Example:
    static bool open_file(struct object *obj, struct dentry *dentry)
    {
            if (!mark_in_use(obj, dentry))
                    return false;           /* keeps dentry */
            ...
            dput(dentry);
            return true;
    error:
            dput(dentry);
            return false;
    }

Known false positives: exits under a test the flow graph does not relate to the parameter
(a flag that says the caller still owns it); an exit that has not taken the reference the
other exits drop (the parameter is NULL there without a test of it: a test of the
parameter itself, `if (!p) return false;`, is left out).

Only constant return values are compared (a returned variable may differ between exits),
only releases of memory or references (not unlocks) and only the parameter passed whole.
Confidence: medium.
""")

_CONSTANT = re.compile(r"^(?:true|false|NULL|-?\d+|-E[A-Z0-9]+|ERR_PTR\(-E[A-Z0-9]+\))$")


@dataclass(frozen=True)
class Flow:
    """Per node: parameters released on every path to it, and on some path."""

    must: frozenset[str]
    may: frozenset[str]


@dataclass(frozen=True)
class Effect:
    """What a statement does to the parameters: releases for sure (a pack release), or
    may have released or handed over (a summary's "may", a release-looking name, a
    store, a call that takes the parameter whole)."""

    must: frozenset[str]
    may: frozenset[str]


_NONE = Effect(frozenset(), frozenset())


def _whole(x: TSNode) -> str:
    return norm(text(x)).strip("()")


def _effect(ts: TSNode | None, params: list[str], packs: Packs) -> Effect:
    if ts is None:
        return _NONE
    must: set[str] = set()
    may: set[str] = set()
    release_re = packs.idioms.release_re
    for c in walk(ts, "call_expression"):
        name = callee(c)
        a = [_whole(x) for x in args(c)]
        spec = packs.calls.get(name)
        if spec is not None:
            idx: set[int] = set()
            if spec.releases and any(packs.resources.get(r) is not None
                                     and packs.resources[r].kind in ("memory", "ref")
                                     for r in spec.releases):
                idx |= {t.index for t in spec.targets if t.how == "arg"}
            idx |= {int(m.group(1)) for _r, fmt in spec.consumes
                    for m in [re.fullmatch(r"\{(\d+)\}", fmt)] if m}
            must |= {a[i] for i in idx if 0 <= i < len(a) and a[i] in params}
            for t in (spec.escapes, spec.maybe_consumes):
                if t is not None and 0 <= t.index < len(a):
                    root = re.match(r"&?\s*([A-Za-z_]\w*)", a[t.index])
                    if root is not None and root.group(1) in params:
                        may.add(root.group(1))  # list_add(&p->node, ..): stored
            continue
        if name.startswith(_LOGGING) or any(x.type == "string_literal" and "%" in text(x)
                                            for x in args(c)):
            continue  # logging and tracing (a format string)
        summ = packs.summaries.get(name)
        looks_release = release_re is not None and release_re.search(name) is not None
        # a call whose value is tested or passed on (`d_inode(p)`, `if (busy(p))`) is a
        # query; one made as a statement or for its result may take the parameter over
        query = c.parent is not None and c.parent.type not in (
            "expression_statement", "assignment_expression", "init_declarator", "return_statement")
        for i, x in enumerate(a):
            if x in params and (looks_release or (summ is not None and i in summ.hands_over)
                                or (summ is None and not query)):
                may.add(x)  # a call that may take it over
    for asg in walk(ts, "assignment_expression"):
        rhs = _whole(asg.child_by_field_name("right"))
        lhs = norm(text(asg.child_by_field_name("left")))
        if rhs in params and not re.fullmatch(r"[A-Za-z_]\w*(?:\.\w+)*", lhs):
            may.add(rhs)  # stored in a field or through a pointer (not `path.dentry = p`)
    return Effect(frozenset(must), frozenset(may | must))


def _flow(fn: Function, params: list[str], packs: Packs) -> dict[int, Flow]:
    """Forward over the flow graph to a fixed point; keyed by node id."""
    entry = fn.cfg()
    state: dict[int, Flow] = {id(entry): Flow(frozenset(), frozenset())}
    gen: dict[int, Effect] = {}
    work = [entry]
    steps = 0
    while work and steps < 20000:
        steps += 1
        node = work.pop()
        here = state[id(node)]
        if id(node) not in gen:
            gen[id(node)] = (_effect(node.ts, params, packs)
                             if node.kind in ("stmt", "return", "cond", "switch") else _NONE)
        eff = gen[id(node)]
        out = Flow(here.must | eff.must, here.may | eff.may)
        for s in node.succ:
            old = state.get(id(s))
            new = out if old is None else Flow(old.must & out.must, old.may | out.may)
            if new != old:
                state[id(s)] = new
                work.append(s)
    return state


def _tests_param(node: Node, names: set[str]) -> bool:
    """A test of the parameter or its state (`if (!p)`, `if (!p->tr)`, `if (!tr)` with
    `tr = p->tr`): the exit may be where the function has nothing to drop."""
    t = norm(text(node.ast)) if node.ast is not None else ""
    for name in names:
        n = re.escape(name)
        if re.search(rf"(?:^|[^\w>.])!?\s*{n}(?:\s*(?:->|\.)\s*\w+)*\s*(?:[=!]=\s*\w+)?$", t) \
                or re.search(rf"IS_ERR(?:_OR_NULL)?\(\s*{n}\s*\)", t):
            return True
    return False


def _state_of(fn: Function, param: str) -> set[str]:
    """The parameter and the locals given one of its fields (`tr = p->b_tr`)."""
    out = {param}
    for node in (*fn.of_type("assignment_expression"), *fn.of_type("init_declarator")):
        decl = node.type == "init_declarator"
        left = node.child_by_field_name("declarator" if decl else "left")
        right = node.child_by_field_name("value" if decl else "right")
        while left is not None and left.type == "pointer_declarator":
            left = left.child_by_field_name("declarator")
        if left is not None and left.type == "identifier" and right is not None \
                and re.match(rf"{re.escape(param)}\s*(?:->|\.)", norm(text(right))):
            out.add(text(left))
    return out


def check_function(fn: Function, packs: Packs) -> list[Raw]:
    params = [p for p in fn.params if p]
    if not params:
        return []
    fn.cfg()
    returns = [n for n in fn.nodes if n.kind == "return" and n.ast is not None]
    if len(returns) < 3:
        return []
    values = {id(n): norm(text(n.ast)) for n in returns}
    if not any(_CONSTANT.match(v) for v in values.values()):
        return []
    flow = _flow(fn, params, packs)
    preds: dict[int, list[Node]] = {}
    for n in fn.nodes:
        for s in n.succ:
            preds.setdefault(id(s), []).append(n)
    raws: list[Raw] = []
    for p in params:
        for value in sorted({v for v in values.values() if _CONSTANT.match(v)}):
            same = [n for n in returns if values[id(n)] == value and id(n) in flow]
            releasing = [n for n in same if p in flow[id(n)].must]
            keeping = [n for n in same if p not in flow[id(n)].may]
            if len(releasing) < 2 or not keeping:
                continue
            state = _state_of(fn, p)
            for n in keeping:
                if any(q.kind == "cond" and _tests_param(q, state) for q in _guards(n, preds)):
                    continue
                others = ", ".join(str(r.line) for r in releasing[:3])
                raws.append(Raw(
                    PARAM_RELEASE_SKIPPED.id, n.line, p,
                    f"this 'return {value}' keeps '{p}', while the other exits that return "
                    f"{value} (lines {others}) release it: the caller cannot tell them apart. "
                    f"Is a release of '{p}' missing here?",
                    [(r.line, f"'{p}' released before 'return {value}'") for r in releasing[:2]]
                    + [(n.line, f"return {value} with '{p}' kept")],
                    [n.line], "medium"))
    return raws


def _guards(node: Node, preds: dict[int, list[Node]]) -> list[Node]:
    """The conditions just above an exit: up through plain statements to the first branch."""
    out: list[Node] = []
    seen: set[int] = set()
    todo = list(preds.get(id(node), []))
    while todo:
        q = todo.pop()
        if id(q) in seen:
            continue
        seen.add(id(q))
        if q.kind == "cond":
            out.append(q)
            continue
        if q.kind in ("stmt", "join"):
            todo.extend(preds.get(id(q), []))
    return out


@register
class ExitConsistencyChecker(Checker):
    name = "get-put.exit-consistency"
    rules = (PARAM_RELEASE_SKIPPED,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        return check_function(ctx.fn, ctx.packs)
