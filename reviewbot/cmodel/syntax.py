"""Syntax trees of C: the tree-sitter parser, plain-Python views of nodes, and the small
readings of them every layer uses (text, callee, arguments, node types of a function body).
"""

from __future__ import annotations

from functools import lru_cache

from tree_sitter import Language, Parser
from tree_sitter import Node as TSNode

__all__ = ["INDEXED_TYPES", "PNode", "args", "c_parser", "callee", "index_types", "line_of",
           "mirror", "norm", "strip_parens", "text", "walk_type"]


@lru_cache(maxsize=1)
def c_parser() -> Parser:
    """The tree-sitter parser of C (one per process)."""
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


def strip_parens(n: TSNode | None) -> TSNode | None:
    while n is not None and n.type in ("parenthesized_expression", "condition_clause"):
        kids = [c for c in n.named_children if c.type != "comment"]
        if len(kids) != 1:
            break
        n = kids[0]
    return n


def callee(call: TSNode) -> str:
    """The name a call expression calls (normalised expression text for a pointer call)."""
    if type(call) is PNode:  # asked for every path through the call: kept on the view
        got = call._callee
        if got is None:
            f = call.child_by_field_name("function")
            got = call._callee = (text(f) if f is not None and f.type == "identifier"
                                  else norm(text(f)))
        return got
    f = call.child_by_field_name("function")
    return text(f) if f is not None and f.type == "identifier" else norm(text(f))


def args(call: TSNode) -> list[TSNode]:
    """The arguments of a call expression, comments left out."""
    if type(call) is PNode:
        got = call._args
        if got is None:
            a = call.child_by_field_name("arguments")
            got = call._args = ([c for c in a.named_children if c.type != "comment"]
                                if a is not None else [])
        return got
    a = call.child_by_field_name("arguments")
    return [c for c in a.named_children if c.type != "comment"] if a is not None else []



# Node types the rules list for every function (Function.of_type): one query finds them all.
INDEXED_TYPES = ("call_expression", "assignment_expression", "declaration",
                 "expression_statement", "init_declarator", "labeled_statement",
                 "update_expression", "if_statement")


@lru_cache(maxsize=1)
def _types_query():
    from tree_sitter import Query

    return Query(c_parser().language, " ".join(f"({t}) @{t}" for t in INDEXED_TYPES))


def index_types(body: TSNode) -> dict[str, list[TSNode]]:
    from tree_sitter import QueryCursor

    got = QueryCursor(_types_query()).captures(body)
    # source order, an enclosing node before the nodes inside it (as a pre-order walk)
    out = {t: sorted(got.get(t, []), key=lambda n: (n.start_byte, -n.end_byte))
           for t in INDEXED_TYPES}
    return out


def walk_type(node: TSNode, typ: str, into_functions: bool = False):
    """Every node of a type at or under `node`, in pre-order; the bodies of function
    definitions under `node` are not entered unless `into_functions`. A cursor walks the
    tree: memory stays flat where a stack of children grew with the tree (a 4 MB
    expression held millions of nodes at once)."""
    cur = node.walk()
    depth = 0
    while True:
        n = cur.node
        if n.type == typ:
            yield n
        if (depth == 0 or into_functions or n.type != "function_definition") and \
                cur.goto_first_child():
            depth += 1
            continue
        while depth and not cur.goto_next_sibling():
            cur.goto_parent()
            depth -= 1
        if depth == 0:
            return
