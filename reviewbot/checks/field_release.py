"""get-put.field-release-removed: a patch drops the release of a field that another
function of the file fills with something it owns.

A teardown (close, free, deinit, free_chan_resources) undoes what its setup stored in the
shared object; the two are different functions, so no path of either shows the leak. The
file shows it: before the patch the teardown released `X->f`, after it nothing in the file
releases `->f` any more, while a function of the file still stores there a value it owns
(the result of an acquiring call, or a value it releases itself on its failure exits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from reviewbot.checks import register, rule
from reviewbot.cmodel import (
    CFile,
    Function,
    args,
    callee,
    line_of,
    norm,
    parse_c,
    strip_parens,
    text,
)
from reviewbot.engine import ChangeContext, Checker, Raw
from reviewbot.packs import CallSpec, Packs

FIELD_RELEASE_REMOVED = rule(
    "get-put.field-release-removed", "warning", "medium",
    "the patch removes the release of a field that another function of the file stores an owned value in",
    """
What it finds: a patch that removes the release of a field of an object (`kfree(rtd)` where
`rtd = substream->runtime->private_data`, `put_device(atslave->dma_dev)`,
`kfree(mux->ul_adb.pp_qlt[i])`) from a function, when after the patch no function of the
file releases that field any more and some function of the file still stores in it a value
it owns: the result of an allocating or reference-taking call, or a value that function
releases itself when it fails.

Why it matters: the acquisition and the release are in different functions (open/close,
init/deinit, xlate/free_chan_resources), so no single path shows the leak; the patch is the
only place where it is visible.

Example:
    static int pdm_open(...)  { data = kzalloc(...); ...; runtime->private_data = data; }
    static int pdm_close(...)
    {
    -       struct pdm_stream *rtd = substream->runtime->private_data;
            disable_interrupts(adata);
    -       kfree(rtd);
            return 0;
    }

Known false positives: the release moved to a file the patch does not show (a release
callback in another file, a core helper that now frees the field); the field's owner
changed in a part of the series the review does not see.

A field is named by its last member and the member or variable before it
(`runtime->private_data`, `ul_adb.pp_qlt`). Confidence: medium.
""")

_MEMBER = re.compile(r"(?:->|\.)")
_INDEX = re.compile(r"\[[^\[\]]*\]")
_CAST = re.compile(r"^\((?:const\s+|struct\s+|unsigned\s+|union\s+)*[A-Za-z_]\w*[\s*]*\)\s*")


@dataclass(frozen=True)
class Release:
    """A pack release of a field in a function: what it releases and how it is spelled."""

    field: tuple[str, str]  # (member or variable before, last member)
    expr: str  # the argument as written, aliases resolved
    call: str
    spec: CallSpec
    line: int


def _bare(expr: str) -> str:
    """`&x->y`, `(void *)x` -> `x->y`, `x`."""
    expr = norm(expr)
    while True:
        m = _CAST.match(expr)
        if m is None:
            break
        expr = expr[m.end():]
    return expr.lstrip("&").strip()


def field_of(expr: str) -> tuple[str, str] | None:
    """The field an expression names, as (member or variable before, last member)."""
    parts = [p.strip() for p in _MEMBER.split(_INDEX.sub("", _bare(expr)))]
    if len(parts) < 2 or not all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts):
        return None
    return parts[-2], parts[-1]


def _field_aliases(fn: Function) -> dict[str, str]:
    """Locals given a field once and nothing else (`rtd = substream->runtime->private_data`)."""
    seen: dict[str, set[str]] = {}
    for node in (*fn.of_type("assignment_expression"), *fn.of_type("init_declarator")):
        decl = node.type == "init_declarator"
        left = node.child_by_field_name("declarator" if decl else "left")
        right = node.child_by_field_name("value" if decl else "right")
        while left is not None and left.type == "pointer_declarator":
            left = left.child_by_field_name("declarator")
        if left is not None and left.type == "identifier" and right is not None:
            seen.setdefault(text(left), set()).add(norm(text(right)))
    return {name: next(iter(v)) for name, v in seen.items()
            if len(v) == 1 and field_of(next(iter(v))) is not None}


def _owning(packs: Packs, spec: CallSpec) -> bool:
    return any(packs.resources.get(r) is not None and packs.resources[r].kind in ("memory", "ref")
               for r in spec.releases)


def releases(fn: Function, packs: Packs) -> Iterator[Release]:
    """The pack releases of fields in a function (of memory or references)."""
    aliases: dict[str, str] | None = None
    for c in fn.of_type("call_expression"):
        name = callee(c)
        spec = packs.calls.get(name)
        if spec is None or not spec.releases or not _owning(packs, spec):
            continue
        a = args(c)
        for t in spec.targets:
            if t.how != "arg" or not 0 <= t.index < len(a):
                continue
            expr = _bare(text(a[t.index]))
            if re.fullmatch(r"[A-Za-z_]\w*", expr):
                if aliases is None:
                    aliases = _field_aliases(fn)
                expr = aliases.get(expr, expr)
            f = field_of(expr)
            if f is not None:
                yield Release(f, expr, name, spec, line_of(c))


def _counts(cf: CFile, packs: Packs, skip: set[str]) -> dict[tuple[str, str], int]:
    """Field releases in the file's functions, those named in `skip` left out."""
    out: dict[tuple[str, str], int] = {}
    for fn in cf.functions:
        if fn.name in skip:
            continue
        for r in releases(fn, packs):
            out[r.field] = out.get(r.field, 0) + 1
    return out


