"""Per-file facts for `reviewbot learn`: what one C file's functions show about the calls they
make. Everything here is local to a file and independent of every other file, so the facts
are cached by the file's blob id and only aggregation (knowledge/aggregate.py) looks across
files.

What a function shows (from its tree-sitter syntax tree, via reviewbot.cmodel):

- failure exits: an `if` whose condition tests a call's result for failure (`!p`, `IS_ERR(p)`,
  `ret < 0`, `if (ret)`) and whose branch leaves by a forward `goto` or an error `return`;
  the cleanup of an exit is the calls its branch makes before leaving plus, for a goto, the
  calls from the label on (following forward gotos) up to a return;
- for each acquisition tested by a failure exit, the cleanup of the *next* failure exit:
  what is released there (on the acquired pointer, or sharing an argument with a status
  call, or its out-parameter) pairs with the acquisition; position in the ladder is what
  makes this precise (HERO's delta pairing): the next exit is the first place the
  acquisition has succeeded and must be undone;
- call-site statistics: how often a call's result is ignored, tested (and how), returned;
- what the function itself is: which acquirer's result it returns, which release it applies
  to a parameter on every path, whether it ends in a noreturn call;
- release callbacks (kref_put, `.release` members, devm actions) and managed calls.
"""


from __future__ import annotations

from bisect import bisect_left

from ..cmodel import args, callee, norm, parse_c, text
from . import names
from .facts import (
    _LANG,
    _LOGGING,
    _POINTER_TESTS,
    _QUERY_TYPES,
    ERR,
    NEG,
    NONZERO,
    NULL,
    TEST_KINDS,
    VERSION,
    CallbackObs,
    CallStats,
    ChanceObs,
    FileFacts,
    FuncFacts,
    PairObs,
    _atoms,
    _call_sig,
    _captures,
    _declarator,
    _errorish,
    _Exit,
    _shared,
    _struct_name,
    _unwrap,
    failure_test,
)
from .summary import FunctionSummary

__all__ = ["VERSION", "TEST_KINDS", "ERR", "NULL", "NEG", "NONZERO", "CallStats", "PairObs",
           "ChanceObs", "FuncFacts", "CallbackObs", "FileFacts", "failure_test", "file_facts"]


