"""The checker interface: how a rule family sees a function.

After the Clang Static Analyzer's checkers and smatch's ``check_*.c``: a checker declares
the events it wants in ``events`` (narrowed per function by ``events_for``), keeps its own
per-path data in a slot the walker carries for it in every ``PathState``, and reports with
``walker.report``. The walker calls only the hooks of those events, in the order the
checkers were registered.

Path events (during the walk, on the path state ``st`` of the path that reaches them):

====================  =========================================================================
``call``              ``on_call(w, st, call)``: a call a pack describes, before its effects
``acquire``           ``on_acquire(w, st, r, prev)``: ``r`` was just acquired; ``prev`` is the
                      record it replaces (None: the path had none of that kind and key)
``release``           ``on_release(w, st, r, line, call, consume)``: a pack call (or a consuming
                      one, ``consume``) drops ``r``; ``r.status`` is what it was before
                      (``ABSENT``: never acquired on this path)
``store``             ``on_store(w, st, r, line, lhs)``: a released ``r`` is stored or returned
``publish``           ``on_publish(w, st, r, line, how, argv)``: a held ``r`` is stored in a
                      longer-lived place (``how`` "store", ``argv`` the place) or handed to a
                      pack call that stores it (``how`` the call, ``argv`` its arguments)
``use``               ``on_use(w, st, r, line, how)``: a released ``r`` is dereferenced or passed
``overwrite``         ``on_overwrite(w, st, r, line, rhs)``: the local variable naming a held or
                      untested ``r`` is assigned ``rhs`` (its text), before ``r`` is forgotten
``branch``            ``on_branch(w, st, node)``: a condition, before it is evaluated
``assume``            ``on_assume(w, st, cond)``: a branch taken; ``cond`` says what it decided
                      (None: nothing the walker tracks)
``label``             ``on_label(w, st, node)``: the path passes a label
``goto``              ``on_goto(w, st, node)``
``stmt``              ``on_stmt(w, st, node)``: a statement, a switch head or a ``break``
                      (``node.kind``), before its effects; ``node.ast`` is its syntax
``exit``              ``on_exit(w, st, ex)``: the path returns
``end``               ``on_end(w)``: every path is walked
====================  =========================================================================

Whole-function events (no walk; they return raw findings):

====================  =========================================================================
``function``          ``check_function(ctx: FunctionContext)``: the function as a whole
``change``            ``check_change(ctx: ChangeContext)``: a function before and after a patch
                      (a checker with ``change_fixes`` is also called with the two swapped,
                      ``ctx.backwards``: what it finds then is what the patch fixes)
====================  =========================================================================

A slot starts as ``initial()`` on each walk; a checker reads it as ``st.slots[self.name]``
and replaces it with ``st.set_slot(self.name, value)`` (slot values are immutable: the
copies of a state made at every fork share them).
``slot_key`` says what of the slot makes two paths different (part of the state key at
join nodes; the default, None, adds nothing: a larger key means more states to walk),
``widen`` what survives widening.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:
    from reviewbot.checks import Rule
    from reviewbot.cmodel import Function, Node
    from reviewbot.engine.state import Exit, PathState, Raw, Res
    from reviewbot.engine.walker import Walker
    from reviewbot.packs import CallSpec, Packs

PATH_EVENTS = ("call", "acquire", "release", "store", "publish", "use", "overwrite", "branch",
               "assume", "label", "goto", "stmt", "exit", "end")
FUNCTION_EVENTS = ("function", "change")
HOOKS = {
    "call": "on_call", "acquire": "on_acquire", "release": "on_release", "store": "on_store",
    "publish": "on_publish", "use": "on_use", "overwrite": "on_overwrite",
    "branch": "on_branch", "assume": "on_assume", "label": "on_label", "goto": "on_goto",
    "stmt": "on_stmt", "exit": "on_exit", "end": "on_end", "function": "check_function", "change": "check_change",
}


class Call(NamedTuple):
    """A call a pack describes, as the walker is about to apply it."""

    spec: CallSpec
    line: int
    statement: bool  # its result is discarded
    releases: tuple[str, ...]  # the keys it releases (its release targets)
    result: str  # the key its result is assigned to ("": none; "#...": a condition's value)


class Cond(NamedTuple):
    """What a branch decided: the tracked value `subject` is in `taken` on this side.
    (A named tuple: one is made for each side of every branch walked.)"""

    line: int
    subject: str
    taken: frozenset
    from_call: bool  # the subject is a call's result
    fresh: bool = True  # ... tested by the first branch after the call (`x = f(); if (!x)`)


@dataclass
class FunctionContext:
    """What a whole-function check may use: the function, the packs, the tree's indexes."""

    fn: Function
    packs: Packs
    before: Function | None = None
    ops_index: object | None = None  # checks.ops_mismatch.TreeIndex, with a tree
    siblings: object | None = None  # checks.siblings.SiblingIndex, when a patch frees list entries
    callgraph: object | None = None  # knowledge.callgraph.LazyGraph of the file's subsystem


@dataclass
class ChangeContext:
    """A function before (None: added) and after a patch."""

    before: Function | None
    after: Function
    packs: Packs
    backwards: bool = False  # before and after swapped: a finding is one the patch fixes
    # the whole file's text before and after (rules that look at the file's other functions)
    before_source: str | None = None
    after_source: str | None = None
    path: str = ""


class Checker:
    """A rule family. Subclasses set ``name``, ``rules`` and ``events`` and implement the
    hooks of those events (HOOKS); ``reviewbot.checks.register`` makes them known."""

    name: ClassVar[str] = ""
    rules: ClassVar[tuple[Rule, ...]] = ()
    events: ClassVar[frozenset[str]] = frozenset()
    change_fixes: ClassVar[bool] = False  # check_change read backwards finds fixes

    def needs_walk(self, fn: Function) -> bool:
        """Whether this checker needs a function walked that has no pack call and no label
        (the walker skips those: no other rule can report there)."""
        return False

    def events_for(self, w: Walker) -> frozenset[str]:
        """The events wanted on this function (a subset of ``events``): a checker that
        needs labels may skip a function without any."""
        return self.events

    # -- the per-path slot
    def initial(self) -> Hashable:
        return None

    def slot_key(self, slot: Hashable) -> Hashable:
        return None

    def widen(self, slot: Hashable) -> Hashable:
        return slot

    # -- path events
    def on_call(self, w: Walker, st: PathState, call: Call) -> None: ...
    def on_acquire(self, w: Walker, st: PathState, r: Res, prev: Res | None) -> None: ...
    def on_release(self, w: Walker, st: PathState, r: Res, line: int, call: str, consume: bool) -> None: ...
    def on_store(self, w: Walker, st: PathState, r: Res, line: int, lhs: str) -> None: ...
    def on_publish(self, w: Walker, st: PathState, r: Res, line: int, how: str,
                   argv: tuple[str, ...]) -> None: ...
    def on_use(self, w: Walker, st: PathState, r: Res, line: int, how: str) -> None: ...
    def on_overwrite(self, w: Walker, st: PathState, r: Res, line: int, rhs: str) -> None: ...
    def on_branch(self, w: Walker, st: PathState, node: Node) -> None: ...
    def on_assume(self, w: Walker, st: PathState, cond: Cond | None) -> None: ...
    def on_label(self, w: Walker, st: PathState, node: Node) -> None: ...
    def on_goto(self, w: Walker, st: PathState, node: Node) -> None: ...
    def on_stmt(self, w: Walker, st: PathState, node: Node) -> None: ...
    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None: ...
    def on_end(self, w: Walker) -> None: ...

    # -- whole-function events
    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        return []

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        return []
