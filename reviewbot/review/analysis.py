"""Run every rule over the functions of one C file and turn raw results into Findings."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from reviewbot.checks import all_rules, registry
from reviewbot.checks.ops_mismatch import TreeIndex
from reviewbot.checks.siblings import SiblingIndex
from reviewbot.cmodel import CFile, Function, norm, parse_c, text
from reviewbot.engine import FunctionContext, Raw, Walker
from reviewbot.knowledge.callgraph import file_graph
from reviewbot.knowledge.infer import infer_pairs
from reviewbot.knowledge.tree_summaries import SummaryTable
from reviewbot.model import Finding, Site, TraceStep
from reviewbot.packs import Packs, load_packs

# bytes of one function the walker takes: the largest in linux 6.1 are ~200 KB; a 1.2 MB
# one took 165 MB to walk. A larger one is not analysed, said, and the review incomplete.
MAX_FUNCTION_BYTES = 512 * 1024


def relevant(fn: Function, packs: Packs) -> bool:
    """Whether walking the paths can find anything: a call a pack knows, a pack's
    assignment pattern or test, or goto labels (missing-errno needs no resource), or what a
    checker asks for (Checker.needs_walk)."""
    if fn.of_type("labeled_statement") or fn.callees() & packs.interesting_calls():
        return True
    if packs.assigns and any(
            spec.lhs.match(norm(text(a.child_by_field_name("left"))))
            for a in fn.of_type("assignment_expression") for spec in packs.assigns):
        return True
    return any(c.needs_walk(fn) for c in registry.path_checkers())


def analyze_function(fn: Function, packs: Packs, index: TreeIndex | None = None,
                     before: Function | None = None,
                     siblings: SiblingIndex | None = None, effort: str = "review",
                     incomplete: set[str] | None = None,
                     callgraph: object | None = None) -> list[Raw]:
    """Every registered checker on one function: the path checkers in one walk, then the
    whole-function ones; merged by the registry's policy."""
    raws: list[Raw] = []
    if relevant(fn, packs):
        w = Walker(fn, packs, registry.path_checkers(), before=before, effort=effort,
                   same_event=registry.same_event, callgraph=callgraph)
        raws = w.run()
        if not w.complete and incomplete is not None:
            incomplete.add(fn.name)
    ctx = FunctionContext(fn, packs, before, index, siblings, callgraph)
    for c in registry.checkers_for("function"):
        raws += c.check_function(ctx)
    return registry.merge_function(raws)


def to_finding(raw: Raw, path: str, fn: Function) -> Finding:
    rules = all_rules()
    rule = rules[raw.rule]
    confidence = raw.confidence if raw.confidence != "high" else rule.confidence
    trace = _steps(raw.trace)
    lines = [raw.line] + [ln for ln in raw.lines if ln != raw.line]
    return Finding(
        rule=raw.rule,
        category=rule.category,
        severity=rule.severity,
        confidence=confidence,
        file=path,
        function=fn.name,
        line=raw.line,
        message=raw.message,
        trace=trace,
        resource=raw.resource,
        lines=lines,
        sites=[Site(m.line, m.message, _steps(m.trace)) for m in raw.merged],
    )


def _steps(trace: list[tuple[int, str]]) -> list[TraceStep]:
    out: list[TraceStep] = []
    seen = set()
    for line, note in trace:
        if (line, note) not in seen:
            seen.add((line, note))
            out.append(TraceStep(line, note))
    return out


def analyze_cfile(cf: CFile, path: str, only: Iterable[str] | None = None,
                  packs: Packs | None = None, index: TreeIndex | None = None,
                  infer_from: CFile | None = None,
                  siblings: SiblingIndex | None = None, effort: str = "review",
                  incomplete: set[str] | None = None,
                  failed: list[str] | None = None,
                  summaries: SummaryTable | None = None,
                  callgraph: object | None = None) -> list[Finding]:
    """Analyse the functions of `cf` (those named in `only`). Pairs no pack lists are
    inferred from `infer_from`'s function of the same name (the pre-image), else from the
    function itself. `summaries`: what the tree's functions may do to their arguments
    (knowledge/tree_summaries.py). A function the analyser cannot take (too deep: RecursionError) is
    said on stderr and added to `failed` ("path: fn(): why"): the caller reports the
    review as incomplete. The context rules use `callgraph` (a LazyGraph of the subsystem),
    else the graph of this file alone."""
    packs = (packs or load_packs()).for_file(path)
    if summaries is not None:
        packs = packs.with_summaries(summaries.for_file(path))
    if callgraph is None:
        callgraph = file_graph(cf.source, path, packs.context)
    names = set(only) if only is not None else None
    source_fns = infer_from.by_name() if infer_from is not None else {}
    findings: list[Finding] = []
    for fn in cf.functions:
        if names is not None and fn.name not in names:
            continue
        size = fn.node.end_byte - fn.node.start_byte
        if size > MAX_FUNCTION_BYTES:  # its walk could take gigabytes
            why = f"too large for the analyser: {size} bytes, over {MAX_FUNCTION_BYTES}"
            sys.stderr.write(f"reviewbot: {path}: {fn.name}(): not analysed ({why})\n")
            if failed is not None:
                failed.append(f"{path}: {fn.name}(): not analysed ({why})")
            continue
        try:
            extra = infer_pairs(source_fns.get(fn.name, fn), packs)
            raws = analyze_function(fn, packs.with_inferred(extra), index,
                                    source_fns.get(fn.name), siblings, effort, incomplete,
                                    callgraph)
        except Exception as e:  # noqa: BLE001 - one odd function must not stop a review
            why = ("too deeply nested for the analyser" if isinstance(e, RecursionError)
                   else f"internal error: {type(e).__name__}: {e}")
            sys.stderr.write(f"reviewbot: {path}: {fn.name}(): not analysed ({why})\n")
            if failed is not None:
                failed.append(f"{path}: {fn.name}(): not analysed ({why})")
            continue
        findings.extend(to_finding(r, path, fn) for r in raws)
    findings.sort(key=lambda f: (f.file, f.line, f.rule))
    return findings


def analyze_source(source: str, path: str, only: Iterable[str] | None = None,
                   packs: Packs | None = None, index: TreeIndex | None = None) -> list[Finding]:
    return analyze_cfile(parse_c(source, path), path, only, packs, index)
