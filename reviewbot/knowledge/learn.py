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
from dataclasses import dataclass, field
from functools import lru_cache

from ..cmodel import args, callee, norm, parse_c, text
from . import names

VERSION = 8  # of the facts; part of the cache key: bump when extraction changes

# test kinds: how a condition tests a value for failure
ERR, NULL, ERRNULL, NEG, NONZERO = "not_err", "nonnull", "nonnull_not_err", "nonneg", "zero"
TEST_KINDS = (ERR, NULL, ERRNULL, NEG, NONZERO)
_POINTER_TESTS = (ERR, NULL, ERRNULL)


@dataclass(slots=True)
class CallStats:
    """How one file's call sites of a function use its result."""

    sites: int = 0
    ignored: int = 0
    tested: int = 0
    returned: int = 0
    tests: list[int] = field(default_factory=lambda: [0] * len(TEST_KINDS))

    def add(self, o: CallStats) -> None:
        self.sites += o.sites
        self.ignored += o.ignored
        self.tested += o.tested
        self.returned += o.returned
        self.tests = [a + b for a, b in zip(self.tests, o.tests, strict=True)]


@dataclass(frozen=True, slots=True)
class PairObs:
    """In one function: after `acquire` succeeded, the next failure exit calls `release` on
    what it acquired. `shared` says how they are linked: "var" (the acquired pointer),
    "out" (an out-parameter), "field" / "whole" (a shared argument of a status call)."""

    function: str
    acquire: str
    acq_target: str  # return | arg:N | out:N
    release: str
    rel_target: str  # arg:N
    shared: str
    in_delta: bool  # not already in the cleanup of the acquisition's own failure exit
    local: bool  # one of the two is a static function of this file


@dataclass(frozen=True, slots=True)
class ChanceObs:
    """In one function: an acquisition had a next failure exit that could tell what undoes
    it (whether or not it released anything there: the pairs say what it released)."""

    function: str
    acquire: str


@dataclass(frozen=True, slots=True)
class FuncFacts:
    name: str
    static: bool
    returns_ptr: bool
    returns_from: tuple[str, ...]  # callees whose result a return statement returns
    # (callee, callee arg index, template of the argument over the parameters: "{0}",
    # "{0}->clk", "&{1}->lock"): top-level calls on a parameter, on every path
    releases: tuple[tuple[str, int, str], ...]
    null_guard: bool  # leaves at once when its first parameter is NULL / an error
    ends_in: str  # the noreturn candidate every path ends in ("" if none)
    noreturn_attr: bool
    stub: bool  # a config stub: empty, or returns a constant


@dataclass(frozen=True, slots=True)
class CallbackObs:
    function: str  # the callback
    via: str  # kref_put | devm_action | kobj_type.release | device.release ...


@dataclass(slots=True)
class FileFacts:
    functions: int = 0
    calls: dict[str, CallStats] = field(default_factory=dict)
    pairs: list[PairObs] = field(default_factory=list)
    chances: list[ChanceObs] = field(default_factory=list)
    # releases applied to a value its own failure test just found NULL / an ERR_PTR
    on_null: dict[str, int] = field(default_factory=dict)
    on_err: dict[str, int] = field(default_factory=dict)
    guarded: dict[str, int] = field(default_factory=dict)  # `if (p) release(p)`
    funcs: list[FuncFacts] = field(default_factory=list)
    callbacks: list[CallbackObs] = field(default_factory=list)
    managed: dict[str, int] = field(default_factory=dict)  # devm_* ... call sites
    free_classes: dict[str, int] = field(default_factory=dict)  # __free(NAME)
    guard_classes: dict[str, int] = field(default_factory=dict)  # guard(NAME)
    noreturn_decls: list[str] = field(default_factory=list)


_QUERY_TYPES = ("call_expression", "assignment_expression", "init_declarator", "if_statement",
                "labeled_statement", "goto_statement", "return_statement", "initializer_pair",
                "declaration")


@lru_cache(maxsize=1)
def _query(language):
    from tree_sitter import Query

    return Query(language, " ".join(f"({t}) @{t}" for t in _QUERY_TYPES))


def _captures(root) -> dict[str, list]:
    from tree_sitter import QueryCursor

    got = QueryCursor(_query(_LANG[0])).captures(root)
    return {t: sorted(got.get(t, []), key=lambda n: n.start_byte) for t in _QUERY_TYPES}


_LANG: list = [None]


