"""A reference stored in a place the function itself releases: the place names it now.

`master = &cci->master[idx]; master->adap.dev.of_node = of_node_get(child);` stores the
reference in a field of the function's own object; the unwind code then drops it by that
field (`of_node_put(cci->master[i].adap.dev.of_node)`). The store is no hand-over: the
function is the owner of what it stored there until it returns successfully, and an
error exit that does not release the place leaks it. Which element of an array the path
stored in is unknowable (`[idx]` on one line, `[i]` on another), so the place is tracked
as `cci->master[*].adap.dev.of_node`: a release of any element of that array (INDEXED,
reviewbot/engine/transfer.py) makes it unknown, and only paths that release none leak it.

Only a release by a hand-written pack call counts as the function's own (a learned one
says what an unwind ladder undoes, not that the place is the owner's to drop), and only a
place in an object of the function's own (a local, not what the caller passed: fman's
memac_initialization() puts `mac_dev->phy_node` on one failure, and its caller puts it on
the others).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from reviewbot.cmodel import callee, line_of, norm
from reviewbot.engine.keys import static_key, target_keys, walk
from reviewbot.engine.state import HELD, PENDING, UNKNOWN
from reviewbot.packs.lookup import LEARNED

if TYPE_CHECKING:
    from reviewbot.engine.facts import FunctionFacts
    from reviewbot.engine.state import PathState
    from reviewbot.engine.walker import Walker

ANY = "[*]"  # the index of a place key: some element the path stored in
_INDEX = re.compile(r"\[[^\[\]]+\]")
_HEAD = re.compile(r"([A-Za-z_]\w*)->(.+)")
_ADDRESS = re.compile(r"&([A-Za-z_]\w*(?:->\w+|\.\w+|\[[\w+\-* ]+\])+)")


def any_index(key: str) -> str:
    """a[i].f, a[idx].f, a[0].f -> a[*].f: the same place whichever element it is."""
    return _INDEX.sub(ANY, key)


def is_place(key: str) -> bool:
    return ANY in key


def hand_released_places(facts: FunctionFacts) -> dict[tuple[str, str], list[int]]:
    """(resource id, place with any index) -> the lines where hand-written pack calls of
    the function release it through a field (`of_node_put(cci->master[i].adap.dev.of_node)`,
    `of_node_put(port->np)` of `port = &pd->port[n]`)."""
    out: dict[tuple[str, str], list[int]] = {}
    for c in facts.fn.of_type("call_expression"):
        spec = facts.packs.calls.get(callee(c))
        if spec is None or not spec.releases or spec.pack == LEARNED:
            continue
        for key in target_keys(spec, c, static_key):
            if "->" in key or "." in key:
                for rid in spec.releases:
                    out.setdefault((rid, place_of(facts, key)), []).append(line_of(c))
    return out


def member_pointers(facts: FunctionFacts) -> dict[str, str]:
    """Local pointers given the address of a member or element once, and never anything
    else (`master = &cci->master[idx]`): `master->x` is `cci->master[idx].x`."""
    seen: dict[str, list[str]] = {}
    for lhs, rhs in facts.assignments:
        seen.setdefault(lhs, []).append(rhs)
    out: dict[str, str] = {}
    for lhs, rhss in seen.items():
        if lhs not in facts.local_pointers or len(set(rhss)) != 1:
            continue
        m = _ADDRESS.fullmatch(rhss[0])
        if m is not None:
            out[lhs] = m.group(1)
    return out


def place_of(facts: FunctionFacts, key: str) -> str:
    """The place a field key names, any index: `port->np` of `port = &pd->port[n]` is
    `pd->port[*].np`."""
    m = _HEAD.fullmatch(key)
    if m is not None and m.group(1) in facts.member_pointers:
        key = f"{facts.member_pointers[m.group(1)]}.{m.group(2)}"
    return any_index(norm(key))


def stored_place(facts: FunctionFacts, rid: str, place: str, line: int) -> str:
    """The key a reference of `rid` stored in `place` (a canonical key) at `line` is
    tracked by, when the function releases that place itself after the store (a release
    before it drops the value the place held until then: `dput(ofs->workdir); ..
    ofs->workdir = dget(indexdir)` hands the new one to the caller's object); else ""."""
    place = place_of(facts, place)
    lines = facts.hand_released_places.get((rid, place), ())
    return place if any(ln > line for ln in lines) else ""


_LOOPS = ("for_statement", "while_statement", "do_statement")
_VARIABLE_INDEX = re.compile(r"\[[^\]\d]")


def loop_released(facts: FunctionFacts) -> dict[int, frozenset[tuple[str, str]]]:
    """Loop test node -> the places whose elements the loop's body releases by a variable
    index (`for (i = 1; i < n; i++) bforget(branch[i].bh)`): how many rounds run, so
    which elements it releases, the walk cannot count."""
    if not any(is_place(key) for _rid, key in facts.hand_released_places):
        return {}  # no element of an array released: no such loop
    out: dict[int, frozenset[tuple[str, str]]] = {}
    for n in facts.fn.nodes:
        if n.kind != "cond" or not n.loop or n.ts is None:
            continue
        loop = n.ts.parent
        while loop is not None and loop.type not in _LOOPS:
            loop = loop.parent
        body = loop.child_by_field_name("body") if loop is not None else None
        got: set[tuple[str, str]] = set()
        for c in walk(body, "call_expression"):
            spec = facts.packs.calls.get(callee(c))
            if spec is None or not spec.releases or spec.pack == LEARNED:
                continue
            for key in target_keys(spec, c, static_key):
                if _VARIABLE_INDEX.search(key):
                    got |= {(rid, place_of(facts, key)) for rid in spec.releases}
        if got:
            out[n.idx] = frozenset(got)
    return out


def forget_loop_released(w: Walker, st: PathState, idx: int) -> None:
    """At the test of such a loop, the places it releases elements of are unknown."""
    gone = w.facts.loop_released.get(idx)
    if not gone:
        return
    for k, r in list(st.res.items()):
        if k in gone and r.status in (HELD, PENDING):
            st.res[k] = replace(r, status=UNKNOWN)
