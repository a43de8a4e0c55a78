"""From per-file facts to learned knowledge: counting agreement across functions, the
thresholds that keep only supported entries, and the fixed points of wrappers and
noreturn functions.

Workers fold the facts of their files into a `Partial` (counters, so partials add up);
`finish` turns the sum into the records of knowledge/learned.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import names
from .learn import NEG, NONZERO, TEST_KINDS, CallStats, FileFacts, FuncFacts
from .learned import (
    Acquirer,
    Callback,
    LearnedKnowledge,
    Managed,
    MustCheck,
    Noreturn,
    Pair,
    Release,
)

# Thresholds (docs/learning.md explains each).
THRESHOLDS = {
    "pair_support": 3,            # functions that agree on a pair
    "pair_support_symmetric": 2,  # ... when the names are symmetric (get/put)
    "pair_support_whole": 5,      # ... linked only by a shared plain variable, names not symmetric
    "pair_max_contradiction_ratio": 1.0,  # contradictions <= ratio * support
    "release_share": 0.1,         # a release's share of its acquirer's pairs
    "wrapper_rounds": 4,          # fixed-point rounds for wrappers and noreturn
    "wrapper_min_sites": 2,       # call sites of a wrapper (a .remove callback has none)
    "must_check_sites": 20,       # call sites before a must-check verdict
    "must_check_ratio": 0.9,      # tested or returned
    "must_check_tested": 0.6,     # of which tested
    "setup_check_sites": 8,       # ... for a setup call with a status result (register, init, add)
    "setup_check_tested": 0.75,   # ... most call sites test it
    "null_safe_evidence": 3,      # unguarded calls on NULL/ERR values (or guards in its body)
    "managed_support": 2,         # call sites of a devm_* etc call
    "callback_support": 1,        # kref_put / .release / devm action uses
}

PairKey = tuple[str, str, str, str, str, str]  # scope, acquire, acq_target, release, rel_target, how


@dataclass(slots=True)
class Partial:
    files: int = 0
    functions: int = 0
    extracted: int = 0
    cached: int = 0
    failed: int = 0
    calls: dict[str, CallStats] = field(default_factory=dict)
    pairs: Counter = field(default_factory=Counter)  # PairKey -> functions
    examples: dict = field(default_factory=dict)  # PairKey -> smallest "path:function"
    chances: Counter = field(default_factory=Counter)  # (scope, acquire) -> functions
    on_null: Counter = field(default_factory=Counter)
    on_err: Counter = field(default_factory=Counter)
    guarded: Counter = field(default_factory=Counter)
    defs: list[tuple[str, FuncFacts]] = field(default_factory=list)  # (scope, facts)
    def_names: Counter = field(default_factory=Counter)  # (scope, name) non-stub definitions
    callbacks: Counter = field(default_factory=Counter)  # (function, via)
    managed: Counter = field(default_factory=Counter)
    free_classes: Counter = field(default_factory=Counter)
    guard_classes: Counter = field(default_factory=Counter)
    noreturn_decls: Counter = field(default_factory=Counter)

    def add_file(self, path: str, ff: FileFacts) -> None:
        self.files += 1
        self.functions += ff.functions
        for name, st in ff.calls.items():
            mine = self.calls.get(name)
            if mine is None:
                self.calls[name] = mine = CallStats()
            mine.add(st)
        for o in ff.pairs:
            scope = path if o.local else ""
            key = (scope, o.acquire, o.acq_target, o.release, o.rel_target, o.shared)
            self.pairs[key] += 1
            ex = f"{path}:{o.function}"
            if key not in self.examples or ex < self.examples[key]:
                self.examples[key] = ex
        header = path.endswith(".h")  # its static inline functions are everyone's
        statics = set() if header else {f.name for f in ff.funcs if f.static}
        for c in ff.chances:
            self.chances[(path if c.acquire in statics else "", c.acquire)] += 1
        self.on_null.update(ff.on_null)
        self.on_err.update(ff.on_err)
        self.guarded.update(ff.guarded)
        for f in ff.funcs:
            scope = path if f.static and not header else ""
            if not f.stub:
                self.def_names[(scope, f.name)] += 1
            if f.returns_from or f.releases or f.ends_in or f.noreturn_attr or f.null_guard:
                self.defs.append((scope, f))
        self.callbacks.update((c.function, c.via) for c in ff.callbacks)
        self.managed.update(ff.managed)
        self.free_classes.update(ff.free_classes)
        self.guard_classes.update(ff.guard_classes)
        self.noreturn_decls.update(ff.noreturn_decls)

    def merge(self, o: Partial) -> None:
        for k in ("files", "functions", "extracted", "cached", "failed"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        for name, st in o.calls.items():
            mine = self.calls.get(name)
            if mine is None:
                self.calls[name] = st
            else:
                mine.add(st)
        self.pairs.update(o.pairs)
        for k, ex in o.examples.items():
            if k not in self.examples or ex < self.examples[k]:
                self.examples[k] = ex
        for k in ("chances", "on_null", "on_err", "guarded", "def_names", "callbacks",
                  "managed", "free_classes", "guard_classes", "noreturn_decls"):
            getattr(self, k).update(getattr(o, k))
        self.defs += o.defs


def _success(st: CallStats | None, default: str = "") -> str:
    if st is None or not any(st.tests):
        return default
    best = max(range(len(TEST_KINDS)), key=lambda i: (st.tests[i], -i))
    return TEST_KINDS[best]


def _target_index(target: str) -> int:
    return int(target.split(":")[1]) if target.startswith("arg:") else -1


@dataclass(slots=True)
class _Kept:
    pairs: list[Pair] = field(default_factory=list)
    acq: dict[tuple[str, str], Acquirer] = field(default_factory=dict)  # (scope, name)
    rel: dict[tuple[str, str], Release] = field(default_factory=dict)


def _pairs(p: Partial, t: dict) -> _Kept:
    kept = _Kept()
    # group by acquirer (scope, name, target): the release share is relative to it
    by_acq: dict[tuple[str, str, str], list[tuple[PairKey, int]]] = {}
    best_target: dict[tuple[str, str], tuple[int, str]] = {}  # (scope, acq) -> (n, target)
    for key, n in p.pairs.items():
        scope, acq, acq_t, rel, rel_t, how = key
        if acq.startswith(names.MANAGED_PREFIXES) or rel.startswith(names.MANAGED_PREFIXES):
            continue  # managed: its undo on error is optional, never a leak
        if names.is_release_name(acq) and not names.is_acquire_name(acq):
            continue
        if how not in ("var", "out") and not names.is_acquire_name(acq):
            continue  # a status call linked by an argument must say it acquires
        if acq.isupper() and not rel.isupper():
            continue  # a test macro (DCR_MAP_OK), not an acquisition
        by_acq.setdefault((scope, acq, acq_t), []).append((key, n))
    for (scope, acq, acq_t), group in by_acq.items():
        n = sum(x for _, x in group)
        cur = best_target.get((scope, acq))
        if cur is None or (n, acq_t) > cur:
            best_target[(scope, acq)] = (n, acq_t)
    # the whole tree's groups first: a pair scoped to a file only because its release is
    # a static function there (kzalloc .. foo_free) adds a release to kzalloc's resource
    for (scope, acq, acq_t), group in sorted(by_acq.items(), key=lambda g: (g[0][0] != "",
                                                                             g[0])):
        # one acquirer, one target: request_irq(irq, .., dev_id) pairs with free_irq(irq,
        # dev_id) at both arguments; the better supported link names the resource
        if best_target[(scope, acq)][1] != acq_t:
            continue
        # the same acquirer and release may be linked several ways: count each function once
        per_rel: dict[tuple[str, str], int] = {}
        how_of: dict[tuple[str, str], str] = {}
        for (_, _, _, rel, rel_t, how), n in group:
            per_rel[(rel, rel_t)] = per_rel.get((rel, rel_t), 0) + n
            if how_of.get((rel, rel_t)) not in ("var", "out"):
                how_of[(rel, rel_t)] = how
        total = sum(per_rel.values())
        chances = p.chances.get((scope, acq), 0)
        released = min(total, chances) if chances else total
        contra = max(0, chances - released)
        good = []
        for (rel, rel_t), n in sorted(per_rel.items()):
            sym = names.symmetric(acq, rel)
            how = how_of[(rel, rel_t)]
            need = t["pair_support_symmetric"] if sym else (
                t["pair_support_whole"] if how == "whole" else t["pair_support"])
            if n < need or n < t["release_share"] * total:
                continue
            if contra > t["pair_max_contradiction_ratio"] * n and not sym:
                continue
            good.append((n, rel, rel_t, sym, how))
        if not good:
            continue
        good.sort(key=lambda g: (-g[0], g[1]))
        resource = f"learned:{good[0][1]}"
        whole = kept.acq.get(("", acq))
        local_acq = not scope or (scope, acq) in p.def_names
        if not local_acq and (whole is None or whole.target != acq_t):
            continue  # a global acquirer's scoped pairs must agree with it
        if not local_acq:
            resource = whole.resource
        for n, rel, rel_t, sym, how in good:
            key = next(k for k, _ in group if k[3] == rel and k[4] == rel_t)
            kept.pairs.append(Pair(acq, rel, acq_t, rel_t, resource, n, contra, sym, how,
                                   scope, p.examples.get(key, "")))
        if local_acq:
            st = p.calls.get(acq)
            default = "nonnull" if acq_t == "return" else "zero"
            kept.acq[(scope, acq)] = Acquirer(
                acq, resource, acq_t, _success(st, default), sum(g[0] for g in good), contra,
                st.sites if st else 0, st.tested if st else 0, False, "", scope)
    for pr in kept.pairs:
        # a release is scoped only if it is a static function of that file
        key = (pr.scope if (pr.scope, pr.release) in p.def_names else "", pr.release)
        old = kept.rel.get(key)
        res = tuple(sorted(set((old.resources if old else ()) + (pr.resource,))))
        support = (old.support if old else 0) + pr.support
        # a release linked at different arguments keeps the best supported one
        target = pr.release_target if old is None or pr.support > old.support else old.target
        kept.rel[key] = Release(pr.release, res, target, support, False, 0, 0, "", key[0])
    return kept


def _wrappers(p: Partial, kept: _Kept, t: dict, static_wrappers: bool) -> None:
    """Acquirers that return an acquirer's result, releases that apply a release to their
    parameter on every path; rounds until nothing changes (or the round limit)."""
    by_name: dict[tuple[str, str], list[FuncFacts]] = {}
    for scope, f in p.defs:
        by_name.setdefault((scope, f.name), []).append(f)
    observed: dict[str, set[str]] = {}  # what callers' ladders release each call's result by
    for (_, acq, _, rel, _, _), _n in p.pairs.items():
        observed.setdefault(acq, set()).add(rel)

    def own_release_elsewhere(name: str, resource: str) -> bool:
        """Whether the tree undoes `name` by something that is not a known release of the
        resource it wraps: its callers' ladders (prepare_creds .. abort_creds), or a function
        named as its undo (sctp_endpoint_new .. sctp_endpoint_free). Then the wrapped
        allocation is an implementation detail and the wrapper's own release is unknown."""
        ok = {r.name for r in kept.rel.values() if resource in r.resources}
        if observed.get(name, set()) - ok:
            return True
        return any(("", c) in p.def_names and c not in ok for c in names.counterparts(name))

    def lookup(table: dict, name: str, scope: str):
        return table.get((scope, name)) or table.get(("", name))

    for _ in range(t["wrapper_rounds"]):
        changed = False
        for (scope, name), defs in sorted(by_name.items()):
            # a static function's wrapper is known to the summaries of its own file when a
            # tree is at hand; name-keyed across the kernel it is noise (and most of the size)
            if name.startswith(names.MANAGED_PREFIXES) or (scope and not static_wrappers):
                continue
            total = p.def_names.get((scope, name), len(defs))
            if (scope, name) not in kept.acq:
                agree = [lookup(kept.acq, a, scope) for f in defs for a in f.returns_from
                         if f.returns_ptr]
                agree = [a for a in agree if a is not None and a.target == "return"]
                n = len({id(f) for f in defs if any(
                    lookup(kept.acq, a, scope) is not None for a in f.returns_from)})
                called = p.calls[name].sites if name in p.calls else 0
                if agree and n * 2 > total and called >= t["wrapper_min_sites"] and \
                        not own_release_elsewhere(name, agree[0].resource):
                    base = agree[0]
                    st = p.calls.get(name)
                    kept.acq[(scope, name)] = Acquirer(
                        name, base.resource, "return", _success(st, base.success), n,
                        total - n, st.sites if st else 0, st.tested if st else 0, False,
                        base.name, scope)
                    changed = True
            if (scope, name) not in kept.rel and name in p.calls:
                found = None
                n = 0
                for f in defs:
                    for rel, k, tpl in f.releases:
                        r = lookup(kept.rel, rel, scope)
                        if r is not None and _target_index(r.target) == k and rel != name:
                            found = (r, tpl)
                            n += 1
                            break
                if found is not None and n * 2 > total and \
                        p.calls[name].sites >= t["wrapper_min_sites"]:
                    r, tpl = found
                    target = "arg:" + tpl[1:-1] if tpl.startswith("{") and \
                        tpl.endswith("}") and tpl[1:-1].isdigit() else "fmt:" + tpl
                    kept.rel[(scope, name)] = Release(name, r.resources, target, n, False, 0,
                                                      0, r.name, scope)
                    changed = True
        if not changed:
            break


