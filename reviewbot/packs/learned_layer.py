"""Learned knowledge (reviewbot/knowledge/learned.py) as the lowest layer of the packs.

Precedence, per function name: a user's pack, then the shipped hand-written packs, then
learned knowledge (a user's learned file given with `--pack` over the shipped one). An
entry of a higher layer replaces the learned one whole. A learned resource whose release
a hand-written pack describes becomes that release's resource (kmalloc-like wrappers
learned with kfree hold `memory`); one whose release the packs say releases nothing is
dropped, so a learned acquisition never waits for a release the engine cannot see.

Learned entries keep their support (functions that agree) and contradictions, which set
the confidence of a finding resting on them (reviewbot/engine/evidence.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from reviewbot.packs.lookup import LEARNED, CallSpec, Packs, PackSource, ResourceKind, Target

if TYPE_CHECKING:
    from reviewbot.knowledge.learned import LearnedKnowledge

# Always noreturn, learned or not: they end the path that reaches them.
KNOWN_NORETURN = frozenset({
    "BUG", "panic", "do_exit", "do_group_exit", "make_task_dead", "kthread_exit",
    "kthread_complete_and_exit", "module_put_and_kthread_exit", "__builtin_unreachable",
    "__builtin_trap", "unreachable", "machine_halt", "machine_power_off", "emergency_restart",
})


def _kind(release: str, acquirer_target: str) -> str:
    """What the engine treats a learned resource as: a lock by the release's name; a state
    when the acquirer acts on an argument (enable/disable, register/unregister, get_sync);
    else a reference (an object returned or put in an out-parameter)."""
    low = release.lower()
    if "unlock" in low:
        return "lock"
    if acquirer_target.startswith("arg:"):
        return "state"
    return "ref"


class _Layer:
    def __init__(self, hand: Packs) -> None:
        self.hand = hand
        self.calls: dict[str, CallSpec] = {}
        self.scoped: dict[str, dict[str, CallSpec]] = {}
        self.resources: dict[str, ResourceKind] = {}

    def resolve(self, rid: str) -> str | None:
        """The resource a learned id stands for once the hand-written packs are on top."""
        rel = rid.partition(":")[2]
        spec = self.hand.calls.get(rel)
        if spec is None:
            return rid
        return spec.releases[0] if spec.releases else None

    def table(self, scope: str) -> dict[str, CallSpec]:
        return self.scoped.setdefault(scope, {}) if scope else self.calls

    def add(self, scope: str, spec: CallSpec) -> None:
        if spec.name in self.hand.calls:
            return  # a hand-written entry wins whole
        t = self.table(scope)
        old = t.get(spec.name)
        if old is None:
            t[spec.name] = spec
        else:  # a function that both acquires and releases (learned as two records)
            t[spec.name] = replace(old, releases=old.releases or spec.releases,
                                   targets=old.targets or spec.targets,
                                   support=max(old.support, spec.support))


def layer(hand: Packs, learned: list[tuple[str, LearnedKnowledge]]) -> Packs:
    """`hand` (the merged hand-written packs) over the learned knowledge of `learned`
    ((path, knowledge) in load order, a later file over an earlier one)."""
    lay = _Layer(hand)
    kinds: dict[str, str] = {}
    nulls: dict[str, bool] = {}
    noreturn: set[str] = set(KNOWN_NORETURN)
    scoped_nr: dict[str, set[str]] = {}
    sources: list[PackSource] = []
    for path, k in learned:
        for a in k.acquirers:
            rid = lay.resolve(a.resource)
            if rid is None:
                continue
            lay.add(a.scope, CallSpec(
                a.name, acquires=(rid,), targets=(Target.parse(a.target),), success=a.success,
                must_check=a.must_check, pack=LEARNED, support=a.support,
                contradictions=a.contradictions))
            if rid.startswith(LEARNED + ":"):
                kinds.setdefault(rid, _kind(rid.partition(":")[2], a.target))
        for r in k.releases:
            rids = tuple(x for x in dict.fromkeys(map(lay.resolve, r.resources)) if x)
            if not rids:
                continue
            lay.add(r.scope, CallSpec(r.name, releases=rids, targets=(Target.parse(r.target),),
                                      pack=LEARNED, support=r.support))
            for rid in rids:
                if rid.startswith(LEARNED + ":") and rid.partition(":")[2] == r.name:
                    nulls[rid] = r.null_safe
        for m in k.managed:
            if m.kind == "call" and m.name not in hand.calls:  # undone by the kernel:
                lay.calls[m.name] = CallSpec(m.name, acquires_nothing=True, pack=LEARNED,
                                             support=m.support)  # never a leak
        for c in k.must_check:
            if c.name not in lay.calls:
                lay.add("", CallSpec(c.name, must_check=True, pack=LEARNED, support=c.tested,
                                     contradictions=c.ignored))
        for n in k.noreturn:
            if n.contradictions == 0:
                (scoped_nr.setdefault(n.scope, set()) if n.scope else noreturn).add(n.name)
        counts = (("acquirers", len(k.acquirers)), ("releases", len(k.releases)),
                  ("managed", len(k.managed)), ("must_check", len(k.must_check)),
                  ("noreturn", len(k.noreturn)))
        sources.append(PackSource(path, LEARNED, LEARNED, counts))
    used = {rid for spec in (*lay.calls.values(), *(c for t in lay.scoped.values()
                                                    for c in t.values()))
            for rid in spec.acquires + spec.releases}
    for rid in sorted(used):
        if rid not in hand.resources:
            lay.resources[rid] = ResourceKind(
                rid, kinds.get(rid, "ref"), null_ok=nulls.get(rid, False),
                doc=f"learned: released by {rid.partition(':')[2]}()", pack=LEARNED)
    calls = {**lay.calls, **hand.calls}
    return Packs({**lay.resources, **hand.resources}, calls, hand.assigns, hand.ops,
                 hand.tests, sources + hand.sources, idioms=hand.idioms, context=hand.context,
                 noreturn=frozenset(noreturn - set(hand.calls)), scoped=lay.scoped,
                 scoped_noreturn={p: frozenset(n) for p, n in scoped_nr.items()})
