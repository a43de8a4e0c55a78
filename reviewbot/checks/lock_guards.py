"""What the walker cannot see about a lock, read from the function's text: calls no pack
describes between two lock operations (a helper that drops or takes the lock), a lock
taken under an if, two names for one lock. reviewbot/checks/lock_state.py lowers its
findings on these (the false positive classes of docs/triage-6.1.md, lock state)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reviewbot.cmodel import args, callee, line_of, norm, text
from reviewbot.engine.keys import static_key, target_keys

if TYPE_CHECKING:
    from reviewbot.engine import Walker

_QUIET = re.compile(r"^(pr_|printk|WARN|BUG|trace_|lockdep_|might_sleep|likely|unlikely)|"
                    r"_(err|warn|info|dbg|debug|notice|crit|alert|emerg)(_ratelimited|_once)?$")


def unknown_call_sites(w: Walker) -> list[tuple[int, str, tuple[str, ...]]]:
    """The function's calls no pack describes (logging and compiler hints left out):
    (line, callee, argument texts without a leading &), computed once per function."""
    got = w.facts.__dict__.get("_lock_state_calls")
    if got is None:
        got = []
        for c in w.fn.of_type("call_expression"):
            name = callee(c)
            if name in w.packs.calls or _QUIET.search(name):
                continue
            got.append((line_of(c), name, tuple(norm(text(x)).lstrip("&") for x in args(c))))
        w.facts.__dict__["_lock_state_calls"] = got
    return got


def unknown_calls_between(w: Walker, a: int, b: int, given: set[str] | None = None) -> bool:
    """Whether a call no pack describes lies between lines a and b (around the loop, when
    the path came back: then anywhere in the function); with `given`, only calls given one
    of those expressions, whole."""
    for ln, _name, argv in unknown_call_sites(w):
        if (a < ln < b) if a < b else ln != b:
            if given is None or any(x in given for x in argv):
                return True
    return False


def lock_names(key: str, w: Walker, whole: bool = True) -> set[str]:
    """The lock itself and, with `whole`, the object it belongs to and what that object
    was read from (`inode = dentry->d_inode`: dentry)."""
    out = {key}
    if not whole:
        return out
    root = re.match(r"[A-Za-z_]\w*", key)
    if root is None:
        return out
    out.add(root.group(0))
    for d in w.fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        decl = d.child_by_field_name("declarator")
        if v is not None and decl is not None and text(decl).lstrip("*") == root.group(0):
            src = re.match(r"[(&*\s]*([A-Za-z_]\w*)", norm(text(v)))
            if src is not None:
                out.add(src.group(1))
    return out


def compared(w: Walker, key: str) -> bool:
    """The object the lock belongs to is compared with another pointer somewhere (`if
    (new_dir != old_dir)`): the lock may have two names."""
    root = re.match(r"[A-Za-z_]\w*", key)
    if root is None or root.group(0) == key:
        return False
    name = root.group(0)
    for b in w.fn.of_type("binary_expression"):
        op = b.child_by_field_name("operator")
        if op is None or text(op) not in ("==", "!="):
            continue
        sides = [norm(text(b.child_by_field_name(f))) for f in ("left", "right")]
        if name in sides and not any(x in ("NULL", "0") or x.isdigit() for x in sides):
            return True
    return False


def relocked_between(w: Walker, key: str, a: int, b: int) -> bool:
    """A call between lines a and b whose name says it locks (and not that it unlocks),
    given the lock or the object it belongs to (`foo_lock_dev(dev)` after
    `spin_unlock(&dev->lock)`): a helper no pack describes that takes the lock again."""
    names = lock_names(key, w)
    for ln, name, argv in unknown_call_sites(w):
        low = name.lower()
        if ((a < ln < b) if a < b else ln != b) and "lock" in low and "unlock" not in low \
                and any(x in names for x in argv):
            return True
    return False


def under_if(w: Walker, line: int, name: str) -> bool:
    """The acquisition at `line` by `name` is taken under an if (in one of its branches,
    not in its condition): `if (sizeof(x) > sizeof(long)) spin_lock(..)`."""
    for c in w.fn.of_type("call_expression"):
        if line_of(c) != line or callee(c) != name:
            continue
        n, prev = c.parent, c
        while n is not None and n.type != "function_definition":
            if n.type == "if_statement" and prev != n.child_by_field_name("condition"):
                return True
            n, prev = n.parent, n
        return False
    return False


def call_at(w: Walker, line: int, name: str):
    for c in w.fn.of_type("call_expression"):
        if line_of(c) == line and callee(c) == name:
            return c
    return None


def other_guard(w: Walker, line: int, call: str, acq_line: int, acq_call: str) -> bool:
    """The unlock at `line` sits under an if whose test is neither the acquisition's call
    nor the variable its result went to."""
    c = call_at(w, line, call)
    a = call_at(w, acq_line, acq_call)
    if c is None or a is None:
        return True
    own = {acq_call}
    p = a.parent
    while p is not None and p.type in ("parenthesized_expression", "unary_expression",
                                       "cast_expression"):
        p = p.parent
    if p is not None and p.type == "assignment_expression":
        own.add(norm(text(p.child_by_field_name("left"))))
    elif p is not None and p.type == "init_declarator":
        own.add(text(p.child_by_field_name("declarator")).lstrip("*"))
    n, prev = c.parent, c
    while n is not None and n.type != "function_definition":
        if n.type == "if_statement" and prev != n.child_by_field_name("condition"):
            cond = norm(text(n.child_by_field_name("condition")))
            if not any(re.search(rf"\b{re.escape(o)}\b", cond) for o in own):
                return True
        n, prev = n.parent, n
    return False


def unguarded_release(w: Walker, rid: str, key: str) -> bool:
    """Some release of the lock in the function is under no if (`if (x[0].tx_buf == buf)
    mutex_unlock(&lock);` alone is a record the walker may not relate to the lock)."""
    for c in w.fn.of_type("call_expression"):
        spec = w.packs.calls.get(callee(c))
        if spec is not None and rid in spec.releases and \
                key in target_keys(spec, c, static_key) and \
                not under_if(w, line_of(c), callee(c)):
            return True
    return False


# ------------------------------------------------------------------ helpers of the directory


def _summarised(w: Walker):
    """(the directory's lock summaries, this function's record), or None without a graph
    (computed once per walk)."""
    if "_lock_record" not in w.__dict__:
        from reviewbot.knowledge.lock_summaries import function_in, summaries

        got = function_in(w.callgraph, w.fn.name)
        w.__dict__["_lock_record"] = (summaries(got[0], w.packs), got[1]) if got else None
    return w.__dict__["_lock_record"]


def _helpers_between(w: Walker, a: int, b: int):
    """The calls between lines a and b (around the loop when b <= a) of functions whose
    lock summaries the directory has: (call, its summary, this function's aliases)."""
    got = _summarised(w)
    if got is None:
        return
    s, r = got
    for st in r.body.steps:
        for ev in st.calls:
            if (a < ev.line < b) if a < b else ev.line != b:
                c = s.callee(ev, r)
                if c is not None:
                    yield ev, s.of(c), r.body.aliases


def _names(key: str, w: Walker) -> set[str]:
    """The lock as the summaries name it (a global with this file)."""
    from reviewbot.knowledge.lock_summaries import canon, qualify, tidy

    _s, r = _summarised(w)
    b = r.body
    return {qualify(x, b.params, b.aliases, b.path) for x in (tidy(key), canon(key, b.aliases))}


def helper_lets_go(w: Walker, key: str, a: int, b: int) -> bool:
    """A function of the directory called between lines a and b lets go of the lock and
    does not take it back, as its summary says (finish_permission_event(group, ..) drops
    group->notification_lock; udf_expand_file_adinicb() drops i_data_sem)."""
    memo = w.__dict__.setdefault("_lock_lets_go", {})
    k = (key, a, b)
    if k not in memo:
        memo[k] = _lets_go(w, key, a, b)
    return memo[k]


def _lets_go(w: Walker, key: str, a: int, b: int) -> bool:
    from reviewbot.knowledge.lock_summaries import fill

    for ev, cs, aliases in _helpers_between(w, a, b):
        for tm in cs.drops - set(cs.keeps):
            lock = fill(tm, ev.args, aliases)
            if lock and lock in _names(key, w):
                return True
    return False


def helper_takes(w: Walker, key: str, a: int, b: int) -> bool:
    """A function of the directory called between lines a and b returns holding the lock
    (it takes it again for its caller)."""
    from reviewbot.knowledge.lock_summaries import fill

    for ev, cs, aliases in _helpers_between(w, a, b):
        for tm in cs.keeps:
            lock = fill(tm, ev.args, aliases)
            if lock and lock in _names(key, w):
                return True
    return False
