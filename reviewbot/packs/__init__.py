"""Rule packs: TOML files in rules/ that say which calls acquire and release what.

A maintainer adds a subsystem by writing a pack, not Python. The schema is documented at the
top of rules/kernel-core.toml and in docs/packs.md. Packs are merged: a later pack's entry
for the same call replaces an earlier one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from reviewbot.datafiles import rules_dir
from reviewbot.model import InputError

SUCCESS_KINDS = {"zero", "nonnull", "not_err", "nonnull_not_err", "true", "nonneg", "always"}


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


@dataclass(frozen=True)
class Target:
    """Where a call's resource is: its return value, an argument, or a format of them."""

    how: str  # "return" | "arg" | "out" | "fmt"
    index: int = -1
    fmt: str = ""  # fmt: a format of the argument texts, e.g. "{0}->gl_object"


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


@dataclass
class Packs:
    """All loaded packs, merged: resources, calls, assignments, ops tables, tests."""

    resources: dict[str, ResourceKind] = field(default_factory=dict)
    calls: dict[str, CallSpec] = field(default_factory=dict)
    assigns: list[AssignSpec] = field(default_factory=list)
    ops: dict[str, OpsFamily] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)  # expression -> resource id held iff true
    names: list[str] = field(default_factory=list)

    def interesting_calls(self) -> frozenset[str]:
        """Calls whose presence makes a function worth walking."""
        got = self.__dict__.get("_interesting")
        if got is None:
            got = frozenset(
                n for n, c in self.calls.items()
                if c.acquires or c.releases or c.consumes or c.tests or c.must_check
            )
            self.__dict__["_interesting"] = got
        return got

    def releasers_of(self, rid: str) -> list[str]:
        return [c.name for c in self.calls.values() if rid in c.releases]

    def with_inferred(self, extra: dict[str, CallSpec]) -> Packs:
        """A copy whose call table also holds pairs inferred from the code."""
        if not extra:
            return self
        p = Packs(dict(self.resources), dict(self.calls), self.assigns, self.ops, self.tests,
                  self.names)  # a new object: its interesting_calls() include the pairs
        for name, spec in extra.items():
            if name not in p.calls:
                p.calls[name] = spec
            for rid in spec.acquires:
                p.resources.setdefault(rid, ResourceKind(rid, "ref", doc="inferred from the code"))
        return p


def _target(s: str, where: str) -> Target:
    if s == "return":
        return Target("return")
    if s.startswith("fmt:"):
        return Target("fmt", -1, s[4:])
    m = re.fullmatch(r"(arg|out):(\d+)", s)
    if not m:
        raise InputError(f"{where}: bad target {s!r} (return, arg:N or out:N)")
    return Target(m.group(1), int(m.group(2)))


def _tuple(v) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", r".+") + "$")


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"rule pack {path}: {e}") from None


def load_pack(path: Path, into: Packs) -> None:
    _add_pack(path, _read_toml(path), into)


def _add_pack(path: Path, data: dict[str, Any], into: Packs) -> None:
    """Merge one pack's parsed TOML into `into` (checked here, cached or not)."""
    name = data.get("pack", {}).get("name", path.stem)
    into.names.append(name)
    for rid, r in data.get("resources", {}).items():
        into.resources[rid] = ResourceKind(
            rid, r.get("kind", "ref"), bool(r.get("null_ok")), bool(r.get("ordered")),
            r.get("doc", ""), name, bool(r.get("embedded")),
        )
    for cname, c in data.get("calls", {}).items():
        where = f"{path.name}: calls.{cname}"
        success = c.get("success", "always")
        if success not in SUCCESS_KINDS:
            raise InputError(f"{where}: unknown success {success!r}")
        targets = tuple(_target(t, where) for t in _tuple(c.get("target")))
        spec = CallSpec(
            name=cname,
            acquires=_tuple(c.get("acquires")),
            releases=_tuple(c.get("releases")),
            targets=targets,
            success=success,
            may_be_null=bool(c.get("may_be_null")),
            consumes=tuple((x["resource"], x["target"]) for x in c.get("consumes", [])),
            escapes=_target(c["escapes"], where) if "escapes" in c else None,
            maybe_consumes=_target(c["maybe_consumes"], where) if "maybe_consumes" in c else None,
            must_check=bool(c.get("must_check")),
            acquires_nothing=bool(c.get("acquires_nothing")),
            alias=bool(c.get("alias")),
            returns_arg=c.get("returns_arg"),
            tests=_tuple(c.get("tests")),
            pack=name,
        )
        if (spec.acquires or spec.releases or spec.tests) and not spec.targets:
            raise InputError(f"{where}: acquires/releases need a target")
        into.calls[cname] = spec
    for a in data.get("assign", []):
        into.assigns.append(
            AssignSpec(_glob(a["lhs"]), a.get("value", "nonnull"), a.get("acquires", ""),
                       a.get("releases", ""))
        )
    for t in data.get("test", []):
        into.tests[re.sub(r"\s+", "", t["expr"])] = t["resource"]
    for fam, o in data.get("ops", {}).items():
        uses = [OpsUse(u["pattern"], u["requires"], u.get("why", "")) for u in o.get("use", [])]
        uses += [
            OpsUse(u["lhs"], u["requires"], u.get("why", ""), is_assign=True)
            for u in o.get("assign", [])
        ]
        into.ops[fam] = OpsFamily(
            fam, o["getter"], int(o["ops_arg"]), _target(o.get("object_arg", "return"), fam),
            tuple(o.get("tables", [])), uses,
        )