class _FunctionScan(FunctionSummary):
    """The facts of one function definition, from the nodes the file query found in it."""

    def __init__(self, fn, caps: dict[str, list], ff: FileFacts, statics: set[str]) -> None:
        self.fn = fn
        self.statics = statics
        self.caps = caps
        self.ff = ff
        self.calls = caps["call_expression"]
        self.call_pos = [c.start_byte for c in self.calls]
        self.names = [callee(c) for c in self.calls]
        self.params = fn.params
        self.pointers: set[str] = set()
        self.scalars: set[str] = set()
        self._types()
        self.assigns: dict[str, list[int]] = {}  # var -> positions of its assignments
        self.acq: list[tuple[int, object, str]] = []  # (pos, call, var) assigned from a call
        self.tests: dict[str, list[tuple[int, str, int]]] = {}  # var -> (pos, kind, exit)
        self.exits: list[_Exit] = []
        self.direct: list[tuple[object, str, int]] = []  # (call, kind, exit) tested in place
        self.top: list = []  # flattened top-level statements, labels as ("label", name)
        self.label_at: dict[str, int] = {}
        self._cleanup: dict[str, list] = {}

    # ---------------------------------------------------------------- declarations
    def _types(self) -> None:
        for d in self.caps["declaration"]:
            for decl in d.children_by_field_name("declarator"):
                ptr, name = _declarator(decl)
                if name:
                    (self.pointers if ptr else self.scalars).add(name)
        fdecl = self.fn.node.child_by_field_name("declarator")
        while fdecl is not None and fdecl.type != "function_declarator":
            fdecl = fdecl.child_by_field_name("declarator")
        plist = fdecl.child_by_field_name("parameters") if fdecl is not None else None
        for p in plist.named_children if plist is not None else []:
            if p.type == "parameter_declaration":
                ptr, name = _declarator(p.child_by_field_name("declarator"))
                if name:
                    (self.pointers if ptr else self.scalars).add(name)

    def _is_failure(self, operand, kind: str) -> bool:
        """Whether a test of this kind on this operand is a failure test (`!x` of a scalar,
        `if (x)` of a pointer, are not)."""
        key = norm(text(operand))
        if kind == NULL:
            return key not in self.scalars
        if kind == NONZERO:
            if operand.type == "call_expression":
                return True
            if operand.type == "assignment_expression":
                return norm(text(operand.child_by_field_name("left"))) in self.scalars
            return key in self.scalars
        return True

    # ---------------------------------------------------------------- scanning
    def run(self) -> FuncFacts:
        self._flatten()
        self._assignments()
        self._conditions()
        self._call_sites()
        self._pairs()
        self._callbacks()
        return self._summary()

    def _flatten(self) -> None:
        body = self.fn.body
        for s in body.named_children if body is not None else []:
            while s is not None and s.type == "labeled_statement":
                name = text(s.child_by_field_name("label"))
                self.label_at.setdefault(name, len(self.top))
                self.top.append(("label", name))
                inner = [c for c in s.named_children if c.type != "statement_identifier"]
                s = inner[0] if inner else None
            if s is not None and s.type != "comment":
                self.top.append(s)

    def _assignments(self) -> None:
        for a in self.caps["assignment_expression"]:
            left = norm(text(a.child_by_field_name("left")))
            self.assigns.setdefault(left, []).append(a.start_byte)
            rhs = _unwrap(a.child_by_field_name("right"))
            if rhs is not None and rhs.type == "call_expression":
                self.acq.append((rhs.start_byte, rhs, left))
        for d in self.caps["init_declarator"]:
            ptr, name = _declarator(d.child_by_field_name("declarator"))
            v = _unwrap(d.child_by_field_name("value"))
            if name:
                self.assigns.setdefault(name, []).append(d.start_byte)
                if v is not None and v.type == "call_expression":
                    self.acq.append((v.start_byte, v, name))
        self.acq.sort(key=lambda x: x[0])

    def _exit_of(self, ifs) -> tuple[list, list, str] | None:
        """(calls before leaving, label) when the if's branch leaves the function on error."""
        if ifs.child_by_field_name("alternative") is not None:
            return None
        c = ifs.child_by_field_name("consequence")
        stmts = [c] if c.type != "compound_statement" else \
            [s for s in c.named_children if s.type != "comment"]
        if not stmts:
            return None
        last = stmts[-1]
        pre = [_call_sig(x) for s in stmts[:-1] for x in self._calls_in(s)]
        sure = [_call_sig(x) for s in stmts[:-1] if s.type == "expression_statement"
                for x in self._calls_in(s)]
        if last.type == "goto_statement":
            name = text(last.child_by_field_name("label"))
            at = self.label_at.get(name)
            # forward only: `goto retry` loops back and is no exit
            if at is None or not self._label_after(name, last.start_byte):
                return None
            return pre, sure, name
        if last.type == "return_statement":
            e = last.named_children[0] if last.named_child_count else None
            if e is None or not _errorish(e):
                return None
            return pre, sure, ""
        return None

    def _label_after(self, name: str, pos: int) -> bool:
        i = self.label_at[name]
        for s in self.top[i + 1:]:
            if not isinstance(s, tuple):
                return s.start_byte > pos
        return True

    def _conditions(self) -> None:
        for ifs in self.caps["if_statement"]:
            ex = self._exit_of(ifs)
            cond = ifs.child_by_field_name("condition")
            atoms = _atoms(cond)
            exit_idx = -1
            tests: list[tuple[str, str]] = []
            parsed = []
            for a in atoms:
                ft = failure_test(a)
                if ft is None or ft[0] is None:
                    continue
                operand, kind = ft
                if operand.type == "assignment_expression":
                    rhs = _unwrap(operand.child_by_field_name("right"))
                    left = operand.child_by_field_name("left")
                    if rhs is not None and rhs.type == "call_expression":
                        var = norm(text(left))
                        if kind == NONZERO and var not in self.scalars:
                            continue  # if ((p = f())): tests success of a pointer
                        parsed.append((norm(text(left)), kind, a.end_byte, None))
                    continue
                if operand.type == "call_expression":
                    if kind == NONZERO and callee(operand) in ("IS_ERR", "IS_ERR_OR_NULL"):
                        continue
                    parsed.append(("", kind, a.end_byte, operand))
                    continue
                if not self._is_failure(operand, kind):
                    continue
                parsed.append((norm(text(operand)), kind, a.end_byte, None))
            if ex is not None and parsed:
                exit_idx = len(self.exits)
                tests = [(v, k) for v, k, _, c in parsed if c is None]
                self.exits.append(_Exit(ifs.start_byte, tests, ex[0], ex[1], ex[2], exit_idx))
            for var, kind, pos, call in parsed:
                if call is not None:
                    self.direct.append((call, kind, exit_idx))
                else:
                    self.tests.setdefault(var, []).append((pos, kind, exit_idx))
            self._guarded(ifs, atoms)

    def _guarded(self, ifs, atoms) -> None:
        """`if (p) release(p);`: the caller does not trust the release with NULL."""
        if len(atoms) != 1 or atoms[0].type != "identifier":
            return
        var = text(atoms[0])
        c = ifs.child_by_field_name("consequence")
        s = c.named_children[0] if c.type == "compound_statement" and \
            c.named_child_count == 1 else c
        if s.type == "expression_statement" and s.named_child_count == 1 and \
                s.named_children[0].type == "call_expression":
            call = s.named_children[0]
            a = args(call)
            if len(a) == 1 and text(a[0]) == var:
                g = self.ff.guarded
                name = callee(call)
                g[name] = g.get(name, 0) + 1

    def _calls_in(self, node) -> list:
        lo = bisect_left(self.call_pos, node.start_byte)
        hi = bisect_left(self.call_pos, node.end_byte)
        return self.calls[lo:hi]

    def _test_after(self, var: str, pos: int) -> tuple[int, str, int] | None:
        """The first test of var after pos, unless var is assigned again before it."""
        ts = self.tests.get(var)
        if not ts:
            return None
        nxt = min((p for p in self.assigns.get(var, ()) if p > pos), default=1 << 62)
        for t in ts:
            if pos < t[0] < nxt:
                return t
        return None

    def _call_sites(self) -> None:
        stats = self.ff.calls
        tested_by: dict[int, tuple[str, int]] = {}
        for pos, call, var in self.acq:
            t = self._test_after(var, pos)
            if t is not None:
                tested_by[call.start_byte] = (t[1], t[2])
        for call, kind, ex in self.direct:
            tested_by[call.start_byte] = (kind, ex)
        for call, name in zip(self.calls, self.names, strict=True):
            # a static function of this file: its name means nothing elsewhere
            if not name.isidentifier() or name in self.statics:
                continue
            st = stats.get(name)
            if st is None:
                st = stats[name] = CallStats()
            st.sites += 1
            if name.startswith(names.MANAGED_PREFIXES):
                self.ff.managed[name] = self.ff.managed.get(name, 0) + 1
            elif name in ("guard", "scoped_guard") and args(call):
                cls = norm(text(args(call)[0]))
                self.ff.guard_classes[cls] = self.ff.guard_classes.get(cls, 0) + 1
            t = tested_by.get(call.start_byte)
            if t is not None:
                st.tested += 1
                st.tests[TEST_KINDS.index(t[0])] += 1
                continue
            p = call.parent
            while p is not None and p.type == "parenthesized_expression":
                p = p.parent
            if p is None:
                continue
            if p.type == "expression_statement" or (
                    p.type == "cast_expression" and text(p.child_by_field_name("type")) == "void"):
                st.ignored += 1
            elif p.type == "return_statement":
                st.returned += 1
        for a in self.fn._notes:
            if a.name == "__free" and a.arg.isidentifier():
                self.ff.free_classes[a.arg] = self.ff.free_classes.get(a.arg, 0) + 1

    # ---------------------------------------------------------------- the ladder
    def cleanup(self, ex: _Exit) -> list[tuple[str, tuple[str, ...]]]:
        """The calls made on the way out through this exit (conditional ones too)."""
        if not ex.label:
            return ex.pre
        return ex.pre + self._label_cleanup(ex.label)[0]

    def sure(self, ex: _Exit) -> list[tuple[str, tuple[str, ...]]]:
        """The calls made on the way out whatever happens (statements of their own, not
        under an `if` or in a loop): `err: if (p) put(p);` says nothing of put(NULL)."""
        own = ex.sure_pre
        return own if not ex.label else own + self._label_cleanup(ex.label)[1]

    def _label_cleanup(self, label: str) -> tuple[list, list]:
        got = self._cleanup.get(label)
        if got is None:
            got = self._cleanup[label] = self._from_label(label)
        return got

    def _from_label(self, name: str) -> tuple[list, list]:
        out: list[tuple[str, tuple[str, ...]]] = []
        sure: list[tuple[str, tuple[str, ...]]] = []
        i = self.label_at[name] + 1
        seen = {name}
        steps = 0
        while i < len(self.top) and steps < 80:
            steps += 1
            s = self.top[i]
            i += 1
            if isinstance(s, tuple):
                continue
            if s.type == "goto_statement":
                target = text(s.child_by_field_name("label"))
                j = self.label_at.get(target)
                if j is None or target in seen or j < i:
                    break
                seen.add(target)
                i = j + 1
                continue
            calls = [_call_sig(c) for c in self._calls_in(s)]
            out += calls
            if s.type == "expression_statement":
                sure += calls
            if s.type == "return_statement":
                break
        return out, sure

    def _next_exit(self, i: int, var: str, pointer: bool) -> _Exit | None:
        """The next failure exit; for a pointer, not a second test of the same pointer
        (`if (IS_ERR(p)) ...; if (!p) ...`). A status variable is tested again by every
        later step (`ret = ...; if (ret)`): those are the ladder's next rungs."""
        for ex in self.exits[i + 1:]:
            if not pointer or all(v != var for v, _ in ex.tests):
                return ex
        return None

    def _pairs(self) -> None:
        if not self.exits:
            return
        fname = self.fn.name
        seen: set[PairObs] = set()
        unrel: set[str] = set()  # acquirers with a next exit
        for pos, call, var in self.acq:
            t = self._test_after(var, pos)
            if t is None or t[2] < 0:
                continue
            self._site(call, var, t[1], self.exits[t[2]], seen, unrel)
        for call, kind, ex in self.direct:
            if ex >= 0:
                self._site(call, "", kind, self.exits[ex], seen, unrel)
        self._void_sites(seen)
        self.ff.pairs += sorted(seen, key=lambda o: (o.acquire, o.release, o.rel_target))
        self.ff.chances += [ChanceObs(fname, a) for a in sorted(unrel)]

    def _site(self, call, var: str, kind: str, own: _Exit, seen: set, unrel: set) -> None:
        acq = callee(call)
        if not acq.isidentifier() or acq in ("IS_ERR", "PTR_ERR", "ERR_PTR", "ERR_CAST"):
            return
        own_clean = self.cleanup(own)
        if kind in _POINTER_TESTS and var:
            # the failed value handed to a release, whatever happens: it takes NULL / ERR_PTR
            d = self.ff.on_null if kind == NULL else self.ff.on_err if kind == ERR else None
            for rel, a in self.sure(own):
                if var in a and d is not None and names.is_release_name(rel):
                    d[rel] = d.get(rel, 0) + 1
        pointer = kind in _POINTER_TESTS and bool(var)
        nxt = self._next_exit(own.key, var, pointer)
        if nxt is None:
            return
        # what was taken between the acquisition and the next exit is undone there too:
        # hci_dev_lock(hdev) .. hci_dev_unlock(hdev) is no release of hci_get_route
        between = {self.names[i] for i in range(bisect_left(self.call_pos, call.end_byte),
                                                 bisect_left(self.call_pos, nxt.pos))}
        between.discard(acq)

        def undoes_other(rel: str) -> bool:
            return any(names.symmetric(b, rel) for b in between)

        if pointer:
            if self._released_between(var, call.end_byte, nxt.pos):
                return
            found = False
            for rel, a in self.cleanup(nxt):
                if rel == acq or rel.startswith(_LOGGING) or not rel.isidentifier() or \
                        undoes_other(rel):
                    continue
                for k, x in enumerate(a):
                    if x == var and names.is_release_name(rel):
                        seen.add(PairObs(self.fn.name, acq, "return", rel, f"arg:{k}", "var",
                                         (rel, a) not in own_clean, self._local(acq, rel)))
                        found = True
            # passed to something that is not a release: it may have taken it over
            if found or not any(var in a for _, a in self.cleanup(nxt)):
                unrel.add(acq)
            return
        # a status call: the release shares an argument, or takes its out-parameter
        acq_args = [norm(text(x)) for x in args(call)]
        own_set = set(own_clean)
        unrel.add(acq)
        for rel, a in self.cleanup(nxt):
            if (rel, a) in own_set or rel == acq or not names.is_release_name(rel) or \
                    rel.startswith(_LOGGING) or not rel.isidentifier() or undoes_other(rel):
                continue
            obs = _shared(acq_args, a)
            if obs is not None:
                i, k, how = obs
                tgt = f"out:{i}" if how == "out" else f"arg:{i}"
                seen.add(PairObs(self.fn.name, acq, tgt, rel, f"arg:{k}", how, True,
                                 self._local(acq, rel)))

    def _local(self, acq: str, rel: str) -> bool:
        return acq in self.statics or rel in self.statics

    def _released_between(self, var: str, lo: int, hi: int) -> bool:
        for i in range(bisect_left(self.call_pos, lo), bisect_left(self.call_pos, hi)):
            if names.is_release_name(self.names[i]) and \
                    any(norm(text(a)) == var for a in args(self.calls[i])):
                return True
        return False

    def _void_sites(self, seen: set) -> None:
        """`mutex_lock(&m); ... if (err) goto out; ... out: mutex_unlock(&m)`: a call whose
        result is not tested, undone by a symmetric name at the next failure exit."""
        ex_pos = [e.pos for e in self.exits]
        for s in self.top:
            if isinstance(s, tuple) or s.type != "expression_statement" or \
                    s.named_child_count != 1 or s.named_children[0].type != "call_expression":
                continue
            call = s.named_children[0]
            acq = callee(call)
            if not acq.isidentifier() or not names.is_acquire_name(acq):
                continue
            i = bisect_left(ex_pos, call.end_byte)
            if i >= len(self.exits):
                continue
            acq_args = [norm(text(x)) for x in args(call)]
            for rel, a in self.cleanup(self.exits[i]):
                if not names.symmetric(acq, rel):
                    continue
                obs = _shared(acq_args, a)
                if obs is not None:
                    seen.add(PairObs(self.fn.name, acq, f"arg:{obs[0]}", rel, f"arg:{obs[1]}",
                                     obs[2], True, self._local(acq, rel)))

