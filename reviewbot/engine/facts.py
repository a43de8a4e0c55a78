"""Per-function facts: what the code of a function says before any path is walked.

``FunctionFacts`` is computed once per walk and shared by the walker and the checkers.
Each fact is a cached property, computed on first use: a checker that asks for the
function's cursors or label returns pays for them, the others do not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property

from tree_sitter import Node as TSNode

from reviewbot.cmodel import Function, Node, PNode, args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import places
from reviewbot.engine.held_names import interior_pointers
from reviewbot.engine.keys import (
    INDEXED,
    array_base,
    decl_ident,
    static_key,
    strip_alias,
    target_keys,
    walk,
)
from reviewbot.engine.values import ERRNO
from reviewbot.packs import Packs
from reviewbot.packs.lookup import LEARNED, CallSpec

Pair = tuple[str, str]  # (resource id, key)


class FunctionFacts:
    def __init__(self, fn: Function, packs: Packs, before: Function | None = None):
        self.fn = fn
        self.packs = packs
        self.before = before if before is not fn else None
        self._inert: dict[int, bool] = {}  # node index -> inert_statement()

    # ------------------------------------------------------------------ locals
    @cached_property
    def locals(self) -> set[str]:
        """Names declared in the body."""
        out: set[str] = set()
        for d in self.fn.of_type("declaration"):
            for c in d.named_children:
                if c.type in ("init_declarator", "identifier", "pointer_declarator",
                              "array_declarator"):
                    ident = decl_ident(c) if c.type != "identifier" else c
                    if ident is not None:
                        out.add(text(ident))
        return out

    @cached_property
    def local_objects(self) -> set[str]:
        """Locals that are objects (structs, arrays), not pointers to someone else's."""
        return {n for n, k in local_kinds(self.fn).items() if k == "object"}

    @cached_property
    def local_pointers(self) -> set[str]:
        """Locals declared as pointers."""
        return {n for n, k in local_kinds(self.fn).items() if k == "pointer"}

    @cached_property
    def borrowed(self) -> set[str]:
        """Locals that point into what the caller passed (ls = &sdp->sd_lockstruct): objects
        reached through them belong to the caller."""
        pairs = _assignments(self.fn)
        owners = set(self.fn.params)
        out: set[str] = set()
        for _ in range(3):  # a short chain of borrowings is enough
            for lhs, rhs in pairs:
                if lhs not in self.locals or "(" in rhs:
                    continue
                m = re.match(r"^&?\(?(\w+)(->|\.)", rhs)
                if m and m.group(1) in owners:
                    out.add(lhs)
            owners |= out
        return out

    @cached_property
    def derived(self) -> dict[str, set[str]]:
        """Object -> the locals that name a part of it through an accessor of that object
        alone (`ui = ubifs_inode(inode)`, `iinfo = UDF_I(inode)`, container_of(inode, ..)):
        what is stored in their fields belongs to the object. Calls that acquire or
        release something are no accessors."""
        out: dict[str, set[str]] = {}
        for lhs, rhs in _assignments(self.fn):
            m = re.fullmatch(r"(\w+)\(\s*(\w+)\s*(?:,[^()]*)?\)", rhs)
            if m is None or lhs not in self.local_pointers or m.group(1) in ("kzalloc", "kmalloc"):
                continue
            spec = self.packs.calls.get(m.group(1))
            if spec is not None and (spec.acquires or spec.releases or spec.consumes):
                continue
            if m.group(1) != "container_of" and "," in rhs:
                continue  # one argument: `f(obj)`, not a lookup `f(table, key)`
            out.setdefault(m.group(2), set()).add(lhs)
        return out

    @cached_property
    def recomputed(self) -> dict[str, str]:
        """A call expression a local is given once and never again (`irq =
        gpiod_to_irq(udc->vbus_gpiod)`) -> that local: a release that computes the value
        again (`free_irq(gpiod_to_irq(udc->vbus_gpiod), udc)`) names the same thing."""
        count: dict[str, int] = {}
        rhs_of: dict[str, str] = {}
        for lhs, rhs in _assignments(self.fn):
            count[lhs] = count.get(lhs, 0) + 1
            rhs_of[lhs] = rhs
        out: dict[str, str] = {}
        for lhs, rhs in rhs_of.items():
            m = re.fullmatch(r"(\w+)\(.*\)", rhs)
            if count[lhs] != 1 or m is None or lhs not in self.locals:
                continue
            spec = self.packs.calls.get(m.group(1))
            if spec is None or not (spec.acquires or spec.releases or spec.consumes):
                out[rhs] = lhs
        return out

    @cached_property
    def callers_parts(self) -> set[str]:
        """Locals naming the caller's object through an accessor of a parameter (`gpio =
        gpiochip_get_data(chip)`, `ctx = nfs_fc2context(fc)`): memory allocated into their
        fields is kept there."""
        owners = set(self.fn.params) | self.borrowed
        out: set[str] = set()
        for _ in range(3):  # chip = gpiod_to_chip(desc); gpio = gpiochip_get_data(chip)
            out |= {p for obj, parts in self.derived.items() if obj in owners for p in parts}
            owners |= out
        return out

    @cached_property
    def errno_vars(self) -> set[str]:
        """Variables the function uses for error codes: somewhere assigned -EXXX."""
        out: set[str] = set()
        for a in self.fn.of_type("assignment_expression"):
            lhs = norm(text(a.child_by_field_name("left")))
            rhs = norm(text(a.child_by_field_name("right")))
            if lhs.isidentifier() and ERRNO.match(rhs):
                out.add(lhs)
        for d in self.fn.of_type("init_declarator"):
            v = d.child_by_field_name("value")
            if v is not None and ERRNO.match(norm(text(v))):
                out.add(norm(text(decl_ident(d.child_by_field_name("declarator")))))
        return out

    @cached_property
    def cursors(self) -> set[str]:
        """Variables that walk over arrays or lists (bi = rgd->rd_bits + x; p++): what they
        name changes from one iteration to the next."""
        fn = self.fn
        out: set[str] = set()
        counts: dict[str, int] = {}
        for a in fn.of_type("assignment_expression"):
            lhs = norm(text(a.child_by_field_name("left")))
            counts[lhs] = counts.get(lhs, 0) + 1
        for a in fn.of_type("assignment_expression"):
            lhs = norm(text(a.child_by_field_name("left")))
            rhs = norm(text(a.child_by_field_name("right")))
            # assigned more than once (a loop's step and its unwind), not `ops = table[mode]`
            if lhs.isidentifier() and counts[lhs] > 1 and ("+" in rhs or "[" in rhs
                                                            or "->next" in rhs):
                out.add(lhs)
        for u in fn.of_type("update_expression"):
            arg = norm(text(u.child_by_field_name("argument")))
            if arg.isidentifier():
                out.add(arg)
        for st in fn.of_type("expression_statement"):
            call = st.named_children[0] if st.named_child_count else None
            if call is not None and call.type == "call_expression" and "for_each" in callee(call):
                a = args(call)
                if a:
                    out.add(norm(text(a[0])))
        return out

    @cached_property
    def reinit(self) -> set[str]:
        """Holders set up by calls no pack knows (gfs2_holder_mark_uninitialized, memset):
        whatever is passed by address."""
        out: set[str] = set()
        for c in self.fn.of_type("call_expression"):
            for a in args(c):
                t = norm(text(a))
                if t.startswith("&"):
                    out.add(static_key(t))
        return out

    @cached_property
    def annotated_locks(self) -> set[str]:
        """Locks the function is declared to take, drop or need (__acquires & co)."""
        return {norm(a.arg).lstrip("&") for a in self.fn.annotations
                if a.name in ("__acquires", "__releases", "__must_hold")}

    # ------------------------------------------------------------------ the graph
    @cached_property
    def joins(self) -> set[int]:
        """Nodes where two or more edges of the graph arrive."""
        seen: set[int] = set()
        out: set[int] = set()
        for n in self.fn.nodes:
            for s in n.succ:
                (out if s.idx in seen else seen).add(s.idx)
        return out

    def inert_statement(self, node: Node) -> bool:
        """A statement node whose evaluation changes no state (no call, assignment,
        dereference or initialiser), decided once per node."""
        got = self._inert.get(node.idx)
        if got is None:
            a = node.ast
            got = a is None or (not any(d.type == "init_declarator" for d in a.named_children)
                                if a.type == "declaration" else inert(a))
            self._inert[node.idx] = got
        return got

    def ends_path(self, node: Node) -> bool:
        """A statement that is a call of a noreturn function (BUG(), panic(), ...)."""
        a = node.ast
        if a is None or a.type != "expression_statement" or not self.packs.noreturn:
            return False
        kids = a.named_children
        return bool(kids) and kids[0].type == "call_expression" and \
            callee(kids[0]) in self.packs.noreturn

    @cached_property
    def label_returns(self) -> dict[str, str]:
        """For each label, the expression the code after it returns (following gotos)."""
        out: dict[str, str] = {}
        for name, lab in self.fn.labels.items():
            n, seen = lab, set()
            ret = ""
            while n is not None and n.idx not in seen:
                seen.add(n.idx)
                if n.kind == "return":
                    ret = norm(text(n.ast)) if n.ast is not None else ""
                    break
                if n.kind == "cond":
                    n = n.succ[1] if len(n.succ) > 1 else (n.succ[0] if n.succ else None)
                    continue
                n = n.succ[0] if n.succ else None
            out[name] = ret
        return out

    @cached_property
    def error_labels(self) -> set[str]:
        """Labels some goto reaches with an error in hand: the goto's test is of the value
        the label returns (`if (ret) goto out`), or its block sets that value to an error
        (`ret = -ENOMEM; goto out`). A label only reached after other tests (`if (!vma)
        goto empty_set`) may be a deliberate success exit."""
        out: set[str] = set()
        for g in self.fn.of_type("goto_statement"):
            lab = g.child_by_field_name("label")
            if lab is None:
                continue
            name = text(lab)
            ret = self.label_returns.get(name, "")
            if not ret.isidentifier():
                continue
            block = g.parent if g.parent is not None and \
                g.parent.type == "compound_statement" else None
            if block is not None:
                for st in block.named_children:
                    if st.start_byte >= g.start_byte:
                        break
                    if _sets_error(st, ret):
                        out.add(name)
            cond_owner = (block or g).parent if block is not None else g.parent
            if cond_owner is not None and cond_owner.type == "if_statement":
                cond = cond_owner.child_by_field_name("condition")
                if cond is not None and any(text(i) == ret for i in walk(cond, "identifier")):
                    out.add(name)
        return out

    # ------------------------------------------------------------------ tested values
    @cached_property
    def retested_atoms(self) -> set[str]:
        """Conditions (as text) tested more than once: the tests take the same branch."""
        seen: dict[str, int] = {}
        for n in self.fn.nodes:
            if n.kind == "cond" and n.ast is not None:
                t = norm(text(strip_parens(n.ast)))
                seen[t] = seen.get(t, 0) + 1
        return {t for t, c in seen.items() if c > 1}

    @cached_property
    def _pure_retests(self) -> dict[str, str]:
        """Retested conditions whose value can only change by an assignment the walk
        sees: no assignment, increment or pack-known call inside them. Text -> fact key."""
        out: dict[str, str] = {}
        for n in self.fn.nodes:
            if n.kind != "cond" or n.ast is None:
                continue
            a = strip_parens(n.ast)
            t = norm(text(a))
            if t not in self.retested_atoms or t in out:
                continue
            if any(True for _ in walk(a, "assignment_expression")) or \
                    any(True for _ in walk(a, "update_expression")):
                continue
            if any(_has_effects(self.packs.calls.get(callee(c)))
                   for c in walk(a, "call_expression")):
                continue  # a test that takes or drops something (`trylock()`) is no retest
            out[t] = "?@" + t
        return out

    @cached_property
    def compared(self) -> set[tuple[str, str]]:
        """Pairs of names a condition compares with == or != (`buf == of->prealloc_buf`),
        both ways round: an assignment of one to the other is worth remembering."""
        out: set[tuple[str, str]] = set()
        for n in self.fn.nodes:
            if n.kind != "cond" or n.ast is None:
                continue
            a = strip_parens(n.ast)
            if a is None or a.type != "binary_expression" or \
                    text(a.child_by_field_name("operator")) not in ("==", "!="):
                continue
            sides = [strip_parens(a.child_by_field_name(f)) for f in ("left", "right")]
            if all(x is not None and x.type in ("identifier", "field_expression")
                   for x in sides):
                lt, rt = (norm(text(x)) for x in sides)
                out |= {(lt, rt), (rt, lt)}
        # a name also changed by `+=`, `++` or through its address (`&buf`) is not kept
        # equal by the walk (it sees only plain assignments): no such pair
        changed = {norm(text(u.child_by_field_name("argument")))
                   for u in self.fn.of_type("update_expression")}
        changed |= {norm(text(a.child_by_field_name("left")))
                    for a in self.fn.of_type("assignment_expression")
                    if text(a.child_by_field_name("operator")) != "="}
        changed |= {norm(text(x))[1:] for c in self.fn.of_type("call_expression")
                    for x in args(c) if norm(text(x)).startswith("&")}
        return {(a, b) for a, b in out if a not in changed and b not in changed}

    def retest_key(self, atom) -> str:
        """The fact key under which a retested condition's outcome is kept, or ''."""
        if not self._pure_retests:
            return ""
        return self._pure_retests.get(norm(text(strip_parens(atom))), "")

    @cached_property
    def tested(self) -> set[str]:
        """Expressions tested by some condition or returned: their values matter."""
        out: set[str] = set()
        for n in self.fn.nodes:
            if n.kind in ("cond", "return") and n.ast is not None:
                for typ in ("identifier", "field_expression"):
                    for x in walk(n.ast, typ):
                        out.add(static_key(text(x)))
        return out

    @cached_property
    def flags(self) -> set[str]:
        """Values worth keeping when the walk widens: flags, correlated tests, error
        variables and what is returned."""
        return _flag_vars(self.fn) | self._retested_vars() | self.errno_vars | self._returned()

    def _returned(self) -> set[str]:
        """Variables returned somewhere: whether an exit is an error exit depends on them."""
        return self.returned_vars

    @cached_property
    def propagated(self) -> set[str]:
        """Variables some failure test returns (`if (ret) return ret;`, `if (err < 0) {
        ...; return err; }`): they carry the function's errors."""
        out: set[str] = set()
        for s in self.fn.of_type("if_statement"):
            cond = s.child_by_field_name("condition")
            var = plain_test(cond)
            if var and failure_side(cond) and \
                    _returns(s.child_by_field_name("consequence"), var):
                out.add(var)
        return out

    @cached_property
    def returned_vars(self) -> set[str]:
        """Variables some return statement returns (`return ret;`)."""
        return {norm(text(n.ast)) for n in self.fn.nodes
                if n.kind == "return" and n.ast is not None and n.ast.type == "identifier"}

    def _retested_vars(self) -> set[str]:
        """Plain variables tested by two or more conditions: the tests are correlated."""
        seen: dict[str, int] = {}
        for n in self.fn.nodes:
            if n.kind == "cond" and n.ast is not None:
                for x in {norm(text(i)) for i in walk(n.ast, "identifier")}:
                    seen[x] = seen.get(x, 0) + 1
        return {x for x, c in seen.items() if c >= 2 and x in self.locals}

    # ------------------------------------------------------------------ pack calls
    @cached_property
    def _releases(self) -> tuple[set[Pair], dict[Pair, list[int]]]:
        out, lines = _static_releases(self.fn, self.packs)
        if self.before is not None:
            # what the function released before the patch still says what it must release
            out |= _static_releases(self.before, self.packs)[0]
        return out, lines

    @property
    def static_releases(self) -> set[Pair]:
        """(resource id, key) pairs some pack call in the function releases."""
        return self._releases[0]

    @cached_property
    def _acquires(self) -> tuple[set[Pair], dict[Pair, list[int]]]:
        out: set[Pair] = set()
        lines: dict[Pair, list[int]] = {}
        for c in self.fn.of_type("call_expression"):
            spec = self.packs.calls.get(callee(c))
            if spec and spec.acquires:
                parent = c.parent
                lhs = None
                if parent is not None and parent.type == "assignment_expression":
                    lhs = norm(text(parent.child_by_field_name("left")))
                for key in target_keys(spec, c, static_key, lhs):
                    for rid in spec.acquires:
                        out.add((rid, key))
                        lines.setdefault((rid, key), []).append(line_of(c))
        return out, lines

    @cached_property
    def holding_flags(self) -> dict[str, Pair]:
        """Flags the function sets true right beside an acquisition, and only there
        (`trans->removing_chunk = true; mutex_lock(&fs_info->chunk_mutex);`): testing
        one (`if (trans->removing_chunk) mutex_unlock(..)`) asks whether the path holds
        that resource, as a pack's test would."""
        seen: dict[str, list[frozenset[Pair]]] = {}
        for a in self.fn.of_type("assignment_expression"):
            if norm(text(a.child_by_field_name("right"))) not in ("true", "1"):
                continue
            stmt = a.parent
            if stmt is None or stmt.type != "expression_statement" or stmt.parent is None:
                continue
            flag = norm(text(a.child_by_field_name("left")))
            kids = [k for k in stmt.parent.named_children if k.type != "comment"]
            i = next((j for j, k in enumerate(kids) if k == stmt), -1)
            near: set[Pair] = set()
            for k in kids[max(i - 1, 0):i] + kids[i + 1:i + 2]:
                c = k.named_children[0] if k.type == "expression_statement" and \
                    k.named_child_count else None
                spec = self.packs.calls.get(callee(c)) if c is not None and \
                    c.type == "call_expression" else None
                if spec is not None and spec.acquires and c is not None:
                    near |= {(rid, key) for key in target_keys(spec, c, static_key)
                             for rid in spec.acquires}
            seen.setdefault(flag, []).append(frozenset(near))
        out: dict[str, Pair] = {}
        for flag, sets in seen.items():
            common = frozenset.intersection(*sets) if sets else frozenset()
            if len(common) == 1:
                out[flag] = next(iter(common))
        return out

    @property
    def static_acquires(self) -> set[Pair]:
        """(resource id, key) pairs some pack call in the function acquires."""
        return self._acquires[0]

    @property
    def acquire_lines(self) -> dict[Pair, list[int]]:
        return self._acquires[1]

    def entered_locked(self, rid: str, key: str) -> bool:
        """The function drops the lock before it first takes it: the caller holds it."""
        acq = self.acquire_lines.get((rid, key))
        rel = self._releases[1].get((rid, key))
        return bool(acq and rel and min(rel) < min(acq))

    def released_by_loop(self, rid: str, key: str) -> bool:
        """The function releases elements of this array in a loop (ghs + x). Not of a
        place the path stored in (engine/places.py): the walk sees that loop's releases."""
        return (rid, "@base:" + array_base(key)) in self.static_releases and not places.is_place(key)

    def removed_release(self, rid: str, key: str) -> bool:
        """The patch removed a release of this resource from the function."""
        if self.before is None:
            return False
        before = _static_releases(self.before, self.packs)[1]
        after = self._releases[1]
        return any(len(before.get(k, ())) > len(after.get(k, ()))
                   for k in ((rid, key), (rid, strip_alias(key))))

    @cached_property
    def _hand_releases(self) -> set[Pair]:
        out = _static_releases(self.fn, self.packs, hand_only=True)[0]
        if self.before is not None:
            out |= _static_releases(self.before, self.packs, hand_only=True)[0]
        return out

    def hand_releases_anywhere(self, rid: str, key: str) -> bool:
        """Like releases_anywhere, by calls of hand-written packs only."""
        return (rid, key) in self._hand_releases or (rid, strip_alias(key)) in self._hand_releases \
            or (rid, key) in self.hand_released_places

    def releases_anywhere(self, rid: str, key: str) -> bool:
        return (rid, key) in self.static_releases or (rid, strip_alias(key)) in self.static_releases \
            or (rid, key) in self.hand_released_places

    # ------------------------------------------------------------------ places
    @cached_property
    def assignments(self) -> list[tuple[str, str]]:
        return _assignments(self.fn)

    @cached_property
    def interior(self) -> dict[str, str]:
        """Local pointers into a local buffer a call returned them from (held_names.py)."""
        return interior_pointers(self)

    @cached_property
    def member_pointers(self) -> dict[str, str]:
        return places.member_pointers(self)

    @cached_property
    def hand_released_places(self) -> dict[Pair, list[int]]:
        """(resource id, place) of fields the function releases by hand -> the lines
        (engine/places.py)."""
        return places.hand_released_places(self)

    @cached_property
    def loop_released(self) -> dict[int, frozenset[Pair]]:
        """Loop test node -> places its body releases elements of (engine/places.py)."""
        return places.loop_released(self)


