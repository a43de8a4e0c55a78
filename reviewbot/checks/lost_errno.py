"""error-path.lost-errno: an error value that was in hand is lost before the return."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import NamedTuple

from reviewbot.checks import register, rule
from reviewbot.checks.errno_forms import (
    INT_TYPES,
    STATUS_TYPES,
    SUCCESS,
    ends_in_goto,
    failure_test,
    hands_on,
    is_log,
    logging_exits,
    logs_only,
    mentions,
    rhs_call,
    said_so,
    status_test,
    top_lines,
)
from reviewbot.cmodel import Function, Node, line_of, norm, strip_parens, text
from reviewbot.engine import Checker, Cond, Exit, PathState, Walker
from reviewbot.engine.facts import plain_locals, plain_test
from reviewbot.engine.keys import walk
from reviewbot.engine.values import ERRNO, Z

LOST_ERRNO = rule(
    "error-path.lost-errno", "warning", "high",
    "an error code the function had in hand is overwritten or dropped before it returns",
    """
What it finds: an error variable (a local the function returns, elsewhere propagated as
its error) that holds a call's failure on this path, and loses it before the return:
- overwritten by a cleanup call's result on the failure path (`err = f(); if (err) {
  err = undo(); ... } return err;`): when the cleanup works, the function reports success;
- overwritten by another call whose result the code then treats as the earlier failure:
  a later test compares the variable with an error code where it can only be 0
  (`error = check(); if (!error) break; error = thaw(); if (error) goto out;
  if (error == -EBUSY) ...`: the -EBUSY test looks for check()'s error, which is gone);
- a call's result stored in the error variable, never looked at, and the path returns 0
  while the function returns the variable for its other failures (`err = get(...);
  unlock(); return 0;`);
- a failure tested whose branch jumps to the unwind code, and the path returns 0,
  while the function's other failure tests of the same variable return it (`error =
  read(...); if (error) goto out; ... out: unlock(); return 0;` next to `if (error)
  return error;`);
- (low) a loop's failure tested and only logged, overwritten by the next iteration's
  call, and the loop's last result returned; a call's result overwritten by another call
  before anything read it;
- the same for a status instead of an errno: a local of a status type (an enum or a
  `*_status` typedef: `acpi_status`, `efi_status_t`, `blk_status_t`, `enum iavf_status`)
  tested with its failure test (`ACPI_FAILURE(status)`, `status != EFI_SUCCESS`, `if
  (ret)`), lost the same ways, with the success constant returned (`return AE_OK;`,
  `return BLK_STS_OK;`) where an errno function returns 0;
- (in a patch) a call whose failure the function handed on before the patch is made a
  bare statement by it (`err = f(); if (err) goto out;` becomes `f();`); the other way
  round, a patch that makes such a bare call tested and handed on, is reported as fixing
  this (stable's f2fs_enable_checkpoint() fix, corpus-real 071).

Why it matters: the caller is told the operation worked; it goes on with state that was
never set up (a frozen filesystem that is not frozen, a buffer that was never filled).

Example:
    err = __efivar_entry_get(entry, attributes, size, data);
    efivar_unlock();
    return 0;                  /* err is lost: the caller reads an unfilled buffer */

Not reported: an overwrite by a constant (`err = 0;` after a failure is a decision, and
`err = -EIO` replaces one error with another), by the same call (a retry or a
fallback: `ret = read(np, "a"); if (ret) ret = read(np, "b");`), or by a call not named
like an undo without a later stale test; a failure the path looks at again (a test
against an error code, a store, an argument to a call other than a log message).
The existing error-path.missing-errno covers an error exit with the variable still 0;
this rule is for a value that was an error.

A failure branch that only logs (`if (ret) dev_info(dev, "no SMBus alert");`), breaks,
continues or returns 0 itself is taken as an optional step, on purpose: of such findings
in six directories of linux-source-6.1 nearly all were deliberate.

Known false positives: an unwind label that returns 0 on purpose after an optional
step's failure; an undo-named call that is really the next step; in a patch, a call
made void by the same series (the question is still worth asking); for a status, a
callback whose success constant means "go on" (an ACPI namespace walk returns AE_OK after
a failure on purpose: quiet unless another failure test of the function returns the
status).

Confidence: high for the stale test; medium for the cleanup overwrite, the unread
result and the ignored failure; low for the loop and the unread overwrite.
Similar public checks: smatch check_unused_ret.c (a value assigned and overwritten
unread), the Clang Static Analyzer's deadcode.DeadStores; neither looks at the failure
test or the return.
""")

@dataclass(frozen=True)
class Value:
    """What one path knows of an error variable's value."""

    var: str
    state: str  # "assigned" (a call's result, unread), "failed" (tested non-zero),
    # "clobbered" (a failure overwritten by another call at `line`)
    line: int  # the assignment
    call: str  # the call whose result it holds
    test: int = 0  # "failed": the failure test
    lost: str = ""  # "clobbered": the call whose failure was overwritten
    lost_test: int = 0
    kind: str = ""  # "clobbered": by an undo-named call, another call, the loop's next round


class Slot(NamedTuple):
    values: frozenset = frozenset()
    plain: tuple[int, str] = (0, "")  # (line, var) of the branch being taken: a plain test
    how: str = ""  # of a status: "call" (`ACPI_FAILURE(s)`), "ne" (`s != EFI_SUCCESS`)


_START = Slot()


@dataclass
class _Info:
    """What the function's code says of its error variables, computed once per walk."""

    carriers: frozenset[str]  # int locals the function returns and assigns from calls
    propagated: frozenset[str]  # ... of which some failure test returns the variable
    errno_like: frozenset[str]  # ... of which that, or assigned an errno somewhere
    stmts: dict[int, tuple[str, object, frozenset[str]]]  # node idx -> (assigned var, rhs, mentioned)
    conds: dict[int, tuple]  # node idx -> LostErrnoChecker._cond()
    top_lines: frozenset[int]  # lines of the statements of the body itself (not nested)
    logging_tests: frozenset[int]  # lines of failure tests whose branch only logs
    goto_tests: frozenset[int]  # ... whose branch jumps to a label (unwind code)
    statuses: frozenset[str] = frozenset()  # carriers of a status type (enum, *_status)
    logging_exits: frozenset[int] = frozenset()  # returns after a label that only logs
    branches: dict[int, tuple[int, int]] = field(default_factory=dict)  # goto test -> its
    # branch's lines

    def success(self, expr: str) -> bool:
        """A return of success: 0, or a status type's success constant."""
        return expr == "0" or bool(self.statuses) and SUCCESS.match(expr) is not None

    def only_logged(self, test_line: int) -> bool:
        return test_line in self.logging_tests

    def jumps(self, test_line: int) -> bool:
        return test_line in self.goto_tests


def _int_locals(w: Walker) -> set[str]:
    return plain_locals(w.fn, lambda ty: bool(INT_TYPES.match(norm(text(ty)))))


def _info(w: Walker) -> _Info:
    ints = _int_locals(w)
    statuses = plain_locals(w.fn, lambda ty: bool(STATUS_TYPES.match(" ".join(text(ty).split()))))
    ints |= statuses
    returned = {norm(text(n.ast)) for n in w.fn.nodes
                if n.kind == "return" and n.ast is not None and n.ast.type == "identifier"}
    from_calls = set()
    for a in w.fn.of_type("assignment_expression"):
        rhs = strip_parens(a.child_by_field_name("right"))
        if rhs is not None and rhs.type == "call_expression":
            from_calls.add(norm(text(a.child_by_field_name("left"))))
    carriers = frozenset(v for v in ints & returned & from_calls if v not in w.fn.params)
    status = frozenset(statuses & carriers)
    logging, jumping = set(), set()
    branches: dict[int, tuple[int, int]] = {}
    propagated = set(w.facts.propagated)
    if carriers:
        for s in w.fn.of_type("if_statement"):
            cond = s.child_by_field_name("condition")
            var = failure_test(cond, status)
            if var not in carriers or s.child_by_field_name("alternative") is not None:
                continue
            body = s.child_by_field_name("consequence")
            if var in status and hands_on(body, var):
                propagated.add(var)  # `if (ACPI_FAILURE(status)) return status;`
            if logs_only(body):
                logging.add(line_of(cond))
            elif ends_in_goto(body, w.fn):
                jumping.add(line_of(cond))
                branches[line_of(cond)] = (line_of(body), body.end_point[0] + 1)
    return _Info(carriers, frozenset(propagated & carriers),
                 frozenset((propagated | w.facts.errno_vars) & carriers), {}, {},
                 top_lines(w.fn), frozenset(logging), frozenset(jumping), status,
                 logging_exits(w.fn), branches)


@register
class LostErrnoChecker(Checker):
    name = "lost-errno"
    rules = (LOST_ERRNO,)
    events = frozenset({"stmt", "branch", "assume", "exit"})

    def __init__(self) -> None:
        self._infos: weakref.WeakKeyDictionary[Walker, _Info] = weakref.WeakKeyDictionary()

    def needs_walk(self, fn: Function) -> bool:
        # a variable returned somewhere and assigned a call's result somewhere
        returned = {text(r.named_children[0]) for r in fn.of_type("return_statement")
                    if r.named_child_count and r.named_children[0].type == "identifier"}
        if not returned:
            return False
        for a in fn.of_type("assignment_expression"):
            if norm(text(a.child_by_field_name("left"))) in returned and \
                    rhs_call(a.child_by_field_name("right")):
                return True
        return False

    def events_for(self, w: Walker) -> frozenset[str]:
        info = _info(w)
        if not info.carriers:
            return frozenset()  # no error variable to lose
        self._infos[w] = info
        return self.events

    def initial(self) -> Slot:
        return _START

    def slot_key(self, slot: Slot) -> frozenset | None:
        # only a failure in hand (or lost) makes paths differ: an unread result mostly
        # goes with the values the walker keeps anyway, and a larger key costs states
        return frozenset((v.var, v.state) for v in slot.values
                         if v.state == "failed" or v.kind in ("undo", "loop")) or None

    # ------------------------------------------------------------------ helpers
    def _stmt(self, w: Walker, node: Node) -> tuple[str, object, frozenset[str]]:
        info = self._infos[w]
        got = info.stmts.get(node.idx)
        if got is None:
            var, rhs = "", None
            a = node.ast
            if a is not None and a.type == "expression_statement" and a.named_child_count:
                e = a.named_children[0]
                if e.type == "assignment_expression" and \
                        text(e.child_by_field_name("operator")) == "=":
                    lhs = norm(text(e.child_by_field_name("left")))
                    if lhs in info.carriers:
                        var, rhs = lhs, e.child_by_field_name("right")
            elif a is not None and a.type == "declaration":
                for d in a.named_children:
                    if d.type == "init_declarator":
                        name = norm(text(d.child_by_field_name("declarator")))
                        if name in info.carriers:
                            var, rhs = name, d.child_by_field_name("value")
            got = (var, rhs, mentions(a, info.carriers))
            info.stmts[node.idx] = got
        return got

    @staticmethod
    def _get(slot: Slot, var: str, clobbered: bool = False) -> Value | None:
        for v in slot.values:
            if v.var == var and (v.state == "clobbered") == clobbered:
                return v
        return None

    @staticmethod
    def _drop(slot: Slot, var: str) -> Slot:
        return slot._replace(values=frozenset(v for v in slot.values if v.var != var))

    # ------------------------------------------------------------------ events
    def on_stmt(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        if node.kind == "switch" and any(v.state == "assigned" for v in slot.values):
            # a switch chooses what runs next, like a test (see on_branch)
            mentioned = mentions(node.ast, self._infos[w].carriers)
            slot = slot._replace(values=frozenset(
                v for v in slot.values if v.state != "assigned" or v.var in mentioned))
            st.set_slot(self.name, slot)
        if node.kind == "break":
            # leaving a loop or switch on a result decides what it means (`if (ret)
            # break;` after a search: no more keys), whatever is returned after it
            kept = frozenset(v for v in slot.values if v.state == "clobbered")
            if kept != slot.values:
                st.set_slot(self.name, slot._replace(values=kept))
            return
        var, rhs, mentioned = self._stmt(w, node)
        new = slot
        if var:
            new = self._assign(w, st, new, var, rhs, node.line)
        for m in mentioned - {var}:
            v = self._get(new, m)
            if v is not None or self._get(new, m, True):
                if not is_log(node.ast):
                    new = self._drop(new, m)  # read: stored, passed, returned through
                elif v is not None and v.state == "assigned":
                    # an untested result printed (`f2fs_info(.., "ret: %d", err)`) was
                    # seen; a failure printed is still lost when it is overwritten
                    new = new._replace(values=new.values - {v})
        if new is not slot:
            st.set_slot(self.name, new)

    def _assign(self, w: Walker, st: PathState, slot: Slot, var: str, rhs, line: int) -> Slot:
        old = self._get(slot, var)
        slot = self._drop(slot, var)
        if rhs is None or mentions(rhs, frozenset({var})):
            return slot  # `err = err ?: f()`: the old value is read
        call = rhs_call(rhs)
        if not call or call in w.packs.idioms.ptr_err:
            # a constant or another value: a decision, not a loss; PTR_ERR(p) is tested
            # through p (`err = PTR_ERR(p); if (IS_ERR(p)) goto out;`)
            return slot
        if old is not None and old.state == "failed":
            kind = ""
            if call != old.call:
                kind = "undo" if self._undo_call(w, call) else "other"
            elif line == old.line and self._infos[w].only_logged(old.test):
                kind = "loop"  # the next round of a loop whose failure branch only logs
            if kind:
                # decided at the exit (is the variable returned, maybe 0?) or at a test
                # that still looks for the lost failure
                slot = slot._replace(values=slot.values | {Value(
                    var, "clobbered", line, call, lost=old.call, lost_test=old.test,
                    kind=kind)})
        elif old is not None and old.state == "assigned" and line != old.line and \
                call != old.call and not self._preprocessed(w, old.line, line):
            self._report(w, st, line, var,
                         f"the result of {call}() stored in '{var}' overwrites that of "
                         f"{old.call}() from line {old.line} before anything looked at it: "
                         f"a failure of {old.call}() is lost. Is a test of '{var}' missing?",
                         [(old.line, f"{old.call}() result in {var}"), (line, f"{var} overwritten")],
                         [old.line], "low")
        return slot._replace(values=slot.values | {Value(var, "assigned", line, call)})

    @staticmethod
    def _preprocessed(w: Walker, first: int, second: int) -> bool:
        """A preprocessor line between two statements: their order in the syntax tree
        may not be the code's (`if (a) x = f(); else` `#endif` `x = g();`)."""
        lines = w.fn.source.splitlines()  # the file's: line n is lines[n - 1]
        return any(ln.lstrip().startswith(b"#") for ln in lines[first:second - 1])

    @staticmethod
    def _undo_call(w: Walker, call: str) -> bool:
        """A call that undoes something: a pack release, or named like one."""
        spec = w.packs.calls.get(call)
        if spec is not None and spec.releases:
            return True
        undo = w.packs.idioms.unwind_release_re
        words = [p for p in call.lower().split("_") if p]
        # the verb comes first or last (regulator_disable, unregister_netdev), not in the
        # middle of a noun (add_new_free_space)
        return undo is not None and bool(words) and any(
            undo.fullmatch(p) for p in {words[0], words[-1]})

    def on_branch(self, w: Walker, st: PathState, node: Node) -> None:
        slot = st.slots[self.name]
        info = self._infos[w]
        atom = node.ast
        if atom is None:
            return
        mentioned, assigns, plain, how = self._cond(info, node)
        if not mentioned and not slot.values:
            if slot.plain[0]:
                st.set_slot(self.name, slot._replace(plain=(0, ""), how=""))
            return
        new = slot
        for lhs, rhs in assigns:  # if ((err = f()) < 0)
            new = self._assign(w, st, new, lhs, rhs, node.line)
        unread = frozenset(v for v in new.values if v.var != plain and v.var not in mentioned
                           and (v.state == "assigned" or v.kind == "other"))
        if unread:
            # a result no test looked at reaches the exit only straight: past another
            # test, what the exit returns may mean something else (`if (!link) return 0;`);
            # a stale test of an overwritten failure comes before any other test
            new = new._replace(values=new.values - unread)
        for m in mentioned - {plain}:
            gone = self._get(new, m, True)
            if gone is not None and st.value(m) == Z and self._errno_compare(atom, m):
                self._report(w, st, gone.line, m,
                             f"the result of {gone.call}() stored in '{m}' overwrites the "
                             f"failure of {gone.lost}() "
                             f"tested at line {gone.lost_test}, yet the test at line {node.line} "
                             f"still looks for that failure, where '{m}' can only be 0: the "
                             f"error is lost. Should {gone.call}()'s result go into another "
                             f"variable?",
                             [(gone.lost_test, f"{gone.lost}() failed"),
                              (gone.line, f"{m} overwritten by {gone.call}()"),
                              (node.line, norm(text(atom)))],
                             [gone.lost_test, node.line], "high")
            if self._get(new, m) or gone is not None:
                new = self._drop(new, m)  # the code looks at which error it is: handled
        want = (node.line, plain) if plain in info.carriers else (0, "")
        if new.plain != want or new.how != how:
            new = new._replace(plain=want, how=how)
        if new is not slot:
            st.set_slot(self.name, new)

    @staticmethod
    def _cond(info: _Info, node: Node) -> tuple[frozenset[str], tuple, str, str]:
        """What a condition says of the error variables (decided once per node): those
        it mentions, those it assigns (with their right sides), the one it plainly tests
        (or a status test's variable, and how it tests: see status_test)."""
        got = info.conds.get(node.idx)
        if got is None:
            atom = node.ast
            assigns = tuple(
                (lhs, a.child_by_field_name("right"))
                for a in walk(atom, "assignment_expression")
                if (lhs := norm(text(a.child_by_field_name("left")))) in info.carriers
                and text(a.child_by_field_name("operator")) == "=")
            plain, how = plain_test(atom), ""
            if plain not in info.carriers and info.statuses:
                plain, how = status_test(atom, info.statuses)
            got = (mentions(atom, info.carriers), assigns, plain, how)
            info.conds[node.idx] = got
        return got

    @staticmethod
    def _errno_compare(atom, var: str) -> bool:
        for b in walk(atom, "binary_expression"):
            if text(b.child_by_field_name("operator")) not in ("==", "!="):
                continue
            sides = {norm(text(b.child_by_field_name("left"))),
                     norm(text(b.child_by_field_name("right")))}
            if var in sides and any(ERRNO.match(s) for s in sides):
                return True
        return False

    def on_assume(self, w: Walker, st: PathState, cond: Cond | None) -> None:
        slot = st.slots[self.name]
        line, var = slot.plain
        if cond is None or not line or cond.line != line or (
                cond.subject != var and slot.how != "call"):
            return
        v = self._get(slot, var)
        if v is None:
            return
        if slot.how == "call":  # `ACPI_FAILURE(s)`: true (not 0) when s failed
            failed = cond.subject.startswith("#") and "Z" not in cond.taken
        elif slot.how == "ne":  # `s != EFI_SUCCESS`: the false side keeps only the constant
            failed = bool(cond.taken - frozenset("P"))
        else:
            failed = "Z" not in cond.taken and "N" in cond.taken
        if failed:
            if v.state != "failed":
                st.set_slot(self.name, slot._replace(values=(slot.values - {v}) | {
                    Value(var, "failed", v.line, v.call, test=line)}))
        else:
            # it may be 0 on this side (`if (ret < 0)` false: 0 or more), or it is a
            # positive count or time left (`if (!left) return -ETIMEDOUT; if (left < 0)`)
            st.set_slot(self.name, slot._replace(values=slot.values - {v}))

    def on_exit(self, w: Walker, st: PathState, ex: Exit) -> None:
        slot = st.slots[self.name]
        if not slot.values:
            return
        info = self._infos[w]
        line = ex.node.line
        for v in sorted(slot.values, key=lambda v: (v.line, v.var)):
            if v.state != "clobbered" or ex.expr != v.var or "Z" not in st.value(v.var):
                continue
            if v.kind == "undo":
                self._report(w, st, v.line, v.var,
                             f"'{v.var}' holds the failure of {v.lost}() tested at line "
                             f"{v.lost_test}, and the result of {v.call}() stored in it at line "
                             f"{v.line} overwrites it before 'return {v.var}' at line {line}: "
                             f"when {v.call}() succeeds the function reports success. Should "
                             f"{v.call}()'s result be kept apart (or ignored) so that the first "
                             f"error is returned?",
                             [(v.lost_test, f"{v.lost}() failed"), (v.line, f"{v.var} overwritten"),
                              (line, f"return {v.var}")], [v.lost_test, line], "medium")
            elif v.kind == "loop":
                self._report(w, st, v.line, v.var,
                             f"the failure of {v.call}() tested at line {v.lost_test} is only "
                             f"logged: the loop's next round overwrites '{v.var}' at line "
                             f"{v.line}, and 'return {v.var}' at line {line} returns the last "
                             f"round's result, so a failure is lost whenever a later round "
                             f"succeeds. Should the loop stop (break, goto) or keep the first "
                             f"error?",
                             [(v.lost_test, f"{v.call}() failed"),
                              (v.line, f"{v.var} overwritten again"), (line, f"return {v.var}")],
                             [v.lost_test, line], "low")
        if not info.success(ex.expr):
            return
        for v in sorted(slot.values, key=lambda v: (v.line, v.var)):
            if ex.expr != "0" and v.var not in info.statuses:
                continue  # a status constant is no success of an int
            if v.state == "assigned" and v.var in info.errno_like:
                # medium when the call is a step of the body itself (efivar_entry_get);
                # one made only on some paths is often an optional one (xfs_qm_dqpurge:
                # "we go ahead regardless")
                self._report(w, st, line, v.var,
                             f"the result of {v.call}() at line {v.line} is stored in "
                             f"'{v.var}' and never looked at: this 'return {ex.expr}' reports success "
                             f"even when {v.call}() failed, while the function returns "
                             f"'{v.var}' for its other failures. Should it return {v.var}?",
                             [(v.line, f"{v.call}() result in {v.var}"), (line, f"return {ex.expr}")],
                             [v.line], "medium" if v.line in info.top_lines else "low")
            elif v.state == "failed" and v.var in info.propagated and info.jumps(v.test) \
                    and line not in info.logging_exits and not self._decided(w, st, v, line):
                self._report(w, st, line, v.var,
                             f"the failure of {v.call}() tested at line {v.test} does not "
                             f"reach the caller: its branch does not return '{v.var}', and "
                             f"this 'return {ex.expr}' reports success, while the function's other "
                             f"failure tests of '{v.var}' return it. Should this one too?",
                             [(v.test, f"{v.call}() failed"), (line, f"return {ex.expr}")],
                             [v.line, v.test], "medium")

    def _decided(self, w: Walker, st: PathState, v: Value, line: int) -> bool:
        """The failure branch itself returns success (`if (retry) { schedule(); return 0;
        }`: azx_probe_continue), or the path went back after the failure (`goto again`,
        escalated to another attempt: hl_device_reset)."""
        a, b = self._infos[w].branches.get(v.test, (0, 0))
        if a <= line <= b:
            return True
        for ln, what in st.trail:
            if ln > v.test and what.startswith("goto "):
                target = w.fn.labels.get(what[5:])
                if target is not None and target.line < ln:
                    return True
        return False

    def _report(self, w: Walker, st: PathState, line: int, var: str, message: str,
                trace: list[tuple[int, str]], lines: list[int], confidence: str) -> None:
        if said_so(w.fn.source, [ln for ln, _ in trace[:-1]] or [line]):
            return  # the code says the failure does not matter there
        w.report(LOST_ERRNO.id, line, var, message, st, trace, [line, *lines], confidence)
