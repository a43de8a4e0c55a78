"""Path walker: abstract interpretation of one function's CFG under the rule packs.

The walker explores paths from entry to every exit, carrying a ``State``: the resources
acquired on the path (with their status), what is known about values (zero, negative,
valid pointer, error pointer), and aliases (``ip = GFS2_I(inode)``). States that reach a
node equal to one seen before are not explored again, so loops terminate. Checkers
(reviewbot/checks/) receive events — release, store, goto, exit — and report findings;
the walker itself knows no rule.

Precision over recall: a resource whose fate the walker cannot know (passed to a call
that may take it over, released while its acquisition is undecided) becomes ``unknown``
and no checker reports on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from tree_sitter import Node as TSNode

from reviewbot.cmodel import Function, Node, PNode, args, callee, line_of, norm, strip_parens, text
from reviewbot.packs import CallSpec, Packs, Target

# Abstract values: Z zero/NULL, N negative int, P positive int / valid pointer, E ERR_PTR.
ALL = frozenset("ZNPE")
Z, N, P, E = (frozenset(c) for c in "ZNPE")
SUCCESS_SETS = {  # success kind -> (possible values, success values)
    "zero": (frozenset("ZN"), Z),
    "nonnull": (frozenset("ZP"), P),
    "not_err": (frozenset("EP"), P),
    "nonnull_not_err": (frozenset("ZEP"), P),
    "true": (frozenset("ZP"), P),
    "nonneg": (frozenset("ZNP"), frozenset("ZP")),
}

HELD, PENDING, RELEASED, FAILED, UNKNOWN, ESCAPED = (
    "held", "pending", "released", "failed", "unknown", "escaped",
)

_ERRNO = re.compile(r"^-\(?E[A-Z0-9_]+\)?$|^-\d+$")
_CONST = re.compile(r"^-?\(?[A-Z][A-Z0-9_]*\)?$|^-?\d+[uUlL]*$|^-?0x[0-9a-fA-F]+[uUlL]*$")
_HEAD = re.compile(r"^([A-Za-z_]\w*)(.*)$", re.S)
_INDEXED = re.compile(r"\+[A-Za-z_]|\[[A-Za-z_]")
_RELEASE_NAME = re.compile(r"(free|release|put|destroy|unlock|uninit|cleanup|drop|unref|close)")

# Bounds on the walk. Past WIDEN states at a node, values that no resource depends on are
# forgotten (the states then coincide); past MAX_STATES_PER_NODE the walk gives up there.
# "review" walks the few functions a patch touches; "audit" walks every function of a tree.
EFFORT = {
    "review": (24, 400, 8000),  # (WIDEN, MAX_STATES_PER_NODE, MAX_STEPS)
    "audit": (16, 200, 5000),
}


@dataclass(frozen=True)
class Res:
    rid: str  # resource kind id from the pack
    key: str  # canonical expression naming it
    status: str
    acq_line: int
    acq_call: str
    seq: int  # order of acquisition on this path
    nonlocal_: bool = False  # acquired straight into a longer-lived object (field, *out)
    pending_var: str = ""
    pending_ok: frozenset = frozenset()
    rel_line: int = 0
    rel_call: str = ""
    rel_seq: int = 0
    rel_after_label: bool = False
    acq_after_label: bool = False  # acquired in code reached through a label (retry loops)
    caller_owned: bool = False  # stored straight into an object the caller owns (param->f)
    handed: bool = False  # passed whole to a call no pack describes: it may own it now


@dataclass
class State:
    res: dict[tuple[str, str], Res] = field(default_factory=dict)
    facts: dict[str, frozenset] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    trail: tuple[tuple[int, str], ...] = ()
    labels: tuple[str, ...] = ()  # labels passed, in order
    last_cond: tuple = ()  # (line, subject, taken set, from_call)
    after_label: bool = False  # the path has entered unwind code (passed a goto/label)
    from_call: frozenset = frozenset()  # vars whose value came from a call result
    gotos: int = 0
    entry_goto: int = 0  # the goto that entered the unwind code (kept apart in the key)
    errno_check: tuple = ()  # (goto line, error variable, subject): checked at the exit
    cond_after_label: bool = False  # a branch was taken inside the unwind code

    def copy(self) -> State:
        new = object.__new__(State)
        new.__dict__.update(self.__dict__)
        new.res = dict(self.res)
        new.facts = dict(self.facts)
        new.alias = dict(self.alias)
        return new

    def key(self) -> tuple:
        return (
            frozenset((k, r.status, r.pending_var, r.pending_ok) for k, r in self.res.items()),
            frozenset(self.facts.items()),
            frozenset(self.alias.items()),
            self.after_label,
            self.entry_goto,
            self.errno_check[:2],
        )

    def note(self, line: int, what: str) -> None:
        if len(self.trail) < 60:
            self.trail = self.trail + ((line, what),)

    def fact(self, key: str) -> frozenset:
        return self.facts.get(key, ALL)


@dataclass
class Exit:
    node: Node
    kind: str  # "error" | "normal"
    expr: str
    via_goto: bool


class Checker:
    """Hooks a rule family implements. Every hook may call ``walker.report``."""

    def on_release(self, w: Walker, st: State, r: Res, line: int, call: str, consume: bool) -> None: ...
    def on_store(self, w: Walker, st: State, r: Res, line: int, lhs: str) -> None: ...
    def on_use(self, w: Walker, st: State, r: Res, line: int, how: str) -> None: ...
    def on_goto(self, w: Walker, st: State, node: Node) -> None: ...
    def on_exit(self, w: Walker, st: State, ex: Exit) -> None: ...
    def on_unchecked(self, w: Walker, st: State, spec: CallSpec, line: int) -> None: ...
    def on_wrong_release(self, w: Walker, st: State, r: Res, line: int, spec: CallSpec) -> None: ...
    def finish(self, w: Walker) -> None: ...


@dataclass
class Raw:
    """A finding before it is turned into a model.Finding."""

    rule: str
    line: int
    resource: str
    message: str
    trace: list[tuple[int, str]]
    lines: list[int] = field(default_factory=list)
    confidence: str = "high"


class Walker:
    def __init__(self, fn: Function, packs: Packs, checkers: list[Checker],
                 before: Function | None = None, effort: str = "review"):
        self.widen_at, self.max_states, self.max_steps = EFFORT[effort]
        fn.cfg()  # the static facts below read the graph
        self.fn = fn
        self.packs = packs
        self.checkers = checkers
        self.raw: dict[tuple[str, str, int], Raw] = {}
        self.steps = 0
        self.complete = True
        self.locals = _local_names(fn)
        self.local_objects = _local_objects(fn)
        self.cursors = _cursor_vars(fn)
        self.borrowed = _borrowed(fn, self.locals)
        self.errno_vars = _errno_vars(fn)
        self.reinit = _reinit_keys(fn)
        # values worth keeping when the walk widens (see widen())
        self.flags = _flag_vars(fn) | self._retested() | self.errno_vars | self._returned()
        seen_atoms: dict[str, int] = {}
        for n in fn.nodes:
            if n.kind == "cond" and n.ast is not None:
                t = norm(text(strip_parens(n.ast)))
                seen_atoms[t] = seen_atoms.get(t, 0) + 1
        self.retested = {t for t, c in seen_atoms.items() if c > 1}
        self.acquire_lines: dict[tuple[str, str], list[int]] = {}
        self.release_lines: dict[tuple[str, str], list[int]] = {}
        self.static_releases = self._static_releases()
        if before is not None and before is not fn:
            # what the function released before the patch still says what it must release
            self.static_releases |= Walker(before, packs, []).static_releases
        self.static_acquires = self._static_acquires()
        self.label_returns = _label_returns(fn)
        self.tested = self._tested_keys()
        self.annotated_locks = {
            norm(a.arg).lstrip("&") for a in fn.annotations
            if a.name in ("__acquires", "__releases", "__must_hold")
        }

    # ------------------------------------------------------------------ reporting
    def report(self, rule: str, line: int, resource: str, message: str, st: State,
               extra: list[tuple[int, str]] | None = None, lines: list[int] | None = None,
               confidence: str = "high") -> None:
        k = (rule, resource, line)
        if k in self.raw:
            return
        if any(r.key == resource and r.rid.startswith("inferred:") for r in st.res.values()):
            confidence = "low"  # the pair was inferred from the code, not from a pack
        trace = [(ln, self._pretty(n, st)) for ln, n in list(st.trail) + list(extra or [])]
        message = self._pretty(message, st)
        self.raw[k] = Raw(rule, line, resource, message, trace, lines or [], confidence)

    def _pretty(self, s: str, st: State) -> str:
        for var, tgt in sorted(st.alias.items(), key=lambda kv: -len(kv[1])):
            s = s.replace(tgt, var)
        # acquisitions by assignment read as statements, not calls
        return re.sub(r"([\w>.\-]+ = [^()'\s]+)\(\)", r"'\1'", s)

    def display(self, key: str, st: State) -> str:
        """The name the code uses: GFS2_I(inode)->i_gl is shown as ip->i_gl."""
        for var, tgt in st.alias.items():
            if key == tgt or key.startswith(tgt + "->") or key.startswith(tgt + "."):
                return var + key[len(tgt):]
        return key

    # ------------------------------------------------------------------ static facts
    def _calls(self):
        return self.fn.of_type("call_expression")

    def _static_releases(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for c in self._calls():
            spec = self.packs.calls.get(callee(c))
            if spec and spec.releases:
                for key in self._target_keys(spec, c, None):
                    for rid in spec.releases:
                        out.add((rid, key))
                        self.release_lines.setdefault((rid, key), []).append(line_of(c))
                        if _INDEXED.search(key):
                            out.add((rid, "@base:" + re.split(r"[+\[]", key)[0]))
        for a in self.fn.of_type("assignment_expression"):
            lhs = norm(text(a.child_by_field_name("left")))
            rhs = norm(text(a.child_by_field_name("right")))
            for spec in self.packs.assigns:
                if spec.releases and spec.lhs.match(lhs) and rhs in ("NULL", "0"):
                    out.add((spec.releases, lhs))
        return out

    def _static_acquires(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for c in self._calls():
            spec = self.packs.calls.get(callee(c))
            if spec and spec.acquires:
                parent = c.parent
                lhs = None
                if parent is not None and parent.type == "assignment_expression":
                    lhs = norm(text(parent.child_by_field_name("left")))
                for key in self._target_keys(spec, c, None, lhs):
                    for rid in spec.acquires:
                        out.add((rid, key))
                        self.acquire_lines.setdefault((rid, key), []).append(line_of(c))
        return out

    def _returned(self) -> set[str]:
        """Variables returned somewhere: whether an exit is an error exit depends on them."""
        return {norm(text(n.ast)) for n in self.fn.nodes
                if n.kind == "return" and n.ast is not None and n.ast.type == "identifier"}

    def _retested(self) -> set[str]:
        """Plain variables tested by two or more conditions: the tests are correlated."""
        seen: dict[str, int] = {}
        for n in self.fn.nodes:
            if n.kind == "cond" and n.ast is not None:
                for x in {norm(text(i)) for i in _walk(n.ast, "identifier")}:
                    seen[x] = seen.get(x, 0) + 1
        return {x for x, c in seen.items() if c >= 2 and x in self.locals}

    def _tested_keys(self) -> set[str]:
        """Expressions tested by some condition or returned: their values matter."""
        out: set[str] = set()
        for n in self.fn.nodes:
            if n.kind in ("cond", "return") and n.ast is not None:
                for typ in ("identifier", "field_expression"):
                    for x in _walk(n.ast, typ):
                        out.add(_ptr_key(norm(text(x))))
        # aliases of tested names are resolved when tested; keep canonical forms too
        return out | {k for k in list(out)}

    def entered_locked(self, rid: str, key: str) -> bool:
        """The function drops the lock before it first takes it: the caller holds it."""
        acq = self.acquire_lines.get((rid, key))
        rel = self.release_lines.get((rid, key))
        return bool(acq and rel and min(rel) < min(acq))

    def released_by_loop(self, rid: str, key: str) -> bool:
        """The function releases elements of this array in a loop (ghs + x)."""
        return (rid, "@base:" + re.split(r"[+\[]", key)[0]) in self.static_releases

    def releases_anywhere(self, rid: str, key: str) -> bool:
        return (rid, key) in self.static_releases or (rid, _strip_alias(key)) in self.static_releases

    # ------------------------------------------------------------------ keys
    def canon(self, s: str, st: State | None) -> str:
        s = norm(s)
        s = _ptr_key(s)
        if st is not None and st.alias:
            m = _HEAD.match(s)
            if m and m.group(1) in st.alias:
                s = st.alias[m.group(1)] + m.group(2)
        return s

    def _target_keys(self, spec: CallSpec, call: TSNode, st: State | None,
                     lhs: str | None = None) -> list[str]:
        a = args(call)
        keys: list[str] = []
        for t in spec.targets:
            if t.how == "return":
                if lhs:
                    keys.append(self.canon(lhs, st))
            elif t.how == "fmt":
                try:
                    keys.append(self.canon(t.fmt.format(*[norm(text(x)) for x in a]), st))
                except (IndexError, KeyError):
                    pass
            elif 0 <= t.index < len(a):
                keys.append(self.canon(text(a[t.index]), st))
        return [k for k in keys if k]

    # ------------------------------------------------------------------ walk
    def run(self) -> list[Raw]:
        entry = self.fn.cfg()
        joins = _joins(self.fn)
        seen: dict[int, set] = {}
        work: list[tuple[Node, State]] = [(entry, State())]
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
                k = st.key()
                if k in bucket:
                    continue
                if len(bucket) >= self.max_states:
                    self.complete = False
                    continue
                bucket.add(k)
            work.extend(self.step(node, st))
        for c in self.checkers:
            c.finish(self)
        return list(self.raw.values())

    def widen(self, st: State) -> State:
        """Keep only the facts that resources depend on: many paths then become one."""
        keep = {r.pending_var for r in st.res.values() if r.status == PENDING}
        keep |= {r.key for r in st.res.values()}
        keep |= {f for f in st.facts if f.startswith("?") or f in self.flags}  # correlated tests
        if all(f in keep for f in st.facts):
            return st
        st = st.copy()
        st.facts = {f: v for f, v in st.facts.items() if f in keep}
        st.errno_check = ()
        return st

    def step(self, node: Node, st: State) -> list[tuple[Node, State]]:
        kind = node.kind
        if kind in ("entry", "join", "break", "continue"):
            return [(s, st) for s in node.succ]
        if kind == "label":
            st = st.copy()
            st.labels = st.labels + (node.label,)
            st.note(node.line, f"{node.label}:")
            st.after_label = True
            st.cond_after_label = False
            return [(s, st) for s in node.succ]
        if kind == "goto":
            st = st.copy()
            st.gotos += 1
            if not st.after_label:
                st.entry_goto = node.line
            st.note(node.line, f"goto {node.label}")
            for c in self.checkers:
                c.on_goto(self, st, node)
            return [(s, st) for s in node.succ]
        if kind == "stmt":
            if _stmt_inert(node):
                return [(s, st) for s in node.succ]  # nothing here can change the state
            st = st.copy()
            self.eval_stmt(node.ast, st)
            return [(s, st) for s in node.succ]
        if kind == "switch":
            st = st.copy()
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
            ex = Exit(node, self.exit_kind(expr, st), norm(text(expr)), st.gotos > 0)
            self.mark_returned(expr, st, node.line)
            for c in self.checkers:
                c.on_exit(self, st, ex)
            return []
        return [(s, st) for s in node.succ]

    # ------------------------------------------------------------------ exits
    def exit_kind(self, expr: TSNode | None, st: State) -> str:
        if expr is None:
            return "normal"
        e = strip_parens(expr)
        t = norm(text(e))
        if _ERRNO.match(t) or t.startswith("ERR_PTR(") and t != "ERR_PTR(0)":
            return "error"
        if t.startswith("ERR_CAST(") or t.startswith("PTR_ERR("):
            return "error"
        if e.type in ("identifier", "field_expression"):
            f = st.fact(self.canon(t, st))
            if f and "Z" not in f and f != P:
                return "error"
        if t == "NULL" and any(r.status == FAILED for r in st.res.values()):
            return "error"
        return "normal"

    def mark_returned(self, expr: TSNode | None, st: State, line: int) -> None:
        if expr is None:
            return
        t = self.canon(text(expr), st)
        ternary = strip_parens(expr) is not None and strip_parens(expr).type == "conditional_expression"
        for k, r in list(st.res.items()):
            if r.status not in (HELD, PENDING):
                if r.status == RELEASED and _mentions(t, r.key) and not ternary \
                        and not t.startswith(("PTR_ERR", "IS_ERR")):
                    for c in self.checkers:
                        c.on_store(self, st, r, line, "return")
                continue
            if _mentions(t, r.key) and not t.startswith(("PTR_ERR(", "IS_ERR(")):
                st.res[k] = replace(r, status=ESCAPED)

    # ------------------------------------------------------------------ conditions
    def branch(self, node: Node, st: State) -> list[tuple[Node, State]]:
        atom = node.ast
        st = st.copy()
        if atom is None or atom.type == "expression_statement":  # iterator macro head
            if atom is not None:
                self.eval_expr(atom.named_children[0], st)
            return [(s, st) for s in node.succ]
        if st.after_label:
            st.cond_after_label = True
        pred = self.predicate(atom, st)
        if pred is not None:
            return self.branch_on_held(node, st, *pred)
        subject, tset, fset, is_call = self.eval_cond(atom, st)
        out = []
        for i, (succ, taken) in enumerate(((node.succ[0], tset), (node.succ[1], fset))):
            s2 = st.copy() if i == 0 else st  # the last successor takes the state itself
            if subject and taken is not None:
                cur = s2.fact(subject)
                new = cur & taken
                if not new:
                    continue  # infeasible
                self.set_fact(s2, subject, new)
                s2.last_cond = (node.line, subject, new, is_call or subject in s2.from_call)
            else:
                s2.last_cond = (node.line, "", ALL, False)
            for f in [f for f in s2.facts if f.startswith("#")]:
                s2.facts.pop(f)
            out.append((succ, s2))
        return out

    def predicate(self, atom: TSNode, st: State) -> tuple[list[str], str | None] | None:
        """A test the pack says is true exactly when a resource is held."""
        a = strip_parens(atom)
        if a is None:
            return None
        t = norm(text(a))
        if t in self.packs.tests:
            return [self.packs.tests[t]], None
        if a.type == "call_expression":
            spec = self.packs.calls.get(callee(a))
            if spec is not None and spec.tests:
                keys = self._target_keys(spec, a, st)
                return list(spec.tests), keys[0] if keys else None
        return None

    def branch_on_held(self, node: Node, st: State, rids: list[str], key: str | None):
        def match(r: Res) -> bool:
            return r.rid in rids and (key is None or r.key == key)

        held = [r for r in st.res.values() if match(r) and r.status in (HELD,)]
        if key is not None and not any(match(r) for r in st.res.values()):
            if any((rid, key) in self.static_acquires for rid in rids):
                s3 = st.copy()
                s3.last_cond = ()
                return [(node.succ[1], s3)]  # never acquired on this path: the test is false
        gone = [r for r in st.res.values() if match(r) and r.status in (RELEASED, FAILED)]
        unsure = [r for r in st.res.values() if match(r) and r.status in (PENDING, UNKNOWN, ESCAPED)]
        out = []
        t, f = node.succ[0], node.succ[1]
        if held or unsure or not gone:
            s2 = st.copy()
            s2.last_cond = ()
            out.append((t, s2))
        if not held or unsure:
            s3 = st.copy()
            s3.last_cond = ()
            out.append((f, s3))
        return out

    _in_cond = False

    def eval_cond(self, atom: TSNode, st: State):
        """Evaluate an atom's side effects; return (subject, true set, false set, is_call)."""
        self._in_cond = True
        try:
            return self._eval_cond(atom, st)
        finally:
            self._in_cond = False

    def _eval_cond(self, atom: TSNode, st: State):
        a = strip_parens(atom)
        if a is None:
            return "", None, None, False
        t = a.type
        if t == "call_expression":
            name = callee(a)
            if name in ("IS_ERR", "IS_ERR_OR_NULL") and args(a):
                sub = self.canon(text(args(a)[0]), st)
                self.eval_expr(args(a)[0], st)
                if name == "IS_ERR":
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
                if _CONST.match(rt) or rt == "NULL":
                    side, const = left, rt
                elif _CONST.match(lt) or lt == "NULL":
                    side, const = right, lt
                    op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
                else:
                    self.eval_expr(a, st)
                    for side_ in (lt, rt):  # `if (pph != tmp) kfree(pph)`: can't tell
                        self.forget(self.canon(side_, st), st, exact=True)
                    if op in ("==", "!=") and not _has_call(a) and norm(text(a)) in self.retested:
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
                tset, fset = _compare_sets(op, const)
                return sub, tset, fset, is_call
            self.eval_expr(a, st)
            if op in ("&", "|", "^") and not _has_call(a) and norm(text(a)) in self.retested:
                # a flag test made twice: the second takes the same branch as the first
                return "?" + self.canon(text(a), st), frozenset("NPE"), Z, False
            return "", None, None, False
        if t in ("identifier", "field_expression", "subscript_expression", "pointer_expression"):
            self.eval_expr(a, st)
            return self.canon(text(a), st), frozenset("NPE"), Z, False
        self.eval_expr(a, st)
        return "", None, None, False

    def set_fact(self, st: State, key: str, val: frozenset) -> None:
        if val == ALL or not self.interesting(key, st):
            st.facts.pop(key, None)
        else:
            st.facts[key] = val
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

    def interesting(self, key: str, st: State) -> bool:
        """Only values that conditions, returns or resources depend on are worth a fact."""
        if key.startswith(("#", "?")) or key in self.tested:
            return True
        return any(r.key == key or r.pending_var == key for r in st.res.values())

    # ------------------------------------------------------------------ statements
    def eval_stmt(self, s: TSNode | None, st: State) -> None:
        if s is None:
            return
        if s.type == "declaration":
            for d in s.named_children:
                if d.type == "init_declarator":
                    name = norm(text(_decl_ident(d.child_by_field_name("declarator"))))
                    val = d.child_by_field_name("value")
                    if val is not None and name:
                        self.assign(name, val, st, line_of(d))
            return
        if s.type == "expression_statement":
            for c in s.named_children:
                self.eval_expr(c, st, statement=True)
            return
        self.eval_expr(s, st)

    def eval_expr(self, e: TSNode | None, st: State, result: str | None = None,
                  statement: bool = False) -> None:
        if e is None:
            return
        t = e.type
        if t == "assignment_expression":
            lhs = e.child_by_field_name("left")
            rhs = e.child_by_field_name("right")
            op = text(e.child_by_field_name("operator"))
            if op != "=":
                self.eval_expr(rhs, st)
                self.set_fact(st, self.canon(text(lhs), st), ALL)
                return
            self.assign(norm(text(lhs)), rhs, st, line_of(e))
            return
        if t == "call_expression":
            for a in args(e):
                self.eval_expr(a, st)
            self.call(e, st, result, statement)
            return
        if t == "conditional_expression":
            self.eval_expr(e.child_by_field_name("condition"), st)
            # calls in the arms run on only one of two paths: their resources become unknown
            for arm in (e.child_by_field_name("consequence"), e.child_by_field_name("alternative")):
                for c in _walk(arm, "call_expression"):
                    for a in args(c):
                        self.forget(self.canon(text(a), st), st)
            return
        if t == "field_expression":
            self.check_deref(e, st)
        for c in _active_kids(e):
            self.eval_expr(c, st)

    def check_deref(self, e: TSNode, st: State) -> None:
        base = e.child_by_field_name("argument")
        if base is None or text(e.child_by_field_name("operator")) != "->":
            return
        key = self.canon(text(base), st)
        for r in st.res.values():
            if r.key == key and r.status == RELEASED:
                for c in self.checkers:
                    c.on_use(self, st, r, line_of(e), "deref")

    def forget(self, key: str, st: State, exact: bool = False) -> None:
        for k, r in list(st.res.items()):
            if r.key == key or (not exact and _mentions(key, r.key)):
                st.res[k] = replace(r, status=UNKNOWN)

    def assign(self, lhs_raw: str, rhs: TSNode | None, st: State, line: int) -> None:
        lhs = self.canon(lhs_raw, st)
        rhs = strip_parens(rhs)
        if rhs is None:
            return
        # The value being overwritten: aliases and facts about it die.
        simple = re.fullmatch(r"[A-Za-z_]\w*", lhs_raw) is not None
        if simple:
            st.alias.pop(lhs_raw, None)
            for v in [v for v, tgt in st.alias.items() if tgt == lhs]:
                st.alias.pop(v, None)
        rt = rhs.type
        rtext = norm(text(rhs))
        try:
            self._assign(lhs_raw, lhs, rhs, rt, rtext, simple, st, line)
        finally:
            # publish / unpublish patterns from the packs ([[assign]])
            for spec in self.packs.assigns:
                if spec.lhs.match(lhs):
                    if spec.value == "null" and rtext in ("NULL", "0") and spec.releases:
                        self.release(spec.releases, lhs, st, line, f"{lhs_raw} = NULL", False)
                    elif spec.value == "nonnull" and rtext not in ("NULL", "0") and spec.acquires:
                        self.acquire(spec.acquires, lhs, st, line, f"{lhs_raw} = {rtext}",
                                     nonlocal_=False, pending=None)

    def _assign(self, lhs_raw: str, lhs: str, rhs: TSNode, rt: str, rtext: str, simple: bool,
                st: State, line: int) -> None:
        if rt == "call_expression":
            for a in args(rhs):
                self.eval_expr(a, st)
            self._drop_key(lhs, st, line)
            spec = self.packs.calls.get(callee(rhs))
            if spec is not None and spec.alias and simple and args(rhs):
                st.alias[lhs_raw] = f"{callee(rhs)}({self.canon(text(args(rhs)[0]), st)})"
                self.set_fact(st, lhs, ALL)
                return
            if spec is not None and spec.returns_arg is not None and simple:
                a = args(rhs)
                if spec.returns_arg < len(a) and lhs_raw not in self.locals:
                    st.alias[lhs_raw] = self.canon(text(a[spec.returns_arg]), st)
            vals = _call_values(rhs)
            if callee(rhs) == "PTR_ERR" and args(rhs) and \
                    st.fact(self.canon(text(args(rhs)[0]), st)) <= E:
                vals = N  # PTR_ERR() of an error pointer is a negative errno
            self.set_fact(st, lhs, vals)
            st.from_call = st.from_call | {lhs}
            self.call(rhs, st, result=lhs, statement=False, lhs_raw=lhs_raw)
            return
        # not a call
        self.eval_expr(rhs, st)
        if rt == "conditional_expression":
            self._drop_key(lhs, st, line)
            self.set_fact(st, lhs, ALL)
            st.from_call = st.from_call - {lhs}
            return
        src_key = self.canon(text(rhs), st) if rt in ("identifier", "field_expression", "pointer_expression", "subscript_expression", "cast_expression") else ""
        if rt == "cast_expression":
            v = rhs.child_by_field_name("value")
            src_key = self.canon(text(v), st) if v is not None else ""
        if rtext.startswith("&") and "->" in rtext:
            root = self.canon(rtext[1:].split("->")[0], st)
            for k, r in list(st.res.items()):
                if r.key == root and r.status in (HELD, PENDING):
                    st.res[k] = replace(r, handed=True)  # ret = &hs->hs_group
        held = [r for r in st.res.values() if src_key and r.key == src_key]
        local_lhs = simple and lhs_raw in self.locals
        if held and local_lhs:
            # a local copy: another name for the same resource
            self._drop_key(lhs, st, line)
            st.alias[lhs_raw] = src_key
            self.set_fact(st, lhs, st.fact(src_key))
            return
        if held and not local_lhs:
            for r in held:
                k = (r.rid, r.key)
                if r.status in (HELD, PENDING):
                    st.res[k] = replace(r, status=ESCAPED)
                    st.note(line, f"{r.key} stored in {lhs_raw}")
                elif r.status == RELEASED:
                    for c in self.checkers:
                        c.on_store(self, st, r, line, lhs_raw)
        self._drop_key(lhs, st, line)
        st.from_call = st.from_call - {lhs}
        self.set_fact(st, lhs, _const_values(rtext, st.fact(src_key) if src_key else ALL))

    def _drop_key(self, key: str, st: State, line: int) -> None:
        """The variable naming a resource gets a new value: stop tracking the old one."""
        below = (key + "->", key + ".")
        for k, r in list(st.res.items()):
            if r.key == key or r.key.startswith(below):
                del st.res[k]
        for f in [f for f in st.facts if f == key or f.startswith(below)
                  or (f[:1] == "?" and _mentions(f, key))]:
            st.facts.pop(f, None)

    # ------------------------------------------------------------------ calls
    def call(self, c: TSNode, st: State, result: str | None, statement: bool,
             lhs_raw: str | None = None) -> None:
        name = callee(c)
        spec = self.packs.calls.get(name)
        line = line_of(c)
        a = args(c)
        # out-arguments get new values
        for x in a:
            xt = norm(text(x))
            if xt.startswith("&") and not (spec and (spec.acquires or spec.releases)):
                self.set_fact(st, self.canon(xt[1:], st), ALL)
        if spec is None:
            self.unknown_call(name, c, st, line, assigned=bool(result) and not result.startswith("#"))
            return
        if spec.acquires_nothing:
            return
        if spec.must_check and statement:
            for ck in self.checkers:
                ck.on_unchecked(self, st, spec, line)
        if spec.escapes is not None and spec.escapes.index < len(a):
            self.escape(self.canon(text(a[spec.escapes.index]), st), st, line, name)
        if spec.maybe_consumes is not None and spec.maybe_consumes.index < len(a):
            key = self.canon(text(a[spec.maybe_consumes.index]), st)
            self.forget(key, st)
        for rid, fmt in spec.consumes:
            try:
                tgt = fmt.format(*[self.canon(text(x), st) for x in a])
            except (IndexError, KeyError):
                continue
            self.release(rid, self.canon(tgt, st), st, line, name, consume=True)
        if spec.releases:
            for key in self._target_keys(spec, c, st):
                self.check_wrong_release(spec, key, st, line)
                for rid in spec.releases:
                    self.release(rid, key, st, line, name, consume=False)
        if spec.acquires:
            keys = self._target_keys(spec, c, st, lhs=lhs_raw)
            if (spec.returns_arg is not None and lhs_raw and lhs_raw in self.locals
                    and re.fullmatch(r"[A-Za-z_]\w*", lhs_raw)):
                keys = [self.canon(lhs_raw, st)]  # dev = get_device(d): 'dev' names it
            for t, key in zip([t for t in spec.targets if t.how != "return" or lhs_raw], keys, strict=False):
                nonlocal_ = self.is_nonlocal(key, t)
                pending = None
                if spec.success != "always":
                    possible, ok = SUCCESS_SETS[spec.success]
                    if t.how == "return":
                        pending = (key, ok)
                        self.set_fact(st, key, possible)
                    elif result:
                        pending = (result, ok)
                        if st.fact(result) == ALL or result.startswith("#"):
                            self.set_fact(st, result, possible)
                    # result ignored: assume it worked
                for rid in spec.acquires:
                    self.acquire(rid, key, st, line, name, nonlocal_, pending)
                if spec.may_be_null:
                    st.facts.pop(key, None)
        if spec.returns_arg is not None and result and result.startswith("#"):
            pass

    def owned_by_caller(self, key: str) -> bool:
        m = re.match(r"^\w+\((\w+)\)", key) or re.match(r"^(\w+)", key)
        root = m.group(1) if m else ""
        return root in self.fn.params or root not in self.locals or root in self.borrowed

    def is_nonlocal(self, key: str, t: Target) -> bool:
        root = re.match(r"^[A-Za-z_]\w*", key)
        if root is None:
            return True
        name = root.group(0)
        if key != name:  # a field or element of something
            return name not in self.locals or "->" in key
        return name not in self.locals and name not in self.fn.params

    def unknown_call(self, name: str, c: TSNode, st: State, line: int,
                     assigned: bool = False) -> None:
        """A call no pack describes. Releases by name are inferred conservatively."""
        if not st.res:
            return  # nothing held that the call could take or use
        looks_release = bool(_RELEASE_NAME.search(name.lower()))
        for x in args(c):
            key = self.canon(text(x), st)
            for k, r in list(st.res.items()):
                if r.key != key:
                    owned = r.key.startswith(key + "->") or r.key.startswith(key + ".")
                    if owned and looks_release and r.status in (HELD, PENDING):
                        st.res[k] = replace(r, status=UNKNOWN)
                    continue
                if r.status in (HELD, PENDING) and looks_release:
                    st.res[k] = replace(r, status=UNKNOWN)
                elif (r.status in (HELD, PENDING) and not r.handed and not self._in_cond
                      and text(x).strip() == text(x).strip().lstrip("&*")
                      and self.packs.resources.get(r.rid) is not None
                      and (self.packs.resources[r.rid].kind == "memory"
                           or (assigned and self.packs.resources[r.rid].kind == "ref"))):
                    # an allocation handed whole to a call (`nfs4_proc_layoutcommit(data)`)
                    # often changes owner there; tests (`if (check(p))`) do not
                    st.res[k] = replace(r, handed=True)
                elif r.status == RELEASED:
                    for ck in self.checkers:
                        ck.on_use(self, st, r, line, f"passed to {name}()")

    def escape(self, key: str, st: State, line: int, how: str) -> None:
        owner = _base_of_field(key)  # list_add(&obj->node, ...) stores obj
        for k, r in list(st.res.items()):
            owned = any(r.key == o or r.key.startswith(o + "->") or r.key.startswith(o + ".")
                        for o in {key, owner})
            if r.status in (HELD, PENDING) and (r.key == key or _mentions(key, r.key) or owned):
                st.res[k] = replace(r, status=ESCAPED)
                st.note(line, f"{r.key} handed to {how}()")

    def acquire(self, rid: str, key: str, st: State, line: int, call: str, nonlocal_: bool,
                pending: tuple[str, frozenset] | None) -> None:
        if f"@guard:{key}" in self.fn.free_vars or key in self.fn.free_vars:
            return  # released by the compiler (__free / guard)
        st.seq += 1
        status = PENDING if pending else HELD
        if _INDEXED.search(key):
            return  # ghs + x, bh[i]: which element is unknowable here
        st.res[(rid, key)] = Res(
            rid, key, status, line, call, st.seq, nonlocal_,
            pending[0] if pending else "", pending[1] if pending else frozenset(),
            acq_after_label=st.after_label,
            caller_owned=nonlocal_ and self.owned_by_caller(key),
        )
        st.note(line, f"{key} acquired by {call}()" if not call.startswith(key) else f"{call}")
        if pending and pending[0] in st.facts:
            self.set_fact(st, pending[0], st.facts[pending[0]])

    def check_wrong_release(self, spec: CallSpec, key: str, st: State, line: int) -> None:
        """A release call for one kind of resource applied to another kind (kfree of a
        buffer_head from sb_bread), or freeing an object whose embedded reference-counted
        member is still live (kfree of an object with an initialised kobject)."""
        kinds = self.packs.resources
        mine = {r.rid for r in st.res.values() if r.key == key}
        same_kind = bool(mine & set(spec.releases))
        for r in list(st.res.values()):
            if r.status != HELD:
                continue
            other = kinds.get(r.rid)
            if other is None:
                continue
            if r.key == key and not same_kind:
                rel_kinds = {kinds[x].kind for x in spec.releases if x in kinds}
                if "memory" in rel_kinds | {other.kind} and other.kind not in rel_kinds:
                    for ck in self.checkers:
                        ck.on_wrong_release(self, st, r, line, spec)
            elif other.embedded and (r.key == key or r.key.startswith(key + "->")
                                     or r.key.startswith(key + ".")):
                if any(kinds[x].kind == "memory" for x in spec.releases if x in kinds):
                    for ck in self.checkers:
                        ck.on_wrong_release(self, st, r, line, spec)

    def release(self, rid: str, key: str, st: State, line: int, call: str, consume: bool) -> None:
        if _INDEXED.search(key):
            # ghs + x: some element of the array; whichever it is, stop tracking them all
            base = re.split(r"[+\[]", key)[0]
            for k2, r2 in list(st.res.items()):
                if r2.rid == rid and re.split(r"[+\[]", r2.key)[0] == base:
                    st.res[k2] = replace(r2, status=UNKNOWN)
            return
        k = (rid, key)
        r = st.res.get(k)
        if r is None:
            # try the alias-free spelling (ip->i_gl vs GFS2_I(inode)->i_gl)
            for (rid2, key2), r2 in st.res.items():
                if rid2 == rid and _alias_pair(key2, key):
                    k, r = (rid2, key2), r2
                    break
        for ck in self.checkers:
            ck.on_release(self, st, r if r is not None else Res(rid, key, "absent", 0, "", 0), line, call, consume)
        kind = self.packs.resources.get(rid)
        if kind is not None and kind.embedded:
            # kobject_put(&obj->kobj), put_device(dev): the release callback frees the object
            owners = {key, _base_of_field(key)}
            for k2, r2 in list(st.res.items()):
                if r2.key in owners and r2.rid != rid and r2.status in (HELD, PENDING):
                    st.res[k2] = replace(r2, status=UNKNOWN)
        st.seq += 1
        if r is None:
            return
        if r.status in (HELD, PENDING, ESCAPED):
            new = RELEASED if r.status != PENDING else UNKNOWN
            if r.status == ESCAPED:
                new = UNKNOWN
            st.res[k] = replace(r, status=new, rel_line=line, rel_call=call, rel_seq=st.seq,
                                rel_after_label=st.after_label)
            st.note(line, f"{key} released by {call}()")
        elif r.status == RELEASED:
            st.res[k] = replace(r, status=UNKNOWN)  # reported once; stop
        elif r.status == FAILED:
            st.res[k] = replace(r, status=UNKNOWN)


