"""Finding, reading and merging packs: the shipped ones, then the user's.

Load order, each layer's entries replacing those of the same name before it:
shipped packs (reviewbot/packs/data/: kernel-core first, then by name), then the user's
packs (`[packs] paths` of the configuration file, then each `--pack FILE|DIR`, a
directory's packs by name). Knowledge learned from code (the shipped learned pack, then a
`reviewbot learn` output given as a `.json` pack) is the lowest layer: hand-written packs
win over it, function by function (learned_layer.py). Each pack is checked against schema.py; references
to resources are checked once all are merged, so a user pack may use kernel-core's.
The result is cached between runs (cache.py), keyed on the files' stat signatures.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewbot.datafiles import learned_file, packs_dir
from reviewbot.model import InputError
from reviewbot.packs.cache import _cache_file, _cached, _store, signatures
from reviewbot.packs.context import CONTEXT_KEYS
from reviewbot.packs.lookup import (
    IDIOM_KEYS,
    AssignSpec,
    CallSpec,
    OpsFamily,
    OpsUse,
    Override,
    Packs,
    PackSource,
    ResourceKind,
    Target,
    from_plain,
    to_plain,
)

if TYPE_CHECKING:
    from reviewbot.knowledge.learned import LearnedKnowledge
    from reviewbot.packs.schema import PackFile

SHIPPED, USER = "shipped", "user"


def _shipped_files(root: Path) -> list[Path]:
    paths = sorted(root.glob("*.toml"))
    # kernel-core first, so subsystem packs can refine its entries
    paths.sort(key=lambda p: (p.stem != "kernel-core", p.stem))
    if not paths:
        raise InputError(f"no packs found in {root}")
    return paths


def _user_files(root: Path) -> list[Path]:
    if root.is_dir():
        paths = sorted([*root.glob("*.toml"), *root.glob("*.json")])
        if not paths:
            raise InputError(f"pack directory {root}: no .toml files (nor learned .json packs) in it")
        return paths
    if not root.is_file():
        raise InputError(f"pack {root}: no such file or directory")
    return [root]


def pack_paths(user: tuple[str, ...] = ()) -> list[str]:
    """Every root and pack file `load_packs(user)` reads, existing or not: what a long-lived
    process watches (a directory's mtime changes when a pack is added or removed)."""
    roots = [packs_dir(), *map(Path, user)]
    out = [str(r) for r in roots] + [str(learned_file())]
    for r in roots:
        out += sorted(str(p) for p in [*r.glob("*.toml"), *r.glob("*.json")]) \
            if r.is_dir() else []
    return out


def user_pack_paths(given: list[str] | None = None, config: str | None = None
                    ) -> tuple[str, ...]:
    """The user's packs, absolute: `[packs] paths` of the configuration file (relative to
    it), then those given on the command line (`--pack`), in order."""
    from reviewbot.config import config_path, load_config

    out: list[str] = []
    cfg = load_config(config)
    if "packs" in cfg:
        where = f"config {config_path(config)}: [packs]"
        sec = cfg["packs"]
        if not isinstance(sec, dict):
            raise InputError(f"{where}: expected a table with paths = [...]")
        for k in sec:
            if k != "paths":
                raise InputError(f"{where}: unknown key {k!r} (expected paths)")
        paths = sec.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InputError(f"{where}: paths: expected a list of strings, got {paths!r}")
        here = Path(config_path(config) or ".").parent
        out += [str((here / os.path.expanduser(p)).absolute()) for p in paths]
    out += [os.path.abspath(os.path.expanduser(p)) for p in given or ()]
    return tuple(out)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"pack {path}: {e}") from None


@lru_cache(maxsize=8)
def load_packs(user: tuple[str, ...] = (), learned: bool = True) -> Packs:
    """The shipped packs and then the user's (files or directories), merged and checked,
    over the learned knowledge (without it if not `learned`: what hand-written packs say
    alone, uncached)."""
    roots = [packs_dir(), *map(Path, user)]
    cache = _cache_file(roots) if learned else None
    plain = _cached(cache, roots) if cache else None
    if plain is not None:
        try:
            got = from_plain(plain)
            got.signature = _stamp(cache)
            return got
        except (KeyError, TypeError, ValueError):
            pass  # not what to_plain writes: read the packs again
    from reviewbot.packs.learned_layer import layer

    files = [(SHIPPED, p) for p in _shipped_files(roots[0])]
    files += [(USER, p) for r in roots[1:] for p in _user_files(r)]
    knowledge = [learned_file(), *(p for _layer, p in files if p.suffix == ".json")]
    files = [(layer, p) for layer, p in files if p.suffix != ".json"]
    # signatures taken before reading: a pack edited meanwhile is read again next time
    sigs = signatures((*roots, *(p for _layer, p in files), *knowledge))
    packs = layer(merge([(layer, str(p), _read_toml(p)) for layer, p in files]),
                  [(str(p), _read_learned(p)) for p in knowledge] if learned else [])
    if cache:
        _store(cache, sigs, to_plain(packs))
        packs.signature = _stamp(cache)
    return packs


def _stamp(cache: str | None) -> str:
    """What identifies these packs for caches of results computed with them (the pack
    cache is rewritten whenever a pack changes); '' if there is no pack cache."""
    try:
        st = os.stat(cache) if cache else None
    except OSError:
        return ""
    return f"{cache}:{st.st_mtime_ns}:{st.st_size}" if st else ""


