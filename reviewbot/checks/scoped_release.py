"""get-put.scoped-release-removed: a patch drops a `__free(...)` cleanup and puts no
release in its place."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, callee, line_of
from reviewbot.engine import ChangeContext, Checker, Raw
from reviewbot.packs import Packs

SCOPED_RELEASE_REMOVED = rule(
    "get-put.scoped-release-removed", "warning", "medium",
    "the patch removes a __free() cleanup while the acquisition stays and no release is added",
    """
What it finds: a variable declared `__free(NAME)` before the patch (the compiler releases
it on every exit) that is no longer so after it, while the call its value comes from is
still made and the patch adds no release call (neither NAME nor any pack release) to the
function.

Why it matters: the scope-based cleanup was the function's only release; without it every
exit keeps the reference or the allocation.

Example:
    -       struct platform_device *pdev = of_find_device_by_node(node);
    -       struct device *dev __free(put_device) = pdev ? &pdev->dev : NULL;
    +       struct platform_device *pdev;
    +
    +       pdev = of_find_device_by_node(node);

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


def _releases(fn: Function, packs: Packs) -> int:
    n = 0
    for c in fn.of_type("call_expression"):
        spec = packs.calls.get(callee(c))
        if spec is not None and spec.releases:
            n += 1
    return n


def check(ctx: ChangeContext) -> list[Raw]:
    pre_fn, post_fn = ctx.before, ctx.after
    if pre_fn is None or "__free" not in _raw(pre_fn):
        return []
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
        raws.append(Raw(
            SCOPED_RELEASE_REMOVED.id, line, s.var,
            f"the patch removes the __free({s.cls}) cleanup of '{s.var}' (the value from "
            f"{s.source_call}() at line {line}) and adds no release: every exit now keeps it. "
            f"Is a {s.cls}() missing on the exits?",
            [(line, f"{s.source_call}()"), (post_fn.end_line, "no release on any exit")],
            [line], "medium"))
    return raws


@register
class ScopedReleaseChecker(Checker):
    name = "get-put.scoped-release"
    rules = (SCOPED_RELEASE_REMOVED,)
    events = frozenset({"change"})

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        return check(ctx)
