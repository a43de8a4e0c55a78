"""What the engine and the checks consult: the loaded packs merged into lookup tables
(`Packs`), and the records in them. Built by loading.py from checked pack files."""

from __future__ import annotations

import marshal
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reviewbot.packs.context import ContextKnowledge

LEARNED = "learned"  # the pack name of entries from learned knowledge


@dataclass(frozen=True)
class ResourceKind:
    """A kind of resource a pack names (a lock, a reference, memory, ...)."""

    id: str
    kind: str  # memory | ref | lock | holder | state
    null_ok: bool = False
    ordered: bool = False
    doc: str = ""
    pack: str = ""
    embedded: bool = False  # lives inside another object: freeing the object needs its put
    nests: bool = False  # taken again while held: held until as many releases


@dataclass(frozen=True)
class Target:
    """Where a call's resource is: its return value, an argument, or a format of them."""

    how: str  # "return" | "arg" | "out" | "fmt"
    index: int = -1
    fmt: str = ""  # fmt: a format of the argument texts, e.g. "{0}->gl_object"

    @classmethod
    def parse(cls, s: str) -> Target:
        """A target as the schema allows it (schema.TARGET): return, arg:N, out:N, fmt:X."""
        if s == "return":
            return cls("return")
        if s.startswith("fmt:"):
            return cls("fmt", -1, s[4:])
        how, _, n = s.partition(":")
        return cls(how, int(n))


@dataclass
class CallSpec:
    """What a call does to resources: acquires, releases, consumes, tests."""

    name: str
    acquires: tuple[str, ...] = ()
    releases: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    success: str = "always"
    may_be_null: bool = False
    consumes: tuple[tuple[str, str], ...] = ()  # (resource id, target format)
    escapes: Target | None = None
    maybe_consumes: Target | None = None
    must_check: bool = False
    acquires_nothing: bool = False
    alias: bool = False
    returns_arg: int | None = None
    tests: tuple[str, ...] = ()  # a predicate: true exactly when this resource is held
    inferred: bool = False  # from the code (Hector-style), not from a pack
    pack: str = ""
    support: int = 0  # learned entries: functions that agree (0: hand-written)
    contradictions: int = 0  # learned entries: functions that disagree


def _interesting_spec(c: CallSpec) -> bool:
    return bool(c.acquires or c.releases or c.consumes or c.tests or c.must_check)


class SpecTable(MutableMapping[str, CallSpec]):
    """Call name -> CallSpec, decoded from the pack cache's bytes on first lookup.

    The learned layer holds thousands of entries and a review looks up a few dozen, so
    decoding them all (marshal of ~6,000 records) cost a tenth of a cold review. The
    indexes `Packs` needs over all entries (interesting calls, releasers of a resource)
    come stored beside the rows; names set after loading are kept in `changed` so those
    indexes can be corrected for them.
    """

    def __init__(self, rows: dict[str, bytes | CallSpec], changed: set[str] | None = None) -> None:
        self._rows = rows
        self.changed: set[str] = changed if changed is not None else set()

    def __getitem__(self, name: str) -> CallSpec:
        v = self._rows[name]
        if isinstance(v, bytes):
            v = self._rows[name] = _spec(marshal.loads(v))
        return v

    def __setitem__(self, name: str, spec: CallSpec) -> None:
        self._rows[name] = spec
        self.changed.add(name)

    def __delitem__(self, name: str) -> None:
        del self._rows[name]
        self.changed.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def copy(self) -> SpecTable:
        return SpecTable(dict(self._rows), set(self.changed))


@dataclass(frozen=True)
class CallIndex:
    """Indexes over all calls of a cached pack, stored with it (see SpecTable)."""

    interesting: frozenset[str]
    releasers: dict[str, tuple[str, ...]]  # resource id -> calls releasing it


@dataclass
class AssignSpec:
    """An assignment pattern that acquires or releases (e.g. `*->gl_object = x`)."""

    lhs: re.Pattern[str]
    value: str  # nonnull | null
    acquires: str = ""
    releases: str = ""