def _null_safety(p: Partial, kept: _Kept, t: dict) -> None:
    guards = Counter()
    for scope, f in p.defs:
        if f.null_guard:
            guards[(scope, f.name)] += 1
    for key, r in list(kept.rel.items()):
        # ERR_PTR values handed to a release are not counted: many releases take NULL and
        # choke on an ERR_PTR, and a release of one is more often a bug than a design
        ev = p.on_null.get(r.name, 0) + guards.get(key, 0)
        g = p.guarded.get(r.name, 0)
        safe = r.name in names.NULL_SAFE or guards.get(key, 0) > 0 or (
            ev >= t["null_safe_evidence"] and ev >= g)
        kept.rel[key] = Release(r.name, r.resources, r.target, r.support, safe, ev, g,
                                r.wrapper_of, r.scope)


def _noreturn(p: Partial, t: dict) -> list[Noreturn]:
    got: dict[tuple[str, str], Noreturn] = {}
    for n in sorted(names.NORETURN):
        got[("", n)] = Noreturn(n, "known", 0, 0, "")
    for n, c in sorted(p.noreturn_decls.items()):
        got.setdefault(("", n), Noreturn(n, "attribute", c, 0, ""))
    by_name: dict[tuple[str, str], list[FuncFacts]] = {}
    for scope, f in p.defs:
        if f.ends_in or f.noreturn_attr:
            by_name.setdefault((scope, f.name), []).append(f)
    for _ in range(t["wrapper_rounds"]):
        changed = False
        for (scope, name), defs in sorted(by_name.items()):
            if (scope, name) in got:
                continue
            total = p.def_names.get((scope, name), len(defs))
            attr = sum(1 for f in defs if f.noreturn_attr)
            ends = [f.ends_in for f in defs if (scope, f.ends_in) in got or ("", f.ends_in) in got]
            n = max(attr, len(ends))
            if n and n >= total:
                reason = "attribute" if attr >= len(ends) else f"ends-in:{ends[0]}"
                got[(scope, name)] = Noreturn(name, reason, n, total - n, scope)
                changed = True
        if not changed:
            break
    return list(got.values())


