"""The C function model: tree-sitter-c syntax trees turned into control-flow graphs.

Kernel C is not plain C: annotations such as ``__acquires(x)`` or ``__free(kfree)`` and
iterator macros such as ``list_for_each_entry(...) { ... }`` confuse any C grammar. Before
parsing, annotation macros are blanked out (same length, so every byte offset and line stays
where it was) and remembered; iterator macros are recognised in the tree (a call statement
whose ``;`` is missing, followed by a statement) and treated as loops.

A function's CFG is made of ``Node`` objects: ``stmt`` (an expression or declaration),
``cond`` (one atom of a condition, two successors: true, false), ``label``, ``goto``,
``return``, ``switch`` and ``join``. Short-circuit conditions are split into atoms, so
``if (a && !b)`` is two ``cond`` nodes. The rule engine walks these graphs.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

from tree_sitter import Language, Parser, Range
from tree_sitter import Node as TSNode

# Annotation macros blanked before parsing. Group "arg" is kept for the ones that mean
# something to the rules (lock annotations, scope-based cleanup).
_ARG_NAMES = frozenset(
    b"__acquires __releases __must_hold __acquire __release __cond_lock __free __attribute__ "
    b"__aligned __printf __section __cleanup __counted_by __guarded_by __diagnose_as "
    b"__alloc_size __malloc __nonstring".split())
_WORD_NAMES = frozenset(
    b"__init __exit __user __iomem __rcu __percpu __force __must_check __maybe_unused "
    b"__always_inline noinline __cold __hot __read_mostly __initdata __exitdata __ref "
    b"__latent_entropy __weak __pure __noreturn __deprecated __bitwise __le32 __be32 "
    b"__le64 __be64 __le16 __be16 notrace __visible __sched __kprobes __nocfi asmlinkage "
    b"__packed __noinline inline __inline __inline__ __randomize_layout __private "
    b"__ro_after_init __initconst __no_sanitize_address __xdp_rxq_info".split())
# One pass finds every candidate word (and whether a parenthesis follows); the name sets
# decide. Cheaper than two regexes of fifty alternatives each over every byte.
_ANNOT = re.compile(rb"\b(__[A-Za-z]\w*|inline|noinline|notrace|asmlinkage)\b(\s*\()?")
_NOT_NL = re.compile(rb"[^\n]")
# le32 etc are types in kernel code; keep them parseable by mapping to a plain word.
_TYPE_WORDS = {b"__le32", b"__be32", b"__le64", b"__be64", b"__le16", b"__be16", b"__bitwise"}

LOOP_MACRO = re.compile(r"(for_each|_foreach|foreach_|^for_|_for_|each_entry|_each$)")


@dataclass
class Annotation:
    name: str  # e.g. "__acquires"
    arg: str  # the text inside the parentheses
    offset: int  # byte offset in the source
    line: int


def _match_paren(src: bytes, start: int) -> int:
    """Index just past the parenthesis group that opens at src[start] == '('."""
    depth = 0
    i = start
    n = len(src)
    while i < n:
        c = src[i]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def preprocess(src: bytes) -> tuple[bytes, list[Annotation]]:
    """Blank kernel annotation macros (keeping offsets) and return what was blanked."""
    buf = bytearray(src)
    notes: list[Annotation] = []
    for m in _ANNOT.finditer(src):
        name = m.group(1)
        if m.group(2) is not None and name in _ARG_NAMES:
            open_at = m.end() - 1
            end = _match_paren(src, open_at)
            arg = src[open_at + 1 : end - 1].decode("utf-8", "replace").strip()
            line = src.count(b"\n", 0, m.start()) + 1
            notes.append(Annotation(name.decode(), arg, m.start(), line))
            buf[m.start():end] = _NOT_NL.sub(b" ", src[m.start():end])
        elif name in _WORD_NAMES and name not in _TYPE_WORDS:
            buf[m.start():m.end(1)] = b" " * (m.end(1) - m.start())
    return bytes(buf), notes


@lru_cache(maxsize=1)
def _parser() -> Parser:
    import tree_sitter_c

    return Parser(Language(tree_sitter_c.language()))


class PNode:
    """A plain-Python view of a syntax node, filled in on first use and then kept. The
    walker reads each statement once per path state; a Python attribute is much cheaper
    than asking tree-sitter again."""

    # No parent link: the views then form no reference cycles and die with the last
    # reference, not in the cyclic collector (which took a third of a batch review).
    __slots__ = ("_ts", "type", "start_byte", "start_point", "_str", "_kids", "_named",
                 "_fields", "inert", "active_kids", "_callee", "_args")

    def __init__(self, ts: TSNode) -> None:
        self._ts = ts
        self.type = ts.type
        self.start_byte = ts.start_byte
        self.start_point = ts.start_point
        self._str = None
        self._kids = None
        self._named = None
        self._fields = None
        # derived once by the engine: whether evaluating the node can change a path state,
        # and which named children can
        self.inert: bool | None = None
        self.active_kids: list[PNode] | None = None
        self._callee: str | None = None
        self._args: list[PNode] | None = None

    @property
    def str(self) -> str:
        if self._str is None:
            self._str = self._ts.text.decode("utf-8", "replace")
        return self._str

    @property
    def children(self) -> list[PNode]:
        if self._kids is None:
            self._kids = [PNode(k) for k in self._ts.children]
        return self._kids

    @property
    def named_children(self) -> list[PNode]:
        if self._named is None:
            self._named = [c for c in self.children if c._ts.is_named]
        return self._named

    @property
    def named_child_count(self) -> int:
        return len(self.named_children)

    def child_by_field_name(self, name: str) -> PNode | None:
        f = self._fields
        if f is None:
            f = self._fields = {}
        if name in f:
            return f[name]
        ts = self._ts.child_by_field_name(name)
        got = None
        if ts is not None:
            for c in self.children:
                if c._ts.start_byte == ts.start_byte and c._ts.end_byte == ts.end_byte \
                        and c.type == ts.type:
                    got = c
                    break
        f[name] = got
        return got

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<PNode {self.type} {self.str[:30]!r}>"


def mirror(n: TSNode) -> PNode:
    return PNode(n)


def text(node) -> str:
    if node is None:
        return ""
    if type(node) is PNode:
        return node.str
    return node.text.decode("utf-8", "replace")


@lru_cache(maxsize=1 << 14)
def norm(s: str) -> str:
    """Expression text without whitespace: the key that names a value or resource."""
    return "".join(s.split())


def line_of(node: TSNode) -> int:
    return node.start_point[0] + 1


# --------------------------------------------------------------------------- CFG


@dataclass(eq=False)
class Node:
    kind: str  # entry stmt cond label goto return switch join break continue
    line: int
    ts: TSNode | None = None  # the syntax node; `ast` is its plain-Python copy, made on use
    succ: list[Node] = field(default_factory=list)
    label: str = ""
    # cond nodes: True when this atom is the whole condition of an if/loop (for traces)
    loop: bool = False
    idx: int = 0
    _ast: PNode | None = None

    @property
    def ast(self) -> PNode | None:
        if self._ast is None and self.ts is not None:
            self._ast = mirror(self.ts)
        return self._ast

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<{self.kind}@{self.line} {self.label or text(self.ast)[:30]!r}>"


@dataclass
class Function:
    name: str
    node: TSNode  # function_definition
    start_line: int
    end_line: int
    annotations: list[Annotation]
    source: bytes
    params: list[str] = field(default_factory=list)
    _cfg: Node | None = None
    nodes: list[Node] = field(default_factory=list)
    labels: dict[str, Node] = field(default_factory=dict)
    _notes: list[Annotation] = field(default_factory=list)  # annotations inside the body
    is_static: bool = False

    @property
    def body(self) -> TSNode | None:
        b = self.__dict__.get("_body")
        if b is None:
            b = self.__dict__["_body"] = self.node.child_by_field_name("body")
        return b

    @property
    def free_vars(self) -> set[str]:
        """Names whose release the compiler does (__free/guard), found on first use."""
        got = self.__dict__.get("_free")
        if got is None:
            got = self.__dict__["_free"] = _scoped_vars(self, self._notes, self.source)
        return got

    def of_type(self, typ: str) -> list[TSNode]:
        """Every node of a type in the body, in source order (found once, then cached).
        The types the rules ask for are collected by one tree-sitter query, in C; any
        other type by a walk in Python."""
        idx = self.__dict__.get("_types")
        if idx is None:
            body = self.body
            idx = self.__dict__["_types"] = _index_types(body) if body is not None else {}
        got = idx.get(typ)
        if got is None:
            got = idx[typ] = [] if self.body is None else list(_walk_type(self.body, typ, True))
        return got

    def callees(self) -> set[str]:
        c = self.__dict__.get("_callees")
        if c is None:
            c = self.__dict__["_callees"] = {callee(x) for x in self.of_type("call_expression")}
        return c

    def cfg(self) -> Node:
        if self._cfg is None:
            self._cfg = _Builder(self).build()
        return self._cfg

    def drop_cfg(self) -> None:
        """Forget the graph (it is built again if asked for). Loops and gotos make it
        cyclic, and the syntax views hanging off it are large: unlinked here, they are freed
        at once instead of waiting for the cyclic collector."""
        for n in self.nodes:
            n.succ = []
            n._ast = None
        self.nodes = []
        self._cfg = None
        self.__dict__.pop("_joins", None)

    def text(self) -> str:
        return text(self.node)


class _Builder:
    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.labels: dict[str, Node] = {}

    def new(self, kind: str, line: int, ast: TSNode | None = None, succ=None, label="") -> Node:
        n = Node(kind, line, ast, list(succ or []), label)
        n.idx = len(self.fn.nodes)
        self.fn.nodes.append(n)
        return n

    def build(self) -> Node:
        body = self.fn.body
        end = self.new("return", self.fn.end_line)  # falling off the end
        if body is None:
            return self.new("entry", self.fn.start_line, succ=[end])
        for lab in self.fn.of_type("labeled_statement"):
            name = text(lab.child_by_field_name("label"))
            if name not in self.labels:
                self.labels[name] = self.new("label", line_of(lab), label=name)
        self.fn.labels = self.labels
        first = self.stmt(body, end, None, None)
        return self.new("entry", self.fn.start_line, succ=[first])

    # CPS: each method returns the entry node of the code that flows into `succ`.
    def seq(self, stmts: list[TSNode], succ: Node, brk, cont) -> Node:
        items: list[tuple[str, TSNode, TSNode | None]] = []
        i = 0
        while i < len(stmts):
            s = stmts[i]
            if _is_loop_macro(s) and i + 1 < len(stmts):
                items.append(("loop", s, stmts[i + 1]))
                i += 2
                continue
            items.append(("stmt", s, None))
            i += 1
        for kind, s, body in reversed(items):
            if kind == "loop":
                succ = self.macro_loop(s, body, succ)
            else:
                succ = self.stmt(s, succ, brk, cont)
        return succ

    def macro_loop(self, head: TSNode, body: TSNode, succ: Node) -> Node:
        join = self.new("join", line_of(head))
        # The iterator advances (head evaluated) then either runs the body or leaves.
        test = self.new("cond", line_of(head), head)
        body_entry = self.stmt(body, join, succ, join)
        test.succ = [body_entry, succ]
        test.loop = True
        join.succ = [test]
        return join

    def stmt(self, s: TSNode, succ: Node, brk, cont) -> Node:
        t = s.type
        if t == "compound_statement":
            return self.seq([c for c in s.named_children if c.type != "comment"], succ, brk, cont)
        if t in ("expression_statement", "declaration"):
            if s.named_child_count == 0:
                return succ
            return self.new("stmt", line_of(s), s, [succ])
        if t == "if_statement":
            then = self.stmt(s.child_by_field_name("consequence"), succ, brk, cont)
            alt = s.child_by_field_name("alternative")
            other = succ
            if alt is not None:
                inner = alt.named_children[0] if alt.type == "else_clause" else alt
                other = self.stmt(inner, succ, brk, cont)
            return self.cond(s.child_by_field_name("condition"), then, other)
        if t == "while_statement":
            join = self.new("join", line_of(s))
            body = self.stmt(s.child_by_field_name("body"), join, succ, join)
            join.succ = [self.cond(s.child_by_field_name("condition"), body, succ, loop=True)]
            return join
        if t == "do_statement":
            join = self.new("join", line_of(s))
            test = self.cond(s.child_by_field_name("condition"), join, succ, loop=True)
            body = self.stmt(s.child_by_field_name("body"), test, succ, test)
            join.succ = [body]
            return join
        if t == "for_statement":
            join = self.new("join", line_of(s))
            upd = s.child_by_field_name("update")
            step = self.new("stmt", line_of(upd), upd, [join]) if upd is not None else join
            body = self.stmt(s.child_by_field_name("body"), step, succ, step)
            c = s.child_by_field_name("condition")
            join.succ = [self.cond(c, body, succ, loop=True) if c is not None else body]
            init = s.child_by_field_name("initializer")
            if init is not None:
                return self.new("stmt", line_of(init), init, [join])
            return join
        if t == "return_statement":
            expr = s.named_children[0] if s.named_child_count else None
            return self.new("return", line_of(s), expr)
        if t == "goto_statement":
            name = text(s.child_by_field_name("label"))
            target = self.labels.get(name)
            if target is None:
                target = self.labels[name] = self.new("label", line_of(s), label=name)
            return self.new("goto", line_of(s), s, [target], label=name)
        if t == "labeled_statement":
            name = text(s.child_by_field_name("label"))
            lab = self.labels[name]
            inner = [c for c in s.named_children if c.type not in ("statement_identifier", "comment")]
            lab.succ = [self.seq(inner, succ, brk, cont) if inner else succ]
            return lab
        if t == "break_statement":
            return self.new("break", line_of(s), s, [brk or succ])
        if t == "continue_statement":
            return self.new("continue", line_of(s), s, [cont or succ])
        if t == "switch_statement":
            return self.switch(s, succ, cont)
        if t in ("comment", "preproc_call", "preproc_def", "preproc_include"):
            return succ
        if t in ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif"):
            # Take the first branch of #if/#ifdef: the code the common config builds.
            kids = [
                c
                for c in s.named_children
                if c.type not in ("identifier", "preproc_else", "preproc_elif", "preproc_defined")
                and s.child_by_field_name("condition") != c
            ]
            return self.seq(kids, succ, brk, cont)
        if t == "case_statement":  # stray case outside a switch body we understood
            kids = [c for c in s.named_children if s.child_by_field_name("value") != c]
            return self.seq(kids, succ, brk, cont)
        # Anything else (asm, errors): an opaque statement.
        return self.new("stmt", line_of(s), s, [succ])

    def switch(self, s: TSNode, succ: Node, cont) -> Node:
        body = s.child_by_field_name("body")
        sw = self.new("switch", line_of(s), s.child_by_field_name("condition"))
        cases = [c for c in (body.named_children if body else []) if c.type == "case_statement"]
        entries: list[Node] = []
        nxt = succ
        has_default = False
        for case in reversed(cases):
            if case.children and case.children[0].type == "default":
                has_default = True
            value = case.child_by_field_name("value")
            stmts = [c for c in case.named_children if c != value and c.type != "comment"]
            nxt = self.seq(stmts, nxt, succ, cont)
            entries.append(nxt)
        entries.reverse()
        sw.succ = entries + ([] if has_default else [succ])
        if not sw.succ:
            sw.succ = [succ]
        return sw

    def cond(self, c: TSNode | None, t: Node, f: Node, loop: bool = False) -> Node:
        c = strip_parens(c)
        if c is None:
            return t
        if c.type == "binary_expression":
            op = text(c.child_by_field_name("operator"))
            if op == "&&":
                right = self.cond(c.child_by_field_name("right"), t, f, loop)
                return self.cond(c.child_by_field_name("left"), right, f, loop)
            if op == "||":
                right = self.cond(c.child_by_field_name("right"), t, f, loop)
                return self.cond(c.child_by_field_name("left"), t, right, loop)
        if c.type == "unary_expression" and text(c.child_by_field_name("operator")) == "!":
            return self.cond(c.child_by_field_name("argument"), f, t, loop)
        if c.type == "call_expression" and callee(c) in _TRANSPARENT and _args(c):
            return self.cond(_args(c)[0], t, f, loop)
        if c.type == "number_literal" and loop:
            return t if text(c).strip("uUlL") not in ("0",) else f
        if c.type in ("true", "false") and loop:
            return t if c.type == "true" else f
        n = self.new("cond", line_of(c), c, [t, f])
        n.loop = loop
        return n


_TRANSPARENT = {"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE", "unlikely_notrace"}


def strip_parens(n: TSNode | None) -> TSNode | None:
    while n is not None and n.type in ("parenthesized_expression", "condition_clause"):
        kids = [c for c in n.named_children if c.type != "comment"]
        if len(kids) != 1:
            break
        n = kids[0]
    return n


def callee(call: TSNode) -> str:
    if type(call) is PNode:  # asked for every path through the call: kept on the view
        got = call._callee
        if got is None:
            f = call.child_by_field_name("function")
            got = call._callee = (text(f) if f is not None and f.type == "identifier"
                                  else norm(text(f)))
        return got
    f = call.child_by_field_name("function")
    return text(f) if f is not None and f.type == "identifier" else norm(text(f))


def _args(call: TSNode) -> list[TSNode]:
    if type(call) is PNode:
        got = call._args
        if got is None:
            a = call.child_by_field_name("arguments")
            got = call._args = ([c for c in a.named_children if c.type != "comment"]
                                if a is not None else [])
        return got
    a = call.child_by_field_name("arguments")
    return [c for c in a.named_children if c.type != "comment"] if a is not None else []


args = _args


def _is_loop_macro(s: TSNode) -> bool:
    if s.type != "expression_statement" or s.named_child_count != 1:
        return False
    call = s.named_children[0]
    if call.type != "call_expression":
        return False
    semi = s.children[-1]
    if not (semi.type == ";" and semi.is_missing) and semi.type == ";":
        return False
    name = callee(call)
    return bool(LOOP_MACRO.search(name))


# Node types the rules list for every function (Function.of_type): one query finds them all.
INDEXED_TYPES = ("call_expression", "assignment_expression", "declaration",
                 "expression_statement", "init_declarator", "labeled_statement",
                 "update_expression", "if_statement")


@lru_cache(maxsize=1)
def _types_query():
    from tree_sitter import Query

    return Query(_parser().language, " ".join(f"({t}) @{t}" for t in INDEXED_TYPES))


def _index_types(body: TSNode) -> dict[str, list[TSNode]]:
    from tree_sitter import QueryCursor

    got = QueryCursor(_types_query()).captures(body)
    # source order, an enclosing node before the nodes inside it (as a pre-order walk)
    out = {t: sorted(got.get(t, []), key=lambda n: (n.start_byte, -n.end_byte))
           for t in INDEXED_TYPES}
    return out


def _walk_type(node: TSNode, typ: str, into_functions: bool = False):
    """Every node of a type at or under `node`, in pre-order; the bodies of function
    definitions under `node` are not entered unless `into_functions`."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == typ:
            yield n
        if n.type == "function_definition" and n is not node and not into_functions:
            continue
        stack.extend(reversed(n.children))


