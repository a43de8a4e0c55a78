"""The path state: what one path through a function has acquired, knows and calls what.

A ``PathState`` is copied at every fork of the walk; the resources (``Res``) it holds are
immutable records replaced on change. Checkers keep their own per-path data in the state's
``slots`` (one immutable value per checker, see reviewbot/engine/checker.py), never in
fields of the state itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    last_cond: tuple = ()  # (line, subject, taken set, from_call)
    entry_goto: int = 0  # the goto that entered the unwind code (kept apart in the key)
    errno_check: tuple = ()  # (goto line, error variable, subject): checked at the exit
    cond_after_label: bool = False  # a branch was taken inside the unwind code

    def copy(self) -> PathState:
        new = object.__new__(PathState)
        new.__dict__.update(self.__dict__)
        new.res = dict(self.res)
        new.values = dict(self.values)
        new.alias = dict(self.alias)
        return new

    def key(self) -> tuple:
        """What makes two states at one node different paths."""
        return (
            frozenset((k, r.status, r.pending_var, r.pending_ok) for k, r in self.res.items()),
            frozenset(self.values.items()),
            frozenset(self.alias.items()),
            self.after_label,
            self.entry_goto,
            self.errno_check[:2],
        )

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
