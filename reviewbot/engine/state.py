"""The path state: what one path through a function has acquired, knows and calls what.

A ``PathState`` is copied at every fork of the walk; the resources (``Res``) it holds are
immutable records replaced on change. Checkers keep their own per-path data in the state's
``slots`` (one immutable value per checker, by name; see reviewbot/engine/checker.py),
never in fields of the state itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reviewbot.cmodel import Node
from reviewbot.engine.values import ALL

# What a path knows about a resource.
HELD = "held"
PENDING = "pending"  # the acquiring call's result is not tested yet
RELEASED = "released"
FAILED = "failed"  # the acquisition failed on this path
UNKNOWN = "unknown"  # the walker cannot know its fate: no checker reports on it
ESCAPED = "escaped"  # stored elsewhere, returned or handed to a consuming call
ABSENT = "absent"  # (only in release events) never acquired on this path


@dataclass(frozen=True)
class Res:
    rid: str  # resource kind id from the pack
    key: str  # canonical expression naming it
    status: str
    acq_line: int
    acq_call: str
    seq: int  # order of acquisition on this path
    nonlocal_: bool = False  # acquired straight into a longer-lived object (field, *out)
    pending_var: str = ""
    pending_ok: frozenset = frozenset()
    rel_line: int = 0
    rel_call: str = ""
    rel_seq: int = 0
    rel_after_label: bool = False
    acq_after_label: bool = False  # acquired in code reached through a label (retry loops)
    caller_owned: bool = False  # stored straight into an object the caller owns (param->f)
    handed: bool = False  # passed whole to a call no pack describes: it may own it now
    published: bool = False  # stored in a longer-lived place, and released by the function
    depth: int = 0  # acquisitions beyond the first of a resource that nests
    parked: str = ""  # the local struct it was stored in (`oip.upperdentry = dget(upper)`)
    lent: bool = False  # that struct was passed to a call no pack describes

    @property
    def held_untested(self) -> bool:
        """Held, or returned by a call whose result nothing tested yet: an exit before the
        test leaks it whenever the call worked."""
        return self.status == HELD or (self.status == PENDING and self.pending_var == self.key)

    @property
    def inferred(self) -> bool:
        """The pair was inferred from the code (reviewbot/knowledge/infer.py), not a pack."""
        return self.rid.startswith("inferred:")


@dataclass
class PathState:
    res: dict[tuple[str, str], Res] = field(default_factory=dict)
    values: dict[str, frozenset] = field(default_factory=dict)  # key -> what it may be
    alias: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    trail: tuple[tuple[int, str], ...] = ()
    labels: tuple[str, ...] = ()  # labels passed, in order
    after_label: bool = False  # the path has entered unwind code (passed a goto/label)
    from_call: frozenset = frozenset()  # vars whose value came from a call result
    fresh: frozenset = frozenset()  # of those, assigned since the last branch
    slots: dict[str, Any] = field(default_factory=dict)  # checker name -> its value here

    def copy(self) -> PathState:
        new = object.__new__(PathState)
        new.__dict__.update(self.__dict__)
        new.res = dict(self.res)
        new.values = dict(self.values)
        new.alias = dict(self.alias)
        return new  # `slots` is shared until set_slot() (copy on write: most paths never write)

    def key(self, slot_keys: tuple = ()) -> tuple:
        """What makes two states at one node different paths (`slot_keys`: what the
        checkers' slots add, see Checker.slot_key)."""
        return (
            frozenset((k, r.status, r.pending_var, r.pending_ok) for k, r in self.res.items()),
            frozenset(self.values.items()),
            frozenset(self.alias.items()),
            self.after_label,
            slot_keys,
        )

    def set_slot(self, name: str, value: Any) -> None:
        """Give checker `name` a new value on this path (the dict may be shared with the
        state this one was copied from, so it is replaced, never changed)."""
        self.slots = {**self.slots, name: value}

    def note(self, line: int, what: str) -> None:
        if len(self.trail) < 60:
            self.trail = self.trail + ((line, what),)

    def value(self, key: str) -> frozenset:
        return self.values.get(key, ALL)


@dataclass
class Exit:
    """A return reached by a path."""

    node: Node
    kind: str  # "error" | "normal"
    expr: str  # the returned expression's text


@dataclass
class Raw:
    """A finding before it is turned into a model.Finding."""

    rule: str
    line: int
    resource: str
    message: str
    trace: list[tuple[int, str]]
    lines: list[int] = field(default_factory=list)
    confidence: str = "high"
    # the same rule's reports on the same resource at other lines of the function, merged
    # into this one (registry policy 2): each is one more place the defect is
    merged: list[Raw] = field(default_factory=list)
