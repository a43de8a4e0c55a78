"""Function summaries from the tree (issue 11, part 2, first step): which parameters a
function may release or hand over, so that a caller's reference passed to it is not
reported as leaked or released twice.

A parameter is *released* when the function, on some path, applies a pack release to it
or to one of its fields (`kfree(es->bh)`, `iput(inode)` on a failure exit), or passes it
to a function that releases it (to a fixed point, so helpers of helpers count). It is
*stored* when the function puts it in a longer-lived place: a field of another parameter
or of a global (`req->r_inode = inode`), or a pack call that stores it (`list_add`,
`xa_store`, ...). Either way the caller no longer knows the reference's state after the
call: the engine stops tracking it there (reviewbot/engine/transfer.py, unknown calls).
"Some path" is deliberate: the summary says what the callee may do, and not tracking is
the safe answer for precision (a double release through a helper is then not reported).

Summaries are computed for the functions of the files given (the directory a reviewed or
audited file is in): static functions for their own file, the others by name. They are
used only for calls no pack describes; a pack entry always wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from reviewbot.cmodel import CFile, Function, args, callee, norm, text
from reviewbot.cmodel.macros import CONTAINER, accessor_macros, expand
from reviewbot.engine.facts import local_kinds
from reviewbot.packs import Packs
from reviewbot.packs.lookup import LEARNED

_ROOT = re.compile(r"^([A-Za-z_]\w*)")
_PREFIX = re.compile(r"^(?:[&*\s]+|\(\s*(?:const\s+|struct\s+|unsigned\s+)*[A-Za-z_]\w*[\s*]*\)\s*)")
ROUNDS = 8  # fixed-point rounds: helpers of helpers, a few levels deep


@dataclass(frozen=True)
class Summary:
    """What a function may do to the arguments at these positions."""

    releases: frozenset[int] = frozenset()  # the argument itself
    stores: frozenset[int] = frozenset()
    releases_fields: frozenset[int] = frozenset()  # something it points to (`kfree(es->bh)`)
    # the object the argument is a member of (`opts = container_of(f, ..); kfree(opts)`)
    releases_container: frozenset[int] = frozenset()
    # some return gives an error code (`return -ENODEV`, `return ERR_PTR(..)`, a variable
    # set to one): `return f(..)` in a caller is then a failure exit on f's failure
    fails: bool = False

    @property
    def hands_over(self) -> frozenset[int]:
        """The arguments whose own reference may be gone after the call."""
        return self.releases | self.stores


@dataclass
class OwnFacts:
    """One function's own facts, before the fixed point."""

    name: str
    path: str
    static: bool
    releases: set[int] = field(default_factory=set)
    stores: set[int] = field(default_factory=set)
    releases_fields: set[int] = field(default_factory=set)
    releases_container: set[int] = field(default_factory=set)
    # (callee, its argument, our parameter, passed whole): a field passed (`bh->b_blocknr`)
    # carries releases of what it points to, never a store of the object; CONTAINER
    # instead of a bool: the object the parameter is a member of (`f(TCP_TRANS(t))`)
    passes: list[tuple[str, int, int, bool | str]] = field(default_factory=list)
    fails: bool = False


def _whole(expr: str, params: list[str]) -> bool:
    """The argument is a parameter itself (`p`, `(void *)p`), not one of its fields."""
    while True:
        m = _PREFIX.match(expr)
        if m is None or not m.group(0) or m.group(0).strip().startswith("&"):
            break
        expr = expr[m.end():]
    return expr in params


def _param_of(expr: str, params: list[str]) -> int | None:
    """The parameter an argument or target expression is rooted at (`p`, `&p->x`,
    `(void *)p`), or None."""
    while True:  # &p->x, *pp, (void *)p
        m = _PREFIX.match(expr)
        if m is None or not m.group(0):
            break
        expr = expr[m.end():]
    m = _ROOT.match(expr)
    if m is None:
        return None
    name = m.group(1)
    return params.index(name) if name in params else None


