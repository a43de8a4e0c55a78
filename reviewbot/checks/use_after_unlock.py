"""get-put.use-after-unlock: an object found under a lock, dereferenced after the unlock."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from reviewbot.checks import register, rule
from reviewbot.checks.borrowed import file_functions
from reviewbot.cmodel import Function, Node, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import Checker, FunctionContext, Raw, static_key
from reviewbot.engine.explore import explore
from reviewbot.engine.keys import decl_ident
from reviewbot.packs import Packs

USE_AFTER_UNLOCK = rule(
    "get-put.use-after-unlock", "error", "high",
    "an object looked up under a lock is dereferenced after the unlock",
    """
What it finds: a pointer that the function took from a list or table while holding a lock
— the cursor of a `list_for_each_entry()` walk left by a break (or a copy of it), or the
result of a lookup that takes no reference (`idr_find`, `xa_load`, `radix_tree_lookup`,
`list_first_entry`, ...) — dereferenced after that lock is released, on the same path,
before the lock is taken again. Not reported when, while the lock was held, the object was
pinned or taken over: passed (or a member's address passed) to any call (`kref_get(&obj->ref)`,
`get_device(&obj->dev)`, `list_del(&obj->node)`), or written through (`obj->usecount++`,
`obj->flags |= BUSY`: the counts and flags code keeps for this).

Why it matters: the lock is what keeps the object alive between the lookup and the use:
once it is dropped, the code that removes entries (under the same lock) may free the object,
and the dereference reads freed memory. The fix moves the unlock after the last use, or takes
a reference before it.

Example:
    mutex_lock(&unit_mutex);
    list_for_each_entry(iter, &unit_list, list_entry)
        if (iter->major == major) {
            unit = iter;
            break;
        }
    mutex_unlock(&unit_mutex);
    if (!unit)
        return -ENODEV;
    *private_data = unit->private_data;   /* unit may be freed by now */

Known false positives: objects that outlive the lock for a reason the function does not
show: freed only after an RCU grace period (`list_for_each_entry_rcu` walks are never
reported, and rcu_read_lock() does not count as the lock), pinned by a reference the
caller holds or by another lock also held, never freed while the module or the mount
lives (static compressor tables, ext4 group infos), or lists that are private to the
function. Whether an object survives
the window between an unlock and a relock is not asked.

High only when the file itself, in a function that takes the same lock, takes entries
off that list (`list_del(&x->member)` with the same member) or out of that table
(`idr_remove`, `xa_erase`) and frees memory (kfree and the like): the removal the lock
guards against. Otherwise low (printed with --min-confidence low).
Smatch has no such check (check_locking.c tracks lock state, not what it protects); the
Clang Static Analyzer has none either.
Confidence: high with removal evidence in the file, else low.
""")


# Lookups that return an entry of a list or table without taking a reference on it.
LOOKUPS = frozenset({
    "idr_find", "xa_load", "radix_tree_lookup", "list_first_entry", "list_first_entry_or_null",
    "list_last_entry", "list_next_entry", "list_prev_entry", "hlist_entry_safe",
})
# Removals that take an entry out of a list or table (evidence that entries go away).
REMOVALS = frozenset({
    "list_del", "list_del_init", "hlist_del", "hlist_del_init", "list_del_rcu",
    "idr_remove", "xa_erase", "radix_tree_delete",
})
# ... and the frees that make a removal evidence that entries go away for good.
FREES = frozenset({"kfree", "kvfree", "vfree", "kmem_cache_free", "kfree_rcu", "kfree_sensitive"})
_LIST_WALK = re.compile(r"^h?list_for_each_entry(?:_safe|_continue|_from|_reverse)*$")
MAX_STEPS = 20000


@dataclass(frozen=True)
class Found:
    """An object looked up under `lock` at `line`, from `table` (list head or table)."""

    var: str
    lock: str
    line: int
    table: str
    member: str  # the list member of the entries ('' for a table lookup)
    unlock: int = 0  # the line of the unlock, once released
    obj: str = ""  # the lookup it came from (a copy `unit = iter` shares its cursor's)


State = tuple[frozenset[str], frozenset[Found]]


@register
class UseAfterUnlockChecker(Checker):
    name = "use-after-unlock"
    rules = (USE_AFTER_UNLOCK,)
    events = frozenset({"function"})

    def check_function(self, ctx: FunctionContext) -> list[Raw]:
        fn, packs = ctx.fn, ctx.packs
        names = fn.callees()
        if not any(_LIST_WALK.match(n) or n in LOOKUPS for n in names):
            return []
        take, drop = _lock_calls(packs, names)
        if not take or not drop:
            return []
        return _Walk(fn, packs, (take, drop)).run()


def _lock_calls(packs: Packs, names: set[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Of `names`, the pack calls that take (unconditionally) and drop a lock other than
    RCU."""
    take, drop = set(), set()
    for name in names:
        spec = packs.calls.get(name)
        if spec is None or not (spec.acquires or spec.releases):
            continue
        kinds = {packs.resources[r].kind if r in packs.resources else "" for r in
                 spec.acquires + spec.releases}
        if "lock" not in kinds or "rcu" in spec.acquires + spec.releases:
            continue
        if spec.acquires and spec.success == "always":
            take.add(name)
        elif spec.releases:
            drop.add(name)
    return frozenset(take), frozenset(drop)


