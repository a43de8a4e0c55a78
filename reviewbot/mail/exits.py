"""What one exit of a function leaves held, and the label it should jump to instead.

The rules report one finding per resource an error exit leaves held (error-path.direct-return
and missing-release, get-put.leak and lock-imbalance); a reply says it once per exit:
everything that exit skips, in words that fit each resource's kind (memory leaks, a
reference is not dropped, a lock stays held), and the label whose unwind code releases
exactly what is held there, read from the function's post-image (`goto out_put_device?`).
What a finding holds comes from its message ("leaves 'dev' held: it was acquired by
get_device() at line 29"); the kind of a resource and its releases from the packs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reviewbot.model import Finding

if TYPE_CHECKING:
    from reviewbot.packs import Packs

EXIT_RULES = frozenset({"error-path.direct-return", "error-path.missing-release",
                        "get-put.leak", "get-put.lock-imbalance"})
_HELD = re.compile(r"leaves '(?P<key>[^']+)' (?:held|locked)(?:: it was acquired by | \()"
                   r"(?:(?P<call>[A-Za-z_]\w*)\(\)|'(?P<assign>[^']*)') at line (?P<line>\d+)")
_ENTRY = re.compile(r"^(?:the error exit through (?P<labels>[\w/]+)|this '(?P<ret>return[^']*)'"
                    r"|this return)")
_LABEL = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*):(?!:)\s*(?:/\*.*\*/\s*|//.*)?$")
_CALL = re.compile(r"\b(?P<name>[A-Za-z_]\w*)\s*\((?P<args>[^;]*)\)")


@dataclass(frozen=True)
class Held:
    """A resource an exit leaves held."""

    key: str  # as the message names it ('dev', 'fd->lock')
    by: str  # what acquired it, as a reply says it: "kzalloc()" or "'ip->i_gl = gl'"
    line: int  # where it was acquired
    kind: str  # memory | ref | lock | holder | state | "" (not known)
    rids: tuple[str, ...]  # the packs' resource ids the call acquires


@dataclass
class Exit:
    """The findings of one exit: what it leaves held and how the path got there."""

    findings: list[Finding]
    held: list[Held]
    labels: list[str]  # the labels the path went through ([] for a return)
    ret: str  # "return err" (the exit's statement, when the message names it)
    # what the path released after its entry (resource id, key): the labels it took
    unwound: set[tuple[str, str]] = field(default_factory=set)

    @property
    def lead(self) -> Finding:
        return self.findings[0]


def held_of(f: Finding, packs: Packs | None) -> Held | None:
    m = _HELD.search(f.message)
    if m is None:
        return None
    call = m.group("call") or ""
    spec = packs.calls.get(call) if packs is not None and call else None
    rids = tuple(spec.acquires) if spec is not None else ()
    kinds = {packs.resources[r].kind for r in rids if r in packs.resources} if packs else set()
    kind = kinds.pop() if len(kinds) == 1 else ""
    by = f"{call}()" if call else f"'{m.group('assign')}'"
    return Held(m.group("key"), by, int(m.group("line")), kind, rids)


def _exit_line(f: Finding) -> int:
    last = f.trace[-1] if f.trace else None
    return last.line if last is not None and last.note.startswith("return") else f.line


def group_exits(findings: list[Finding], packs: Packs | None) -> list[Exit | Finding]:
    """The findings in order, those of one exit (same function, same entry line, same
    return) together as one Exit; the others as they are."""
    out: list[Exit | Finding] = []
    by_key: dict[tuple, Exit] = {}
    for f in findings:
        held = held_of(f, packs) if f.rule in EXIT_RULES else None
        if held is None:
            out.append(f)
            continue
        key = (f.file, f.function, f.line, _exit_line(f))
        ex = by_key.get(key)
        if ex is None:
            m = _ENTRY.match(f.message)
            labels = (m.group("labels") or "").split("/") if m and m.group("labels") else []
            ret = (m.group("ret") or "") if m else ""
            ex = by_key[key] = Exit([], [], [x for x in labels if x], ret)
            out.append(ex)
        ex.findings.append(f)
        ex.unwound |= _unwound(f, packs)
        if all(h.key != held.key for h in ex.held):
            ex.held.append(held)
    return out


_RELEASED = re.compile(r"^(?P<key>.+) released by (?P<call>[A-Za-z_]\w*)\(\)$")


def _unwound(f: Finding, packs: Packs | None) -> set[tuple[str, str]]:
    """What the finding's path released after its entry (the goto at f.line)."""
    out: set[tuple[str, str]] = set()
    if packs is None:
        return out
    for t in f.trace:
        m = _RELEASED.match(t.note) if t.line > f.line else None
        spec = packs.calls.get(m.group("call")) if m else None
        if m and spec is not None:
            out |= {(rid, m.group("key")) for rid in spec.releases}
    return out