# ---------------------------------------------------------------------- helpers


def _has_call(n: TSNode) -> bool:
    """A call with effects: container accessors and other upper-case macros (OCFS2_I(inode),
    BIT(3)) do not count."""
    return any(not re.match(r"^[A-Z][A-Z0-9_]*$", callee(c)) for c in _walk(n, "call_expression"))


def _compare_sets(op: str, const: str) -> tuple[frozenset, frozenset]:
    c = const.strip("()")
    if c in ("0", "NULL", "0UL", "0L", "false"):
        cv = "Z"
    elif c.startswith("-"):
        cv = "N"
    else:
        cv = "P"
    if op == "==":
        if cv == "Z":
            return Z, frozenset("NPE")
        return frozenset(cv), ALL
    if op == "!=":
        if cv == "Z":
            return frozenset("NPE"), Z
        return ALL, frozenset(cv)
    if cv != "Z":
        return ALL, ALL
    if op == "<":
        return frozenset("NE"), frozenset("ZP")
    if op == ">=":
        return frozenset("ZP"), frozenset("NE")
    if op == ">":
        return P, frozenset("ZNE")
    if op == "<=":
        return frozenset("ZNE"), P
    return ALL, ALL


def _const_values(t: str, src: frozenset) -> frozenset:
    if t in ("0", "NULL", "false", "ERR_PTR(0)", "0UL", "0L"):
        return Z
    if _ERRNO.match(t):
        return N
    if t.startswith("ERR_PTR(") or t.startswith("ERR_CAST("):
        return E
    if re.fullmatch(r"\d+[uUlL]*|0x[0-9a-fA-F]+|true", t):
        return P
    if t.startswith("&"):
        return P
    if t.startswith("PTR_ERR("):
        return frozenset("NZ")
    return src


