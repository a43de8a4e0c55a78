"""The `[context]` knowledge of the loaded packs, merged (lists added up in load order,
remedies replaced per call), with the name matchers the call graph asks many times."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cached_property

CONTEXT_KEYS = ("reclaim_members", "reclaim_functions", "reclaim_tests", "reclaim_false",
                "cluster_calls",
                "final_puts", "extra_refs", "safe_calls", "remedies", "sleeping_calls",
                "sleeping_rarely", "sleeping_gfp", "reclaim_unsafe_gfp", "nofs_begin", "nofs_end",
                "spin_acquire", "spin_try", "spin_release", "mutex_acquire", "mutex_release",
                "reclaim_locks", "sleeps_dropping", "lock_args")


class Names:
    """A set of call names, `*` at the end matching any name that starts so."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.exact = frozenset(n for n in names if not n.endswith("*"))
        prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
        self._re = re.compile("|".join(map(re.escape, prefixes))) if prefixes else None
        self._memo: dict[str, bool] = {}

    def __contains__(self, name: str) -> bool:
        got = self._memo.get(name)
        if got is None:
            got = name in self.exact or (self._re is not None and
                                         self._re.match(name) is not None)
            self._memo[name] = got
        return got


@dataclass(frozen=True)
class ContextKnowledge:
    reclaim_members: tuple[str, ...] = ()
    reclaim_functions: tuple[str, ...] = ()
    reclaim_tests: tuple[str, ...] = ()
    reclaim_false: tuple[str, ...] = ()
    cluster_calls: tuple[str, ...] = ()
    final_puts: tuple[str, ...] = ()
    extra_refs: tuple[str, ...] = ()
    safe_calls: tuple[str, ...] = ()
    remedies: tuple[tuple[str, str], ...] = ()
    sleeping_calls: tuple[str, ...] = ()
    sleeping_rarely: tuple[str, ...] = ()
    sleeping_gfp: tuple[str, ...] = ()
    reclaim_unsafe_gfp: tuple[str, ...] = ()
    nofs_begin: tuple[str, ...] = ()
    nofs_end: tuple[str, ...] = ()
    spin_acquire: tuple[str, ...] = ()
    spin_try: tuple[str, ...] = ()
    spin_release: tuple[str, ...] = ()
    mutex_acquire: tuple[str, ...] = ()
    mutex_release: tuple[str, ...] = ()
    reclaim_locks: tuple[str, ...] = ()
    sleeps_dropping: tuple[tuple[str, str], ...] = ()
    lock_args: tuple[tuple[str, str], ...] = ()

    def merged(self, later: object) -> ContextKnowledge:
        """This knowledge with a later pack's `[context]` (a schema.Context) added."""
        out = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), tuple(getattr(later, f.name))
            if f.name in ("remedies", "sleeps_dropping", "lock_args"):
                out[f.name] = tuple(sorted({**dict(mine), **dict(theirs)}.items()))
            else:
                out[f.name] = mine + tuple(x for x in theirs if x not in mine)
        return ContextKnowledge(**out)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    # -- matchers, made once
    @cached_property
    def cluster(self) -> Names:
        return Names(self.cluster_calls)

    @cached_property
    def puts(self) -> Names:
        return Names(self.final_puts)

    @cached_property
    def holds(self) -> Names:
        return Names(self.extra_refs)

    @cached_property
    def safe(self) -> Names:
        return Names(self.safe_calls)

    @cached_property
    def sleeping(self) -> Names:
        return Names(self.sleeping_calls)

    @cached_property
    def rarely(self) -> Names:
        return Names(self.sleeping_rarely)

    @cached_property
    def spin_on(self) -> Names:
        return Names(self.spin_acquire)

    @cached_property
    def spin_trying(self) -> Names:
        return Names(self.spin_try)

    @cached_property
    def spin_off(self) -> Names:
        return Names(self.spin_release)

    @cached_property
    def mutex_on(self) -> Names:
        return Names(self.mutex_acquire)

    @cached_property
    def mutex_off(self) -> Names:
        return Names(self.mutex_release)

    @cached_property
    def nofs_on(self) -> Names:
        return Names(self.nofs_begin)

    @cached_property
    def nofs_off(self) -> Names:
        return Names(self.nofs_end)

    @cached_property
    def tests(self) -> frozenset[str]:
        return frozenset("".join(t.split()) for t in self.reclaim_tests)

    @cached_property
    def false_tests(self) -> frozenset[str]:
        return frozenset("".join(t.split()) for t in self.reclaim_false)

    @cached_property
    def members(self) -> frozenset[tuple[str, str]]:
        return frozenset(tuple(m.split(".", 1)) for m in self.reclaim_members if "." in m)

    @cached_property
    def remedy(self) -> dict[str, str]:
        return dict(self.remedies)

    @cached_property
    def _dropping(self) -> tuple[tuple[Names, str], ...]:
        # the longest pattern first: `wait_event_interruptible_lock_irq*` before `wait_event*`
        items = sorted(self.sleeps_dropping, key=lambda kv: -len(kv[0]))
        return tuple((Names((pat,)), tmpl) for pat, tmpl in items)

    def dropped_while_sleeping(self, name: str, args: tuple[str, ...]) -> str | None:
        """The lock a sleeping call `name(args)` lets go of while it sleeps, or None."""
        for names, tmpl in self._dropping:
            if name in names:
                try:
                    return tmpl.format(*(f"({a})" if not a.replace("->", "").replace(".", "")
                                         .replace("_", "").isalnum() else a for a in args))
                except IndexError:
                    return None
        return None

    @cached_property
    def _lock_at(self) -> dict[str, int]:
        return {k: int(m.group(1)) for k, v in self.lock_args
                if (m := re.fullmatch(r"\s*\{(\d+)\}\s*", v))}

    def lock_arg(self, name: str, args: tuple[str, ...]) -> str:
        """The lock a locking call `name(args)` takes or drops ("" if it has no argument)."""
        n = self._lock_at.get(name, 0)
        return args[n] if n < len(args) else ""

    def to_plain(self) -> list:
        return [getattr(self, k) for k in CONTEXT_KEYS]

    @classmethod
    def from_plain(cls, values: list) -> ContextKnowledge:
        conv = [tuple(tuple(x) if isinstance(x, list) else x for x in v) for v in values]
        return cls(**dict(zip(CONTEXT_KEYS, conv, strict=True)))