# --------------------------------------------------------------------------- files


@dataclass
class CFile:
    path: str
    source: bytes
    tree: object
    functions: list[Function]
    clean: bytes = b""  # the source with annotations blanked: what the tree was parsed from

    def function_at(self, line: int) -> Function | None:
        for f in self.functions:
            if f.start_line <= line <= f.end_line:
                return f
        return None

    def by_name(self) -> dict[str, Function]:
        return {f.name: f for f in self.functions}


def _decl_name(decl: TSNode | None) -> str:
    while decl is not None:
        if decl.type in ("identifier", "field_identifier"):
            return text(decl)
        if decl.type == "parenthesized_declarator":
            decl = decl.named_children[0] if decl.named_child_count else None
            continue
        decl = decl.child_by_field_name("declarator")
    return ""


def _param_names(fdecl: TSNode) -> list[str]:
    out: list[str] = []
    plist = fdecl.child_by_field_name("parameters")
    for p in plist.named_children if plist is not None else []:
        if p.type == "parameter_declaration":
            name = _decl_name(p.child_by_field_name("declarator"))
            if name:
                out.append(name)
    return out


_CACHE: dict[tuple[str, int], CFile] = {}
_CACHE_MAX = 4


def parse_c(source: str | bytes, path: str = "") -> CFile:
    """Parse a C file (cached: the same text is often read by several rules). A new text of
    a file parsed recently (a patch's post-image after its pre-image) is parsed
    incrementally from the old tree: tree-sitter re-reads only what changed."""
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    key = (path, hash(raw))
    hit = _CACHE.get(key)
    if hit is not None and hit.source == raw:
        return hit
    base = next((c for c in reversed(_CACHE.values()) if c.path == path and c.clean), None)
    cf = _parse_c(raw, path, base)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = cf
    return cf


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common prefix (at most `limit`): equal 4 KiB blocks first, each one
    memcmp, then a bisection inside the first block that differs."""
    step, i = 4096, 0
    while i + step <= limit and a[i:i + step] == b[i:i + step]:
        i += step
    lo, hi = i, min(i + step, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[i:mid] == b[i:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix (at most `limit`), as _common_prefix from the end."""
    la, lb = len(a), len(b)
    step, i = 4096, 0
    while i + step <= limit and a[la - i - step:la - i] == b[lb - i - step:lb - i]:
        i += step
    lo, hi = i, min(i + step, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid:la - i] == b[lb - mid:lb - i]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(buf: bytes, off: int) -> tuple[int, int]:
    return buf.count(b"\n", 0, off), off - (buf.rfind(b"\n", 0, off) + 1)