def _call_values(c: TSNode) -> frozenset:
    name = callee(c)
    if name in ("PTR_ERR",):
        return frozenset("NZ")
    if name in ("ERR_PTR", "ERR_CAST"):
        return E
    return ALL


@lru_cache(maxsize=1 << 13)
def _outer_parens(s: str) -> str:
    """(&x->y) -> &x->y, when the parentheses enclose the whole expression."""
    while s.startswith("(") and s.endswith(")"):
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(s) - 1:
                return s
        s = s[1:-1]
    return s


# The expressions eval_expr acts on; a subtree with none of them changes no state.
_ACTIVE = frozenset({"assignment_expression", "call_expression", "conditional_expression",
                     "field_expression"})


def _inert(e) -> bool:
    """Whether evaluating `e` can change a state (decided once per syntax view: the same
    statement is evaluated again for every path state that reaches it)."""
    if type(e) is not PNode:
        return False
    got = e.inert
    if got is None:
        got = e.inert = e.type not in _ACTIVE and all(_inert(c) for c in e.named_children)
    return got


def _active_kids(e) -> list:
    """The named children of `e` whose evaluation can change a state (cached per view)."""
    if type(e) is not PNode:
        return e.named_children
    got = e.active_kids
    if got is None:
        got = e.active_kids = [c for c in e.named_children if not _inert(c)]
    return got


