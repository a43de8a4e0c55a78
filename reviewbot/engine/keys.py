"""How expressions name values and resources: the canonical keys of the path state.

``&sdp->sd_lock`` and ``sdp->sd_lock`` name the same lock, ``&ghs[i]`` is ``ghs+i``, and
``ip->i_gl`` may also be spelled ``GFS2_I(inode)->i_gl``. Every function here is pure and
cached: the walker asks again for every path through a statement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from tree_sitter import Node as TSNode

from reviewbot.cmodel import args, callee, norm, text
from reviewbot.packs import CallSpec

HEAD = re.compile(r"^([A-Za-z_]\w*)(.*)$", re.S)  # a key's leading name and the rest
INDEXED = re.compile(r"\+[A-Za-z_]|\[[A-Za-z_]")  # ghs + x, bh[i]: an element unknown here


@lru_cache(maxsize=1 << 13)
def outer_parens(s: str) -> str:
    """(&x->y) -> &x->y, when the parentheses enclose the whole expression."""
    while s.startswith("(") and s.endswith(")"):
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(s) - 1:
                return s
        s = s[1:-1]
    return s


@lru_cache(maxsize=1 << 14)
def ptr_key(s: str) -> str:
    """&x -> x, &a[i] -> a+i, a+0 -> a, (type *)x and (unsigned long)x -> x: how packs
    name resources."""
    s = outer_parens(s)
    s = re.sub(r"^\((?:struct|const|unsigned|union)?[\w\s\*]*\*\)", "", s)
    # free_page((unsigned long)p): an address as an integer names the same pages
    s = re.sub(r"^\((?:unsigned\s*long|long|uintptr_t|phys_addr_t)\)\s*(?=[A-Za-z_])", "", s)
    if s.startswith("&") and not s.startswith("&&"):
        s = s[1:]
        m = re.fullmatch(r"(.+)\[(\w+)\]", s)
        if m and "[" not in m.group(1):
            s = m.group(1) if m.group(2) == "0" else f"{m.group(1)}+{m.group(2)}"
    if s.endswith("+0"):
        s = s[:-2]
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        s = s[1:-1]
    return s


def array_base(key: str) -> str:
    """ghs+x, bh[i] -> ghs, bh."""
    return re.split(r"[+\[]", key)[0]


@lru_cache(maxsize=1024)
def _mention_re(key: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w>.])" + re.escape(key) + r"(?![\w\[(])")


def mentions(expr: str, key: str) -> bool:
    """Whether `key` occurs in `expr` as a whole expression (not as part of a longer name)."""
    if not key or key not in expr:
        return False
    return _mention_re(key).search(expr) is not None


_ACCESSOR = re.compile(r"^[A-Z][A-Z0-9_]*\(")


def alias_pair(a: str, b: str) -> bool:
    """ip->i_gl and GFS2_I(inode)->i_gl: one spelled through a container accessor (an
    upper-case macro), the other through a variable; never two different variables."""
    if bool(_ACCESSOR.match(a)) == bool(_ACCESSOR.match(b)):
        return False
    return strip_alias(a) == strip_alias(b)


@lru_cache(maxsize=1 << 12)
def strip_alias(key: str) -> str:
    """GFS2_I(inode)->i_gl and ip->i_gl compare equal when nothing better is known."""
    return re.sub(r"^[A-Za-z_]\w*\([^()]*\)", "*", re.sub(r"^[A-Za-z_]\w*(?=->)", "*", key))


def base_of_field(lhs: str) -> str:
    """obj->a.b -> obj->a: the object a field belongs to."""
    i = lhs.rfind("->")
    j = lhs.rfind(".")
    cut = max(i, j)
    return lhs[:cut] if cut > 0 else lhs


def target_keys(spec: CallSpec, call: TSNode, canon: Callable[[str], str],
                lhs: str | None = None) -> list[str]:
    """The keys a pack call's targets name (`lhs`: what its result is assigned to)."""
    a = args(call)
    keys: list[str] = []
    for t in spec.targets:
        if t.how == "return":
            if lhs:
                keys.append(canon(lhs))
        elif t.how == "fmt":
            try:
                keys.append(canon(t.fmt.format(*[norm(text(x)) for x in a])))
            except (IndexError, KeyError):
                pass
        elif 0 <= t.index < len(a):
            keys.append(canon(text(a[t.index])))
    return [k for k in keys if k]


def static_key(s: str) -> str:
    """The key of an expression with no path state (no aliases known)."""
    return ptr_key(norm(s))


# ---------------------------------------------------------------------- syntax


def walk(node: TSNode | None, typ: str) -> Iterator[TSNode]:
    """Every node of a type under `node` (itself included)."""
    if node is None:
        return
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == typ:
            yield n
        stack.extend(n.children)


def decl_ident(d: TSNode | None) -> TSNode | None:
    """The identifier a declarator declares (`*name[4]` -> name)."""
    while d is not None and d.type not in ("identifier",):
        nxt = d.child_by_field_name("declarator")
        if nxt is None:
            kids = [c for c in d.named_children if c.type == "identifier"]
            return kids[0] if kids else None
        d = nxt
    return d


def has_call(n: TSNode) -> bool:
    """A call with effects: container accessors and other upper-case macros (OCFS2_I(inode),
    BIT(3)) do not count."""
    return any(not re.match(r"^[A-Z][A-Z0-9_]*$", callee(c)) for c in walk(n, "call_expression"))