class _Walk:
    def __init__(self, fn: Function, packs: Packs, locks: tuple[frozenset[str], frozenset[str]]):
        self.fn, self.packs = fn, packs
        self.take, self.drop = locks
        self.raws: dict[str, Raw] = {}
        self._evidence: set[tuple[str, str, str]] | None = None

    @property
    def evidence(self) -> set[tuple[str, str, str]]:
        """Asked only when a finding is made: the removals of the file (a scan of it)."""
        if self._evidence is None:
            self._evidence = _removal_evidence(self.fn, self.packs)
        return self._evidence

    def run(self) -> list[Raw]:
        explore(self.fn.cfg(), (frozenset(), frozenset()), self.edges, MAX_STEPS)
        return list(self.raws.values())

    def edges(self, node: Node, st: State) -> list[tuple[Node, State]]:
        st = self.step(node, st)
        null_side = _null_side(node) if node.kind == "cond" and st[1] else None
        done = _walk_cursor(node) if node.kind == "cond" and st[1] else ""
        out = []
        for i, s in enumerate(node.succ):
            if null_side is not None and i == null_side[1]:
                # the side where the pointer is NULL: nothing there to dereference
                out.append((s, (st[0], frozenset(f for f in st[1] if f.var != null_side[0]))))
            elif done and i == 1:
                # a walk run to its end leaves its cursor on the list head, no entry
                out.append((s, (st[0], frozenset(f for f in st[1] if f.var != done))))
            else:
                out.append((s, st))
        return out

    # -------------------------------------------------------------- one node
    def step(self, node: Node, st: State) -> State:
        a = node.ast
        if a is None or node.kind not in ("stmt", "cond", "return", "switch"):
            return st
        if node.kind == "cond" and a.type == "expression_statement":
            return self.macro_head(a, st)
        held, found = st
        for n in _in_order(a):
            t = n.type
            if t == "call_expression":
                held, found = self.call(n, held, found)
            elif t == "field_expression":
                self.deref(n, found)
            elif t in ("assignment_expression", "init_declarator"):
                found = self.assign(n, held, found)
                if t == "assignment_expression":
                    found = _pinned(n.child_by_field_name("left"), found)
            elif t == "update_expression":
                found = _pinned(n.child_by_field_name("argument"), found)
        return held, found

    def macro_head(self, a, st: State) -> State:
        held, found = st
        c = a.named_children[0] if a.named_child_count else None
        if c is None or c.type != "call_expression":
            return st
        a_ = args(c)
        cursor = norm(text(a_[0])) if a_ else ""
        found = frozenset(f for f in found if f.var != cursor)
        if _LIST_WALK.match(callee(c)) and len(a_) >= 3 and held and cursor.isidentifier():
            head, member = (a_[2], a_[3]) if len(a_) >= 4 else (a_[1], a_[2])  # .._safe(p, n, ..)
            lock = sorted(held)[0]
            found |= {Found(cursor, lock, line_of(c), static_key(text(head)),
                            norm(text(member)), obj=f"{cursor}@{line_of(c)}")}
        return held, found

    def call(self, c, held: frozenset[str], found: frozenset[Found]):
        name = callee(c)
        spec = self.packs.calls.get(name)
        if name in self.take and spec is not None:
            taken = set(self._keys(spec, c))
            # the lock taken again: what is used from here on is under it (whether the
            # object survived the window is not this rule's narrow question)
            found = frozenset(replace(f, unlock=0) if f.lock in taken and f.unlock else f
                              for f in found)
            return held | taken, found
        if name in self.drop and spec is not None:
            gone = set(self._keys(spec, c))
            line = line_of(c)
            found = frozenset(replace(f, unlock=line) if f.lock in gone and not f.unlock else f
                              for f in found) if gone else found
            return held - gone, found
        if found:
            # the object (or a member's address) handed to a call: pinned, unlinked, or
            # otherwise in the callee's care (kref_get(&obj->ref), list_del(&obj->node))
            passed = {_passed_object(x) for x in args(c)}
            gone = {f.obj for f in found if f.var in passed and not f.unlock}
            found = frozenset(f for f in found if f.obj not in gone)
        return held, found

    def _keys(self, spec, c) -> list[str]:
        out = []
        for t in spec.targets:
            if t.how == "arg" and 0 <= t.index < len(args(c)):
                out.append(static_key(text(args(c)[t.index])))
            elif t.how == "fmt":
                try:
                    out.append(static_key(t.fmt.format(*[norm(text(x)) for x in args(c)])))
                except (IndexError, KeyError):
                    pass
        return out

    def assign(self, n, held: frozenset[str], found: frozenset[Found]) -> frozenset[Found]:
        if n.type == "init_declarator":
            ident = decl_ident(n.child_by_field_name("declarator"))
            lhs = text(ident) if ident is not None else ""
            rhs = n.child_by_field_name("value")
        else:
            lhs = norm(text(n.child_by_field_name("left")))
            rhs = n.child_by_field_name("right")
        if not lhs.isidentifier():
            return found
        kept = frozenset(f for f in found if f.var != lhs)
        r = strip_parens(rhs)
        if r is None:
            return kept
        if r.type == "identifier":
            src = [f for f in found if f.var == text(r) and not f.unlock]
            return kept | {replace(f, var=lhs) for f in src}
        if r.type == "call_expression" and callee(r) in LOOKUPS and held and args(r):
            a = args(r)
            member = norm(text(a[2])) if callee(r).startswith("list_") and len(a) >= 3 else ""
            return kept | {Found(lhs, sorted(held)[0], line_of(r), static_key(text(a[0])),
                                 member, obj=f"{lhs}@{line_of(r)}")}
        return kept

    def deref(self, n, found: frozenset[Found]) -> None:
        if text(n.child_by_field_name("operator")) != "->":
            return
        base = strip_parens(n.child_by_field_name("argument"))
        if base is None or base.type != "identifier":
            return
        var = text(base)
        for f in sorted(found, key=lambda f: (f.line, f.lock, f.obj)):
            if f.var != var or not f.unlock or var in self.raws:
                continue
            if f.lock.startswith((var + "->", var + ".")):
                continue  # the object's own lock: it was not found under it
            strong = (f.lock, "*", f.member) in self.evidence if f.member else \
                (f.lock, f.table, "") in self.evidence
            line = line_of(n)
            self.raws[var] = Raw(
                USE_AFTER_UNLOCK.id, line, var,
                f"'{var}' was looked up in {f.table} under {f.lock} (line {f.line}), but "
                f"{f.lock} is released at line {f.unlock} before '{norm(text(n))}' is read "
                f"here, and no reference was taken on it: once the lock is dropped the "
                f"entry may be removed and freed. Should the unlock move after the last use "
                f"(or a reference be taken under the lock)?",
                [(f.line, f"'{var}' found in {f.table} under {f.lock}"),
                 (f.unlock, f"{f.lock} released"), (line, f"'{var}' dereferenced")],
                [line, f.line, f.unlock], "high" if strong else "low")