def _stmt_inert(node: Node) -> bool:
    """A statement node whose evaluation changes no state (no call, assignment,
    dereference or initialiser), decided once per node."""
    got = node.__dict__.get("_inert")
    if got is None:
        a = node.ast
        got = a is None or (not any(d.type == "init_declarator" for d in a.named_children)
                            if a.type == "declaration" else _inert(a))
        node.__dict__["_inert"] = got
    return got


def _joins(fn: Function) -> set[int]:
    """Nodes where two or more edges of the graph arrive."""
    got = fn.__dict__.get("_joins")
    if got is None:
        seen: set[int] = set()
        got = set()
        for n in fn.nodes:
            for s in n.succ:
                (got if s.idx in seen else seen).add(s.idx)
        got = fn.__dict__["_joins"] = got
    return got


@lru_cache(maxsize=1 << 14)  # pure, and asked again for every path through a statement
def _ptr_key(s: str) -> str:
    """&x -> x, &a[i] -> a+i, a+0 -> a, (type *)x -> x: how packs name resources."""
    s = _outer_parens(s)
    s = re.sub(r"^\((?:struct|const|unsigned|union)?[\w\s\*]*\*\)", "", s)
    if s.startswith("&") and not s.startswith("&&"):
        s = s[1:]
        m = re.fullmatch(r"(.+)\[(\w+)\]", s)
        if m and "[" not in m.group(1):
            s = m.group(1) if m.group(2) == "0" else f"{m.group(1)}+{m.group(2)}"
    if s.endswith("+0"):
        s = s[:-2]
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        s = s[1:-1]
    return s


