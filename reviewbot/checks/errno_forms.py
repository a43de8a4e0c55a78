"""What error-variable rules read in a function's syntax: log calls, the types and
failure tests of status variables, branches that only log or jump, exits that only log,
comments that say a result does not matter (error-path.lost-errno and its patch form)."""

from __future__ import annotations

import re

from reviewbot.cmodel import Function, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine.facts import failure_side, plain_test
from reviewbot.engine.keys import walk

# a call that only logs what it is passed (reading an error there is not handling it)
LOG_CALL = re.compile(
    r"^(pr_\w+|printk\w*|WARN\w*|mlog\w*|\w*_(err|warn|warning|info|dbg|debug|notice|crit|"
    r"alert|emerg|msg|printk|err_probe)(_ratelimited|_once)?)$")
INT_TYPES = re.compile(r"^(signed\s+)?(int|long|long\s+int|long\s+long|short|ssize_t|s8|s16|"
                        r"s32|s64|int8_t|int16_t|int32_t|int64_t|__s32|__s64)$")
# a status type (`acpi_status`, `efi_status_t`, `blk_status_t`, `enum iavf_status`), whose
# success is a constant named so (AE_OK, EFI_SUCCESS, BLK_STS_OK, IAVF_SUCCESS) or 0
STATUS_TYPES = re.compile(r"^(enum\s+)?\w*status(_t)?$")
SUCCESS = re.compile(r"^\(?([A-Z][A-Z0-9_]*_(SUCCESS|OK)|0)\)?$")
FAILURE_MACRO = re.compile(r"^[A-Z][A-Z0-9_]*_(FAILURE|ERROR|FAILED)$")  # ACPI_FAILURE(s)


def status_test(atom, statuses: frozenset[str]) -> tuple[str, str]:
    """(status, how) of a test that is true when a status failed: `ACPI_FAILURE(s)`,
    `EFI_ERROR(s)` ("call"), `s != EFI_SUCCESS` ("ne"); else ("", "")."""
    a = strip_parens(atom)
    while a is not None and a.type == "call_expression" and callee(a) in ("unlikely", "likely") \
            and len(args(a)) == 1:
        a = strip_parens(args(a)[0])
    if a is None or not statuses:
        return "", ""
    if a.type == "call_expression" and FAILURE_MACRO.match(callee(a)) and len(args(a)) == 1:
        v = norm(text(args(a)[0]))
        return (v, "call") if v in statuses else ("", "")
    if a.type == "binary_expression" and text(a.child_by_field_name("operator")) == "!=":
        sides = [norm(text(a.child_by_field_name(k))) for k in ("left", "right")]
        for v, c in (sides, sides[::-1]):
            if v in statuses and SUCCESS.match(c) and c != "0":
                return v, "ne"
    return "", ""


def failure_test(cond, statuses: frozenset[str]) -> str:
    """The variable a failure test is true for: a plain one (`if (ret)`) or a status's."""
    var = plain_test(cond)
    if var and failure_side(cond):
        return var
    return status_test(cond, statuses)[0]


def hands_on(body, var: str) -> bool:
    """A failure branch that returns the variable (its last statement)."""
    kids = [k for k in body.named_children if k.type != "comment"] \
        if body is not None and body.type == "compound_statement" else [body]
    last = kids[-1] if kids else None
    return last is not None and last.type == "return_statement" and \
        any(text(i) == var for i in walk(last, "identifier"))


def logging_exits(fn: Function) -> frozenset[int]:
    """Lines of the returns that end a label's code which only logs (`err: pr_info("not
    a processor"); return AE_OK;`): an exit that reports the failure and succeeds on
    purpose."""
    body = fn.body
    out: set[int] = set()
    logging, logged = False, False
    for st in body.named_children if body is not None else []:
        if st.type == "comment":
            continue
        inner = st
        if inner.type == "labeled_statement":
            logging, logged = True, False
            while inner.type == "labeled_statement":
                kids = [k for k in inner.named_children if k.type not in (
                    "statement_identifier", "comment")]
                if not kids:
                    break
                inner = kids[-1]
        if not logging:
            continue
        if inner.type == "return_statement" and logged:
            out.add(line_of(inner))
        if is_log(inner):
            logged = True
        else:
            logging = False
    return frozenset(out)


def top_lines(fn: Function) -> frozenset[int]:
    body = fn.body
    return frozenset(line_of(k) for k in body.named_children) if body is not None \
        else frozenset()


def ends_in_goto(stmt, fn: Function | None = None) -> bool:
    """A branch that jumps to a label (with `fn`: forward, to unwind code; a backward goto
    retries: `goto restart`)."""
    if stmt is not None and stmt.type == "compound_statement":
        kids = stmt.named_children
        stmt = kids[-1] if kids else None
    if stmt is None or stmt.type != "goto_statement":
        return False
    if fn is None:
        return True
    lab = stmt.child_by_field_name("label")
    node = fn.labels.get(text(lab)) if lab is not None else None
    return node is not None and node.line > line_of(stmt)


def logs_only(stmt) -> bool:
    """A branch that only prints (`if (err) pr_warn(...);`)."""
    if stmt is None:
        return False
    kids = stmt.named_children if stmt.type == "compound_statement" else [stmt]
    return bool(kids) and all(is_log(k) for k in kids)


def is_log(stmt) -> bool:
    e = stmt.named_children[0] if stmt is not None and stmt.type == "expression_statement" \
        and stmt.named_child_count else None
    return e is not None and e.type == "call_expression" and LOG_CALL.match(callee(e)) is not None


def rhs_call(rhs) -> str:
    """The callee when the assigned value is a call's result (through casts), else ''."""
    r = strip_parens(rhs)
    while r is not None and r.type == "cast_expression":
        r = strip_parens(r.child_by_field_name("value"))
    return callee(r) if r is not None and r.type == "call_expression" else ""


def mentions(node, names: frozenset[str]) -> frozenset[str]:
    if node is None or not names:
        return frozenset()
    t = text(node)
    if not any(n in t for n in names):
        return frozenset()  # (the text test is much cheaper than the walk)
    return frozenset(text(i) for i in walk(node, "identifier") if text(i) in names)


# a comment that says a result is dropped on purpose ("No need to check the return value",
# "probably no problems on error", "we go ahead regardless", "ignore errors")
ON_PURPOSE = re.compile(rb"(/\*|//|^\s*\*).*\b(ignor\w*|no need to check|don'?t care|not fatal|"
                         rb"no problems? on error|best[- ]effort|regardless|non-?fatal)\b", re.I | re.M)


def said_so(source: bytes, lines: list[int]) -> bool:
    """A comment on one of `lines` or in the six lines above it says so."""
    text_lines = source.splitlines()
    return any(ON_PURPOSE.search(b) for ln in lines
               for b in text_lines[max(ln - 7, 0):ln])