def _walk_cursor(node: Node) -> str:
    """The cursor of a list walk whose head this loop node is ('' for other nodes)."""
    a = node.ast
    if not node.loop or a is None or a.type != "expression_statement" or not a.named_child_count:
        return ""
    c = a.named_children[0]
    if c.type != "call_expression" or not _LIST_WALK.match(callee(c)) or not args(c):
        return ""
    return norm(text(args(c)[0]))


def _pinned(target, found: frozenset[Found]) -> frozenset[Found]:
    """A store into a field of an object still under its lock (`this->usecount++`,
    `jinode->i_flags |= JI_COMMIT_RUNNING`, `ses->ses_count++`) is how code pins it for
    use after the unlock: stop tracking it."""
    t = strip_parens(target)
    if t is None or t.type != "field_expression":
        return found
    base = norm(text(t)).split("->")[0].split(".")[0]
    gone = {f.obj for f in found if f.var == base and not f.unlock}
    return frozenset(f for f in found if f.obj not in gone) if gone else found


def _null_side(node: Node) -> tuple[str, int] | None:
    """For a test of a pointer (`p`, `!p`, `p == NULL`, `p != NULL`): the pointer and the
    index of the successor where it is NULL."""
    a = strip_parens(node.ast)
    if a is None:
        return None
    if a.type == "identifier":
        return text(a), 1
    if a.type == "unary_expression" and text(a.child_by_field_name("operator")) == "!":
        inner = strip_parens(a.child_by_field_name("argument"))
        if inner is not None and inner.type == "identifier":
            return text(inner), 0
    if a.type == "binary_expression":
        op = text(a.child_by_field_name("operator"))
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if op in ("==", "!=") and norm(text(right)) == "NULL" and left is not None \
                and left.type == "identifier":
            return text(left), 0 if op == "==" else 1
    return None


