"""error-path.lost-errno, the patch form: a call whose failure the function handed on
before the patch is made a bare statement by it; read backwards, a patch that starts
testing such a call fixes it."""

from __future__ import annotations

from dataclasses import dataclass

from reviewbot.checks import register
from reviewbot.checks.errno_forms import LOG_CALL, ends_in_goto, rhs_call
from reviewbot.checks.lost_errno import LOST_ERRNO
from reviewbot.cmodel import Function, callee, line_of, norm, text
from reviewbot.engine import ChangeContext, Checker, Raw
from reviewbot.engine.facts import failure_side, plain_test
from reviewbot.engine.keys import walk


@dataclass(frozen=True)
class _Uses:
    """How a function uses the results of the calls it makes."""

    tested: frozenset[str]  # callees whose result goes to a variable a failure test hands on
    bare: dict[str, list[int]]  # callee -> lines where its result is discarded


def _uses(fn: Function) -> _Uses:
    handed: set[str] = set()  # variables some failure test returns or jumps to unwind with
    for s in fn.of_type("if_statement"):
        cond = s.child_by_field_name("condition")
        var = plain_test(cond)
        body = s.child_by_field_name("consequence")
        if var and failure_side(cond) and (ends_in_goto(body) or any(
                b.type == "return_statement" and text(i) == var
                for b in walk(body, "return_statement") for i in walk(b, "identifier"))):
            handed.add(var)
    tested: set[str] = set()
    for a in fn.of_type("assignment_expression"):
        call = rhs_call(a.child_by_field_name("right"))
        if call and norm(text(a.child_by_field_name("left"))) in handed:
            tested.add(call)
    bare: dict[str, list[int]] = {}
    for st in fn.of_type("expression_statement"):
        e = st.named_children[0] if st.named_child_count else None
        if e is not None and e.type == "call_expression" and not LOG_CALL.match(callee(e)):
            bare.setdefault(callee(e), []).append(line_of(e))
    return _Uses(frozenset(tested), bare)


@register
class DroppedTestChecker(Checker):
    """The patch form of error-path.lost-errno: a call whose failure the function handed
    on before the patch is made a bare statement by it (`err = f(); if (err) goto out;`
    becomes `f();`), so its failure is lost from then on."""

    name = "lost-errno.change"
    rules = (LOST_ERRNO,)
    events = frozenset({"change"})
    change_fixes = True  # a patch that starts testing a bare call's result fixes it

    def check_change(self, ctx: ChangeContext) -> list[Raw]:
        if ctx.before is None:
            return []
        before, after = _uses(ctx.before), _uses(ctx.after)
        raws = []
        for call in sorted(before.tested - after.tested):
            new = after.bare.get(call, [])
            if len(new) <= len(before.bare.get(call, [])):
                continue
            line = new[-1]
            if ctx.backwards:  # `after` is the function before the patch
                msg = (f"before the patch the call of {call}() at line {line} discarded its "
                       f"result, so the function went on, and could report success, after "
                       f"{call}() failed; the patch tests it and hands the failure on")
            else:
                msg = (f"the patch stops testing the result of {call}(): before it, a failure "
                       f"of {call}() was handed to the caller (a failure test returned it or "
                       f"jumped to the error exit); now the call at line {line} discards it, "
                       f"so the function goes on, and may report success, after {call}() "
                       f"failed. Is its failure meant to be ignored now?")
            raws.append(Raw(LOST_ERRNO.id, line, f"{call}()", msg,
                            [(line, f"{call}() result discarded")], [line], "medium"))
        return raws