_CONTAINER = re.compile(r"^container_of\(([A-Za-z_]\w*),")


def _local_values(fn: Function,
                  strip: Callable[[str], str] = lambda v: v) -> dict[str, set[str]]:
    """Each plain local (or pointer) the function assigns or initialises: the values it is
    given, normalised, accessor macros written out (cmodel/macros.py), and passed through
    `strip`."""
    macros = accessor_macros(fn.source)
    seen: dict[str, set[str]] = {}
    for node in (*fn.of_type("assignment_expression"), *fn.of_type("init_declarator")):
        left = node.child_by_field_name("left" if node.type != "init_declarator" else "declarator")
        right = node.child_by_field_name("right" if node.type != "init_declarator" else "value")
        while left is not None and left.type == "pointer_declarator":
            left = left.child_by_field_name("declarator")
        if left is not None and left.type == "identifier" and right is not None:
            seen.setdefault(text(left), set()).add(strip(expand(norm(text(right)), macros)))
    return seen


def _containers(fn: Function, params: list[str]) -> dict[str, int]:
    """Locals given the object a parameter is a member of, and nothing else:
    `opts = container_of(f, struct f_ncm_opts, func_inst)` -> {"opts": index of f}."""
    out = {}
    for name, values in _local_values(fn).items():
        m = _CONTAINER.match(next(iter(values))) if len(values) == 1 else None
        if m is not None and m.group(1) in params and name not in params:
            out[name] = params.index(m.group(1))
    return out


def _container_param(expr: str, params: list[str]) -> int | None:
    """The parameter whose container an argument is (`container_of(t, T, m)`), or None."""
    m = _CONTAINER.match(expr)
    return params.index(m.group(1)) if m is not None and m.group(1) in params else None


_CAST = re.compile(r"^\(\s*(?:const\s+|struct\s+|unsigned\s+)*[A-Za-z_]\w*[\s*]*\)\s*")


def _param_copies(fn: Function, params: list[str]) -> dict[str, str]:
    """Locals given one value, a parameter whole (`data = calldata`, `p = (struct x
    *)arg`): another name for it, so that `kfree(data)` releases the parameter."""
    seen = _local_values(fn, lambda v: _CAST.sub("", v))
    return {name: v for name, values in seen.items() if len(values) == 1
            and (v := next(iter(values))) in params and name not in params}


def _renamed(expr: str, copies: dict[str, str]) -> str:
    """`expr` with a leading copy of a parameter named as the parameter."""
    m = re.match(r"^([&*(\s]*)([A-Za-z_]\w*)", expr)
    if m is None or m.group(2) not in copies:
        return expr
    return m.group(1) + copies[m.group(2)] + expr[m.end():]


_ERRNO = re.compile(r"^-E[A-Z0-9]+$")
_ERR_VALUE = re.compile(r"^(?:-E[A-Z0-9]+|ERR_PTR\(.*|ERR_CAST\(.*|PTR_ERR\(.*)$")


def _fails(fn: Function) -> bool:
    """Some return gives an error code: a constant, an error pointer, or a variable that is
    given a constant errno somewhere in the function (`ret = -ENOMEM; .. return ret`)."""
    values = [norm(text(r.named_children[0])) for r in fn.of_type("return_statement")
              if r.named_children]
    if any(_ERR_VALUE.match(v) for v in values):
        return True
    names = {v for v in values if v.isidentifier()}
    if not names:
        return False
    for asg in fn.of_type("assignment_expression"):
        lhs = norm(text(asg.child_by_field_name("left")))
        if lhs in names and _ERRNO.match(norm(text(asg.child_by_field_name("right")))):
            return True
    return False