def _unwrap(n):
    """Strip parentheses, casts to void *, likely/unlikely/WARN_ON around a condition."""
    while n is not None:
        t = n.type
        if t in ("parenthesized_expression", "condition_clause"):
            kids = [c for c in n.named_children if c.type != "comment"]
            if len(kids) != 1:
                return n
            n = kids[0]
        elif t == "call_expression" and callee(n) in ("likely", "unlikely", "WARN_ON",
                                                      "WARN_ON_ONCE") and len(args(n)) == 1:
            n = args(n)[0]
        else:
            return n
    return n


_LVALUE = ("identifier", "field_expression", "subscript_expression", "pointer_expression")


def _is_zero(n) -> bool:
    return n is not None and (n.type == "null" or text(n) in ("0", "NULL"))


def failure_test(n) -> tuple[object, str] | None:
    """(operand, kind) when atom `n` is true exactly on failure of its operand, as far as
    syntax tells; `!x` and `if (x)` are resolved by the caller, which knows x's type."""
    n = _unwrap(n)
    if n is None:
        return None
    t = n.type
    if t == "unary_expression" and text(n.child_by_field_name("operator")) == "!":
        return _unwrap(n.child_by_field_name("argument")), NULL
    if t == "call_expression":
        name = callee(n)
        a = args(n)
        if name == "IS_ERR" and len(a) == 1:
            return _unwrap(a[0]), ERR
        if name == "IS_ERR_OR_NULL" and len(a) == 1:
            return _unwrap(a[0]), ERRNULL
        return n, NONZERO  # if (f(x)): a status call
    if t == "binary_expression":
        op = text(n.child_by_field_name("operator"))
        left, right = _unwrap(n.child_by_field_name("left")), _unwrap(n.child_by_field_name("right"))
        if op == "==" and _is_zero(right) and right.type == "null":
            return left, NULL
        if op == "==" and _is_zero(left) and left.type == "null":
            return right, NULL
        if op == "==" and text(right) == "NULL":
            return left, NULL
        if op == "<" and text(right) == "0":
            return left, NEG
        if op == "!=" and text(right) == "0":
            return left, NONZERO
        return None
    if t in _LVALUE or t == "assignment_expression":
        return n, NONZERO
    return None


def _atoms(cond) -> list:
    """The atoms of `a || b || c` (each one alone makes the branch taken)."""
    n = _unwrap(cond)
    if n is not None and n.type == "binary_expression" and \
            text(n.child_by_field_name("operator")) == "||":
        return _atoms(n.child_by_field_name("left")) + _atoms(n.child_by_field_name("right"))
    return [n] if n is not None else []


@dataclass(slots=True)
class _Exit:
    pos: int
    tests: list[tuple[str, str]]  # (operand key, kind) of its failure atoms
    pre: list[tuple[str, tuple[str, ...]]]  # calls in the branch before it leaves
    sure_pre: list[tuple[str, tuple[str, ...]]]  # ... in statements of their own
    label: str  # "" for a return
    key: int = 0  # index among the function's exits


_LITERAL = ("number_literal", "string_literal", "char_literal", "null", "true", "false",
            "concatenated_string", "sizeof_expression")
_LOGGING = ("pr_", "dev_err", "dev_warn", "dev_info", "dev_dbg", "dev_notice", "dev_crit",
            "dev_printk", "netdev_", "printk", "WARN", "trace_", "BUG", "drm_err", "drm_dbg",
            "DRM_", "dev_err_probe", "netif_", "ath", "mlx", "seq_print", "snprintf",
            "sprintf", "memset", "memcpy", "strcpy", "strscpy", "dump_stack")


def _call_sig(call) -> tuple[str, tuple[str, ...]]:
    return callee(call), tuple(norm(text(a)) for a in args(call))