@dataclass
class OpsUse:
    """A use of an object that requires a given ops table."""

    pattern: str
    requires: str
    why: str
    is_assign: bool = False


@dataclass
class OpsFamily:
    """Objects obtained with an ops table (a getter's argument) and their uses."""

    name: str
    getter: str
    ops_arg: int
    object_target: Target
    tables: tuple[str, ...]
    uses: list[OpsUse] = field(default_factory=list)


@dataclass(frozen=True)
class Idioms:
    """Kernel idioms by name ([idioms] of the packs), with the forms the engine tests
    against (prefixes, compiled patterns) made once."""

    err_ptr: tuple[str, ...] = ()
    err_cast: tuple[str, ...] = ()
    ptr_err: tuple[str, ...] = ()
    is_err: tuple[str, ...] = ()
    is_err_or_null: tuple[str, ...] = ()
    release_name: str = ""
    unwind_release_name: str = ""
    not_acquire: tuple[str, ...] = ()

    @cached_property
    def err_null(self) -> frozenset[str]:
        """ERR_PTR(0): NULL."""
        return frozenset(f"{n}(0)" for n in self.err_ptr)

    @cached_property
    def err_ptr_calls(self) -> tuple[str, ...]:
        return tuple(f"{n}(" for n in self.err_ptr)

    @cached_property
    def err_cast_calls(self) -> tuple[str, ...]:
        return tuple(f"{n}(" for n in self.err_cast)

    @cached_property
    def ptr_err_calls(self) -> tuple[str, ...]:
        return tuple(f"{n}(" for n in self.ptr_err)

    @cached_property
    def err_tests(self) -> tuple[str, ...]:
        """PTR_ERR, IS_ERR: what a returned expression starting so returns is no pointer."""
        return self.ptr_err + self.is_err

    @cached_property
    def err_test_calls(self) -> tuple[str, ...]:
        return tuple(f"{n}(" for n in self.err_tests)

    @cached_property
    def release_re(self) -> re.Pattern[str] | None:
        return re.compile(self.release_name, re.I) if self.release_name else None

    @cached_property
    def unwind_release_re(self) -> re.Pattern[str] | None:
        return re.compile(self.unwind_release_name, re.I) if self.unwind_release_name else None

    @cached_property
    def not_acquire_set(self) -> frozenset[str]:
        return frozenset(self.not_acquire)


IDIOM_KEYS = ("err_ptr", "err_cast", "ptr_err", "is_err", "is_err_or_null", "release_name",
              "unwind_release_name", "not_acquire")


@dataclass(frozen=True)
class Override:
    """An entry of an earlier pack that a later pack replaced."""

    entry: str  # "calls.kfree", "resources.memory", "assign.*->gl_object=null"
    replaced: str  # the earlier pack's name


@dataclass(frozen=True)
class PackSource:
    """One loaded pack file, for `reviewbot rules --packs` and the server's watch."""

    path: str
    name: str
    layer: str  # "learned" | "shipped" | "user" (in that order of precedence, lowest first)
    counts: tuple[tuple[str, int], ...]  # (section, entries)
    overrides: tuple[Override, ...] = ()


