"""The records of per-file facts (what knowledge/learn.py extracts and the cache keeps) and
the syntax helpers the extraction reads conditions, arguments and declarators with."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..cmodel import args, callee, norm, text

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
