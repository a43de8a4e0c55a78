"""get-put.leak-by-overwrite: the only name of a reference gets a new value first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewbot.checks import register, rule
from reviewbot.cmodel import args, callee, line_of, norm, text
from reviewbot.engine import PENDING, Checker, PathState, Res, Walker
from reviewbot.engine.keys import mentions

LEAK_BY_OVERWRITE = rule(
    "get-put.leak-by-overwrite", "warning", "medium",
    "a local pointer that holds a reference or allocation is assigned a new value first",
    """
What it finds: an assignment to a local variable that holds a reference or an allocation
taken in the function (a call's new object: its result or out-argument, tested or not yet
tested), on a path where nothing has released it, stored it in a longer-lived place,
returned it or handed it to a call that may keep it. The old value was the only name of
the object: it can never be released now.

Why it matters: the object is lost on every call that takes that path: memory that is
never freed, a buffer head, a device-tree or firmware node whose refcount never drops.

Example:
    child = fwnode_get_named_child_node(fw, "ports");
    if (!child)
        return -ENODEV;
    ...
    child = fwnode_get_named_child_node(fw, "leds");   /* "ports" is never put */

Not reported: a new value computed from the old one (`p = krealloc(p, ..)`, an iterator
such as `np = of_find_node_by_name(np, ..)` that drops the node it is given, `p = p->next`,
`p = aligned` with `aligned` computed from `p`); `p = NULL` (often after a hand-over by a
call no pack describes); a variable another local still names (`q = p`); a reference taken
on an object the function can name otherwise (`this = dget(dentry)`, `get_page(page)`); a
value stored (also as `base + off`), returned or handed over first, or given before to a
call that releases it or may take it over (a release the pair does not list,
`hpfs_brelse4(&qbh)` for what `hpfs_map_bitmap(.., &qbh, ..)` returned, `&obj->member`
passed to a call no pack describes); a value from an earlier round of a loop (the walker
does not relate the rounds' counters and flags: every such report on 6.1's fs/ was false);
locks and device states.

Known false positives: a reference handed over by a call no pack describes that the walker
does not take for a hand-over (a reference passed as a statement to a registration
helper); two branches whose conditions exclude each other (`if (cpu_is_a()) c =
clk_get(..); if (cpu_is_b()) c = clk_get(..);`: low, see below).

