"""Consistency with sibling code: tearing down an object the way every other place does.

An object on a list may hold references through its fields (a GFS2 revoke entry holds a
glock reference through ``bd->bd_gl``). When a function takes such an object off a list and
frees it, the other functions of the subsystem that take objects off the *same* list and
free them show what must be dropped first. If every one of them drops the reference held
through a field, and this function does not, it leaks that reference (case 035: the revoke
entries freed by ``gfs2_trans_remove_revoke`` kept their glock references).

Drops are found through the packs and through one-level function summaries computed from
the tree (``gfs2_glock_remove_revoke(gl)`` puts its argument), so helpers need no pack entry.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from reviewbot.checks import register
from reviewbot.checks.get_put import LEAK
from reviewbot.cmodel import Function, args, callee, line_of, lines_with, norm, parse_region, text
from reviewbot.engine import Checker, FunctionContext, Raw, ptr_key, static_key
from reviewbot.packs import Packs

_LIST_DEL = re.compile(r"^(list_del|list_del_init|list_del_rcu|hlist_del|hlist_del_init)$")
_FROM_LIST = re.compile(r"^(list_entry|list_first_entry|list_last_entry|hlist_entry|container_of)$")
_ITER = re.compile(r"for_each_entry")
# The name before the first '(' after a line start: what a file may define (a superset:
# prototypes and calls at column 0 too), to skip parsing files that define no helper asked.
_DEFINES = re.compile(r"^\w[^;(]*?\b(\w+)\s*\(", re.M)


def _defined(text: str) -> set[str]:
    return set(_DEFINES.findall(text))


@dataclass
class Teardown:
    fn: str
    obj: str  # the local naming the object
    line: int  # where it is freed
    signature: tuple[str, str, str]  # (list head field, list member, free call)
    drops: set[str] = field(default_factory=set)  # fields of obj whose reference is dropped


def _last_field(expr: str) -> str:
    expr = re.sub(r"->next$|->prev$", "", expr.lstrip("&"))
    return re.split(r"->|\.", expr)[-1]


def memory_frees(packs: Packs) -> set[str]:
    """The calls that free memory (a pack release of a "memory" resource)."""
    return packs.memory_frees() | {"kmem_cache_free"}


def summaries(functions: list[Function], packs: Packs) -> dict[str, set[int]]:
    """Which parameters a function drops a reference on (one level, from pack releases)."""
    out: dict[str, set[int]] = {}
    for fn in functions:
        drops: set[int] = set()
        for c in fn.of_type("call_expression"):
            spec = packs.calls.get(callee(c))
            if spec is None or not spec.releases:
                continue
            if not any(packs.resources.get(r) is not None and packs.resources[r].kind == "ref"
                       for r in spec.releases):
                continue
            for t in spec.targets:
                a = args(c)
                if t.how == "arg" and 0 <= t.index < len(a):
                    name = static_key(text(a[t.index]))
                    if name in fn.params:
                        drops.add(fn.params.index(name))
        if drops:
            out[fn.name] = drops
    return out


def teardowns(fn: Function, packs: Packs, summ: dict[str, set[int]],
              frees: set[str] | None = None) -> list[Teardown]:
    """`frees`: memory_frees(packs), when the caller has it already."""
    body = fn.body
    if body is None or not any(_LIST_DEL.match(c) for c in fn.callees()):
        return []  # nothing is taken off a list here
    if frees is None:
        frees = memory_frees(packs)
    local_src: dict[str, str] = {}  # local -> expression it was assigned from
    for a in fn.of_type("assignment_expression"):
        lhs = norm(text(a.child_by_field_name("left")))
        if lhs.isidentifier():
            local_src[lhs] = norm(text(a.child_by_field_name("right")))
    for d in fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        ident = d.child_by_field_name("declarator")
        while ident is not None and ident.type != "identifier":
            ident = ident.child_by_field_name("declarator")
        if v is not None and ident is not None:
            local_src[text(ident)] = norm(text(v))

    def list_of(obj: str) -> tuple[str, str] | None:
        """(list head field, member) an object was taken from."""
        for c in fn.of_type("call_expression"):
            name = callee(c)
            a = [norm(text(x)) for x in args(c)]
            if _ITER.search(name) and a and a[0] == obj and len(a) >= 3:
                head = a[-2]
                return _last_field(local_src.get(head, head)), a[-1]
        src = local_src.get(obj, "")
        m = re.match(r"^(\w+)\((.*)\)$", src)
        if m and _FROM_LIST.match(m.group(1)):
            parts = [p.strip() for p in m.group(2).split(",")]
            if len(parts) >= 3:
                head = re.sub(r"->next$|->prev$", "", parts[0])
                head = local_src.get(head, head)
                return _last_field(head), parts[-1]
        return None

    deleted: dict[str, str] = {}  # obj -> member removed with list_del*
    for c in fn.of_type("call_expression"):
        if _LIST_DEL.match(callee(c)) and args(c):
            m = re.match(r"^&(\w+)->(\w+)$", norm(text(args(c)[0])))
            if m:
                deleted[m.group(1)] = m.group(2)
    out: list[Teardown] = []
    for c in fn.of_type("call_expression"):
        name = callee(c)
        if name not in frees or not args(c):
            continue
        obj = norm(text(args(c)[-1]))
        if obj not in deleted:
            continue
        src = list_of(obj)
        if src is None:
            continue
        td = Teardown(fn.name, obj, line_of(c), (src[0], deleted[obj], name))
        td.drops = _drops(fn, obj, local_src, packs, summ) | _freed_fields(packs, name)
        out.append(td)
    return out


def _drops(fn: Function, obj: str, local_src: dict[str, str], packs: Packs,
           summ: dict[str, set[int]]) -> set[str]:
    """Fields of obj whose reference the function drops (directly or through a local)."""
    prefix = obj + "->"

    def field_of(expr: str) -> str | None:
        expr = ptr_key(expr)
        if expr.startswith(prefix):
            return expr[len(prefix):].split("->")[0]
        src = local_src.get(expr, "")
        if src.startswith(prefix):
            return src[len(prefix):].split("->")[0]
        return None

    out: set[str] = set()
    for c in fn.of_type("call_expression"):
        name = callee(c)
        a = [norm(text(x)) for x in args(c)]
        idxs: set[int] = set()
        spec = packs.calls.get(name)
        if spec is not None and spec.releases and _drops_reference(packs, spec.releases):
            # a reference or memory: an unlock (mutex_unlock(&msg_ctx->mux)) drops none
            idxs = {t.index for t in spec.targets if t.how == "arg"}
        idxs |= summ.get(name, set())
        for i in idxs:
            if i < len(a):
                f = field_of(a[i])
                if f:
                    out.add(f)
    return out


def _freed_fields(packs: Packs, free: str) -> set[str]:
    """Fields of its argument the free call itself releases (a learned helper:
    ecryptfs_msg_ctx_alloc_to_free() frees `{0}->msg` as well as the entry)."""
    spec = packs.calls.get(free)
    if spec is None:
        return set()
    return {t.fmt[len("{0}->"):].split("->")[0] for t in spec.targets
            if t.how == "fmt" and t.fmt.startswith("{0}->")}


def _drops_reference(packs: Packs, rids: tuple[str, ...]) -> bool:
    return any(packs.resources.get(r) is not None and packs.resources[r].kind in ("ref", "memory")
               for r in rids)


class SiblingIndex:
    """Teardowns of every function in a set of files (the subsystem), by signature.

    Built per file, so that the index of a subsystem with a few files changed (a patch's
    post-image) is derived from the tree's index by re-reading only those files.
    """

    def __init__(self, files: dict[str, str], packs: Packs) -> None:
        self.packs = packs
        self.frees = memory_frees(packs)
        self.files = files
        # Only files that take objects off lists can hold teardowns; summaries are needed
        # only for the helpers those functions call. Files are parsed one at a time (a
        # subsystem's syntax trees do not all fit in memory at once).
        self._wanted_by = {p: w for p, t in files.items() if (w := self._wanted_in(p, t))}
        self.wanted = self._union_wanted()
        self._summ_by = {p: s for p, t in files.items() if (s := self._summ_in(p, t))}
        self.summ = self._merged_summ()
        self._tds_by = {p: td for p, t in files.items() if (td := self._tds_in(p, t))}
        self.by_sig = self._by_sig()

    # -- per file
    @staticmethod
    def _listy(path: str, text: str) -> bool:
        return path.endswith(".c") and "list_del" in text

    def _wanted_in(self, path: str, text: str) -> set[str]:
        """Callees of the file's functions that take objects off lists."""
        out: set[str] = set()
        if self._listy(path, text):
            for fn in parse_region(text, path, lines_with(text, "list_del")).functions:
                if "list_del" in fn.text():
                    out |= fn.callees()
        return out

    def _summ_in(self, path: str, text: str) -> dict[str, set[int]]:
        if not path.endswith(".c") or not self.wanted & _defined(text):
            return {}
        names = self.wanted & _defined(text)
        return summaries([f for f in parse_region(text, path, set(), names).functions
                          if f.name in self.wanted],
                         self.packs)

    def _tds_in(self, path: str, text: str) -> list[Teardown]:
        out: list[Teardown] = []
        if self._listy(path, text):
            for fn in parse_region(text, path, lines_with(text, "list_del")).functions:
                if "list_del" in fn.text():
                    out += teardowns(fn, self.packs, self.summ, self.frees)
        return out

    # -- merged, in file order (a later file's static helper of the same name wins, as
    #    it did when the index was built in one pass)
    def _union_wanted(self) -> set[str]:
        out: set[str] = set()
        for p in self.files:
            out |= self._wanted_by.get(p, set())
        return out - set(self.packs.calls)

    def _merged_summ(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for p in self.files:
            out.update(self._summ_by.get(p, {}))
        return out

    def _by_sig(self) -> dict[tuple, list[Teardown]]:
        out: dict[tuple, list[Teardown]] = defaultdict(list)
        for p in self.files:
            for td in self._tds_by.get(p, []):
                out[td.signature].append(td)
        return out

    def with_files(self, changes: dict[str, str]) -> SiblingIndex:
        """This index with some files replaced or added; only those are read again unless
        they change what the others' summaries depend on (then everything is)."""
        changes = {p: t for p, t in changes.items() if self.files.get(p) != t}
        if not changes:
            return self
        files = {**self.files, **changes}
        new = object.__new__(SiblingIndex)
        new.packs, new.frees, new.files = self.packs, self.frees, files
        new._wanted_by = dict(self._wanted_by)
        for p, t in changes.items():
            w = new._wanted_in(p, t)
            new._wanted_by[p] = w
        new.wanted = new._union_wanted()
        if new.wanted != self.wanted:
            return SiblingIndex(files, self.packs)
        new._summ_by = dict(self._summ_by)
        for p, t in changes.items():
            new._summ_by[p] = new._summ_in(p, t)
        new.summ = new._merged_summ()
        if new.summ != self.summ:
            return SiblingIndex(files, self.packs)
        new._tds_by = dict(self._tds_by)
        for p, t in changes.items():
            new._tds_by[p] = new._tds_in(p, t)
        new.by_sig = new._by_sig()
        return new


def check_function(fn: Function, index: SiblingIndex) -> list[Raw]:
    out: list[Raw] = []
    for td in teardowns(fn, index.packs, index.summ, index.frees):
        others = [o for o in index.by_sig.get(td.signature, []) if o.fn != fn.name]
        if not others:
            continue
        common = set.intersection(*(o.drops for o in others))
        for f in sorted(common - td.drops):
            names = ", ".join(sorted({o.fn + "()" for o in others}))
            head, member, free = td.signature
            out.append(Raw(
                LEAK.id, td.line, f"{td.obj}->{f}",
                f"'{td.obj}' is taken off {head} and freed with {free}() without dropping the "
                f"reference held through {td.obj}->{f}; the other {len(others)} place(s) that "
                f"take entries off {head} and free them drop it first ({names}). Is a put "
                f"missing here?",
                [(td.line, f"{free}({td.obj})")], [td.line], "medium",
            ))
    return out


@register
class SiblingsChecker(Checker):
    name = "siblings"
    rules = (LEAK,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        if ctx.siblings is None:
            return []
        return check_function(ctx.fn, ctx.siblings)