def _read_learned(path: Path) -> LearnedKnowledge:
    from reviewbot.knowledge.learned import LearnedFormatError, load_learned

    try:
        return load_learned(path)
    except (OSError, LearnedFormatError) as e:
        raise InputError(f"learned pack {path}: {e}" if isinstance(e, OSError) else str(e)) \
            from None


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", r".+") + "$")


class _Merge:
    """Packs merged in load order, remembering which pack set each entry (for overrides)
    and every reference to a resource (checked at the end)."""

    def __init__(self) -> None:
        self.packs = Packs()
        self.owner: dict[str, str] = {}
        self.assign_at: dict[tuple[str, str], int] = {}
        self.refs: list[tuple[str, str, str]] = []  # (file, key, resource id)

    def claim(self, entry: str, name: str, overrides: list[Override]) -> None:
        prev = self.owner.get(entry)
        if prev is not None:
            overrides.append(Override(entry, prev))
        self.owner[entry] = name

    def add(self, layer: str, path: str, pf: PackFile) -> None:
        p = self.packs
        name = pf.pack.name or Path(path).stem
        over: list[Override] = []
        for rid, r in pf.resources.items():
            self.claim(f"resources.{rid}", name, over)
            p.resources[rid] = ResourceKind(rid, r.kind, r.null_ok, r.ordered, r.doc, name,
                                            r.embedded, r.nests)
        for cname, c in pf.calls.items():
            where = f"calls.{cname}"
            self.claim(where, name, over)
            for k, ids in (("acquires", c.acquires), ("releases", c.releases),
                           ("tests", c.tests)):
                self.refs += [(path, f"{where}.{k}", rid) for rid in ids]
            self.refs += [(path, f"{where}.consumes[{i}].resource", x.resource)
                          for i, x in enumerate(c.consumes)]
            p.calls[cname] = CallSpec(
                name=cname, acquires=c.acquires, releases=c.releases,
                targets=tuple(Target.parse(t) for t in c.target), success=c.success,
                may_be_null=c.may_be_null,
                consumes=tuple((x.resource, x.target) for x in c.consumes),
                escapes=Target.parse(c.escapes) if c.escapes else None,
                maybe_consumes=Target.parse(c.maybe_consumes) if c.maybe_consumes else None,
                must_check=c.must_check, acquires_nothing=c.acquires_nothing, alias=c.alias,
                returns_arg=c.returns_arg, tests=c.tests, pack=name,
            )
        for i, a in enumerate(pf.assign):
            self.claim(f"assign.{a.lhs}={a.value}", name, over)
            self.refs.append((path, f"assign[{i}].{'acquires' if a.acquires else 'releases'}",
                              a.acquires or a.releases))
            spec = AssignSpec(_glob(a.lhs), a.value, a.acquires, a.releases)
            at = self.assign_at.setdefault((a.lhs, a.value), len(p.assigns))
            if at == len(p.assigns):
                p.assigns.append(spec)
            else:  # replaced where it was: the order of the others is kept
                p.assigns[at] = spec
        for i, t in enumerate(pf.test):
            expr = re.sub(r"\s+", "", t.expr)
            self.claim(f"test.{expr}", name, over)
            self.refs.append((path, f"test[{i}].resource", t.resource))
            p.tests[expr] = t.resource
        for fam, o in pf.ops.items():
            self.claim(f"ops.{fam}", name, over)
            uses = [OpsUse(u.pattern, u.requires, u.why) for u in o.use]
            uses += [OpsUse(u.lhs, u.requires, u.why, is_assign=True) for u in o.assign]
            p.ops[fam] = OpsFamily(fam, o.getter, o.ops_arg, Target.parse(o.object_arg),
                                   o.tables, uses)
        given = {k: getattr(pf.idioms, k) for k in IDIOM_KEYS if getattr(pf.idioms, k)}
        for k in given:
            self.claim(f"idioms.{k}", name, over)
        if given:
            p.idioms = replace(p.idioms, **given)
        p.context = p.context.merged(pf.context)
        counts = (("resources", len(pf.resources)), ("calls", len(pf.calls)),
                  ("assign", len(pf.assign)), ("test", len(pf.test)), ("ops", len(pf.ops)),
                  ("context", sum(len(getattr(pf.context, k)) for k in CONTEXT_KEYS)))
        p.sources.append(PackSource(path, name, layer, counts, tuple(over)))

    def check_refs(self) -> None:
        from reviewbot.packs.schema import did_you_mean, error

        known = self.packs.resources
        for file, where, rid in self.refs:
            if rid not in known:
                raise error(file, where, f"unknown resource {rid!r} (expected a resource id "
                            f"from [resources] of a loaded pack{did_you_mean(rid, known)})")


def merge(parsed: list[tuple[str, str, dict[str, Any]]]) -> Packs:
    """Packs from (layer, file, parsed TOML) in load order; a PackError names the file and
    key of the first problem."""
    from reviewbot.packs.schema import read_pack  # here: a cached load does without it

    m = _Merge()
    for layer, path, data in parsed:
        m.add(layer, path, read_pack(data, path))
    m.check_refs()
    return m.packs