# ------------------------------------------------------------------- the right label


def _norm(s: str) -> str:
    return re.sub(r"\s+|&|\(\*?|\)", "", s)


def _releases(line: str, packs: Packs) -> set[tuple[str, str]]:
    """(resource id, argument text) for each pack release call on a line."""
    out = set()
    for m in _CALL.finditer(line):
        spec = packs.calls.get(m.group("name"))
        if spec is not None and spec.releases:
            for rid in spec.releases:
                out.add((rid, _norm(m.group("args"))))
    return out


def _mentions(args: str, key: str) -> bool:
    return re.search(rf"(?<![\w>.]){re.escape(_norm(key))}(?![\w\[]|->|\.)", args) is not None


def _function_lines(post: str, path: str, function: str) -> tuple[list[str], int] | None:
    """The lines of `function` in the post-image and the number of its first line."""
    from reviewbot.cmodel import parse_c

    try:
        fn = parse_c(post, path).by_name().get(function)
    except Exception:  # noqa: BLE001 - a file the C model cannot read: no label advice
        return None
    if fn is None:
        return None
    lines = post.splitlines()
    return lines[fn.start_line - 1:fn.end_line], fn.start_line


def _unwinds(lines: list[str], first: int) -> dict[str, tuple[int, list[str]]]:
    """label -> (its line, the lines it runs: falling through the labels below and following
    unconditional gotos, up to the first unconditional return)."""
    at = {m.group("name"): i for i, ln in enumerate(lines)
          if (m := _LABEL.match(ln)) and m.group("name") != "default"}
    out = {}
    for name, start in at.items():
        run: list[str] = []
        seen = {name}
        i = start + 1
        indent = None
        while i < len(lines):
            ln = lines[i]
            if _LABEL.match(ln):
                i += 1
                continue
            stmt = ln.strip()
            lead = len(ln) - len(ln.lstrip())
            if indent is None and stmt:
                indent = lead
            top = stmt and lead <= (indent or 0)
            g = re.match(r"goto\s+(\w+)\s*;", stmt)
            if top and g and g.group(1) in at and g.group(1) not in seen:
                seen.add(g.group(1))
                i = at[g.group(1)] + 1
                continue
            run.append(ln)
            if top and (stmt.startswith("return") or g):
                break
            i += 1
        out[name] = (first + start, run)
    return out


@dataclass(frozen=True)
class Advice:
    """Where the exit should jump: `label`, or none (`searched`: the labels were read and
    none releases exactly what is held; not searched: too little is known to say)."""

    label: str | None = None
    searched: bool = False
    labels: bool = False  # there were labels below the entry to choose from


def right_label(ex: Exit, post: str | None, packs: Packs | None) -> Advice:
    """The label below the exit's entry whose unwind code releases exactly what the exit
    leaves held (every held resource by one of its pack releases, and nothing else a pack
    knows); of several, the one whose code is shortest."""
    f = ex.lead
    if post is None or packs is None or any(not h.rids for h in ex.held):
        return Advice()
    got = _function_lines(post, f.file, f.function)
    if got is None:
        return Advice()
    lines, first = got
    want = {(rid, h.key) for h in ex.held for rid in h.rids} | ex.unwound
    best = None
    below = False
    for name, (line, run) in _unwinds(lines, first).items():
        if line <= f.line or (ex.labels and name == ex.labels[0]):
            continue  # a backward jump, or the label the path took already
        below = True
        released = {(rid, args) for ln in run for rid, args in _releases(ln, packs)}
        covered = {(rid, k) for rid, k in want if any(r == rid and _mentions(a, k)
                                                      for r, a in released)}
        extra = [(r, a) for r, a in released
                 if not any(r == rid and _mentions(a, k) for rid, k in want)]
        if covered == want and not extra:
            # of the labels that fit, the one that runs the least code besides: the rung of
            # the ladder, not a label the function's main flow jumps to
            size = sum(1 for ln in run if ln.strip())
            if best is None or (size, line) < best[:2]:
                best = (size, line, name)
    return Advice(best[2] if best else None, True, below)


def label_after(f: Finding, post: str | None) -> str | None:
    """The first label below line `f.line` of the finding's function: where a goto that
    reaches a release of something never acquired should have jumped (the ladder's next
    rung), if the function's unwind code goes on below it."""
    if post is None:
        return None
    got = _function_lines(post, f.file, f.function)
    if got is None:
        return None
    lines, first = got
    below = [(line, name) for name, (line, _run) in _unwinds(lines, first).items()
             if line > f.line]
    return min(below)[1] if below else None