def _passed_object(x) -> str:
    """The variable an argument hands over: `obj`, `&obj->member`, `(void *)obj`."""
    t = norm(text(x))
    t = re.sub(r"^\((?:struct|const|void|unsigned)[\w\s\*]*\)", "", t)
    m = re.match(r"^&?\(?([A-Za-z_]\w*)(?:\)?(?:->|\.)[\w.>\-]+)?$", t)
    if m is None:
        return ""
    if t.startswith("&") or "->" not in t:
        return m.group(1)
    return ""  # obj->field: a value read, not the object


def _in_order(a):
    """The nodes of a statement in evaluation order, roughly: a call's arguments before the
    call, an assignment's right side before its left."""
    out = []

    def visit(n):
        t = n.type
        if t == "call_expression":
            for x in args(n):
                visit(x)
            out.append(n)
            return
        if t == "assignment_expression":
            visit(n.child_by_field_name("right"))
            left = n.child_by_field_name("left")
            if left is not None and left.type == "field_expression":
                out.append(left)
                visit(left.child_by_field_name("argument"))
            out.append(n)
            return
        if t == "init_declarator":
            v = n.child_by_field_name("value")
            if v is not None:
                visit(v)
            out.append(n)
            return
        if t == "field_expression":
            out.append(n)
        if t == "update_expression":
            out.append(n)
        for c in n.named_children:
            visit(c)

    visit(a)
    return out


_EVIDENCE: dict[bytes, set[tuple[str, str, str]]] = {}


def _removal_evidence(fn: Function, packs: Packs) -> set[tuple[str, str, str]]:
    """(lock, table, member) of removals the file makes while taking that lock in the same
    function that also frees memory: `list_del(&x->member); .. kfree(x)` or
    `idr_remove(table, ..)` (member '' for a table)."""
    got = _EVIDENCE.get(fn.source)
    if got is not None:
        return got
    out: set[tuple[str, str, str]] = set()
    for f in file_functions(fn):
        body = f.child_by_field_name("body")
        if body is None:
            continue
        calls = list(_calls(body))
        take = _lock_calls(packs, {callee(c) for c in calls})[0]
        locks = set()
        for c in calls:
            spec = packs.calls.get(callee(c))
            if callee(c) in take and spec is not None:
                for t in spec.targets:
                    if t.how == "arg" and 0 <= t.index < len(args(c)):
                        locks.add(static_key(text(args(c)[t.index])))
        if not locks:
            continue
        if not any(callee(c) in FREES for c in calls):
            continue  # entries taken off the list but never freed here (static objects)
        for c in calls:
            name = callee(c)
            if name not in REMOVALS or not args(c):
                continue
            first = norm(text(args(c)[0]))
            m = re.match(r"^&[A-Za-z_]\w*(?:->|\.)([\w.]+)$", first)
            for lock in locks:
                if m:
                    out.add((lock, "*", m.group(1)))
                elif name in ("idr_remove", "xa_erase", "radix_tree_delete"):
                    out.add((lock, static_key(first), ""))
    if len(_EVIDENCE) > 8:
        _EVIDENCE.clear()
    _EVIDENCE[fn.source] = out
    return out


def _calls(body):
    stack = [body]
    while stack:
        n = stack.pop()
        if n.type == "call_expression":
            yield n
        stack.extend(n.children)