def _direct(fn: Function, path: str, packs: Packs) -> OwnFacts:
    d = OwnFacts(fn.name, path, fn.is_static, fails=_fails(fn))
    params = list(fn.params)
    if not params:
        return d
    macros = accessor_macros(fn.source)
    containers = _containers(fn, params) if "container_of" in fn.callees() or macros else {}
    copies = _param_copies(fn, params)
    for c in fn.of_type("call_expression"):
        name = callee(c)
        a = [_renamed(expand(norm(text(x)), macros), copies) for x in args(c)]
        spec = packs.calls.get(name)
        if spec is None:
            for i, x in enumerate(a):
                p = _container_param(x, params)
                if p is not None:  # free_transport(TCP_TRANS(t)): t's container
                    d.passes.append((name, i, p, CONTAINER))
                    continue
                p = _param_of(x, params)
                if p is not None:
                    d.passes.append((name, i, p, _whole(x, params)))
            continue
        if spec.releases and any(_owning(packs, rid) for rid in spec.releases):
            for t in spec.targets:
                if t.how == "arg" and 0 <= t.index < len(a):
                    if a[t.index] in containers:
                        d.releases_container.add(containers[a[t.index]])
                    p = _container_param(a[t.index], params)
                    if p is not None:
                        d.releases_container.add(p)
                    _released(d, a[t.index], params)
                    if _embedded_member(packs, spec.releases, a[t.index], params):
                        # kobject_put(&space_info->kobj): its release callback frees the
                        # object the member is embedded in, the parameter itself
                        d.releases.add(params.index(a[t.index][1:].split("->")[0]))
        for _rid, fmt in spec.consumes:
            m = re.match(r"^\{(\d+)\}", fmt)
            if m and int(m.group(1)) < len(a):
                _released(d, a[int(m.group(1))] + fmt[m.end():], params)
        for t in (spec.escapes, spec.maybe_consumes):
            if t is not None and 0 <= t.index < len(a):
                p = _param_of(a[t.index], params)
                if p is not None:
                    d.stores.add(p)
    kinds = local_kinds(fn)
    for asg in fn.of_type("assignment_expression"):
        lhs = norm(text(asg.child_by_field_name("left")))
        rhs = _renamed(norm(text(asg.child_by_field_name("right"))), copies)
        if rhs not in params:
            continue  # a field of a parameter stored elsewhere stays the caller's
        root = _ROOT.match(lhs)
        if root is None or lhs == root.group(1):
            continue  # a plain variable: a local copy, not a hand-over
        if kinds.get(root.group(1)) == "object" and root.group(1) not in params:
            continue  # into a local struct or array; through a local pointer (`cb =
            # kmalloc(..); cb->pages = pages`) it goes where that object goes
        d.stores.add(params.index(rhs))
    return d


def _released(d: OwnFacts, expr: str, params: list[str]) -> None:
    p = _param_of(expr, params)
    if p is not None:
        (d.releases if _whole(expr, params) else d.releases_fields).add(p)


def _embedded_member(packs: Packs, rids: tuple[str, ...], expr: str, params: list[str]) -> bool:
    """`expr` is `&p->member` of a parameter p, released as a resource that lives inside
    another object (a kobject, a struct device: `embedded` in its pack)."""
    m = re.fullmatch(r"&(\w+)->\w+", expr)
    return m is not None and m.group(1) in params and any(
        (k := packs.resources.get(r)) is not None and k.embedded for r in rids)


def _owning(packs: Packs, rid: str) -> bool:
    """A release that ends the object's life or drops a reference (not an unlock, nor a
    disable: the caller still holds the object after those)."""
    kind = packs.resources.get(rid)
    return kind is not None and kind.kind in ("memory", "ref")


class SummaryTable:
    """The summaries of a set of files' functions, by the file a call is made in."""

    def __init__(self, global_: dict[str, Summary], static: dict[str, dict[str, Summary]]):
        self._global = global_
        self._static = static

    def for_file(self, path: str) -> Mapping[str, Summary]:
        own = self._static.get(path)
        if not own:
            return self._global
        return {**self._global, **own}

    def __len__(self) -> int:
        return len(self._global) + sum(len(s) for s in self._static.values())


def file_directs(path: str, cf: CFile, packs: Packs) -> list[OwnFacts]:
    """One file's functions, before the fixed point (what a cache may keep per file)."""
    return [_direct(fn, path, packs) for fn in cf.functions]