class _FunctionScan:
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

    # ---------------------------------------------------------------- callbacks
    def _callbacks(self) -> None:
        cb = self.ff.callbacks
        for call, name in zip(self.calls, self.names, strict=True):
            i = names.KREF_PUTS.get(name)
            via = "kref_put"
            if i is None:
                i, via = names.DEVM_ACTIONS.get(name), "devm_action"
            if i is not None:
                a = args(call)
                if len(a) > i and a[i].type == "identifier":
                    cb.append(CallbackObs(text(a[i]), via))
        for a in self.caps["assignment_expression"]:
            left, right = a.child_by_field_name("left"), _unwrap(a.child_by_field_name("right"))
            if left.type == "field_expression" and right is not None and \
                    right.type == "identifier" and \
                    text(left.child_by_field_name("field")) == "release" and \
                    norm(text(left.child_by_field_name("argument"))).endswith("dev"):
                cb.append(CallbackObs(text(right), "device.release"))

    # ---------------------------------------------------------------- the function itself
    def _summary(self) -> FuncFacts:
        fn = self.fn
        returns = self.caps["return_statement"]
        returns_from: set[str] = set()
        ptr = _returns_pointer(fn.node)
        const_only = True
        for r in returns:
            e = _unwrap(r.named_children[0]) if r.named_child_count else None
            if e is None:
                continue
            if e.type not in _LITERAL and not (e.type == "call_expression" and
                                               callee(e) in ("ERR_PTR",)) and \
                    not (e.type == "unary_expression" and e.named_children[0].type in _LITERAL
                         + ("identifier",)):
                const_only = False
            if not ptr:
                continue
            if e.type == "call_expression":
                returns_from.add(callee(e))
            elif e.type == "identifier":
                v = text(e)
                src = [c for p, c, var in self.acq if var == v and p < r.start_byte]
                if src and not self._stored(v):
                    returns_from.add(callee(src[-1]))
        body = fn.body
        stmts = [s for s in self.top if not isinstance(s, tuple)]
        stub = body is None or not self.calls and const_only and len(stmts) <= 1
        ends_in = ""
        if not returns and stmts and stmts[-1].type == "expression_statement" and \
                stmts[-1].named_child_count == 1 and \
                stmts[-1].named_children[0].type == "call_expression":
            ends_in = callee(stmts[-1].named_children[0])
        head = fn.source[fn.node.start_byte:body.start_byte if body is not None else
                         fn.node.end_byte]
        return FuncFacts(
            name=fn.name, static=fn.is_static, returns_ptr=ptr,
            returns_from=tuple(sorted(n for n in returns_from if n.isidentifier())),
            releases=self._param_releases(stmts, returns), null_guard=self._null_guard(stmts),
            ends_in=ends_in, noreturn_attr=b"noreturn" in head, stub=stub)

    def _stored(self, var: str) -> bool:
        """Whether the function hands `var` to a longer-lived place before returning it
        (`x->p = var`, `list_add(&var->node, ...)`): then its caller does not own it."""
        for a in self.caps["assignment_expression"]:
            r = _unwrap(a.child_by_field_name("right"))
            if r is not None and r.type == "identifier" and text(r) == var:
                return True
        for c, name in zip(self.calls, self.names, strict=True):
            name = name.lower()
            if any(w in name for w in _STORES) and any(
                    _names_var(norm(text(x)), var) for x in args(c)):
                return True
        return False

    def _param_releases(self, stmts, returns) -> tuple[tuple[str, int, str], ...]:
        if not self.params:
            return ()
        out = []
        gotos = self.caps["goto_statement"]
        for s in stmts:
            if s.type != "expression_statement" or s.named_child_count != 1 or \
                    s.named_children[0].type != "call_expression":
                continue
            call = s.named_children[0]
            name = callee(call)
            if not name.isidentifier() or name.startswith(_LOGGING) or \
                    not (names.is_release_name(name) or name in names.NULL_SAFE):
                continue  # only what may be a release is worth keeping for aggregation
            if any(g.start_byte < call.start_byte for g in gotos) or \
                    any(r.start_byte < call.start_byte and not self._guard_return(r)
                        for r in returns):
                break  # not reached on every path
            for k, a in enumerate(args(call)):
                tpl = _template(a, self.params)
                arg = norm(text(a))
                if tpl is not None and not self._taken_before(call, arg, name) and \
                        not self._used_after(call, arg):
                    out.append((name, k, tpl))
        return tuple(out)

    def _taken_before(self, call, arg: str, rel: str) -> bool:
        """Whether the function acquires `arg` itself before releasing it (lock .. unlock,
        get .. put inside one function): then it is balanced, not a release."""
        for c, name in zip(self.calls[:bisect_left(self.call_pos, call.start_byte)],
                           self.names, strict=False):
            if (names.is_acquire_name(name) or names.symmetric(name, rel)) and \
                    any(norm(text(x)) == arg for x in args(c)):
                return True
        return False

    def _used_after(self, call, arg: str) -> bool:
        """Whether a later call still uses what the call released (sg_miter_next stops the
        previous page, then goes on with the iterator): then it was no final release."""
        bare = arg.lstrip("&")
        for c in self.calls[bisect_left(self.call_pos, call.end_byte):]:
            for x in args(c):
                t = norm(text(x)).lstrip("&")
                if t == bare or t.startswith((bare + "->", bare + ".")):
                    return True
        return False

    def _guard_return(self, r) -> bool:
        """A return under `if (!param)` / `if (IS_ERR_OR_NULL(param))`: nothing to release."""
        p = r.parent
        if p is not None and p.type == "compound_statement":
            p = p.parent
        if p is None or p.type != "if_statement":
            return False
        for a in _atoms(p.child_by_field_name("condition")):
            ft = failure_test(a)
            if ft is None or ft[1] not in _POINTER_TESTS:
                return False
            if not (ft[0].type == "identifier" and text(ft[0]) in self.params):
                return False
        return True

    def _null_guard(self, stmts) -> bool:
        if not stmts or stmts[0].type != "if_statement" or not self.params:
            return False
        c = stmts[0].child_by_field_name("consequence")
        leave = c if c.type != "compound_statement" else (c.named_children[-1]
                                                          if c.named_child_count else None)
        if leave is None or leave.type != "return_statement":
            return False
        atoms = _atoms(stmts[0].child_by_field_name("condition"))
        for a in atoms:
            ft = failure_test(a)
            if ft is not None and ft[1] in _POINTER_TESTS and ft[0].type == "identifier" \
                    and text(ft[0]) == self.params[0]:
                return True
        return False


