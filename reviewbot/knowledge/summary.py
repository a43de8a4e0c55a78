"""What a function is, for the wrappers and noreturn fixed points (knowledge/aggregate.py):
which acquirer's result it returns, which release it applies to a parameter on every path,
whether it ends in a noreturn call; and the release callbacks it registers. A mixin of the
function scan in knowledge/learn.py, which provides the nodes (`calls`, `names`, `caps`,
`acq`, `top`, `params`) it reads."""

from __future__ import annotations

from bisect import bisect_left

from ..cmodel import args, callee, norm, text
from . import names
from .facts import (
    _LITERAL,
    _LOGGING,
    _POINTER_TESTS,
    _STORES,
    CallbackObs,
    FuncFacts,
    _atoms,
    _names_var,
    _returns_pointer,
    _template,
    _unwrap,
    failure_test,
)


class FunctionSummary:
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