@dataclass
class Packs:
    """All loaded packs, merged: resources, calls, assignments, ops tables, tests."""

    resources: dict[str, ResourceKind] = field(default_factory=dict)
    calls: MutableMapping[str, CallSpec] = field(default_factory=dict)
    assigns: list[AssignSpec] = field(default_factory=list)
    ops: dict[str, OpsFamily] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)  # expression -> resource id held iff true
    sources: list[PackSource] = field(default_factory=list)  # in load order
    idioms: Idioms = field(default_factory=Idioms)
    noreturn: frozenset[str] = frozenset()  # calls that end a path (BUG(), panic(), ...)
    # learned entries of static functions, only for the file they are in: path -> calls
    scoped: dict[str, dict[str, CallSpec]] = field(default_factory=dict)
    scoped_noreturn: dict[str, frozenset[str]] = field(default_factory=dict)
    index: CallIndex | None = field(default=None, compare=False)  # with SpecTable calls
    # function summaries from the tree (knowledge/tree_summaries.py), for calls no pack
    # describes: name -> Summary, as seen from the file being analysed
    summaries: Mapping[str, Any] = field(default_factory=dict, compare=False)
    context: ContextKnowledge = field(default_factory=ContextKnowledge)
    signature: str = field(default="", compare=False)  # set by load_packs (its cache file)

    def _stored_index(self) -> tuple[CallIndex, set[str]] | None:
        if self.index is None or not isinstance(self.calls, SpecTable):
            return None
        return self.index, self.calls.changed

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    @cached_property
    def _interesting(self) -> frozenset[str]:
        stored = self._stored_index()
        if stored is None:
            return frozenset(n for n, c in self.calls.items() if _interesting_spec(c))
        index, changed = stored
        got = set(index.interesting) - changed
        got |= {n for n in changed if n in self.calls and _interesting_spec(self.calls[n])}
        return frozenset(got)

    def interesting_calls(self) -> frozenset[str]:
        """Calls whose presence makes a function worth walking."""
        return self._interesting

    def knows(self, name: str) -> bool:
        """A pack says what the call does to resources (a learned must-check entry alone
        says nothing of that: pairs may still be inferred for it)."""
        c = self.calls.get(name)
        return c is not None and not (c.pack == LEARNED and not (
            c.acquires or c.releases or c.acquires_nothing))

    def releasers_of(self, rid: str) -> list[str]:
        stored = self._stored_index()
        if stored is None:
            return [c.name for c in self.calls.values() if rid in c.releases]
        index, changed = stored
        got = [n for n in index.releasers.get(rid, ()) if n not in changed]
        return got + [n for n in sorted(changed) if n in self.calls
                      and rid in self.calls[n].releases]

    def memory_frees(self) -> set[str]:
        """The calls that free memory (a release of a "memory" resource)."""
        memory = {r.id for r in self.resources.values() if r.kind == "memory"}
        if self._stored_index() is None:
            return {n for n, c in self.calls.items() if memory.intersection(c.releases)}
        return {n for rid in memory for n in self.releasers_of(rid)}

    def for_file(self, path: str) -> Packs:
        """The packs as seen from `path`: with the learned entries of its static functions
        (a function of the same name elsewhere is another function). Kept per path."""
        calls = self.scoped.get(path)
        nr = self.scoped_noreturn.get(path)
        if not calls and not nr:
            return self
        seen = self.__dict__.setdefault("_for_file", {})
        got = seen.get(path)
        if got is None:
            got = self._copy()
            for name, spec in (calls or {}).items():
                if got.calls.get(name) is None or got.calls[name].pack == LEARNED:
                    got.calls[name] = spec
            got.noreturn = self.noreturn | (nr or frozenset())
            seen.clear()  # one file at a time: a review or audit goes file by file
            seen[path] = got
        return got

    def _copy(self) -> Packs:
        # a new object: its interesting_calls() are computed again
        calls = self.calls.copy() if isinstance(self.calls, SpecTable) else dict(self.calls)
        return Packs(dict(self.resources), calls, self.assigns, self.ops,
                     self.tests, self.sources, idioms=self.idioms, noreturn=self.noreturn,
                     index=self.index, summaries=self.summaries, context=self.context)

    def with_summaries(self, summaries: Mapping[str, Any]) -> Packs:
        """A copy that also knows the tree's function summaries."""
        if not summaries:
            return self
        p = self._copy()
        p.summaries = summaries
        return p

    def with_inferred(self, extra: dict[str, CallSpec]) -> Packs:
        """A copy whose call table also holds pairs inferred from the code."""
        if not extra:
            return self
        p = self._copy()
        for name, spec in extra.items():
            if not p.knows(name):
                p.calls[name] = spec
            for rid in spec.acquires:
                p.resources.setdefault(rid, ResourceKind(rid, "ref", doc="inferred from the code"))
        return p


# ------------------------------------------------------------ plain form (the pack cache)
#
# The cache (cache.py) keeps checked, merged packs as plain tuples marshal can hold, so
# that a run whose packs are unchanged imports neither tomllib nor the schema.

