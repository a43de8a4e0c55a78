"""ops-mismatch: an object made with one operations table and used where another is required.

The pack names the getter and which of its arguments is the ops table
(``gfs2_glock_get(sdp, no, &GLOPS, create, &gl)``), the tables, and the uses that require a
given table. The engine is generic: other subsystems add their tables as data.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from reviewbot.checks import register, rule
from reviewbot.cmodel import Function, args, callee, line_of, lines_with, norm, parse_region, text
from reviewbot.engine import Checker, FunctionContext, Raw, static_key
from reviewbot.packs import OpsFamily, Packs

GLOPS = rule(
    "ops-mismatch.gfs2-glops", "error", "high",
    "a glock obtained with one glops table is used where another table is required",
    """
What it finds: `gfs2_glock_get(sdp, no, &TABLE, CREATE, &gl)` followed by a use of `gl` that
only makes sense for another table: queuing `gl->gl_delete` work (iopen glocks), taking an
inode's iopen holder on it, or storing it in `ip->i_gl` (inode glocks). With a source tree,
it also reports a use whose table differs from what every other place in the tree does for
the same use, saying how many places agree.

Why it matters: the glops table decides which callbacks run. Delete work queued on an inode
glock runs with the wrong callbacks and races with the iopen callback that queues the same
work on the iopen glock (seed patch B).

Example:
    error = gfs2_glock_get(sdp, block, &gfs2_inode_glops, CREATE, &gl);
    ...
    queue_work(gfs2_delete_workqueue, &gl->gl_delete);   /* needs gfs2_iopen_glops */

Known false positives: a glock obtained through a wrapper of gfs2_glock_get() whose table
the pack does not see; tree consensus in a subsystem where only two or three places make
the same use.