def _names_var(x: str, var: str) -> bool:
    return x == var or x.startswith((f"&{var}->", f"{var}->"))


_STORES = ("add", "insert", "link", "store", "push", "queue", "set_drvdata", "publish",
           "register", "hash", "list")


def _template(a, params: list[str]) -> str | None:
    """The argument as a template over the parameters: `p` -> "{0}", `p->clk` -> "{0}->clk",
    `&p->lock` -> "&{0}->lock"; None when it is not a parameter or a field of one."""
    amp = ""
    if a.type == "pointer_expression" and text(a.child_by_field_name("operator")) == "&":
        amp, a = "&", a.child_by_field_name("argument")
    if a.type == "identifier" and not amp:
        t = text(a)
        return f"{{{params.index(t)}}}" if t in params else None
    if a.type == "field_expression":
        base = a.child_by_field_name("argument")
        if base is not None and base.type == "identifier" and text(base) in params:
            op = "->" if "->" in text(a) else "."
            field_name = text(a.child_by_field_name("field"))
            return f"{amp}{{{params.index(text(base))}}}{op}{field_name}"
    return None


def _shared(acq_args: list[str], rel_args: tuple[str, ...]) -> tuple[int, int, str] | None:
    """(acquirer arg index, release arg index, how) of the first argument they share:
    "out" when the acquirer is given &x and the release x, else "field" (x->f, &x->f) or
    "whole" (a plain variable). Literals link nothing."""
    later = None
    for i, x in enumerate(acq_args):
        if not x or x[0].isdigit() or x[0] == '"' or x in ("NULL", "true", "false") or \
                x.isupper():
            continue
        for k, y in enumerate(rel_args):
            got = None
            if x == y:
                got = i, k, ("field" if ("->" in x or "." in x) else "whole")
            elif x == "&" + y and y.isidentifier():
                got = i, k, "out"
            if got is not None:
                if "(" not in x:
                    return got
                later = later or got  # ARRAY_SIZE(x->supplies): a count, not the object
    return later


def _errorish(e) -> bool:
    """A returned value that reports failure: -EFOO, ERR_PTR(..), PTR_ERR(..), NULL, a
    status variable, false."""
    e = _unwrap(e)
    t = e.type
    if t == "unary_expression" and text(e.child_by_field_name("operator")) == "-":
        return True
    if t == "call_expression":
        return callee(e) in ("ERR_PTR", "PTR_ERR", "ERR_CAST", "dev_err_probe")
    if t in ("null", "false", "identifier"):
        return True  # a status variable (ret, err) or NULL
    return False


def _declarator(d) -> tuple[bool, str]:
    """(is a pointer, name) of a declarator."""
    ptr = False
    while d is not None:
        t = d.type
        if t == "identifier":
            return ptr, text(d)
        if t == "pointer_declarator" or t == "array_declarator":
            ptr = True
        elif t == "function_declarator":
            return False, ""
        d = d.child_by_field_name("declarator") if t != "parenthesized_declarator" else \
            (d.named_children[0] if d.named_child_count else None)
    return False, ""


def _returns_pointer(fnode) -> bool:
    d = fnode.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        if d.type == "pointer_declarator":
            return True
        d = d.child_by_field_name("declarator")
    return False


def _struct_name(decl) -> str:
    t = decl.child_by_field_name("type")
    if t is not None and t.type == "struct_specifier":
        n = t.child_by_field_name("name")
        return text(n) if n is not None else ""
    return ""


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