# ---------------------------------------------------------------------- helpers


_CONDITION_WRAPPERS = ("unlikely", "likely")


def _plain(atom) -> tuple[str, bool]:
    """(variable, whether true means it failed) of a plain failure test, or ("", False)."""
    a = strip_parens(atom)
    failed = True
    while a is not None:
        if a.type == "call_expression" and callee(a) in _CONDITION_WRAPPERS:
            inner = args(a)
            a = strip_parens(inner[0]) if len(inner) == 1 else None
        elif a.type == "unary_expression" and text(a.child_by_field_name("operator")) == "!":
            a = strip_parens(a.child_by_field_name("argument"))
            failed = not failed
        elif a.type == "binary_expression" and \
                text(a.child_by_field_name("operator")) in ("<", "!=", "==") and \
                norm(text(a.child_by_field_name("right"))) == "0":
            if text(a.child_by_field_name("operator")) == "==":
                failed = not failed
            a = strip_parens(a.child_by_field_name("left"))
        elif a.type == "assignment_expression":
            a = a.child_by_field_name("left")
        else:
            break
    if a is None or a.type != "identifier":
        return "", False
    return text(a), failed


def plain_test(atom) -> str:
    """The variable a plain failure test tests (`ret`, `!ret`, `ret < 0`, `ret != 0`,
    `unlikely(ret)`, `(ret = f()) < 0`), or ''."""
    return _plain(atom)[0]