@lru_cache(maxsize=8)
def load_packs(extra_dirs: tuple[str, ...] = ()) -> Packs:
    dirs = [rules_dir(), *map(Path, extra_dirs)]
    cache = _cache_file(dirs)
    parsed = _cached(cache, dirs) if cache else None
    if parsed is None:
        paths = sorted(dirs[0].glob("*.toml"))
        # kernel-core first, so subsystem packs can refine its entries
        paths.sort(key=lambda p: (p.stem != "kernel-core", p.stem))
        for d in dirs[1:]:
            paths += sorted(d.glob("*.toml"))
        if not paths:
            raise InputError(f"no rule packs found in {dirs[0]}")
        # signatures taken before reading: a pack edited meanwhile is read again next time
        sigs = [(str(p), _signature(p)) for p in (*dirs, *paths)]
        parsed = [(str(p), _read_toml(p)) for p in paths]
        if cache:
            _store(cache, sigs, parsed)
    packs = Packs()
    for path, data in parsed:
        _add_pack(Path(path), data, packs)
    return packs


# ------------------------------------------------------------------- parsed-pack cache
#
# Importing tomllib and parsing the packs is a tenth of a cold single-patch review, so the
# parsed data is kept between runs in the user's cache directory, with the stat signature
# of each pack file and of each directory the packs were listed from (adding or removing
# a pack changes its directory's mtime).
# Any change, and any unreadable, corrupt or unwritable cache, means the packs are read
# again as without a cache. What is cached is tomllib's output: every check in _add_pack
# still runs on each load.

_CACHE_FORMAT = 1


def _cache_file(dirs: list[Path]) -> str | None:
    """One cache file per list of pack directories and Python version (marshal's format
    is Python's); None without a cache directory ($XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    import sys
    import zlib

    key = zlib.crc32("\0".join([sys.version, *map(str, dirs)]).encode())
    return os.path.join(base, "reviewbot", f"packs-{key:08x}.marshal")


def _signature(path: Path | str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _cached(cache: str, dirs: list[Path]) -> list[tuple[str, dict[str, Any]]] | None:
    """The cached parsed packs of `dirs` if every file and directory they came from is
    unchanged."""
    import marshal

    try:
        with open(cache, "rb") as fh:
            fmt, sigs, parsed = marshal.load(fh)
        if fmt != _CACHE_FORMAT or not parsed or \
                [p for p, _s in sigs[:len(dirs)]] != [str(d) for d in dirs]:
            return None
        for path, sig in sigs:
            if sig is None or _signature(path) != tuple(sig):
                return None
        if not all(isinstance(path, str) and isinstance(data, dict) for path, data in parsed):
            return None
        return [(path, data) for path, data in parsed]
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _store(cache: str, sigs: list, parsed: list[tuple[str, dict[str, Any]]]) -> None:
    """Write the cache atomically; quietly nothing if it cannot be written (read-only
    home, a TOML value marshal cannot hold)."""
    import marshal

    if any(sig is None for _p, sig in sigs):
        return
    tmp = f"{cache}.{os.getpid()}.tmp"
    try:
        blob = marshal.dumps((_CACHE_FORMAT, sigs, parsed))
        os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, cache)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