def _t(t: Target | None) -> tuple | None:
    return None if t is None else (t.how, t.index, t.fmt)


def _T(t: tuple | None) -> Target | None:
    return None if t is None else Target(*t)


def _call(c: CallSpec) -> tuple:
    return (c.name, c.acquires, c.releases, tuple(map(_t, c.targets)), c.success,
            c.may_be_null, c.consumes, _t(c.escapes), _t(c.maybe_consumes), c.must_check,
            c.acquires_nothing, c.alias, c.returns_arg, c.tests, c.inferred, c.pack,
            c.support, c.contradictions)


def to_plain(p: Packs) -> dict:
    return {
        "resources": [(r.id, r.kind, r.null_ok, r.ordered, r.doc, r.pack, r.embedded, r.nests)
                      for r in p.resources.values()],
        "calls": {c.name: marshal.dumps(_call(c)) for c in p.calls.values()},
        "interesting": sorted(n for n, c in p.calls.items() if _interesting_spec(c)),
        "releasers": _releasers(p),
        "assigns": [(a.lhs.pattern, a.value, a.acquires, a.releases) for a in p.assigns],
        "ops": [(o.name, o.getter, o.ops_arg, _t(o.object_target), o.tables,
                 [(u.pattern, u.requires, u.why, u.is_assign) for u in o.uses])
                for o in p.ops.values()],
        "tests": p.tests,
        "idioms": [getattr(p.idioms, k) for k in IDIOM_KEYS],
        "context": p.context.to_plain(),
        "sources": [(s.path, s.name, s.layer, s.counts,
                     tuple((o.entry, o.replaced) for o in s.overrides)) for s in p.sources],
        "noreturn": tuple(sorted(p.noreturn)),
        "scoped": {path: {c.name: marshal.dumps(_call(c)) for c in calls.values()}
                   for path, calls in p.scoped.items()},
        "scoped_noreturn": {path: tuple(sorted(n)) for path, n in p.scoped_noreturn.items()},
    }


def from_plain(d: dict) -> Packs:
    """The Packs `to_plain` was given; KeyError, TypeError or ValueError if `d` is not
    such a form."""
    calls = SpecTable(dict(d["calls"]))
    if not all(isinstance(v, bytes) for v in d["calls"].values()):
        raise TypeError("calls")
    return Packs(
        resources={r[0]: ResourceKind(*r) for r in d["resources"]},
        calls=calls,
        assigns=[AssignSpec(re.compile(lhs), *rest) for lhs, *rest in d["assigns"]],
        ops={name: OpsFamily(name, getter, arg, Target(*target), tables,
                             [OpsUse(*u) for u in uses])
             for name, getter, arg, target, tables, uses in d["ops"]},
        tests=dict(d["tests"]),
        idioms=Idioms(*(tuple(v) if isinstance(v, (list, tuple)) else v for v in d["idioms"])),
        context=ContextKnowledge.from_plain(d["context"]),
        sources=[PackSource(path, name, layer, tuple(map(tuple, counts)),
                            tuple(Override(*o) for o in over))
                 for path, name, layer, counts, over in d["sources"]],
        noreturn=frozenset(d["noreturn"]),
        scoped={path: SpecTable(dict(rows)) for path, rows in d["scoped"].items()},
        scoped_noreturn={path: frozenset(n) for path, n in d["scoped_noreturn"].items()},
        index=CallIndex(frozenset(d["interesting"]),
                        {rid: tuple(names) for rid, names in d["releasers"].items()}),
    )


def _releasers(p: Packs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in p.calls.values():
        for rid in c.releases:
            out.setdefault(rid, []).append(c.name)
    return out


def _spec(row) -> CallSpec:
    (name, acq, rel, targets, success, may_be_null, consumes, escapes, maybe, must_check,
     nothing, alias, returns_arg, tests, inferred, pack, support, contra) = row
    return CallSpec(name, acq, rel, tuple(Target(*t) for t in targets), success,
                    may_be_null, consumes, _T(escapes), _T(maybe), must_check,
                    nothing, alias, returns_arg, tests, inferred, pack, support, contra)