def _owned_store(fn: Function, field: tuple[str, str], rel: Release, packs: Packs
                 ) -> tuple[int, str] | None:
    """A store in `fn` of a value it owns into `field`: (line, the value), or None."""
    for asg in fn.of_type("assignment_expression"):
        if text(asg.child_by_field_name("operator")) != "=":
            continue
        if field_of(text(asg.child_by_field_name("left"))) != field:
            continue
        rhs = strip_parens(asg.child_by_field_name("right"))
        while rhs is not None and rhs.type == "cast_expression":
            rhs = strip_parens(rhs.child_by_field_name("value"))
        if rhs is None:
            continue
        if rhs.type == "call_expression" and _acquires_for(packs, callee(rhs), rel):
            return line_of(asg), f"{callee(rhs)}()"
        value = _bare(text(rhs))
        if not re.fullmatch(r"[A-Za-z_][\w>.\-]*", value) or value in ("NULL", "0"):
            continue
        if _owned_in(fn, value, rel, packs):
            return line_of(asg), value
    return None


def _acquires_for(packs: Packs, name: str, rel: Release) -> bool:
    spec = packs.calls.get(name)
    return spec is not None and bool(set(spec.acquires) & set(rel.spec.releases))


def _owned_in(fn: Function, value: str, rel: Release, packs: Packs) -> bool:
    """`value` comes from an acquiring call in `fn`, or `fn` releases it itself with the
    call the patch removed (`put_device(&pdev->dev)` on a failure exit)."""
    for c in fn.of_type("call_expression"):
        a = args(c)
        if callee(c) == rel.call and any(_bare(text(x)) == value for x in a):
            return True
        p = c.parent
        if (p is not None and p.type in ("assignment_expression", "init_declarator")
                and _acquires_for(packs, callee(c), rel)):
            left = p.child_by_field_name("left" if p.type != "init_declarator" else "declarator")
            while left is not None and left.type == "pointer_declarator":
                left = left.child_by_field_name("declarator")
            if left is not None and _bare(text(left)) == value:
                return True
    return False


_PARSED: dict[tuple[str, int], CFile] = {}


def _parsed(source: str, path: str) -> CFile:
    """The whole file, parsed once for the functions of one patch that need it."""
    key = (path, hash(source))
    cf = _PARSED.get(key)
    if cf is None:
        if len(_PARSED) > 8:
            _PARSED.clear()
        cf = _PARSED[key] = parse_c(source, path)
    return cf


def check(ctx: ChangeContext) -> list[Raw]:
    pre_fn, post_fn = ctx.before, ctx.after
    if pre_fn is None or not ctx.before_source or not ctx.after_source:
        return []
    packs = ctx.packs
    before = list(releases(pre_fn, packs))
    if not before:
        return []
    after_here: dict[tuple[str, str], int] = {}
    for r in releases(post_fn, packs):
        after_here[r.field] = after_here.get(r.field, 0) + 1
    if all(after_here.get(r.field, 0) >= sum(1 for x in before if x.field == r.field)
           for r in before):
        return []  # every field release is still there: no need to read the file
    before_file = _parsed(ctx.before_source, ctx.path)
    after_file = _parsed(ctx.after_source, ctx.path)
    raws: list[Raw] = []
    done: set[tuple[str, str]] = set()
    for rel in before:
        f = rel.field
        if f in done:
            continue
        done.add(f)
        n_here = sum(1 for r in before if r.field == f)
        if after_here.get(f, 0) >= n_here:
            continue  # still released here
        stores = [(g, s) for g in after_file.functions if g.name != post_fn.name
                  for s in [_owned_store(g, f, rel, packs)] if s is not None]
        if not stores:
            continue
        # the storing functions' own unwind code (kfree(p->f) when a later step fails) is
        # not the teardown: count the releases elsewhere
        skip = {g.name for g, _ in stores}
        if _counts(after_file, packs, skip).get(f, 0):
            continue  # moved to another function of the file, or still released there
        if not _counts(before_file, packs, skip).get(f, 0):
            continue
        store = stores[0]
        g, (line, value) = store
        at = post_fn.end_line  # the function ends with the field still held
        sep = re.search(rf"\b{f[0]}(?:\[[^\]]*\])?\s*(->|\.)\s*{f[1]}\b", rel.expr)
        member = f"{f[0]}{sep.group(1) if sep else '->'}{f[1]}"
        if ctx.backwards:  # `after` is the function before the patch
            msg = (f"before the patch nothing in the file released '{member}', which "
                   f"{g.name}() fills with {value} (line {line}); the patch adds "
                   f"{rel.call}({rel.expr}) to {post_fn.name}()")
        else:
            msg = (f"the patch removes {rel.call}({rel.expr}) from {post_fn.name}(), and "
                   f"nothing in the file releases '{member}' any more, while {g.name}() "
                   f"stores {value} there (line {line}). Is it leaked now?")
        raws.append(Raw(
            FIELD_RELEASE_REMOVED.id, at, rel.expr, msg,
            [(line, f"{g.name}() stores {value} in {member}"), (at, f"{post_fn.name}() no longer releases it")],
            [at], "medium"))
    return raws


@register
class FieldReleaseChecker(Checker):
    name = "get-put.field-release"
    rules = (FIELD_RELEASE_REMOVED,)
    events = frozenset({"change"})
    change_fixes = True  # a patch that adds the teardown's release fixes the leak

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        return check(ctx)