def build(directs: Iterable[OwnFacts], packs: Packs) -> SummaryTable:
    """The fixed point over the functions of some files (`directs` are not changed)."""
    directs = [OwnFacts(d.name, d.path, d.static, set(d.releases), set(d.stores),
                        set(d.releases_fields), set(d.releases_container), d.passes, d.fails)
               for d in directs]
    by_name: dict[str, OwnFacts] = {}
    by_static: dict[tuple[str, str], OwnFacts] = {}
    for d in directs:
        if d.static and not d.path.endswith(".h"):
            by_static[(d.path, d.name)] = d
        else:  # a static inline of a header is every including file's
            by_name.setdefault(d.name, d)

    def target(d: OwnFacts, name: str) -> OwnFacts | None:
        return by_static.get((d.path, name)) or by_name.get(name)

    for _ in range(ROUNDS):
        changed = False
        for d in directs:
            for name, i, p, whole in d.passes:
                g = target(d, name)
                if g is None or g is d:
                    continue
                if whole == CONTAINER:
                    # g(container_of(p, ..)) releasing its argument frees p's container
                    if i in g.releases and p not in d.releases_container:
                        d.releases_container.add(p)
                        changed = True
                    continue
                if whole and i in g.releases_container and p not in d.releases_container:
                    d.releases_container.add(p)  # g(p) frees the object p is a member of
                    changed = True
                # g(p) releasing its argument releases p; g(p->x), or g(p) releasing
                # what its argument points to, releases something p points to
                if i in g.releases and whole and p not in d.releases:
                    d.releases.add(p)
                    changed = True
                if (i in g.releases_fields or (i in g.releases and not whole)) and \
                        p not in d.releases_fields:
                    d.releases_fields.add(p)
                    changed = True
                if whole and i in g.stores and p not in d.stores:
                    d.stores.add(p)
                    changed = True
        if not changed:
            break
    global_: dict[str, Summary] = {}
    static: dict[str, dict[str, Summary]] = {}
    for d in directs:
        if not (d.releases or d.stores or d.releases_fields or d.releases_container
                or d.fails):
            continue
        s = Summary(frozenset(d.releases), frozenset(d.stores), frozenset(d.releases_fields),
                    frozenset(d.releases_container), d.fails)
        if d.static and not d.path.endswith(".h"):
            static.setdefault(d.path, {})[d.name] = s
        elif d.name not in packs.calls or packs.calls[d.name].pack == LEARNED:
            global_.setdefault(d.name, s)  # a learned entry names one release; this, all
    return SummaryTable(global_, static)


def summarize(files: Iterable[tuple[str, CFile]], packs: Packs,
              extra: Iterable[OwnFacts] = ()) -> SummaryTable:
    """Summaries of every function defined in `files` ((path, parsed file) pairs); the
    functions of a header (`.h`: its static inlines, such as a setter that stores its
    argument in `file->private_data`) are seen from every file given; `extra`: more
    functions' facts (a directory's headers: inline_directs)."""
    return build([d for path, cf in files for d in file_directs(path, cf, packs)]
                 + list(extra), packs)


def inline_directs(path: str, source: str, packs: Packs) -> list[OwnFacts]:
    """A header's static inline functions, before the fixed point (nothing when it has
    none: most headers are only declarations and macros)."""
    if "inline" not in source:
        return []
    from reviewbot.cmodel import parse_c

    return file_directs(path, parse_c(source, path), packs)


def dir_header_directs(d: str, packs: Packs, limit: int) -> list[OwnFacts]:
    """The static inlines of the headers directly in directory `d` of a tree on disk
    (a header larger than `limit` bytes, or unreadable, is left out)."""
    import os

    out: list[OwnFacts] = []
    try:
        names = sorted(f for f in os.listdir(d) if f.endswith(".h"))
    except OSError:
        return out
    for f in names:
        path = os.path.join(d, f)
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError:
            continue
        if len(data) <= limit:
            out += inline_directs(path, data.decode("utf-8", "replace"), packs)
    return out
