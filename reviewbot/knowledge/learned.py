"""The learned pack: typed records, the file format, and its loader.

The file is JSON: a header (format, the command that regenerates it, the tree it came from,
the thresholds used) and one table per record type, each `{"fields": [...], "rows": [[...],
...]}` with one row per line, sorted, so two runs on the same tree write the same bytes and
a regeneration diffs readably. `load_learned(path)` checks every table and row against the
record types below and refuses anything else with one line naming the file and the key.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path

FORMAT = "reviewbot-learned/1"


class LearnedFormatError(ValueError):
    """A malformed learned pack; the message is one line naming the file and the key."""


@dataclass(frozen=True, slots=True)
class Pair:
    """`release` undoes `acquire`: seen at the next failure exit after the acquisition in
    `support` functions; `contradictions` functions had that exit and released it by
    nothing. `evidence`: var (the result pointer), out (an out-parameter), field / whole (a
    shared argument of a status call), wrapper (derived through a wrapper)."""

    acquire: str
    release: str
    acquire_target: str  # return | arg:N | out:N
    release_target: str  # arg:N | fmt:TEMPLATE ({N} for argument N)
    resource: str
    support: int
    contradictions: int
    symmetric: bool  # the names say it (get/put ...)
    evidence: str
    scope: str  # "" (any file) or the one file whose static functions these are
    example: str  # path:function of one agreeing function


@dataclass(frozen=True, slots=True)
class Acquirer:
    name: str
    resource: str  # learned:<its main release>
    target: str  # return | arg:N | out:N
    success: str  # not_err | nonnull | nonnull_not_err | nonneg | zero (callers' majority)
    support: int  # functions that release it on an error path (or definitions, for wrappers)
    contradictions: int
    sites: int  # call sites in the tree
    tested: int  # call sites that test the result
    must_check: bool
    wrapper_of: str  # "" or the acquirer whose result it returns
    scope: str


@dataclass(frozen=True, slots=True)
class Release:
    name: str
    resources: tuple[str, ...]
    target: str  # arg:N | fmt:TEMPLATE
    support: int
    null_safe: bool  # release(NULL) is harmless (known, or seen so in the tree)
    null_evidence: int  # calls on a value its failure test just found NULL/ERR, NULL guards
    guarded: int  # call sites that test the value first: `if (p) release(p)`
    wrapper_of: str  # "" or the release it applies to its parameter on every path
    scope: str


@dataclass(frozen=True, slots=True)
class Callback:
    """A function the kernel calls to release an object: kref_put's, a kobj_type's or
    device's `.release`, the action of devm_add_action(_or_reset)."""

    function: str
    via: str
    support: int
    releases: tuple[str, ...]  # known releases it applies to its parameter


@dataclass(frozen=True, slots=True)
class Managed:
    """Acquisitions undone by the kernel or the compiler, never leaks: devm_*/pcim_*/
    drmm_*/dmam_* calls (kind "call"), `__free(NAME)` classes, `guard(NAME)` classes."""

    name: str
    kind: str  # call | free-class | guard-class
    support: int


@dataclass(frozen=True, slots=True)
class Noreturn:
    name: str
    reason: str  # known | attribute | ends-in:CALL
    support: int
    contradictions: int  # definitions of the same name that do return
    scope: str


@dataclass(frozen=True, slots=True)
class MustCheck:
    name: str
    sites: int
    tested: int
    ignored: int
    success: str  # how most callers test it


TABLES: dict[str, type] = {"pairs": Pair, "acquirers": Acquirer, "releases": Release,
                           "callbacks": Callback, "managed": Managed, "noreturn": Noreturn,
                           "must_check": MustCheck}
HEADER_KEYS = {"format": str, "generated_by": str, "regenerate": str, "tree": dict,
               "thresholds": dict, "counts": dict}


@dataclass(frozen=True)
class LearnedKnowledge:
    """Everything a learned pack holds, with lookups by name (a scoped entry only for its
    own file)."""

    generated_by: str
    regenerate: str
    tree: dict
    thresholds: dict
    counts: dict
    pairs: tuple[Pair, ...] = ()
    acquirers: tuple[Acquirer, ...] = ()
    releases: tuple[Release, ...] = ()
    callbacks: tuple[Callback, ...] = ()
    managed: tuple[Managed, ...] = ()
    noreturn: tuple[Noreturn, ...] = ()
    must_check: tuple[MustCheck, ...] = ()

    def _index(self, table: str) -> dict[str, list]:
        key = "_idx_" + table
        got = self.__dict__.get(key)
        if got is None:
            got = {}
            for r in getattr(self, table):
                got.setdefault(getattr(r, "name", None) or r.acquire, []).append(r)
            object.__setattr__(self, key, got)
        return got

    def _pick(self, table: str, name: str, path: str):
        recs = self._index(table).get(name, ())
        return next((r for r in recs if r.scope == path), None) or \
            next((r for r in recs if r.scope == ""), None)

    def acquirer(self, name: str, path: str = "") -> Acquirer | None:
        return self._pick("acquirers", name, path)

    def release(self, name: str, path: str = "") -> Release | None:
        return self._pick("releases", name, path)

    def is_noreturn(self, name: str, path: str = "") -> bool:
        return self._pick("noreturn", name, path) is not None

    def is_managed(self, name: str) -> bool:
        return name in self._index("managed")

    def pairs_of(self, acquire: str, path: str = "") -> list[Pair]:
        return [p for p in self._index("pairs").get(acquire, ()) if p.scope in ("", path)]