def _parse_tree(clean: bytes, base: CFile | None):
    """A syntax tree of `clean`, reusing `base`'s tree for the unchanged text (one edit
    spanning everything between the common prefix and the common suffix)."""
    if base is None:
        return _parser().parse(clean)
    old = base.clean
    pre = _common_prefix(old, clean, min(len(old), len(clean)))
    suf = _common_suffix(old, clean, min(len(old), len(clean)) - pre)
    tree = base.tree.copy()  # the old tree stays valid for whoever still holds it
    tree.edit(start_byte=pre, old_end_byte=len(old) - suf, new_end_byte=len(clean) - suf,
              start_point=_point(old, pre), old_end_point=_point(old, len(old) - suf),
              new_end_point=_point(clean, len(clean) - suf))
    return _parser().parse(clean, tree)


def _parse_c(raw: bytes, path: str, base: CFile | None = None) -> CFile:
    clean, notes = preprocess(raw)
    tree = _parse_tree(clean, base)
    return CFile(path, raw, tree, _functions(tree.root_node, notes, raw), clean)


def _functions(root: TSNode, notes: list[Annotation], raw: bytes) -> list[Function]:
    funcs: list[Function] = []
    prev_end = 0
    for fn in sorted(_walk_type(root, "function_definition"), key=lambda n: n.start_byte):
        fdecl = fn.child_by_field_name("declarator")
        while fdecl is not None and fdecl.type != "function_declarator":
            fdecl = fdecl.child_by_field_name("declarator")
        if fdecl is None:
            continue
        name = _decl_name(fdecl.child_by_field_name("declarator"))
        if not name:
            continue
        body = fn.child_by_field_name("body")
        start = fn.start_byte
        head_end = body.start_byte if body is not None else fn.end_byte
        # annotations between the previous function's end and this body belong to it
        mine = [a for a in notes if prev_end <= a.offset < fn.end_byte and a.offset >= start - 200]
        prev_end = fn.end_byte
        f = Function(
            name=name,
            node=fn,
            start_line=line_of(fn),
            end_line=fn.end_point[0] + 1,
            annotations=[a for a in mine if a.offset < head_end or a.name == "__free"],
            source=raw,
            params=_param_names(fdecl),
            is_static=any(
                c.type == "storage_class_specifier" and text(c) == "static" for c in fn.children
            ),
        )
        f._notes = [a for a in notes if start <= a.offset < fn.end_byte]
        funcs.append(f)
    return funcs


