"""The walker: explores every path of a function's graph, carrying a ``PathState``.

States that reach a join node equal to one seen before are not explored again, so loops
terminate; past a bound the walk widens (forgets values no resource depends on) and then
gives up. This module holds the walk and the transfer functions of branches and returns;
statements and calls are in reviewbot/engine/transfer.py. Checkers (reviewbot/checks/)
receive events and report; the walker itself knows no rule.

Precision over recall: a resource whose fate the walker cannot know (passed to a call
that may take it over, released while its acquisition is undecided) becomes ``unknown``
and no checker reports on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tree_sitter import Node as TSNode

from reviewbot.cmodel import Function, Node, args, callee, norm, strip_parens, text
from reviewbot.cmodel.macros import MEMBER, accessor_macros, expand
from reviewbot.engine.checker import HOOKS, PATH_EVENTS, Checker, Cond
from reviewbot.engine.counted import EMPTY, empty_when_zero
from reviewbot.engine.entry import empty_slots
from reviewbot.engine.evidence import weigh
from reviewbot.engine.facts import FunctionFacts
from reviewbot.engine.keys import HEAD, has_call, mentions, ptr_key, target_keys
from reviewbot.engine.places import forget_loop_released
from reviewbot.engine.state import (
    ESCAPED,
    FAILED,
    HELD,
    PENDING,
    RELEASED,
    UNKNOWN,
    Exit,
    PathState,
    Raw,
    Res,
)
from reviewbot.engine.transfer import Transfer, equal_key
from reviewbot.engine.values import ALL, CONST, ERRNO, E, P, Z, compare_sets
from reviewbot.packs import CallSpec, Packs

# Bounds on the walk. Past WIDEN states at a node, values that no resource depends on are
# forgotten (the states then coincide); past MAX_STATES_PER_NODE the walk gives up there.
# "review" walks the few functions a patch touches; "audit" walks every function of a tree.
EFFORT = {
    "review": (24, 400, 30000),  # (WIDEN, MAX_STATES_PER_NODE, MAX_STEPS)
    "audit": (16, 200, 5000),
}


# the rules a lock returned held on purpose makes wrong (see Walker.run)
UNWIND_LEAKS = frozenset({"error-path.missing-release", "error-path.direct-return"})


class Walker(Transfer):
    """Walks one function for a list of checkers. `same_event` is the merge policy for
    reports made during one event (see reviewbot/checks/registry.py): given them, it
    returns those to keep."""

    def __init__(self, fn: Function, packs: Packs, checkers: list[Checker],
                 before: Function | None = None, effort: str = "review",
                 same_event: Callable[[list[Raw]], list[Raw]] | None = None,
                 callgraph: object | None = None):
        self.widen_at, self.max_states, self.max_steps = EFFORT[effort]
        self.callgraph = callgraph  # the subsystem's LazyGraph (the lock rules ask it)
        fn.cfg()  # the facts read the graph
        self.fn = fn
        self.packs = packs
        self.checkers = checkers
        self.facts = FunctionFacts(fn, packs, before)
        # the file's member-address macros (`KSMBD_TRANS(t)`: `&(t)->transport`) name keys
        self._members = {n: m for n, m in accessor_macros(fn.source).items() if m.kind == MEMBER}
        self.raw: dict[tuple[str, str, int], Raw] = {}
        self.steps = 0
        self.complete = True
        self.returned_locked: set[str] = set()  # locks held at some normal return
        # the bound hooks of each event, in checker order
        wanted = [(c, c.events_for(self)) for c in checkers]
        self._hooks = {ev: [getattr(c, HOOKS[ev]) for c, evs in wanted if ev in evs]
                       for ev in PATH_EVENTS}
        # only the checkers whose slots distinguish paths or change when widened
        self._keyed = [c for c in checkers if type(c).slot_key is not Checker.slot_key]
        self._widened = [c for c in checkers if type(c).widen is not Checker.widen]
        self._same_event = same_event
        self._pending: list[Raw] | None = None

    def state_key(self, st: PathState) -> tuple:
        keyed = self._keyed
        if not keyed:
            return st.key()
        if len(keyed) == 1:  # the usual case, without a generator per join
            return st.key(keyed[0].slot_key(st.slots[keyed[0].name]))
        return st.key(tuple([c.slot_key(st.slots[c.name]) for c in keyed]))

    # ------------------------------------------------------------------ reporting
    def emit(self, event: str, *args: Any) -> None:
        """Call the hook of `event` on every checker that wants it. What two or more
        checkers report during one event goes through the same-event merge policy."""
        hooks = self._hooks[event]
        if not hooks:
            return
        if len(hooks) == 1 or self._same_event is None:
            for hook in hooks:
                hook(self, *args)
            return
        self._pending = []
        try:
            for hook in hooks:
                hook(self, *args)
            pending = self._pending
            kept = self._same_event(pending) if pending else pending
        finally:
            self._pending = None
        for raw in kept:
            self.raw.setdefault((raw.rule, raw.resource, raw.line), raw)

    def report(self, rule: str, line: int, resource: str, message: str, st: PathState,
               extra: list[tuple[int, str]] | None = None, lines: list[int] | None = None,
               confidence: str = "high") -> None:
        k = (rule, resource, line)
        if k in self.raw:
            # reported on an earlier path: the first one is kept, so do not build it again
            # (in an event, the earlier one still takes part in the same-event policy)
            if self._pending is not None:
                self._pending.append(self.raw[k])
            return
        if any(r.key == resource and r.inferred for r in st.res.values()):
            confidence = "low"  # the pair was inferred from the code, not from a pack
        else:
            confidence = weigh(self, st, rule, resource, confidence)
        trace = [(ln, self._pretty(n, st)) for ln, n in list(st.trail) + list(extra or [])]
        message = self._pretty(message, st)
        raw = Raw(rule, line, resource, message, trace, lines or [], confidence)
        if self._pending is not None:
            self._pending.append(raw)  # kept or not when the event is over (emit)
        else:
            self.raw[k] = raw

    def _pretty(self, s: str, st: PathState) -> str:
        for var, tgt in sorted(st.alias.items(), key=lambda kv: -len(kv[1])):
            s = s.replace(tgt, var)
        # acquisitions by assignment read as statements, not calls
        return re.sub(r"([\w>.\-]+ = [^()'\s]+)\(\)", r"'\1'", s)

    # ------------------------------------------------------------------ keys
    def canon(self, s: str, st: PathState | None) -> str:
        s = ptr_key(self.expand(norm(s)))
        if st is not None and st.alias:
            m = HEAD.match(s)
            if m and m.group(1) in st.alias:
                s = st.alias[m.group(1)] + m.group(2)
        return s

    def expand(self, s: str) -> str:
        """`s` (normalised) with a member-address macro call that is all of it written out."""
        return expand(s, self._members) if self._members and s[-1:] == ")" else s

    def target_keys(self, spec: CallSpec, call: TSNode, st: PathState | None,
                    lhs: str | None = None) -> list[str]:
        return target_keys(spec, call, lambda s: self.canon(s, st), lhs)

    # ------------------------------------------------------------------ walk
    def run(self) -> list[Raw]:
        entry = self.fn.cfg()
        joins = self.facts.joins
        seen: dict[int, set] = {}
        start = PathState(slots={c.name: c.initial() for c in self.checkers})
        for slot in empty_slots(self.fn):
            start.values[slot] = Z  # the caller's empty out-parameter (engine/entry.py)
        work: list[tuple[Node, PathState]] = [(entry, start)]
        while work:
            node, st = work.pop()
            self.steps += 1
            if self.steps > self.max_steps:
                self.complete = False
                break
            # Paths meet only where a node has several predecessors (and loops close only
            # there): states are compared, widened and counted at those nodes alone.
            if node.idx in joins:
                bucket = seen.setdefault(node.idx, set())
                if len(bucket) >= self.widen_at:
                    st = self.widen(st)
                k = self.state_key(st)
                if k in bucket:
                    continue
                if len(bucket) >= self.max_states:
                    self.complete = False
                    continue
                bucket.add(k)
            work.extend(self.step(node, st))
        self.emit("end")
        if self.returned_locked:
            # A lock some normal return still holds is handed to the caller on purpose
            # (btrfs_lock_cluster, fsnotify_grab_connector): the error exits that keep it
            # are not missing an unlock.
            for k in [k for k, raw in self.raw.items() if raw.rule in UNWIND_LEAKS
                      and raw.resource in self.returned_locked]:
                del self.raw[k]
        return list(self.raw.values())

    def _is_lock(self, rid: str) -> bool:
        kind = self.packs.resources.get(rid)
        return kind is not None and kind.kind == "lock"

    def widen(self, st: PathState) -> PathState:
        """Keep only the values that resources depend on: many paths then become one."""
        keep = {r.pending_var for r in st.res.values() if r.status == PENDING}
        keep |= {r.key for r in st.res.values()}
        keep |= {f for f in st.values if f.startswith("?") or f in self.facts.flags}  # correlated tests
        if all(f in keep for f in st.values):
            return st
        st = st.copy()
        st.values = {f: v for f, v in st.values.items() if f in keep}
        for c in self._widened:
            st.set_slot(c.name, c.widen(st.slots[c.name]))
        return st

    def step(self, node: Node, st: PathState) -> list[tuple[Node, PathState]]:
        kind = node.kind
        if kind in ("entry", "join", "break", "continue"):
            if kind == "break" and self._hooks["stmt"]:
                st = st.copy()
                self.emit("stmt", st, node)
            return [(s, st) for s in node.succ]
        if kind == "label":
            st = st.copy()
            st.labels = st.labels + (node.label,)
            st.note(node.line, f"{node.label}:")
            st.after_label = True
            self.emit("label", st, node)
            return [(s, st) for s in node.succ]
        if kind == "goto":
            st = st.copy()
            st.note(node.line, f"goto {node.label}")
            self.emit("goto", st, node)
            return [(s, st) for s in node.succ]
        if kind == "stmt":
            if self.facts.ends_path(node):
                return []  # BUG(), panic(), a learned noreturn call: nothing after it runs
            if self._hooks["stmt"]:
                st = st.copy()
                self.emit("stmt", st, node)
            if self.facts.inert_statement(node):
                return [(s, st) for s in node.succ]  # nothing here can change the state
            if not self._hooks["stmt"]:
                st = st.copy()
            self.eval_stmt(node.ast, st)
            return [(s, st) for s in node.succ]
        if kind == "switch":
            st = st.copy()
            self.emit("stmt", st, node)
            if node.ast is not None:
                self.eval_expr(node.ast, st)
            return [(s, st) for s in node.succ]
        if kind == "cond":
            return self.branch(node, st)
        if kind == "return":
            st = st.copy()
            expr = node.ast
            if expr is not None:
                self.eval_expr(expr, st)
            ex = Exit(node, self.exit_kind(expr, st), norm(text(expr)))
            self.mark_returned(expr, st, node.line)
            if ex.kind != "error" or ex.expr in self.facts.local_pointers:
                # a success, or an object found (`return it;`, maybe an error pointer):
                # the function may return its result locked
                self.returned_locked |= {r.key for r in st.res.values() if r.status == HELD
                                         and self._is_lock(r.rid)}
            if ex.kind == "normal" and self._returns_failing_call(expr):
                # `return helper(..)` where the tree's summary of helper returns an error
                # code: on its failure this is an error exit too
                self.emit("exit", st.copy(), Exit(node, "error", ex.expr))
            self.emit("exit", st, ex)
            return []
        return [(s, st) for s in node.succ]

    # ------------------------------------------------------------------ exits
    def _returns_failing_call(self, expr: TSNode | None) -> bool:
        """The return's value is a call no pack describes whose summary (knowledge/
        tree_summaries.py) says it can return an error code."""
        e = strip_parens(expr) if expr is not None else None
        if e is None or e.type != "call_expression":
            return False
        name = callee(e)
        summ = self.packs.summaries.get(name) if name not in self.packs.calls else None
        return summ is not None and getattr(summ, "fails", False)

    def exit_kind(self, expr: TSNode | None, st: PathState) -> str:
        if expr is None:
            return "normal"
        e = strip_parens(expr)
        t = norm(text(e))
        idioms = self.packs.idioms
        if ERRNO.match(t) or t.startswith(idioms.err_ptr_calls) and t not in idioms.err_null:
            return "error"
        if t.startswith(idioms.err_cast_calls) or t.startswith(idioms.ptr_err_calls):
            return "error"
        if e.type in ("identifier", "field_expression"):
            f = st.value(self.canon(t, st))
            if f and "Z" not in f and f != P:
                if "P" in f and t in self.facts.local_pointers and not any(
                        r.status == HELD and self._is_lock(r.rid) for r in st.res.values()):
                    # `if (kn) ..; return kn;`: a pointer known only to be non-NULL is the
                    # object found (an error pointer would have been tested by IS_ERR); one
                    # returned locked stays an exit the lock rules tell apart as before
                    return "normal"
                return "error"
        if t == "NULL" and any(r.status == FAILED for r in st.res.values()):
            return "error"
        return "normal"

    def mark_returned(self, expr: TSNode | None, st: PathState, line: int) -> None:
        if expr is None:
            return
        t = self.canon(text(expr), st)
        ternary = strip_parens(expr) is not None and strip_parens(expr).type == "conditional_expression"
        # `return PTR_ERR(x)`, `return IS_ERR(x)` hand out no reference to x (the first test
        # by prefix, so PTR_ERR_OR_ZERO and IS_ERR_OR_NULL count too)
        err_tests, err_test_calls = self.packs.idioms.err_tests, self.packs.idioms.err_test_calls
        for k, r in list(st.res.items()):
            if r.status not in (HELD, PENDING):
                if r.status == RELEASED and mentions(t, r.key) and not ternary \
                        and not t.startswith(err_tests):
                    self.emit("store", st, r, line, "return")
                continue
            if mentions(t, r.key) and not t.startswith(err_test_calls):
                st.res[k] = replace(r, status=ESCAPED)

    # ------------------------------------------------------------------ conditions
    def branch(self, node: Node, st: PathState) -> list[tuple[Node, PathState]]:
        atom = node.ast
        st = st.copy()
        if atom is None or atom.type == "expression_statement":  # iterator macro head
            if atom is not None:
                head = atom.named_children[0]
                if head.type == "call_expression":
                    # each round gives the cursors new values: a cursor freed in the last
                    # round (list_for_each_entry_safe(p, n, ..) { kfree(p); }) is a new one
                    for x in args(head):
                        key = self.canon(norm(text(x)), st)
                        for k in [k for k, r in st.res.items()
                                  if r.key == key and r.status == RELEASED]:
                            del st.res[k]
                self.eval_expr(head, st)
                if "for_each_entry" in callee(head) and args(head) and len(node.succ) == 2:
                    # in the body, the cursor of list_for_each_entry*(pos, ..) is an entry:
                    # not NULL (`dmap = pos; break; .. if (!dmap)`)
                    body = st.copy()
                    self.set_fact(body, self.canon(norm(text(args(head)[0])), body), P)
                    return [(node.succ[0], body), (node.succ[1], st)]
            return [(s, st) for s in node.succ]
        self.emit("branch", st, node)
        if node.loop and st.res:
            forget_loop_released(self, st, node.idx)
        pred = self.predicate(atom, st)
        if pred is not None:
            return self.branch_on_held(node, st, *pred)
        retest = self.facts.retest_key(atom)
        # read before the test runs: its own `&key` argument counts as an out-argument
        # (`static_branch_unlikely(&key)`) and would forget the first outcome
        seen = st.values.get(retest) if retest else None
        subject, tset, fset, is_call = self.eval_cond(atom, st)
        out = []
        for i, (succ, taken) in enumerate(((node.succ[0], tset), (node.succ[1], fset))):
            s2 = st.copy() if i == 0 else st  # the last successor takes the state itself
            if retest:
                # the same test made again, nothing in it reassigned since: same branch
                # (`if (flags & LOCKING) lock(); ... if (flags & LOCKING) unlock();`)
                now = P if i == 0 else Z
                if seen is not None and not (seen & now):
                    continue  # infeasible
                s2.values[retest] = now
            if subject.startswith(EMPTY):
                if i == 1:
                    empty_when_zero(self, s2, subject[len(EMPTY):])
            elif subject and taken is not None:
                cur = s2.value(subject)
                new = cur & taken
                if not new:
                    continue  # infeasible
                self.set_fact(s2, subject, new)
                if self._hooks["assume"]:  # (no record made for nobody)
                    self.emit("assume", s2, Cond(node.line, subject, new,
                                                 is_call or subject in s2.from_call,
                                                 is_call or subject in s2.fresh))
            else:
                self.emit("assume", s2, None)
            for f in [f for f in s2.values if f.startswith("#")]:
                s2.values.pop(f)
            s2.fresh = frozenset()
            out.append((succ, s2))
        return out

    def predicate(self, atom: TSNode, st: PathState) -> tuple[list[str], str | None] | None:
        """A test the pack says is true exactly when a resource is held."""
        a = strip_parens(atom)
        if a is None:
            return None
        t = norm(text(a))
        if t in self.packs.tests:
            return [self.packs.tests[t]], None
        if t in self.facts.holding_flags:
            rid, key = self.facts.holding_flags[t]
            return [rid], key
        if a.type == "call_expression":
            spec = self.packs.calls.get(callee(a))
            if spec is not None and spec.tests:
                keys = self.target_keys(spec, a, st)
                return list(spec.tests), keys[0] if keys else None
        return None

    def branch_on_held(self, node: Node, st: PathState, rids: list[str], key: str | None):
        def match(r: Res) -> bool:
            return r.rid in rids and (key is None or r.key == key)

        held = [r for r in st.res.values() if match(r) and r.status in (HELD,)]
        if key is not None and not any(match(r) for r in st.res.values()):
            if any((rid, key) in self.facts.static_acquires for rid in rids):
                s3 = st.copy()
                self._assume_nothing(s3)
                return [(node.succ[1], s3)]  # never acquired on this path: the test is false
        gone = [r for r in st.res.values() if match(r) and r.status in (RELEASED, FAILED)]
        unsure = [r for r in st.res.values() if match(r) and r.status in (PENDING, UNKNOWN, ESCAPED)]
        out = []
        t, f = node.succ[0], node.succ[1]
        if held or unsure or not gone:
            s2 = st.copy()
            self._assume_nothing(s2)
            out.append((t, s2))
        if not held or unsure:
            s3 = st.copy()
            self._assume_nothing(s3)
            out.append((f, s3))
        return out

    def _assume_nothing(self, st: PathState) -> None:
        self.emit("assume", st, None)

    _in_cond = False

    def eval_cond(self, atom: TSNode, st: PathState):
        """Evaluate an atom's side effects; return (subject, true set, false set, is_call)."""
        self._in_cond = True
        try:
            return self._eval_cond(atom, st)
        finally:
            self._in_cond = False

    def _eval_cond(self, atom: TSNode, st: PathState):
        a = strip_parens(atom)
        if a is None:
            return "", None, None, False
        t = a.type
        if t == "call_expression":
            name = callee(a)
            idioms = self.packs.idioms
            if (name in idioms.is_err or name in idioms.is_err_or_null) and args(a):
                sub = self.canon(text(args(a)[0]), st)
                self.eval_expr(args(a)[0], st)
                if name in idioms.is_err:
                    return sub, E, frozenset("ZNP"), False
                return sub, frozenset("EZ"), frozenset("NP"), False
            tmp = f"#call@{a.start_byte}"
            self.eval_expr(a, st, result=tmp)
            return tmp, frozenset("NPE"), Z, True
        if t == "assignment_expression":
            self.eval_expr(a, st)
            lhs = self.canon(text(a.child_by_field_name("left")), st)
            return lhs, frozenset("NPE"), Z, lhs in st.from_call
        if t == "binary_expression":
            op = text(a.child_by_field_name("operator"))
            left, right = strip_parens(a.child_by_field_name("left")), strip_parens(a.child_by_field_name("right"))
            if op in ("==", "!=", "<", ">", "<=", ">=") and left is not None and right is not None:
                rt, lt = norm(text(right)), norm(text(left))
                if CONST.match(rt) or rt == "NULL":
                    side, const = left, rt
                elif CONST.match(lt) or lt == "NULL":
                    side, const = right, lt
                    op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
                else:
                    self.eval_expr(a, st)
                    same = equal_key(self.canon(lt, st), self.canon(rt, st))
                    if op in ("==", "!=") and self._never_equal(lt, rt, st):
                        st.values[same] = Z  # an acquired object is no local array
                    if op in ("==", "!=") and same in st.values:
                        # assigned one from the other on this path (Transfer._assign)
                        return (same, P, Z, False) if op == "==" else (same, Z, P, False)
                    if op == "<" and st.values.get(self.canon(lt, st)) == Z:
                        # `i < n` with i still 0: false says n is 0 (see empty_when_zero)
                        return EMPTY + self.canon(rt, st), P, Z, False
                    for side_ in (lt, rt):  # `if (pph != tmp) kfree(pph)`: can't tell
                        self.forget(self.canon(side_, st), st, exact=True)
                    if op in ("==", "!=") and not has_call(a) and norm(text(a)) in self.facts.retested_atoms:
                        # the same comparison tested twice takes the same branch
                        key = "?" + self.canon(lt, st) + "==" + self.canon(rt, st)
                        return (key, P, Z, False) if op == "==" else (key, Z, P, False)
                    return "", None, None, False
                side = strip_parens(side)
                is_call = side.type == "call_expression"
                if is_call:
                    sub = f"#call@{side.start_byte}"
                    self.eval_expr(side, st, result=sub)
                elif side.type == "assignment_expression":
                    self.eval_expr(side, st)
                    sub = self.canon(text(side.child_by_field_name("left")), st)
                else:
                    self.eval_expr(side, st)
                    sub = self.canon(text(side), st)
                tset, fset = compare_sets(op, const)
                return sub, tset, fset, is_call
            self.eval_expr(a, st)
            if op in ("&", "|", "^") and not has_call(a) and norm(text(a)) in self.facts.retested_atoms:
                # a flag test made twice: the second takes the same branch as the first
                return "?" + self.canon(text(a), st), frozenset("NPE"), Z, False
            return "", None, None, False
        if t in ("identifier", "field_expression", "subscript_expression", "pointer_expression"):
            self.eval_expr(a, st)
            return self.canon(text(a), st), frozenset("NPE"), Z, False
        self.eval_expr(a, st)
        return "", None, None, False

    def _never_equal(self, lt: str, rt: str, st: PathState) -> bool:
        """One side is a local array or object (`stack_sgs`, `&buf`), the other holds what
        the path acquired (`sgs = kmalloc_array(..)`): `if (sgs != stack_sgs) kfree(sgs)`
        is the release of the allocation."""
        for obj, other in ((lt, rt), (rt, lt)):
            name = obj[1:] if obj.startswith("&") else obj
            if name in self.facts.local_objects:
                key = self.canon(other, st)
                if any(r.key == key for r in st.res.values()):
                    return True
        return False

    def set_fact(self, st: PathState, key: str, val: frozenset) -> None:
        if val == ALL or not self.interesting(key, st):
            st.values.pop(key, None)
        else:
            st.values[key] = val
        # resolve what depends on this value
        for k, r in list(st.res.items()):
            if r.status == PENDING and r.pending_var == key:
                if val <= r.pending_ok:
                    st.res[k] = replace(r, status=HELD, pending_var="")
                elif not (val & r.pending_ok):
                    st.res[k] = replace(r, status=FAILED, pending_var="")
            elif r.key == key and r.status == HELD and val <= Z:
                # tested NULL: nothing is held (posix_acl_create may leave NULL)
                del st.res[k]
            elif r.key == key and r.status == HELD and val <= E:
                st.res[k] = replace(r, status=FAILED)

    def interesting(self, key: str, st: PathState) -> bool:
        """Only values that conditions, returns or resources depend on are worth a fact."""
        if key.startswith(("#", "?")) or key in self.facts.tested:
            return True
        return any(r.key == key or r.pending_var == key for r in st.res.values())