def file_facts(source: bytes, path: str = "") -> FileFacts:
    """The facts of one C source file."""
    cf = parse_c(source, path)
    ff = FileFacts()
    root = cf.tree.root_node
    if _LANG[0] is None:
        _LANG[0] = cf.tree.language
    caps = _captures(root)
    starts = [f.node.start_byte for f in cf.functions]
    buckets: list[dict[str, list]] = [{t: [] for t in _QUERY_TYPES} for _ in cf.functions]
    for t, nodes in caps.items():
        for n in nodes:
            i = bisect_left(starts, n.start_byte + 1) - 1
            if i >= 0 and n.end_byte <= cf.functions[i].node.end_byte:
                buckets[i][t].append(n)
            elif t == "initializer_pair":
                _release_member(n, ff)
    ff.functions = len(cf.functions)
    # a header's static inline functions are seen by every file that includes it: global
    statics = set() if path.endswith(".h") else {f.name for f in cf.functions if f.is_static}
    for fn, b in zip(cf.functions, buckets, strict=True):
        if fn.body is None:
            continue
        ff.funcs.append(_FunctionScan(fn, b, ff, statics).run())
    if b"noreturn" in source:
        for d in root.named_children:
            if d.type == "declaration" and b"noreturn" in source[d.start_byte:d.end_byte]:
                for decl in d.children_by_field_name("declarator"):
                    while decl is not None and decl.type != "function_declarator":
                        decl = decl.child_by_field_name("declarator")
                    if decl is not None:
                        n = decl.child_by_field_name("declarator")
                        if n is not None and n.type == "identifier":
                            ff.noreturn_decls.append(text(n))
    return ff


def _release_member(pair, ff: FileFacts) -> None:
    """`.release = fn` in the initializer of a `struct kobj_type` (and the like)."""
    d = pair.child_by_field_name("designator")
    v = pair.child_by_field_name("value")
    if d is None or v is None or v.type != "identifier":
        return
    member = text(d).lstrip(".").strip()
    decl = pair.parent
    while decl is not None and decl.type not in ("declaration", "init_declarator"):
        decl = decl.parent
    if decl is not None and decl.type == "init_declarator":
        decl = decl.parent
    if decl is None or decl.type != "declaration":
        return
    struct = _struct_name(decl)
    if (struct, member) in names.RELEASE_MEMBERS:
        ff.callbacks.append(CallbackObs(text(v), f"{struct}.{member}"))