Glocks whose table cannot be known here (function parameters, looked up elsewhere) are not
reported. Confidence: high for pack-declared uses, medium for tree consensus.
""")


@dataclass
class Obtained:
    key: str
    table: str
    line: int


def _pattern_regex(pattern: str, obj: str) -> re.Pattern[str]:
    p = re.escape(norm(pattern))
    p = p.replace(re.escape("{obj}"), re.escape(obj))
    p = p.replace(re.escape("{any}"), r"[^,()]+")
    p = p.replace(r"\*", r"[^,]*")
    return re.compile(p)


def obtained(fn: Function, fam: OpsFamily) -> dict[str, Obtained]:
    """Objects the function gets from the getter, with their table (None if ambiguous)."""
    seen: dict[str, Obtained | None] = {}
    for c in fn.of_type("call_expression"):
        if callee(c) != fam.getter:
            continue
        a = args(c)
        if fam.ops_arg >= len(a):
            continue
        table = norm(text(a[fam.ops_arg])).lstrip("&")
        if fam.object_target.how == "return":
            parent = c.parent
            if parent is None or parent.type != "assignment_expression":
                continue
            key = norm(text(parent.child_by_field_name("left")))
        else:
            if fam.object_target.index >= len(a):
                continue
            key = static_key(text(a[fam.object_target.index]))
        if key in seen and (seen[key] is None or seen[key].table != table):
            seen[key] = None
        else:
            seen[key] = Obtained(key, table, line_of(c))
    return {k: v for k, v in seen.items() if v is not None}


def _statements(fn: Function) -> Iterable[tuple[int, str, object]]:
    for typ in ("expression_statement", "declaration", "if_statement"):
        for s in fn.of_type(typ):
            node = s.child_by_field_name("condition") if typ == "if_statement" else s
            if node is not None:
                yield line_of(node), norm(text(node)), node


def check_function(fn: Function, packs: Packs, index: TreeIndex | None = None) -> list[Raw]:
    out: list[Raw] = []
    for fam in packs.ops.values():
        objs = obtained(fn, fam)
        if not objs:
            continue
        stmts = list(_statements(fn))
        for ob in objs.values():
            for use in fam.uses:
                if use.is_assign:
                    lhs_re = re.compile("^" + re.escape(use.pattern).replace(r"\*", ".+") + "$")
                    hits = []
                    if lhs_re.match(ob.key):
                        hits.append(ob.line)
                    for a in fn.of_type("assignment_expression"):
                        lhs = norm(text(a.child_by_field_name("left")))
                        rhs = norm(text(a.child_by_field_name("right")))
                        if rhs == ob.key and lhs_re.match(lhs):
                            hits.append(line_of(a))
                else:
                    rx = _pattern_regex(use.pattern, ob.key)
                    hits = [ln for ln, t, _n in stmts if rx.search(t)]
                if not hits or use.requires == ob.table:
                    continue
                at = min(hits)
                out.append(Raw(
                    GLOPS.id, at, ob.key,
                    f"'{ob.key}' is obtained with &{ob.table} at line {ob.line}, but this use "
                    f"requires &{use.requires}: {use.why}. Should the glock be looked up with "
                    f"&{use.requires}?",
                    [(ob.line, f"{fam.getter}(..., &{ob.table}, ...) -> {ob.key}"),
                     (at, f"use that requires &{use.requires}")],
                    [at, ob.line],
                ))
        if index is not None:
            out.extend(_consensus(fn, fam, objs, index))
    return out


@register
class OpsMismatchChecker(Checker):
    name = "ops-mismatch"
    rules = (GLOPS,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        return check_function(ctx.fn, ctx.packs, ctx.ops_index)


# ---------------------------------------------------------------------- tree consensus


def _signatures(fn: Function, key: str) -> list[tuple[str, int]]:
    """How a function uses an object: (callee:field, line) for calls that take it."""
    sigs: list[tuple[str, int]] = []
    for c in fn.of_type("call_expression"):
        name = callee(c)
        for i, a in enumerate(args(c)):
            t = static_key(text(a))
            if t == key:
                sigs.append((f"{name}#{i}", line_of(c)))
            elif t.startswith(key + "->"):
                sigs.append((f"{name}#{i}:{t[len(key) + 2:]}", line_of(c)))
    return sigs


class TreeIndex:
    """What every other function in the tree does with objects of each table."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self.where: dict[tuple[str, str, str], list[str]] = defaultdict(list)

    def add_file(self, path: str, source: str, packs: Packs, skip: set[str] | None = None) -> None:
        if not any(f.getter in source for f in packs.ops.values()):
            return
        lines: set[int] = set()
        for f in packs.ops.values():
            lines |= lines_with(source, f.getter)
        cf = parse_region(source, path, lines)  # only the functions that obtain objects
        for fn in cf.functions:
            if skip and fn.name in skip:
                continue
            for fam in packs.ops.values():
                for ob in obtained(fn, fam).values():
                    for sig, _ln in set(_signatures(fn, ob.key)):
                        if sig.startswith(fam.getter + "#"):
                            continue
                        self.stats[fam.name][sig][ob.table] += 1
                        self.where[(fam.name, sig, ob.table)].append(f"{path}:{fn.name}")


def _consensus(fn: Function, fam: OpsFamily, objs: dict[str, Obtained], index: TreeIndex) -> list[Raw]:
    out: list[Raw] = []
    for ob in objs.values():
        for sig, line in _signatures(fn, ob.key):
            if sig.startswith(fam.getter + "#"):
                continue
            counts = index.stats.get(fam.name, {}).get(sig)
            if not counts:
                continue
            if ob.table in counts or len(counts) != 1:
                continue  # somebody else does the same, or the tree is divided
            (table, n), = counts.items()
            if n < 2:
                continue
            use = sig.split("#")[0]
            out.append(Raw(
                GLOPS.id, line, ob.key,
                f"'{ob.key}' is obtained with &{ob.table} at line {ob.line} and passed to "
                f"{use}() here, but all {n} other places in the tree that do this use a glock "
                f"obtained with &{table}. Is &{ob.table} intended?",
                [(ob.line, f"{fam.getter}(..., &{ob.table}, ...)"), (line, f"{use}({ob.key}...)")],
                [line, ob.line], confidence="medium",
            ))
    return out