@lru_cache(maxsize=1024)
def _mention_re(key: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w>.])" + re.escape(key) + r"(?![\w\[(])")


def _mentions(expr: str, key: str) -> bool:
    if not key or key not in expr:
        return False
    return _mention_re(key).search(expr) is not None


def _alias_pair(a: str, b: str) -> bool:
    """ip->i_gl and GFS2_I(inode)->i_gl: one spelled through a container accessor (an
    upper-case macro), the other through a variable; never two different variables."""
    acc = re.compile(r"^[A-Z][A-Z0-9_]*\(")
    if bool(acc.match(a)) == bool(acc.match(b)):
        return False
    return _strip_alias(a) == _strip_alias(b)


@lru_cache(maxsize=1 << 12)
def _strip_alias(key: str) -> str:
    """GFS2_I(inode)->i_gl and ip->i_gl compare equal when nothing better is known."""
    return re.sub(r"^[A-Za-z_]\w*\([^()]*\)", "*", re.sub(r"^[A-Za-z_]\w*(?=->)", "*", key))


def _base_of_field(lhs: str) -> str:
    i = lhs.rfind("->")
    j = lhs.rfind(".")
    cut = max(i, j)
    return lhs[:cut] if cut > 0 else lhs


def _walk(node: TSNode | None, typ: str):
    if node is None:
        return
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == typ:
            yield n
        stack.extend(n.children)


def _decl_ident(d: TSNode | None) -> TSNode | None:
    while d is not None and d.type not in ("identifier",):
        nxt = d.child_by_field_name("declarator")
        if nxt is None:
            kids = [c for c in d.named_children if c.type == "identifier"]
            return kids[0] if kids else None
        d = nxt
    return d


def _flag_vars(fn: Function) -> set[str]:
    """Locals only ever set to constants (need_unlock = true): they record a path."""
    consts: set[str] = set()
    other: set[str] = set()
    pairs = [(norm(text(a.child_by_field_name("left"))), norm(text(a.child_by_field_name("right"))))
             for a in fn.of_type("assignment_expression")]
    for d in fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        ident = _decl_ident(d.child_by_field_name("declarator"))
        if v is not None and ident is not None:
            pairs.append((text(ident), norm(text(v))))
    for lhs, rhs in pairs:
        if re.fullmatch(r"true|false|\d+|NULL|-?E[A-Z]+|-\d+", rhs):
            consts.add(lhs)
        else:
            other.add(lhs)
    return consts - other


def _borrowed(fn: Function, locals_: set[str]) -> set[str]:
    """Locals that point into what the caller passed (ls = &sdp->sd_lockstruct): objects
    reached through them belong to the caller."""
    pairs: list[tuple[str, str]] = []
    for a in fn.of_type("assignment_expression"):
        pairs.append((norm(text(a.child_by_field_name("left"))),
                      norm(text(a.child_by_field_name("right")))))
    for d in fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        ident = _decl_ident(d.child_by_field_name("declarator"))
        if v is not None and ident is not None:
            pairs.append((text(ident), norm(text(v))))
    owners = set(fn.params)
    out: set[str] = set()
    for _ in range(3):  # a short chain of borrowings is enough
        for lhs, rhs in pairs:
            if lhs not in locals_ or "(" in rhs:
                continue
            m = re.match(r"^&?\(?(\w+)(->|\.)", rhs)
            if m and m.group(1) in owners:
                out.add(lhs)
        owners |= out
    return out


def _errno_vars(fn: Function) -> set[str]:
    """Variables the function uses for error codes: somewhere assigned -EXXX."""
    out: set[str] = set()
    for a in fn.of_type("assignment_expression"):
        lhs = norm(text(a.child_by_field_name("left")))
        rhs = norm(text(a.child_by_field_name("right")))
        if lhs.isidentifier() and _ERRNO.match(rhs):
            out.add(lhs)
    for d in fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        if v is not None and _ERRNO.match(norm(text(v))):
            out.add(norm(text(_decl_ident(d.child_by_field_name("declarator")))))
    return out


def _reinit_keys(fn: Function) -> set[str]:
    """Holders set up by calls no pack knows (gfs2_holder_mark_uninitialized, memset)."""
    out: set[str] = set()
    for c in fn.of_type("call_expression"):
        for a in args(c):
            t = norm(text(a))
            if t.startswith("&"):
                out.add(_ptr_key(t))
    return out


def _cursor_vars(fn: Function) -> set[str]:
    """Variables that walk over arrays or lists (bi = rgd->rd_bits + x; p++): what they
    name changes from one iteration to the next."""
    out: set[str] = set()
    counts: dict[str, int] = {}
    for a in fn.of_type("assignment_expression"):
        lhs = norm(text(a.child_by_field_name("left")))
        counts[lhs] = counts.get(lhs, 0) + 1
    for a in fn.of_type("assignment_expression"):
        lhs = norm(text(a.child_by_field_name("left")))
        rhs = norm(text(a.child_by_field_name("right")))
        # assigned more than once (a loop's step and its unwind), not `ops = table[mode]`
        if lhs.isidentifier() and counts[lhs] > 1 and ("+" in rhs or "[" in rhs
                                                        or "->next" in rhs):
            out.add(lhs)
    for u in fn.of_type("update_expression"):
        arg = norm(text(u.child_by_field_name("argument")))
        if arg.isidentifier():
            out.add(arg)
    for st in fn.of_type("expression_statement"):
        call = st.named_children[0] if st.named_child_count else None
        if call is not None and call.type == "call_expression" and "for_each" in callee(call):
            a = args(call)
            if a:
                out.add(norm(text(a[0])))
    return out


def local_kinds(fn: Function) -> dict[str, str]:
    """How each local is declared: "object" (struct or array), or "pointer"."""
    out: dict[str, str] = {}
    for d in fn.of_type("declaration"):
        for c in d.named_children:
            inner = c.child_by_field_name("declarator") if c.type == "init_declarator" else c
            if inner is None:
                continue
            if inner.type == "identifier":
                out[text(inner)] = "object"
            elif inner.type == "array_declarator":
                ident = _decl_ident(inner)
                if ident is not None:
                    out[text(ident)] = "object"
            elif inner.type == "pointer_declarator":
                ident = inner.child_by_field_name("declarator")
                if ident is not None and ident.type == "identifier":
                    out[text(ident)] = "pointer"
    return out


def _local_objects(fn: Function) -> set[str]:
    """Locals that are objects (structs, arrays), not pointers to someone else's."""
    return {n for n, k in local_kinds(fn).items() if k == "object"}


def _local_names(fn: Function) -> set[str]:
    out: set[str] = set()
    for d in fn.of_type("declaration"):
        for c in d.named_children:
            if c.type in ("init_declarator", "identifier", "pointer_declarator", "array_declarator"):
                ident = _decl_ident(c) if c.type != "identifier" else c
                if ident is not None:
                    out.add(text(ident))
    return out


def _label_returns(fn: Function) -> dict[str, str]:
    """For each label, the expression the code after it returns (following gotos)."""
    out: dict[str, str] = {}
    fn.cfg()
    for name, lab in fn.labels.items():
        n, seen = lab, set()
        ret = ""
        while n is not None and n.idx not in seen:
            seen.add(n.idx)
            if n.kind == "return":
                ret = norm(text(n.ast)) if n.ast is not None else ""
                break
            if n.kind == "cond":
                n = n.succ[1] if len(n.succ) > 1 else (n.succ[0] if n.succ else None)
                continue
            n = n.succ[0] if n.succ else None
        out[name] = ret
    return out