def failure_side(atom) -> bool:
    """Whether a plain failure test is true when the variable failed (`ret`, `ret < 0`;
    not `!ret`, `ret == 0`)."""
    return _plain(atom)[1]


def _returns(stmt, var: str) -> bool:
    """A failure test's branch hands the variable to the caller."""
    if stmt is None:
        return False
    if stmt.type == "compound_statement":
        kids = stmt.named_children
        return bool(kids) and _returns(kids[-1], var)
    if stmt.type == "return_statement":
        return any(text(i) == var for i in walk(stmt, "identifier"))
    return False  # (a goto to a label returning it is no evidence: counts go there too)


def _sets_error(stmt, var: str) -> bool:
    """`var = -EFOO;`, `var = PTR_ERR(x);` and the like."""
    if stmt.type != "expression_statement" or not stmt.named_children:
        return False
    a = stmt.named_children[0]
    if a.type != "assignment_expression" or norm(text(a.child_by_field_name("left"))) != var:
        return False
    rhs = norm(text(a.child_by_field_name("right")))
    return rhs.startswith(("-", "PTR_ERR", "ERR_PTR")) or rhs.startswith("(-")


def _static_releases(fn: Function, packs: Packs, hand_only: bool = False
                     ) -> tuple[set[Pair], dict[Pair, list[int]]]:
    out: set[Pair] = set()
    lines: dict[Pair, list[int]] = {}
    for c in fn.of_type("call_expression"):
        spec = packs.calls.get(callee(c))
        if spec and spec.releases and not (hand_only and spec.pack == LEARNED):
            for key in target_keys(spec, c, static_key):
                for rid in spec.releases:
                    out.add((rid, key))
                    lines.setdefault((rid, key), []).append(line_of(c))
                    if INDEXED.search(key):
                        out.add((rid, "@base:" + array_base(key)))
    for a in fn.of_type("assignment_expression"):
        lhs = norm(text(a.child_by_field_name("left")))
        rhs = norm(text(a.child_by_field_name("right")))
        for spec in packs.assigns:
            if spec.releases and spec.lhs.match(lhs) and rhs in ("NULL", "0"):
                out.add((spec.releases, lhs))
    return out, lines