# ------------------------------------------------------------------ parts of a file

REGION_MIN_BYTES = 2_048  # smaller files are parsed whole: nothing to save
_CLOSER = re.compile(rb"^\}", re.M)
_NEWLINE = re.compile(rb"\n")


@lru_cache(maxsize=1)
def _region_parser() -> Parser:
    return Parser(_parser().language)


def lines_with(text: str, word: str) -> set[int]:
    """1-based numbers of the lines that contain `word` (to parse only their functions)."""
    return {i for i, ln in enumerate(text.split("\n"), 1) if word in ln} if word in text else set()


def parse_region(source: str | bytes, path: str, lines: set[int],
                 names: set[str] | frozenset[str] = frozenset()) -> CFile:
    """The functions of a file that hold one of `lines` (1-based) or are named in `names`,
    parsed without the rest of the file: a patch touches a few functions of files that run
    to thousands of lines, and only those are analysed.

    A function is delimited as kernel style writes it: from the line after the previous
    top-level closing brace in column 0 to its own. Tree-sitter reads only those ranges
    (positions stay those of the whole file). Where that reading is not clean (the line is
    in a syntax error, or a construct is cut by a conditional), the whole file is parsed, so
    the result is never worse than parse_c's.
    """
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    if len(raw) < REGION_MIN_BYTES:
        return parse_c(raw, path)
    starts = [0] + [m.end() for m in _NEWLINE.finditer(raw)]  # offset of each line
    nlines = len(starts)

    def line_at(offset: int) -> int:
        return bisect_right(starts, offset) - 1

    closers = [line_at(m.start()) for m in _CLOSER.finditer(raw)]
    targets = {ln - 1 for ln in lines if 0 < ln <= nlines}
    for name in names:
        if name.isidentifier():
            pat = rb"^(?:[A-Za-z_][^;(\n]*?\b)?" + re.escape(name.encode()) + rb"\s*\("
            targets |= {line_at(m.start()) for m in re.finditer(pat, raw, re.M)}
    if not targets:
        return CFile(path, raw, None, [], b"")
    spans: list[tuple[int, int]] = []  # 0-based inclusive line ranges
    for t in sorted(targets):
        i = bisect_left(closers, t)
        first = closers[i - 1] + 1 if i > 0 else 0
        last = closers[i] if i < len(closers) else nlines - 1
        if spans and first <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    if sum(b - a + 1 for a, b in spans) * 2 > nlines:
        return parse_c(raw, path)
    clean = bytearray(raw)
    notes: list[Annotation] = []
    ranges = []
    for a, b in spans:
        s = starts[a]
        e = starts[b + 1] if b + 1 < nlines else len(raw)
        part, part_notes = preprocess(raw[s:e])
        clean[s:e] = part
        notes += [Annotation(n.name, n.arg, n.offset + s, n.line + a) for n in part_notes]
        end_point = (b + 1, 0) if b + 1 < nlines else (b, e - starts[b])
        ranges.append(Range((a, 0), end_point, s, e))
    cleanb = bytes(clean)
    parser = _region_parser()
    parser.included_ranges = ranges
    tree = parser.parse(cleanb)
    # the regions must read as whole top-level constructs: a cut one leaves an error or a
    # statement outside any function (errors inside a function, from macros taking types,
    # are the same in the whole file), else the whole file decides
    if any(c.type == "ERROR" or c.is_missing or (c.type.endswith("_statement")
                                                 and c.type != "expression_statement")
           for c in tree.root_node.children):
        return parse_c(raw, path)
    return CFile(path, raw, tree, _functions(tree.root_node, notes, raw), b"")


