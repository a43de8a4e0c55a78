"""One C function of a parsed file: where it is, its annotations, and what the rules ask
of it (node types of the body, callees, names the compiler releases, the CFG), each found on
first use and kept."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node as TSNode

from reviewbot.cmodel.annotations import Annotation
from reviewbot.cmodel.cfg import Node, build_cfg
from reviewbot.cmodel.syntax import args, callee, index_types, norm, text, walk_type

__all__ = ["Function"]


def _cache():
    """A field that keeps what a property found on first use (not compared, not shown)."""
    return field(default=None, init=False, repr=False, compare=False)


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
    _body: TSNode | None = _cache()
    _free: set[str] | None = _cache()
    _types: dict[str, list[TSNode]] | None = _cache()
    _callees: set[str] | None = _cache()

    @property
    def body(self) -> TSNode | None:
        if self._body is None:
            self._body = self.node.child_by_field_name("body")
        return self._body

    @property
    def free_vars(self) -> set[str]:
        """Names whose release the compiler does (__free/guard), found on first use."""
        if self._free is None:
            self._free = _scoped_vars(self, self._notes, self.source)
        return self._free

    def of_type(self, typ: str) -> list[TSNode]:
        """Every node of a type in the body, in source order (found once, then cached).
        The types the rules ask for are collected by one tree-sitter query, in C; any
        other type by a walk in Python."""
        if self._types is None:
            body = self.body
            self._types = index_types(body) if body is not None else {}
        got = self._types.get(typ)
        if got is None:
            body = self.body
            got = self._types[typ] = [] if body is None else list(walk_type(body, typ, True))
        return got

    def callees(self) -> set[str]:
        """The names this function's body calls."""
        if self._callees is None:
            self._callees = {callee(x) for x in self.of_type("call_expression")}
        return self._callees

    def cfg(self) -> Node:
        if self._cfg is None:
            self._cfg = build_cfg(self)
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

    def text(self) -> str:
        return text(self.node)


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
                for a in args(call):
                    out.add("@guard:" + norm(text(a)).lstrip("&"))
            elif callee(call) == "scoped_guard" and len(args(call)) >= 2:
                out.add("@guard:" + norm(text(args(call)[1])).lstrip("&"))
    return out
