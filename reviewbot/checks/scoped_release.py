"""get-put.scoped-release-removed: a patch drops a `__free(...)` cleanup, or a
`devm_add_action(_or_reset)()` whose action releases the value, and puts no release in its
place."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, args, callee, line_of, norm, parse_c, text
from reviewbot.engine import ChangeContext, Checker, Raw
from reviewbot.packs import Packs

SCOPED_RELEASE_REMOVED = rule(
    "get-put.scoped-release-removed", "warning", "medium",
    "the patch removes a __free() cleanup or a releasing devm action while the acquisition stays and no release is added",
    """
What it finds: a variable declared `__free(NAME)` before the patch (the compiler releases
it on every exit) that is no longer so after it, or a `devm_add_action(_or_reset)(dev, fn,
data)` the patch removes whose action `fn` (a function of the file) releases its argument,
while the call the value comes from is still made and the patch adds no release call
(neither NAME nor `fn` nor any pack release) to the function.

Why it matters: the scope-based cleanup was the function's only release; without it every
exit keeps the reference or the allocation.

Example:
    -       struct platform_device *pdev = of_find_device_by_node(node);
    -       struct device *dev __free(put_device) = pdev ? &pdev->dev : NULL;
    +       struct platform_device *pdev;
    +
    +       pdev = of_find_device_by_node(node);

    -       if (tve->ddc) {
    -               ret = devm_add_action_or_reset(dev, imx_tve_put_device, &tve->ddc->dev);
    -               ...

Known false positives: the release moved to a helper the function now calls, or to the
caller (the function now hands the value out: then its other exits should say so), when no
pack describes that helper's release.

Confidence: medium.
""")

_FREE_DECL = re.compile(r"\**\s*(\w+)\s+__free\s*\(\s*(\w+)\s*\)\s*(?:=\s*([^;]*))?;")
_ASSIGN = r"\b{v}\s*=\s*([A-Za-z_]\w*)\s*\("


@dataclass(frozen=True)
class Scoped:
    var: str
    cls: str  # the DEFINE_FREE class: put_device, kfree, device_node, ...
    source_call: str  # the call the value comes from (directly or through a local)


def _raw(fn: Function) -> str:
    return fn.source[fn.node.start_byte:fn.node.end_byte].decode("utf-8", "replace")


def _scoped(fn: Function) -> list[Scoped]:
    raw = _raw(fn)
    out = []
    for m in _FREE_DECL.finditer(raw):
        var, cls, init = m.group(1), m.group(2), (m.group(3) or "").strip()
        call = re.match(r"([A-Za-z_]\w*)\s*\(", init)
        name = call.group(1) if call else ""
        if not name:  # `= pdev ? &pdev->dev : NULL`, or assigned later: where the value is from
            for v in [var, *re.findall(r"[A-Za-z_]\w*", init)]:
                got = re.search(_ASSIGN.format(v=re.escape(v)), raw)
                if got is not None and got.group(1) not in ("IS_ERR", "PTR_ERR", "ERR_PTR"):
                    name = got.group(1)
                    break
        if name:
            out.append(Scoped(var, cls, name))
    return out


_DEVM_ACTION = ("devm_add_action", "devm_add_action_or_reset")


def _action_releases(action: Function, packs: Packs) -> bool:
    """The action applies a pack release of memory or a reference to its parameter, or to
    a local given it (`struct device *dev = _dev; put_device(dev)`)."""
    if not action.params:
        return False
    names = {action.params[0]}
    for d in action.of_type("init_declarator"):
        value = d.child_by_field_name("value")
        if value is not None and norm(text(value)).lstrip("(").split(")")[-1] in names:
            left = d.child_by_field_name("declarator")
            while left is not None and left.type == "pointer_declarator":
                left = left.child_by_field_name("declarator")
            if left is not None:
                names.add(text(left))
    for c in action.of_type("call_expression"):
        spec = packs.calls.get(callee(c))
        if spec is None or not spec.releases or not any(
                packs.resources.get(r) is not None and packs.resources[r].kind in ("memory", "ref")
                for r in spec.releases):
            continue
        a = args(c)
        if any(t.how == "arg" and t.index < len(a) and norm(text(a[t.index])) in names
               for t in spec.targets):
            return True
    return False


def _managed(fn: Function, file_fns: dict[str, Function], packs: Packs) -> list[Scoped]:
    """devm actions of `fn` that release their data, as (data, action, the call the data
    comes from: found later, in the image after the patch)."""
    out = []
    for c in fn.of_type("call_expression"):
        a = args(c)
        if callee(c) not in _DEVM_ACTION or len(a) < 3:
            continue
        action = file_fns.get(norm(text(a[1])))
        if action is not None and _action_releases(action, packs):
            out.append(Scoped(norm(text(a[2])), norm(text(a[1])), ""))
    return out


def _source_of(data: str, fn: Function) -> tuple[str, int] | None:
    """The call the data of a devm action comes from in `fn`: `&tve->ddc->dev` is
    `tve->ddc`'s, assigned from of_find_i2c_adapter_by_node()."""
    key = data.lstrip("&").strip()
    parts = re.split(r"(?=->|\.)", key)
    cands = ["".join(parts[:i]) for i in range(len(parts), 0, -1)]
    if len(cands) > 1:
        cands = cands[:-1]  # not the object the field belongs to
    for asg in fn.of_type("assignment_expression"):
        lhs = norm(text(asg.child_by_field_name("left")))
        rhs = asg.child_by_field_name("right")
        if lhs in cands and rhs is not None and rhs.type == "call_expression":
            return callee(rhs), line_of(asg)
    return None


def _releases(fn: Function, packs: Packs) -> int:
    n = 0
    for c in fn.of_type("call_expression"):
        spec = packs.calls.get(callee(c))
        if spec is not None and spec.releases:
            n += 1
    return n


def check(ctx: ChangeContext) -> list[Raw]:
    pre_fn, post_fn = ctx.before, ctx.after
    if pre_fn is None:
        return []
    if "__free" not in _raw(pre_fn):
        return _check_managed(ctx)
    kept = {(s.var, s.cls) for s in _scoped(post_fn)}
    post_calls = {callee(c): c for c in reversed(post_fn.of_type("call_expression"))}
    raws = []
    for s in _scoped(pre_fn):
        if (s.var, s.cls) in kept or any(cls == s.cls for _v, cls in kept):
            continue  # still scoped (maybe renamed)
        acq = post_calls.get(s.source_call)
        if acq is None or s.cls in post_calls:
            continue  # the acquisition went too, or the release is now explicit
        if _releases(post_fn, ctx.packs) > _releases(pre_fn, ctx.packs):
            continue  # a release was added in its place
        line = line_of(acq)
        if ctx.backwards:
            msg = (f"before the patch nothing released '{s.var}' (the value from "
                   f"{s.source_call}() at line {line}) on any exit; the patch gives it a "
                   f"__free({s.cls}) cleanup")
        else:
            msg = (f"the patch removes the __free({s.cls}) cleanup of '{s.var}' (the value "
                   f"from {s.source_call}() at line {line}) and adds no release: every exit "
                   f"now keeps it. Is a {s.cls}() missing on the exits?")
        raws.append(Raw(
            SCOPED_RELEASE_REMOVED.id, line, s.var, msg,
            [(line, f"{s.source_call}()"), (post_fn.end_line, "no release on any exit")],
            [line], "medium"))
    raws += _check_managed(ctx)
    return raws


def _check_managed(ctx: ChangeContext) -> list[Raw]:
    pre_fn, post_fn = ctx.before, ctx.after
    if pre_fn is None or not ctx.before_source or not any(
            callee(c) in _DEVM_ACTION for c in pre_fn.of_type("call_expression")):
        return []
    pre_file = {f.name: f for f in parse_c(ctx.before_source, ctx.path).functions}
    before = _managed(pre_fn, pre_file, ctx.packs)
    if not before:
        return []
    post_actions = {norm(text(args(c)[1])) for c in post_fn.of_type("call_expression")
                    if callee(c) in _DEVM_ACTION and len(args(c)) >= 2}
    post_calls = {callee(c) for c in post_fn.of_type("call_expression")}
    raws = []
    for s in before:
        if s.cls in post_actions or s.cls in post_calls:
            continue  # still managed, or the action is called directly
        src = _source_of(s.var, post_fn)
        if src is None or _releases(post_fn, ctx.packs) > _releases(pre_fn, ctx.packs):
            continue
        call, line = src
        if ctx.backwards:
            msg = (f"before the patch nothing released '{s.var}' (the value from {call}() "
                   f"at line {line}); the patch adds the devm action {s.cls}() that does")
        else:
            msg = (f"the patch removes the devm action {s.cls}() that released '{s.var}' (the "
                   f"value from {call}() at line {line}) and adds no release: it is never "
                   f"released now. Is the action, or a release on the exits and in the "
                   f"remove path, missing?")
        raws.append(Raw(
            SCOPED_RELEASE_REMOVED.id, line, s.var.lstrip("&"), msg,
            [(line, f"{call}()"), (post_fn.end_line, "no release on any exit")],
            [line], "medium"))
    return raws


@register
class ScopedReleaseChecker(Checker):
    name = "get-put.scoped-release"
    rules = (SCOPED_RELEASE_REMOVED,)
    events = frozenset({"change"})
    change_fixes = True  # a patch that adds the cleanup fixes the leak

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        return check(ctx)