def _assignments(fn: Function) -> list[tuple[str, str]]:
    """(left, right) texts of the assignments and initialised declarations."""
    pairs = [(norm(text(a.child_by_field_name("left"))), norm(text(a.child_by_field_name("right"))))
             for a in fn.of_type("assignment_expression")]
    for d in fn.of_type("init_declarator"):
        v = d.child_by_field_name("value")
        ident = decl_ident(d.child_by_field_name("declarator"))
        if v is not None and ident is not None:
            pairs.append((text(ident), norm(text(v))))
    return pairs


def _flag_vars(fn: Function) -> set[str]:
    """Locals only ever set to constants (need_unlock = true): they record a path."""
    consts: set[str] = set()
    other: set[str] = set()
    for lhs, rhs in _assignments(fn):
        if re.fullmatch(r"true|false|\d+|NULL|-?E[A-Z]+|-\d+", rhs):
            consts.add(lhs)
        else:
            other.add(lhs)
    return consts - other


def plain_locals(fn: Function, type_ok: Callable[[TSNode], bool]) -> set[str]:
    """Locals declared plainly (not pointers, not arrays) with a type `type_ok` accepts:
    `struct posix_clock_desc cd;`, `int err;`."""
    out: set[str] = set()
    for d in fn.of_type("declaration"):
        ty = d.child_by_field_name("type")
        if ty is None or not type_ok(ty):
            continue
        for c in d.named_children:
            inner = c.child_by_field_name("declarator") if c.type == "init_declarator" else c
            if inner is not None and inner.type == "identifier":
                out.add(text(inner))
    return out


