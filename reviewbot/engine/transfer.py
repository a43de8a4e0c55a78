"""Transfer functions of statements and calls: how each changes a path state.

Mixed into the Walker (reviewbot/engine/walker.py), whose attributes they use: ``fn``,
``packs``, ``facts``, ``checkers`` and ``canon``/``target_keys``/``set_fact``.
What a call does comes from the packs; a call no pack describes is judged by its name
(a release-looking name makes what it is passed unknown) and by how it is passed things.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from tree_sitter import Node as TSNode

from reviewbot.cmodel import args, callee, line_of, norm, strip_parens, text
from reviewbot.engine import callee_locks
from reviewbot.engine.checker import Call
from reviewbot.engine.facts import active_kids
from reviewbot.engine.held_names import names_of_held, stored_interior
from reviewbot.engine.keys import (
    INDEXED,
    alias_pair,
    array_base,
    base_of_field,
    decl_ident,
    mentions,
    walk,
)
from reviewbot.engine.places import place_of, stored_place
from reviewbot.engine.state import (
    ABSENT,
    ESCAPED,
    FAILED,
    HELD,
    PENDING,
    RELEASED,
    UNKNOWN,
    PathState,
    Res,
)
from reviewbot.engine.values import ALL, SUCCESS_SETS, E, N, P, call_values, const_values
from reviewbot.packs import Target
from reviewbot.packs.lookup import LEARNED

if TYPE_CHECKING:
    pass



class Transfer:
    # ------------------------------------------------------------------ statements
    def eval_stmt(self, s: TSNode | None, st: PathState) -> None:
        if s is None:
            return
        if s.type == "declaration":
            for d in s.named_children:
                if d.type == "init_declarator":
                    name = norm(text(decl_ident(d.child_by_field_name("declarator"))))
                    val = d.child_by_field_name("value")
                    if val is not None and name:
                        self.assign(name, val, st, line_of(d))
            return
        if s.type == "expression_statement":
            for c in s.named_children:
                self.eval_expr(c, st, statement=True)
            return
        self.eval_expr(s, st)

    def eval_expr(self, e: TSNode | None, st: PathState, result: str | None = None,
                  statement: bool = False) -> None:
        if e is None:
            return
        t = e.type
        if t == "assignment_expression":
            lhs = e.child_by_field_name("left")
            rhs = e.child_by_field_name("right")
            op = text(e.child_by_field_name("operator"))
            if op != "=":
                self.eval_expr(rhs, st)
                key = self.canon(text(lhs), st)
                self.set_fact(st, key, ALL)
                self.forget(key, st, exact=True)  # `p += n`: p names another address now
                return
            self.assign(norm(text(lhs)), rhs, st, line_of(e))
            return
        if t == "call_expression":
            for a in args(e):
                self.eval_expr(a, st)
            self.call(e, st, result, statement)
            return
        if t == "conditional_expression":
            self.eval_expr(e.child_by_field_name("condition"), st)
            # calls in the arms run on only one of two paths: their resources become unknown
            for arm in (e.child_by_field_name("consequence"), e.child_by_field_name("alternative")):
                for c in walk(arm, "call_expression"):
                    for a in args(c):
                        self.forget(self.canon(text(a), st), st)
            return
        if t == "field_expression":
            self.check_deref(e, st)
        for c in active_kids(e):
            self.eval_expr(c, st)

    def check_deref(self, e: TSNode, st: PathState) -> None:
        base = e.child_by_field_name("argument")
        if base is None or text(e.child_by_field_name("operator")) != "->":
            return
        key = self.canon(text(base), st)
        for r in st.res.values():
            if r.key == key and r.status == RELEASED:
                self.emit("use", st, r, line_of(e), "deref")

    def forget(self, key: str, st: PathState, exact: bool = False) -> None:
        for k, r in list(st.res.items()):
            if r.key == key or (not exact and mentions(key, r.key)):
                st.res[k] = replace(r, status=UNKNOWN)

    def assign(self, lhs_raw: str, rhs: TSNode | None, st: PathState, line: int) -> None:
        lhs = self.canon(lhs_raw, st)
        rhs = strip_parens(rhs)
        if rhs is None:
            return
        while rhs.type == "cast_expression":  # vmem = (void *)__get_free_pages(..)
            inner = strip_parens(rhs.child_by_field_name("value"))
            if inner is None or inner.type not in ("call_expression", "cast_expression"):
                break
            rhs = inner
        # The value being overwritten: aliases and facts about it die.
        simple = re.fullmatch(r"[A-Za-z_]\w*", lhs_raw) is not None
        if simple and lhs == lhs_raw and self._hooks["overwrite"] and lhs not in st.alias.values():
            # the only name of a held or untested resource gets a new value
            for r in [r for r in st.res.values() if r.key == lhs and r.status in (HELD, PENDING)]:
                self.emit("overwrite", st, r, line, " ".join(text(rhs).split()))
        if simple:
            st.alias.pop(lhs_raw, None)
            # the names copied from this variable die with its value; a copy of what it
            # only named (`fsn_mark = new_fsn_mark` of a member) still names that
            for v in [v for v, tgt in st.alias.items() if tgt == lhs and lhs == lhs_raw]:
                st.alias.pop(v, None)
        rt = rhs.type
        rtext = norm(text(rhs))
        try:
            self._assign(lhs_raw, lhs, rhs, rt, rtext, simple, st, line)
        finally:
            # publish / unpublish patterns from the packs ([[assign]])
            for spec in self.packs.assigns:
                if spec.lhs.match(lhs):
                    if spec.value == "null" and rtext in ("NULL", "0") and spec.releases:
                        self.release(spec.releases, lhs, st, line, f"{lhs_raw} = NULL", False)
                    elif spec.value == "nonnull" and rtext not in ("NULL", "0") and spec.acquires:
                        self.acquire(spec.acquires, lhs, st, line, f"{lhs_raw} = {rtext}",
                                     nonlocal_=False, pending=None)

    def _assign(self, lhs_raw: str, lhs: str, rhs: TSNode, rt: str, rtext: str, simple: bool,
                st: PathState, line: int) -> None:
        if rt == "call_expression":
            for a in args(rhs):
                self.eval_expr(a, st)
            self._drop_key(lhs, st, line)
            spec = self.packs.calls.get(callee(rhs))
            if spec is not None and spec.alias and simple and args(rhs):
                st.alias[lhs_raw] = f"{callee(rhs)}({self.canon(text(args(rhs)[0]), st)})"
                self.set_fact(st, lhs, ALL)
                return
            if spec is not None and spec.returns_arg is not None and simple:
                a = args(rhs)
                if spec.returns_arg < len(a) and lhs_raw not in self.facts.locals:
                    st.alias[lhs_raw] = self.canon(text(a[spec.returns_arg]), st)
            vals = call_values(rhs, self.packs.idioms)
            if callee(rhs) in self.packs.idioms.ptr_err and args(rhs) and \
                    st.value(self.canon(text(args(rhs)[0]), st)) <= E:
                vals = N  # PTR_ERR() of an error pointer is a negative errno
            self.set_fact(st, lhs, vals)
            st.from_call = st.from_call | {lhs}
            st.fresh = st.fresh | {lhs}
            self.call(rhs, st, result=lhs, statement=False, lhs_raw=lhs_raw)
            return
        # not a call
        self.eval_expr(rhs, st)
        if rt == "initializer_list" and lhs_raw in self.facts.local_objects:
            # struct ovl_inode_params oip = { .upperdentry = upperdentry, .. }
            for v in walk(rhs, "identifier"):
                vk = self.canon(text(v), st)
                for k, r in list(st.res.items()):
                    if r.key == vk and r.status in (HELD, PENDING):
                        st.res[k] = replace(r, parked=lhs_raw)
        if rt == "conditional_expression":
            self._drop_key(lhs, st, line)
            self.set_fact(st, lhs, ALL)
            st.from_call = st.from_call - {lhs}
            return
        src_key = self.canon(text(rhs), st) if rt in ("identifier", "field_expression", "pointer_expression", "subscript_expression", "cast_expression") else ""
        if rt == "cast_expression":
            v = rhs.child_by_field_name("value")
            src_key = self.canon(text(v), st) if v is not None else ""
        elif rt == "assignment_expression":  # *out = p = kmalloc(..): p is stored too
            src_key = self.canon(text(rhs.child_by_field_name("left")), st)
        if rtext.startswith("&") and "->" in rtext:
            root = self.canon(rtext[1:].split("->")[0], st)
            member = False
            for k, r in list(st.res.items()):
                if r.key == root and r.status in (HELD, PENDING):
                    st.res[k] = replace(r, handed=True)  # ret = &hs->hs_group
                    member = r.status == HELD
            if member and simple and lhs_raw in self.facts.local_pointers:
                # aux_dev = &i40e_aux_dev->aux_dev: another name for the member, so that a
                # put of aux_dev is one of the member (and frees its container); the
                # address of a member of an object held is not NULL (`if (ret == NULL)`)
                self._drop_key(lhs, st, line)
                target = self.canon(rtext[1:], st)
                st.alias[lhs_raw] = target
                st.values[target] = P
                return
        held = [r for r in st.res.values() if src_key and r.key == src_key]
        local_lhs = simple and lhs_raw in self.facts.locals
        if not held and not local_lhs:
            held = stored_interior(self, rhs, st)  # `qstr.name = ++p` of p into a buffer
        named = names_of_held(self, lhs_raw, rt, rtext, src_key, st) \
            if not held and local_lhs and lhs_raw in self.facts.local_pointers else ""
        if named:
            self._drop_key(lhs, st, line)
            st.alias[lhs_raw] = named
            return
        if held and local_lhs:
            # a local copy: another name for the same resource
            self._drop_key(lhs, st, line)
            st.alias[lhs_raw] = src_key
            self.set_fact(st, lhs, st.value(src_key))
            return
        if held and not local_lhs:
            for r in held:
                if r.status in (HELD, PENDING):
                    self._stored((r.rid, r.key), st, line, lhs_raw)
                elif r.status == RELEASED:
                    self.emit("store", st, r, line, lhs_raw)
        self._drop_key(lhs, st, line)
        st.from_call = st.from_call - {lhs}
        self.set_fact(st, lhs, const_values(rtext, st.value(src_key) if src_key else ALL,
                                            self.packs.idioms))
        if simple and src_key and (lhs_raw, rtext) in self.facts.compared:
            # `buf = of->prealloc_buf; .. if (buf == of->prealloc_buf)`: equal until either
            # is assigned again (_drop_key forgets the fact then)
            st.values[equal_key(lhs, src_key)] = P

    def _drop_key(self, key: str, st: PathState, line: int) -> None:
        """The variable naming a resource gets a new value: stop tracking the old one."""
        below = (key + "->", key + ".")
        for k, r in list(st.res.items()):
            if r.key == key or r.key.startswith(below):
                del st.res[k]
        for f in [f for f in st.values if f == key or f.startswith(below)
                  or (f[:1] == "?" and mentions(f, key))]:
            st.values.pop(f, None)

    # ------------------------------------------------------------------ calls
    def call(self, c: TSNode, st: PathState, result: str | None, statement: bool,
             lhs_raw: str | None = None) -> None:
        name = callee(c)
        spec = self.packs.calls.get(name)
        line = line_of(c)
        a = args(c)
        # out-arguments get new values
        for x in a:
            xt = norm(text(x))
            if xt.startswith("&") and not (spec and (spec.acquires or spec.releases)):
                out_key = self.canon(xt[1:], st)
                self.set_fact(st, out_key, ALL)
                for f in [f for f in st.values if f[:2] == "?@" and mentions(f, out_key)]:
                    st.values.pop(f)  # a retested condition on it may change now
                if spec is None:
                    # readSuper(sb, &bh) after brelse(bh): the name holds a new object now
                    for k2 in [k2 for k2, r in st.res.items()
                               if r.key == out_key and r.status == RELEASED]:
                        del st.res[k2]
                    # a held pointer given by address (`iter(hdr, &data, &arr, fill)`): the
                    # callee may advance it and store it where the caller cannot see
                    for k2, r in list(st.res.items()):
                        if r.key == out_key and r.status in (HELD, PENDING) and not r.lent:
                            st.res[k2] = replace(r, lent=True)
                            st.note(line, f"{r.key} given by address to {name}()")
        if spec is None:
            callee_locks.apply(self, name, c, st, line, result)
            self.unknown_call(name, c, st, line, assigned=bool(result) and not result.startswith("#"))
            return
        if spec.acquires_nothing:
            return
        release_keys = tuple(self.target_keys(spec, c, st)) if spec.releases else ()
        self.emit("call", st, Call(spec, line, statement, release_keys, result or ""))
        if spec.escapes is not None and spec.escapes.index < len(a):
            self.escape(self.canon(text(a[spec.escapes.index]), st), st, line, name,
                        tuple(norm(text(x)) for x in a))
        if spec.maybe_consumes is not None and spec.maybe_consumes.index < len(a):
            key = self.canon(text(a[spec.maybe_consumes.index]), st)
            self.forget(key, st)
        for rid, fmt in spec.consumes:
            try:
                tgt = fmt.format(*[self.canon(text(x), st) for x in a])
            except (IndexError, KeyError):
                continue
            self.release(rid, self.canon(tgt, st), st, line, name, consume=True)
        for key in release_keys:
                for rid in spec.releases:
                    self.release(rid, key, st, line, name, consume=False)
        if spec.inferred and release_keys and st.res:
            # a release inferred from unwind code (afs_put_call(call)) may free fields too
            self._summarised(name, c, st, line, whole_too=False)
        elif spec.pack == LEARNED and spec.releases and st.res:
            # a learned release names one thing it frees (sesInfoFree: `{0}->serverOS`);
            # the tree's summary of its body says what else (ses->password, ses->user_name)
            self._summarised(name, c, st, line, whole_too=True)
        elif (st.res and not spec.acquires and not spec.releases and not spec.consumes
              and spec.escapes is None and spec.maybe_consumes is None):
            # an entry that says only how its result is tested (a learned must-check)
            # says nothing of what it does to its arguments: the tree's summary does
            self._summarised(name, c, st, line, whole_too=True)
        if spec.acquires:
            keys = self.target_keys(spec, c, st, lhs=lhs_raw)
            if (spec.returns_arg is not None and lhs_raw and lhs_raw in self.facts.locals
                    and re.fullmatch(r"[A-Za-z_]\w*", lhs_raw)):
                keys = [self.canon(lhs_raw, st)]  # dev = get_device(d): 'dev' names it
            for t, key in zip([t for t in spec.targets if t.how != "return" or lhs_raw], keys, strict=False):
                nonlocal_ = self.is_nonlocal(key, t)
                pending = None
                if spec.success != "always":
                    possible, ok = SUCCESS_SETS[spec.success]
                    if t.how == "return":
                        pending = (key, ok)
                        self.set_fact(st, key, possible)
                    elif result:
                        pending = (result, ok)
                        if st.value(result) == ALL or result.startswith("#"):
                            self.set_fact(st, result, possible)
                    # result ignored: assume it worked
                for rid in spec.acquires:
                    self.acquire(rid, key, st, line, name, nonlocal_, pending)
                    if t.how != "return" and lhs_raw and not self._local_place(lhs_raw):
                        self._stored((rid, key), st, line, lhs_raw)  # obj->d = dget(d)
                    elif lhs_raw and lhs_raw != key and (rid, key) in st.res:
                        obj = re.match(r"\w+", lhs_raw)
                        if obj is not None and obj.group(0) in self.facts.local_objects:
                            st.res[(rid, key)] = replace(st.res[(rid, key)], parked=obj.group(0))
                if spec.may_be_null:
                    st.values.pop(key, None)

    def _local_place(self, lhs_raw: str) -> bool:
        """A local variable, or a member of a struct or array declared in the function
        (`info.of_node`): storing there hands nothing over."""
        m = re.match(r"[A-Za-z_]\w*", lhs_raw)
        if m is None or m.group(0) not in self.facts.locals:
            return False
        return m.end() == len(lhs_raw) or (m.group(0) in self.facts.local_objects
                                           and lhs_raw[m.end():].startswith((".", "[")))

    def _stored(self, k: tuple[str, str], st: PathState, line: int, where: str) -> None:
        """A held reference stored in a longer-lived place (`obj->p = p`, `obj->d =
        dget(d)`): owned there, unless the function still releases it itself elsewhere;
        then it is published, not handed over: an error exit must release it too, a normal
        exit may leave it where it was stored (priv->drm = drm; .. dev_put: drm_dev_put)."""
        r = st.res.get(k)
        if r is None or r.status not in (HELD, PENDING):
            return
        self.emit("publish", st, r, line, "store", (where,))
        place = stored_place(self.facts, r.rid, self.canon(where, st), line)
        if place and not self.owned_by_caller(place) and not self.facts.releases_anywhere(r.rid, r.key):
            # the function releases that place of its own object itself (engine/places.py):
            # it still owns the reference on its error exits, under the place's name (a
            # place in the caller's object is the caller's to release on the failure)
            del st.res[k]
            st.res[(r.rid, place)] = replace(r, key=place, handed=True)
            st.note(line, f"{r.key} stored in {where}")
            return
        if self.facts.releases_anywhere(r.rid, r.key):
            st.res[k] = replace(r, handed=True, published=True)
        else:
            st.res[k] = replace(r, status=ESCAPED)
        st.note(line, f"{r.key} stored in {where}")

    def owned_by_caller(self, key: str) -> bool:
        m = re.match(r"^\w+\((\w+)\)", key) or re.match(r"^(\w+)", key)
        root = m.group(1) if m else ""
        return (root in self.fn.params or root not in self.facts.locals or root in self.facts.borrowed
                or root in self.facts.callers_parts)

    def is_nonlocal(self, key: str, t: Target | None) -> bool:
        root = re.match(r"^[A-Za-z_]\w*", key)
        if root is None:
            return True
        name = root.group(0)
        if key != name:  # a field or element of something
            return name not in self.facts.locals or "->" in key
        return name not in self.facts.locals and name not in self.fn.params

    def unknown_call(self, name: str, c: TSNode, st: PathState, line: int,
                     assigned: bool = False) -> None:
        """A call no pack describes. Releases by name are inferred conservatively; a
        function of the tree whose summary says it may release or store an argument
        takes what was passed there out of tracking."""
        if not st.res:
            return  # nothing held that the call could take or use
        self._summarised(name, c, st, line, whole_too=True)
        release_re = self.packs.idioms.release_re  # [idioms] release_name
        looks_release = release_re is not None and release_re.search(name) is not None
        for x in args(c):
            key = self.canon(text(x), st)
            raw = self.expand(norm(text(x)))
            self._unpark(raw.lstrip("&"), name, st, line)
            # fsnotify_put_mark(&mark->fsn_mark) (or a local naming that member): the put
            # of a reference counted member, whose release callback frees the container
            container = base_of_field(key) if looks_release and "put" in name and (
                raw.startswith("&") or raw in st.alias) else ""
            for k, r in list(st.res.items()):
                if r.key != key:
                    owned = r.key.startswith(key + "->") or r.key.startswith(key + ".")
                    if (owned or r.key == container) and looks_release \
                            and r.status in (HELD, PENDING):
                        st.res[k] = replace(r, status=UNKNOWN)
                    continue
                if r.status in (HELD, PENDING) and looks_release:
                    st.res[k] = replace(r, status=UNKNOWN)
                elif (r.status == PENDING and self._in_cond and r.pending_var == r.key
                      and r.key in st.fresh and name.isupper()):
                    # `x = f(); if (MY_IS_ERR(x))`: a macro no pack knows tests the result
                    st.res[k] = replace(r, status=UNKNOWN)
                elif (r.status in (HELD, PENDING) and not r.handed and not self._in_cond
                      and text(x).strip() == text(x).strip().lstrip("&*")
                      and self.packs.resources.get(r.rid) is not None
                      and (self.packs.resources[r.rid].kind == "memory"
                           or (assigned and self.packs.resources[r.rid].kind == "ref"))):
                    # an allocation handed whole to a call (`nfs4_proc_layoutcommit(data)`)
                    # often changes owner there; tests (`if (check(p))`) do not
                    st.res[k] = replace(r, handed=True)
                elif r.status == RELEASED:
                    self.emit("use", st, r, line, f"passed to {name}()")

    def _unpark(self, obj: str, name: str, st: PathState, line: int) -> None:
        """A local struct passed to a call no pack describes (`ovl_get_inode(sb, &oip)`)
        is a parameter block: the callee may take over the references stored in its
        members, or take its own (i2c_new_client_device(adap, &info) and info.of_node):
        the leak is then lent, and rests on weak evidence (reviewbot/engine/evidence.py)."""
        if obj not in self.facts.local_objects:
            return
        for k, r in list(st.res.items()):
            if r.parked == obj and r.status in (HELD, PENDING) and not r.lent:
                st.res[k] = replace(r, lent=True)
                st.note(line, f"{r.key} passed to {name}() in {obj}")

    def _summarised(self, name: str, c: TSNode, st: PathState, line: int,
                    whole_too: bool) -> None:
        """What the tree's summary of `name` says the call does to its arguments: releases
        or stores (`whole_too`: for a call no pack describes), releases of what they point
        to or of the object they are a member of."""
        summ = self.packs.summaries.get(name)
        if summ is None:
            return
        a = args(c)
        whole = summ.hands_over if whole_too else frozenset()
        for i in sorted(whole | summ.releases_fields):
            if i < len(a):
                key = self._arg_key(a[i], st)
                below = (key + "->", key + ".")
                for k, r in list(st.res.items()):
                    if r.status in (HELD, PENDING) and (
                            (i in whole and r.key == key) or r.key.startswith(below)):
                        st.res[k] = replace(r, status=UNKNOWN)
                        st.note(line, f"{r.key} handed to {name}()")
        for i in summ.releases_container:  # f(&opts->func_inst) frees opts
            if i < len(a):
                owner = base_of_field(self.canon(norm(text(a[i])).lstrip("&"), st))
                for k, r in list(st.res.items()):
                    if r.status in (HELD, PENDING) and r.key == owner:
                        st.res[k] = replace(r, status=UNKNOWN)
                        st.note(line, f"{r.key} released by {name}()")

    def _arg_key(self, arg: TSNode, st: PathState) -> str:
        """The key an argument names; an acquisition written inside the call names what it
        acquires (`add_dependency(job, dma_fence_get(fence))` hands `fence` over)."""
        inner = strip_parens(arg) or arg
        if inner.type == "call_expression":
            spec = self.packs.calls.get(callee(inner))
            if spec is not None and spec.acquires:
                keys = self.target_keys(spec, inner, st)  # no lhs: the targets it is given
                if len(keys) == 1:
                    return keys[0]
        return self.canon(norm(text(arg)).lstrip("&"), st)

    def escape(self, key: str, st: PathState, line: int, how: str,
               argv: tuple[str, ...] = ()) -> None:
        owner = base_of_field(key)  # list_add(&obj->node, ...) stores obj
        for k, r in list(st.res.items()):
            kind = self.packs.resources.get(r.rid)
            # what the object owns goes with it (memory, references, the holders of locks
            # it keeps); a clock enabled or an irq requested through one of its fields
            # (platform_set_drvdata(pdev, dev); dev->clk) is a device state, which does not
            carried = kind is None or kind.kind != "state"
            owned = any(r.key == o or (carried and (r.key.startswith(o + "->")
                                                    or r.key.startswith(o + ".")))
                        for o in {key, owner})
            if r.status in (HELD, PENDING) and (r.key == key or mentions(key, r.key) or owned):
                self.emit("publish", st, r, line, how, argv)
                st.res[k] = replace(r, status=ESCAPED)
                st.note(line, f"{r.key} handed to {how}()")

    def acquire(self, rid: str, key: str, st: PathState, line: int, call: str, nonlocal_: bool,
                pending: tuple[str, frozenset] | None) -> None:
        if f"@guard:{key}" in self.fn.free_vars or key in self.fn.free_vars:
            return  # released by the compiler (__free / guard)
        st.seq += 1
        status = PENDING if pending else HELD
        if INDEXED.search(key):
            return  # ghs + x, bh[i]: which element is unknowable here
        prev = st.res.get((rid, key))
        kind = self.packs.resources.get(rid)
        nested = prev is not None and prev.status == HELD and kind is not None and kind.nests
        r = st.res[(rid, key)] = Res(
            rid, key, status, line, call, st.seq, nonlocal_,
            pending[0] if pending else "", pending[1] if pending else frozenset(),
            acq_after_label=st.after_label,
            caller_owned=nonlocal_ and (self.owned_by_caller(key) or self._in_stored(key, st)),
            depth=prev.depth + 1 if nested and prev is not None else 0,
        )
        st.note(line, f"{key} acquired by {call}()" if not call.startswith(key) else f"{call}")
        self.emit("acquire", st, r, prev)
        if pending and pending[0] in st.values:
            self.set_fact(st, pending[0], st.values[pending[0]])

    def _release_parts(self, key: str, st: PathState, line: int, call: str) -> None:
        """The put of a reference the path holds (`iput(inode)` of a new inode) runs the
        object's release callback (evict), which frees what is stored in the object's own
        fields: `ui->data` of `ui = ubifs_inode(inode)`, `GFS2_I(inode)->i_gl`. A free
        of plain memory (kfree) frees no fields, so only references count."""
        heads = tuple(f"{p}->" for p in self.facts.derived.get(key, ())) + (f"({key})->",)
        for k2, r2 in list(st.res.items()):
            kind = self.packs.resources.get(r2.rid)
            if kind is None or kind.kind not in ("memory", "ref"):
                continue  # a lock or a holder queued in the object is the function's to undo
            if r2.status in (HELD, PENDING) and r2.key != key and (
                    r2.key.startswith(heads) or any(h in r2.key for h in heads[-1:])):
                st.res[k2] = replace(r2, status=UNKNOWN)
                st.note(line, f"{r2.key} freed with {key} by {call}()")

    def _in_stored(self, key: str, st: PathState) -> bool:
        """`key` is a field of an object the path already stored in a longer-lived place
        (`device->zone_info = zone_info; zone_info->zone_cache = vzalloc(..)`): whoever
        owns the object frees its fields (btrfs_destroy_dev_zone_info(device))."""
        root = re.match(r"[A-Za-z_]\w*", key)
        if root is None or root.group(0) == key:
            return False
        return any(r.key == root.group(0) and (r.status == ESCAPED or r.published)
                   for r in st.res.values())

    _whole: bool | None = None

    def _parsed_whole(self) -> bool:
        """The body has no parse error, and no macro read as a nested definition."""
        if self._whole is None:
            self._whole = not (self.fn.of_type("ERROR") or self.fn.of_type("function_definition"))
        return self._whole

    def release(self, rid: str, key: str, st: PathState, line: int, call: str, consume: bool) -> None:
        if INDEXED.search(key):
            # ghs + x: some element of the array; whichever it is, stop tracking them all
            base = array_base(key)
            for k2, r2 in list(st.res.items()):
                if r2.rid == rid and array_base(r2.key) == base:
                    st.res[k2] = replace(r2, status=UNKNOWN)
            return
        k = (rid, key)
        r = st.res.get(k)
        if r is None and key in self.facts.recomputed:
            key = self.canon(self.facts.recomputed[key], st)  # free_irq(gpiod_to_irq(..))
            k = (rid, key)
            r = st.res.get(k)
        if r is None:
            # try the alias-free spelling (ip->i_gl vs GFS2_I(inode)->i_gl)
            for (rid2, key2), r2 in st.res.items():
                if rid2 == rid and alias_pair(key2, key):
                    k, r = (rid2, key2), r2
                    break
        if r is None and ("[" in key or "->" in key) and (rid, place_of(self.facts, key)) in st.res:
            # a[0].f, or port->np of port = &a[n], of a place stored as a[*].f (engine/places.py)
            k = (rid, place_of(self.facts, key))
            r = st.res[k]
        self.emit("release", st, r if r is not None else Res(rid, key, ABSENT, 0, "", 0), line,
                  call, consume)
        kind = self.packs.resources.get(rid)
        if kind is not None and kind.kind == "ref" and (r is None or r.status == HELD):
            self._release_parts(key, st, line, call)
        if kind is not None and kind.embedded:
            # kobject_put(&obj->kobj), put_device(dev): the release callback frees the object
            owners = {key, base_of_field(key)}
            base = base_of_field(key)
            if base in st.alias.values() and not any(r2.key == base for r2 in st.res.values()):
                # mc_dev = &mc_bus->mc_dev; put_device(&mc_dev->dev): the member the alias
                # names is inside the object it was taken from, which the callback frees
                owners.add(base_of_field(base))
            for k2, r2 in list(st.res.items()):
                if r2.key in owners and r2.rid != rid and r2.status in (HELD, PENDING):
                    st.res[k2] = replace(r2, status=UNKNOWN)
        st.seq += 1
        if r is None:
            return
        if r.status == HELD and r.depth:
            # rcu_read_unlock() of a nested rcu_read_lock(): the outer one still holds it
            st.res[k] = replace(r, depth=r.depth - 1)
            st.note(line, f"{key} released once by {call}() (still held)")
            return
        if r.status in (HELD, PENDING, ESCAPED):
            # an untested result released (`x = kmalloc(); kfree(x);`) is released wherever
            # the call worked, and a no-op where it did not: a second release is a double one
            # (not in a body the parser did not read whole, where the test may be unseen)
            untested = r.status == PENDING and r.pending_var == r.key and self._parsed_whole()
            new = RELEASED if r.status == HELD or untested else UNKNOWN
            st.res[k] = replace(r, status=new, rel_line=line, rel_call=call, rel_seq=st.seq,
                                rel_after_label=st.after_label)
            st.note(line, f"{key} released by {call}()")
        elif r.status == RELEASED:
            st.res[k] = replace(r, status=UNKNOWN)  # reported once; stop
        elif r.status == FAILED:
            st.res[k] = replace(r, status=UNKNOWN)


# ---------------------------------------------------------------------- helpers


def equal_key(a: str, b: str) -> str:
    """The fact key that says names `a` and `b` hold the same value on a path."""
    return "?=" + "==".join(sorted((a, b)))