_FREE_DECL = re.compile(rb"__free\s*\([^)]*\)\s*(?:=\s*)?")


def _scoped_vars(fn: Function, notes: list[Annotation], raw: bytes) -> set[str]:
    """Names whose release the compiler does (`__free(...)` declarations, `guard(...)`)."""
    out: set[str] = set()
    for a in notes:
        if a.name != "__free":
            continue
        # the declared identifier follows the annotation: `type *name __free(f) = ...` has it
        # before; look at the declaration text around the annotation.
        line_start = raw.rfind(b"\n", 0, a.offset) + 1
        line_end = raw.find(b"\n", a.offset)
        decl = raw[line_start:line_end].decode("utf-8", "replace")
        m = re.search(r"\*?\s*(\w+)\s+__free\s*\(", decl) or re.search(r"__free\s*\([^)]*\)\s*\**\s*(\w+)", decl)
        if m:
            out.add(m.group(1))
    body = fn.body
    if body is not None:
        for call in fn.of_type("call_expression"):
            f = call.child_by_field_name("function")
            # guard(mutex)(&lock) / scoped_guard(spinlock, &lock)
            if f is not None and f.type == "call_expression" and callee(f) in ("guard", "scoped_guard"):
                for a in _args(call):
                    out.add("@guard:" + norm(text(a)).lstrip("&"))
            elif callee(call) == "scoped_guard" and len(_args(call)) >= 2:
                out.add("@guard:" + norm(text(_args(call)[1])).lstrip("&"))
    return out


def functions_touching(cfile: CFile, lines: set[int]) -> list[Function]:
    return [f for f in cfile.functions if any(f.start_line <= ln <= f.end_line for ln in lines)]