def local_kinds(fn: Function) -> dict[str, str]:
    """How each local is declared: "object" (struct or array), or "pointer"."""
    out: dict[str, str] = {}
    for d in fn.of_type("declaration"):
        for c in d.named_children:
            inner = c.child_by_field_name("declarator") if c.type == "init_declarator" else c
            if inner is None:
                continue
            if inner.type == "identifier":
                out[text(inner)] = "object"
            elif inner.type == "array_declarator":
                ident = decl_ident(inner)
                if ident is not None:
                    out[text(ident)] = "object"
            elif inner.type == "pointer_declarator":
                ident = inner.child_by_field_name("declarator")
                if ident is not None and ident.type == "identifier":
                    out[text(ident)] = "pointer"
                elif ident is not None and ident.type == "array_declarator":
                    name = decl_ident(ident)  # `struct scatterlist *stack_sgs[6]`: an array
                    if name is not None:
                        out[text(name)] = "object"
    return out


# The expressions eval_expr acts on; a subtree with none of them changes no state.
_ACTIVE = frozenset({"assignment_expression", "call_expression", "conditional_expression",
                     "field_expression"})


def inert(e) -> bool:
    """Whether evaluating `e` can change a state (decided once per syntax view: the same
    statement is evaluated again for every path state that reaches it)."""
    if type(e) is not PNode:
        return False
    got = e.inert
    if got is None:
        got = e.inert = e.type not in _ACTIVE and all(inert(c) for c in e.named_children)
    return got


def active_kids(e) -> list:
    """The named children of `e` whose evaluation can change a state (cached per view)."""
    if type(e) is not PNode:
        return e.named_children
    got = e.active_kids
    if got is None:
        got = e.active_kids = [c for c in e.named_children if not inert(c)]
    return got


def _has_effects(spec: CallSpec | None) -> bool:
    """A pack-known call that does something a retest cannot repeat: acquires, releases,
    consumes or tests a resource. A call known only as must-check (`cpu_is_omap16xx()`,
    learned from its callers) is a pure question."""
    return spec is not None and bool(spec.acquires or spec.releases or spec.consumes
                                     or spec.escapes or spec.maybe_consumes or spec.tests)
