"""A lock's class: the struct type of the object it belongs to and the field chain that
reaches it (`struct inode.i_rwsem`, `struct gfs2_sbd.sd_log_lock`), so that `p->a_lock` in
one function and `q->a_lock` in another are one lock class when p and q point to one
struct type (lockdep's notion: one class per lock declaration, many instances).

The types come from the declarations of a function's parameters and locals (read once per
file with the call graph's facts, knowledge/ctxfacts.py: `Body.types`), or from the
expression itself where that is simple: `container_of(x, struct T, m)->lock` and
`((struct T *)x)->lock`. A lock of a local with one value (`lock = &p->lock`) is classed
through that value. Anything else (a lock pointer given as a parameter, a root whose type
is not declared in the function) has no class: it is never compared across functions.
"""

from __future__ import annotations

import re

from reviewbot.cmodel import Function, text

# `container_of(x,structT,m)` and the list walkers that take the type second (arguments
# are written without white space: `norm`)
_ENTRY = re.compile(r"^(?:container_of(?:_const)?|list_(?:first_|last_)?entry|"
                    r"hlist_entry|rb_entry)\(")
_CAST = re.compile(r"^\(\((struct|union)(\w+)\*+\)(\w+)\)")
_ROOT = re.compile(r"^[A-Za-z_]\w*")
_REST = re.compile(r"^(?:(?:->|\.)\w+|\[[^\[\]]*\])+$")


def _type_of(node) -> str:
    """`struct foo` / `union foo` / a typedef name of a declaration's type node; "" for a
    primitive type (a lock is not reached from an int)."""
    if node is None:
        return ""
    if node.type in ("struct_specifier", "union_specifier"):
        name = node.child_by_field_name("name")
        return f"{node.type.split('_')[0]} {text(name)}" if name is not None else ""
    if node.type == "type_identifier":
        return text(node)
    return ""


def _names(decl) -> list[str]:
    """The identifiers a declaration's declarators declare (`*a = x, b`)."""
    out = []
    for d in decl.children_by_field_name("declarator"):
        while d is not None and d.type in ("init_declarator", "pointer_declarator",
                                           "array_declarator", "parenthesized_declarator"):
            d = d.child_by_field_name("declarator") if d.type != "parenthesized_declarator" \
                else (d.named_children[0] if d.named_child_count else None)
        if d is not None and d.type == "identifier":
            out.append(text(d))
    return out


def declared_types(fn: Function) -> dict[str, str]:
    """Each parameter and local of a struct, union or typedef type (pointer or not) ->
    that type; a name declared twice with two types (two scopes) is left out."""
    seen: dict[str, set[str]] = {}
    d = fn.node.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    plist = d.child_by_field_name("parameters") if d is not None else None
    decls = [p for p in (plist.named_children if plist is not None else [])
             if p.type == "parameter_declaration"] + fn.of_type("declaration")
    for decl in decls:
        t = _type_of(decl.child_by_field_name("type"))
        if t:
            for name in _names(decl):
                seen.setdefault(name, set()).add(t)
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


def _split_call(s: str) -> tuple[list[str], str] | None:
    """(the arguments, what follows) of a call at the start of `s`."""
    i = s.find("(")
    depth, args, start = 0, [], i + 1
    for j in range(i, len(s)):
        c = s[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(s[start:j])
                return args, s[j + 1:]
        elif c == "," and depth == 1:
            args.append(s[start:j])
            start = j + 1
    return None


def _chain(rest: str) -> str:
    """The field chain of `->a.b[i]->lock`: `.a.b[].lock`."""
    return re.sub(r"\[[^\[\]]*\]", "[]", rest).replace("->", ".")


def _struct(t: str) -> str:
    """`structfoo` (an argument written without white space) as `struct foo`."""
    m = re.fullmatch(r"(?:const)?(struct|union)(\w+)\**", t)
    return f"{m.group(1)} {m.group(2)}" if m else ""


def lock_class(expr: str, types: dict[str, str], aliases: dict[str, str],
               depth: int = 0) -> str:
    """The class of the lock `expr` (white space removed, no `&`) as the function that
    writes it names it, or "" when its object's type is not known here."""
    s = expr.lstrip("&")
    if s.startswith("(") and s.endswith(")") and _split_call("x" + s) == ([s[1:-1]], ""):
        s = s[1:-1].lstrip("&")
    m = _CAST.match(s)
    if m:
        rest = s[m.end():]
        return f"{m.group(1)} {m.group(2)}{_chain(rest)}" if rest and _REST.match(rest) else ""
    if _ENTRY.match(s):
        got = _split_call(s)
        if got is None or len(got[0]) < 2 or not got[1] or not _REST.match(got[1]):
            return ""
        t = _struct(got[0][1])
        return f"{t}{_chain(got[1])}" if t else ""
    m = _ROOT.match(s)
    if m is None or depth > 4:
        return ""
    root, rest = m.group(0), s[m.end():]
    if rest and not _REST.match(rest):
        return ""  # a call or an operator in the chain: not a field path
    if rest and root in types:
        return f"{types[root]}{_chain(rest)}"
    if root not in aliases:
        return ""
    value = aliases[root]
    if value.startswith("&") and rest.startswith("->"):
        value, rest = value[1:], "." + rest[2:]  # lock = &p->l; lock->x is p->l.x
    return lock_class(value + rest, types, aliases, depth + 1)