# ------------------------------------------------------------------------ writing


def _row(rec) -> list:
    return [list(v) if isinstance(v, tuple) else v for v in (getattr(rec, f.name)
                                                               for f in fields(rec))]


def dumps(k: LearnedKnowledge) -> str:
    """The file text: deterministic (sorted rows, sorted keys), one row per line."""
    out = ["{"]
    for key in ("format", "generated_by", "regenerate", "tree", "thresholds", "counts"):
        val = FORMAT if key == "format" else getattr(k, key)
        out.append(f"  {json.dumps(key)}: {json.dumps(val, sort_keys=True)},")
    names = list(TABLES)
    for i, table in enumerate(names):
        cls = TABLES[table]
        rows = sorted((_row(r) for r in getattr(k, table)), key=json.dumps)
        out.append(f"  {json.dumps(table)}: {{\"fields\": "
                   f"{json.dumps([f.name for f in fields(cls)])}, \"rows\": [")
        out += [f"    {json.dumps(r)}{',' if j < len(rows) - 1 else ''}"
                for j, r in enumerate(rows)]
        out.append("  ]}" + ("," if i < len(names) - 1 else ""))
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ loading


def _check(value, typ, where: str):
    origin = typing.get_origin(typ)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise LearnedFormatError(f"{where}: expected a list of strings")
        return tuple(value)
    if typ is bool:
        if not isinstance(value, bool):
            raise LearnedFormatError(f"{where}: expected true or false")
        return value
    if typ is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise LearnedFormatError(f"{where}: expected a count")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise LearnedFormatError(f"{where}: expected a string")
        return value
    raise LearnedFormatError(f"{where}: unsupported type {typ}")  # pragma: no cover


_HINTS: dict[type, dict[str, type]] = {}


def _hints(cls: type) -> dict[str, type]:
    got = _HINTS.get(cls)
    if got is None:
        got = _HINTS[cls] = typing.get_type_hints(cls)
    return got


def parse(data, name: str = "learned pack") -> LearnedKnowledge:
    """Validate the decoded JSON of a learned pack; a LearnedFormatError names the key."""
    if not isinstance(data, dict):
        raise LearnedFormatError(f"{name}: not a JSON object")
    if data.get("format") != FORMAT:
        raise LearnedFormatError(f"{name}: format: expected {FORMAT!r}, got "
                                 f"{data.get('format')!r}")
    unknown = set(data) - set(HEADER_KEYS) - set(TABLES)
    if unknown:
        raise LearnedFormatError(f"{name}: {sorted(unknown)[0]}: unknown key")
    head = {}
    for key, typ in HEADER_KEYS.items():
        if not isinstance(data.get(key), typ):
            raise LearnedFormatError(f"{name}: {key}: missing or not a {typ.__name__}")
        head[key] = data[key]
    tables = {}
    for table, cls in TABLES.items():
        t = data.get(table)
        if not isinstance(t, dict) or set(t) != {"fields", "rows"}:
            raise LearnedFormatError(f"{name}: {table}: expected {{fields, rows}}")
        want = [f.name for f in fields(cls)]
        if t["fields"] != want:
            raise LearnedFormatError(f"{name}: {table}.fields: expected {want}")
        if not isinstance(t["rows"], list):
            raise LearnedFormatError(f"{name}: {table}.rows: expected a list")
        hints = _hints(cls)
        recs = []
        for i, row in enumerate(t["rows"]):
            if not isinstance(row, list) or len(row) != len(want):
                raise LearnedFormatError(f"{name}: {table}.rows[{i}]: expected {len(want)} "
                                         "values")
            vals = [_check(v, hints[f], f"{name}: {table}.rows[{i}].{f}")
                    for f, v in zip(want, row, strict=True)]
            recs.append(cls(*vals))
        tables[table] = tuple(recs)
    head.pop("format")
    return LearnedKnowledge(**head, **tables)


def load_learned(path: str | Path) -> LearnedKnowledge:
    """Read and validate a learned pack. Raises LearnedFormatError (one line: the file and
    the key) on a malformed file, OSError when it cannot be read."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LearnedFormatError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise LearnedFormatError(f"{p}: not UTF-8 text") from None
    return parse(data, str(p))


def shipped_path() -> Path:
    """The pack learned from linux-source-6.1 that ships with reviewbot."""
    from reviewbot.datafiles import learned_file

    return learned_file()