Confidence: medium; low when the acquisition is learned (docs/learning.md: the real cases
in 6.1, `np = of_find_compatible_node(NULL, ..)` reused before of_node_put(), are such) or
when the value was taken in a branch the overwrite is not in. Similar public checks: the
Clang Static Analyzer's unix.Malloc (a leak reported where the last pointer to an
allocation is overwritten), smatch's check_leaks.c and check_free.c.
""")


@register
class LeakByOverwriteChecker(Checker):
    name = "leak-by-overwrite"
    rules = (LEAK_BY_OVERWRITE,)
    events = frozenset({"overwrite"})

    def on_overwrite(self, w: Walker, st: PathState, r: Res, line: int, rhs: str) -> None:
        if not r.held_untested or r.handed or r.published or r.nonlocal_ or r.inferred:
            return
        if r.acq_after_label:
            return  # taken again in unwind or retry code reached through a label
        kind = w.packs.resources.get(r.rid)
        if kind is None or kind.kind not in ("memory", "ref"):
            return  # a lock or a device state is not lost with the pointer's value
        facts = w.facts
        if r.key not in facts.locals or r.key in facts.local_objects or r.key in facts.borrowed:
            return
        if rhs in ("NULL", "0") or mentions(rhs, r.key):
            return  # `p = NULL` after a hand-over; krealloc(p, ..), iterators, p->next
        spec = w.packs.calls.get(r.acq_call)
        if spec is None or spec.returns_arg is not None or not any(
                t.how in ("return", "out") for t in spec.targets):
            return  # dget(d), get_page(page): a reference on an object with another name
        if line <= r.acq_line:
            # a value from an earlier round of a loop: the walker does not relate the
            # rounds' counters and flags (`if (ix == 0) bh = sb_bread(..)`, `if (data_in)
            # put_page(in_page)`); in 6.1's fs/ all such reports were false
            return
        facts_ = self._function_facts(w)
        if (rhs, r.key) in facts_.derived:
            return  # aligned = ALIGN(&p->map); p = aligned: the same block, another name
        if any(v == r.key and r.acq_line <= ln < line for v, ln in facts_.given_away):
            return  # f2fs_put_page(page, 0), put_mark(&new->mark)
        holders = _holders(w, r)
        if any(v in holders and r.acq_line < ln < line for v, ln in facts_.by_address):
            return  # bmp = hpfs_map_bitmap(.., &qbh, ..); hpfs_brelse4(&qbh)
        if any(v == r.key and r.acq_line <= ln < line for v, ln in facts_.stored):
            return  # hose->cfg_addr = mbase + off: kept where it was stored
        untested = " (its result was not tested)" if r.status == PENDING else ""
        # taken in one branch and overwritten after it: the walker does not know when two
        # conditions exclude each other (`if (cpu_is_a()) c = clk_get(..); if (cpu_is_b())`)
        unsure = _left_branch(w, r.acq_line, line)
        when = f"at line {r.acq_line}{untested} when it is assigned '{_short(rhs)}' here"
        w.report(
            LEAK_BY_OVERWRITE.id, line, r.key,
            f"'{r.key}' still holds what {r.acq_call}() returned {when}; nothing released it "
            f"or handed it over, so it can no longer be released. Is a release missing first?",
            st, [(line, f"'{r.key}' overwritten")], [line, r.acq_line],
            confidence="low" if unsure else "medium",
        )

    # what the function's code says, computed once per function
    _fn: object = None
    _facts: _Facts | None = None

    def _function_facts(self, w: Walker) -> _Facts:
        if self._fn is w.fn and self._facts is not None:
            return self._facts
        release_re = w.packs.idioms.release_re
        local = w.facts.locals
        given: set[tuple[str, int]] = set()
        by_address: set[tuple[str, int]] = set()
        for c in w.fn.of_type("call_expression"):
            name = callee(c)
            spec = w.packs.calls.get(name)
            releases = (spec is not None and bool(spec.releases)) or (
                release_re is not None and release_re.search(name) is not None)
            for a in args(c):
                t = norm(text(a))
                m = _MEMBER.match(t)
                if m and (releases or spec is None):
                    given.add((m.group(1), line_of(c)))  # &obj->member: the object goes too
                elif releases and t.lstrip("&") in local:
                    given.add((t.lstrip("&"), line_of(c)))
                elif spec is None and t.startswith("&") and t[1:] in local:
                    by_address.add((t[1:], line_of(c)))
        stored: set[tuple[str, int]] = set()
        derived: set[tuple[str, str]] = set()
        for a in w.fn.of_type("assignment_expression"):
            lhs = norm(text(a.child_by_field_name("left")))
            rhs = a.child_by_field_name("right")
            if lhs.isidentifier() and lhs in local:
                derived |= {(lhs, v) for v in local if v != lhs and mentions(norm(text(rhs)), v)}
                continue
            stored |= {(v, line_of(a)) for v in _values_in(rhs) if v in local}
        self._fn, self._facts = w.fn, _Facts(frozenset(given), frozenset(by_address),
                                             frozenset(stored), frozenset(derived))
        return self._facts


@dataclass(frozen=True)
class _Facts:
    """Per function: (variable, line) of the calls that may release or take over what a
    variable holds (a release-looking or releasing call given it; any call no pack
    describes given the address of its member, `&new->mark`); (variable, line) of the
    calls no pack describes given a local's address (`hpfs_brelse4(&qbh)`); (variable,
    line) of stores
    of an expression made of the variable into a place that is not a local variable (the
    walker follows stores of the plain pointer only); (local, variable) of the locals
    assigned something computed from the variable."""

    given_away: frozenset[tuple[str, int]]
    by_address: frozenset[tuple[str, int]]
    stored: frozenset[tuple[str, int]]
    derived: frozenset[tuple[str, str]]


def _holders(w: Walker, r: Res) -> tuple[str, ...]:
    """The locals whose address the acquiring call was also given (`bmp =
    hpfs_map_bitmap(s, n, &qbh, ..)`: the buffers are held by `qbh`)."""
    for c in w.fn.of_type("call_expression"):
        if callee(c) == r.acq_call and line_of(c) == r.acq_line:
            return tuple(t[1:] for a in args(c) if (t := norm(text(a))).startswith("&")
                         and t[1:].isidentifier())
    return ()


_MEMBER = re.compile(r"^&\(?([A-Za-z_]\w*)->")


def _values_in(e) -> set[str]:
    """The variables whose values make up expression `e` (`base + off`, `(u8 *)p`), not
    those only passed to a call in it."""
    if e is None or e.type == "call_expression":
        return set()
    if e.type == "identifier":
        return {text(e)}
    return {v for c in e.named_children for v in _values_in(c)}


def _left_branch(w: Walker, inside: int, outside: int) -> bool:
    """Line `inside` is in an arm of an if statement that line `outside` is not in."""
    for s in w.fn.of_type("if_statement"):
        for arm in (s.child_by_field_name("consequence"), s.child_by_field_name("alternative")):
            if arm is not None:
                lo = line_of(arm)
                hi = lo + text(arm).count("\n")
                if lo <= inside <= hi and not lo <= outside <= hi:
                    return True
    return False


def _short(rhs: str) -> str:
    return rhs if len(rhs) <= 48 else rhs[:45] + "..."