def _must_check(p: Partial, t: dict) -> list[MustCheck]:
    """Results most callers test: any call with enough sites, and setup calls with a
    status result (`misc_register`, `device_add`: 0 or -errno) with fewer, when most of
    their callers test them and few ignore them."""
    out = []
    for name, st in p.calls.items():
        if name.isupper() or st.sites < min(t["must_check_sites"], t["setup_check_sites"]):
            continue
        checked = st.tested + st.returned >= t["must_check_ratio"] * st.sites
        if st.sites >= t["must_check_sites"]:
            ok = checked and st.tested >= t["must_check_tested"] * st.sites
        else:
            ok = checked and st.tested >= t["setup_check_tested"] * st.sites and \
                _success(st) in (NONZERO, NEG) and names.is_setup_name(name)
        if ok:
            out.append(MustCheck(name, st.sites, st.tested, st.ignored, _success(st)))
    return out


def finish(p: Partial, tree: dict, generated_by: str, regenerate: str,
           static_wrappers: bool = False) -> LearnedKnowledge:
    """The learned knowledge of a whole tree. Wrappers among static functions are left out
    unless asked for: keyed by name they would apply to every file (they carry their file
    as scope), and with the tree at hand the engine summarises them itself."""
    t = THRESHOLDS
    kept = _pairs(p, t)
    _wrappers(p, kept, t, static_wrappers)
    _null_safety(p, kept, t)
    must = _must_check(p, t)
    must_names = {m.name for m in must}
    acqs = [Acquirer(a.name, a.resource, a.target, a.success, a.support, a.contradictions,
                     a.sites, a.tested, a.name in must_names, a.wrapper_of, a.scope)
            for a in kept.acq.values()]
    releases_of: dict[str, tuple[str, ...]] = {}
    for (_, name), r in kept.rel.items():
        releases_of.setdefault(name, r.resources)
    rel_defs: dict[str, list[str]] = {}
    for _scope, f in p.defs:
        for rel, _k, tpl in f.releases:
            if tpl == "{0}" and rel in releases_of:
                rel_defs.setdefault(f.name, []).append(rel)
    callbacks = [Callback(fn, via, n, tuple(sorted(set(rel_defs.get(fn, ())))))
                 for (fn, via), n in p.callbacks.items() if n >= t["callback_support"]]
    managed = [Managed(n, "call", c) for n, c in p.managed.items()
               if c >= t["managed_support"] and not (names.is_release_name(n) and
                                                     not names.is_acquire_name(n))]
    managed += [Managed(n, "free-class", c) for n, c in p.free_classes.items()]
    managed += [Managed(n, "guard-class", c) for n, c in p.guard_classes.items()]
    counts = {"files": p.files, "functions": p.functions, "failed": p.failed,
              "pairs": len(kept.pairs), "acquirers": len(acqs), "releases": len(kept.rel),
              "callbacks": len(callbacks), "managed": len(managed),
              "must_check": len(must)}
    nr = _noreturn(p, t)
    counts["noreturn"] = len(nr)
    return LearnedKnowledge(generated_by=generated_by, regenerate=regenerate, tree=tree,
                            thresholds=dict(t), counts=counts, pairs=tuple(kept.pairs),
                            acquirers=tuple(acqs), releases=tuple(kept.rel.values()),
                            callbacks=tuple(callbacks), managed=tuple(managed),
                            noreturn=tuple(nr), must_check=tuple(must))
