"""Control-flow graphs of C functions, built from their syntax trees.

A function's CFG is made of ``Node`` objects: ``stmt`` (an expression or declaration),
``cond`` (one atom of a condition, two successors: true, false), ``label``, ``goto``,
``return``, ``switch`` and ``join``. Short-circuit conditions are split into atoms, so
``if (a && !b)`` is two ``cond`` nodes. Iterator macros such as
``list_for_each_entry(...) { ... }`` (a call statement whose ``;`` is missing, followed by a
statement) are loops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tree_sitter import Node as TSNode

from reviewbot.cmodel.syntax import PNode, args, callee, line_of, mirror, strip_parens, text

if TYPE_CHECKING:
    from reviewbot.cmodel.function import Function

__all__ = ["LOOP_MACRO", "Node", "build_cfg"]

# any case: drivers spell their own iterators in capitals (`NCSI_FOR_EACH_CHANNEL(np, nc) {`)
LOOP_MACRO = re.compile(r"(for_each|_foreach|foreach_|^for_|_for_|each_entry|_each$)", re.I)


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


def build_cfg(fn: Function) -> Node:
    """The entry node of `fn`'s graph; its nodes are appended to ``fn.nodes`` and its labels
    set in ``fn.labels``."""
    return _Builder(fn).build()


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
            head = _labeled_head(s)
            if head is not None and _is_loop_macro(head) and i + 1 < len(stmts):
                # `err: list_for_each_entry_safe(p, n, head, list) { ... }`: the label's
                # statement is the loop's head, its body the next statement
                items.append(("labeled-loop", s, stmts[i + 1]))
                i += 2
                continue
            items.append(("stmt", s, None))
            i += 1
        for kind, s, body in reversed(items):
            if kind == "loop":
                succ = self.macro_loop(s, body, succ)
            elif kind == "labeled-loop":
                lab = self.labels[text(s.child_by_field_name("label"))]
                lab.succ = [self.macro_loop(_labeled_head(s), body, succ)]
                succ = lab
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
                inner = alt
                if alt.type == "else_clause":  # `else /* why */ stmt;`: the comment is a child
                    inner = next((c for c in alt.named_children if c.type != "comment"), None)
                other = self.stmt(inner, succ, brk, cont) if inner is not None else succ
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
        if t == "function_definition" and _macro_loop_def(s):
            # `ice_for_each_chnl_tc(i) {` after the declarations parses as a K&R function
            # definition: it is an iterator macro and its body, not one statement
            return self.macro_loop(s.child_by_field_name("declarator"),
                                   s.child_by_field_name("body"), succ)
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
        if c.type == "call_expression" and callee(c) in _TRANSPARENT and args(c):
            return self.cond(args(c)[0], t, f, loop)
        if c.type == "number_literal" and loop:
            return t if text(c).strip("uUlL") not in ("0",) else f
        if c.type in ("true", "false") and loop:
            return t if c.type == "true" else f
        n = self.new("cond", line_of(c), c, [t, f])
        n.loop = loop
        return n


_TRANSPARENT = {"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE", "unlikely_notrace"}


def _labeled_head(s: TSNode) -> TSNode | None:
    """The one statement a label is attached to, or None."""
    if s.type != "labeled_statement":
        return None
    inner = [c for c in s.named_children if c.type not in ("statement_identifier", "comment")]
    return inner[0] if len(inner) == 1 else None


def _macro_loop_def(s: TSNode) -> bool:
    """`name(i) {` parsed as a definition: `name` as its type (`(i)` the declarator) or as
    the declarator's function name."""
    d, ty = s.child_by_field_name("declarator"), s.child_by_field_name("type")
    if d is None or s.child_by_field_name("body") is None:
        return False
    if d.type == "function_declarator":
        name = d.child_by_field_name("declarator")
        return name is not None and bool(LOOP_MACRO.search(text(name)))
    return (d.type == "parenthesized_declarator" and ty is not None
            and ty.type == "type_identifier" and bool(LOOP_MACRO.search(text(ty))))


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
