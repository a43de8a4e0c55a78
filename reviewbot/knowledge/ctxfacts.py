"""What the call graph reads from one C file: each function (and function-like macro) as a
small flow graph of call events, the functions stored in ops-structure members, and the
headers the file includes.

The reading does not depend on the packs (which calls matter is decided later, in
callgraph.py), so it is kept per file content: `file_facts` caches by path and git blob id,
in memory and on disk (`cache_dir()`), so a tree's unchanged files are read once, however
often the graph is rebuilt (once per patch, for the pre- and the post-image) and run after
run.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from reviewbot import cachelimit
from reviewbot.cmodel import Function, args, callee, line_of, norm, parse_c, text
from reviewbot.datafiles import user_cache_dir
from reviewbot.knowledge.blobs import blob_id
from reviewbot.knowledge.lock_classes import declared_types

__all__ = ["Body", "CallEv", "Entry", "FileFacts", "Step", "blob_id", "file_facts"]


@dataclass(frozen=True, slots=True)
class CallEv:
    """One call: its callee's name, line and argument texts (white space removed)."""

    name: str
    line: int
    args: tuple[str, ...]


@dataclass(slots=True)
class Step:
    """A node of a function's flow graph: the calls it makes (in evaluation order), its
    successors (a condition: true first), the condition's text, whether it returns."""

    calls: tuple[CallEv, ...]
    succ: tuple[int, ...]
    cond: str = ""
    ret: bool = False
    value: str = ""  # a return: what it returns
    assign: tuple[str, str] = ("", "")  # `x = f(...)`: (x, f)
    warn: int = -1  # a condition inside WARN_ON(): the successor where the warning fires
    debug: bool = False  # compiled only for debugging (`#ifdef EXT2FS_DEBUG`, `#if 0`)
    loop: bool = False  # the condition of a loop (it is tested again each round)
    line: int = 0


@dataclass
class Body:
    """A function, static inline of a header, or function-like macro, as the graph reads it.
    A macro is one step holding every call of its replacement text."""

    name: str
    path: str
    line: int
    static: bool
    kind: str  # "function" | "inline" (of a header) | "macro"
    params: tuple[str, ...]
    steps: list[Step]
    entry: int
    aliases: dict[str, str] = field(default_factory=dict)  # local -> what it names
    # local -> the call whose result it holds, when that call's arguments are plain
    # (`lock = ext4_group_lock_ptr(sb, group)`): the lock such a call returns is named by it
    call_aliases: dict[str, str] = field(default_factory=dict)
    # parameters the body assigns: the values given (None: also `++`, `&p`, a non-constant)
    assigned: dict[str, frozenset[str] | None] = field(default_factory=dict)
    # a macro: the argument texts of each call of its one step (its CallEvs carry none, so
    # that what a macro's calls take or allocate is not read from its arguments)
    margs: tuple[tuple[str, ...], ...] = ()
    # sparse's context annotations of the definition: the locks it `__releases(x)` and
    # `__acquires(x)` (both: it lets go of x inside, as a wait does; only the first: it
    # returns with x released)
    ann_releases: tuple[str, ...] = ()
    ann_acquires: tuple[str, ...] = ()
    # what the body may change: the texts assigned, incremented or whose address it takes
    # (`x`, `c->no_sleep`), each with the last line that does, and the names it declares; a
    # condition on none of them changed after a line means the same wherever it is tested
    # below that line (knowledge/lockconds.py)
    written: dict[str, int] = field(default_factory=dict)
    # a field the body sets only from a parameter (`ctrl->state = new_state;`): the field
    # -> (the parameter, the line); a test of the field below it tests the parameter
    copies: dict[str, tuple[str, int]] = field(default_factory=dict)
    local_names: frozenset[str] = frozenset()
    # parameters and locals of a struct or typedef type -> the type (knowledge/lock_classes.py)
    types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A function stored in a member of an ops structure (`.evict_inode = gfs2_evict_inode`);
    `struct` is "" when it is assigned (`s->scan_objects = fn`) rather than initialised."""

    struct: str
    member: str
    function: str
    line: int


@dataclass
class FileFacts:
    path: str
    bodies: list[Body]
    entries: list[Entry]
    includes: list[str]  # the "quoted" includes, as written


_CACHE: dict[tuple[str, str], FileFacts] = {}
_CACHE_MAX = 256


VERSION = 13  # of the records below: a cache of another version is not read


def cache_dir() -> str:
    """Where the facts of each (path, blob) ever read are kept between runs ("" for none):
    `$XDG_CACHE_HOME/reviewbot/context/v1/` ($REVIEWBOT_CONTEXT_CACHE overrides; empty
    turns it off)."""
    if "REVIEWBOT_CONTEXT_CACHE" in os.environ:
        return os.environ["REVIEWBOT_CONTEXT_CACHE"]
    return user_cache_dir("context", f"v{VERSION}") or ""


def file_facts(raw: bytes | str, path: str) -> FileFacts:
    """The facts of one file, read once per content (in memory, then on disk)."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    k = (path, blob_id(data))
    got = _CACHE.get(k)
    if got is None:
        got = _stored(k, data)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[k] = got
    return got


def _stored(k: tuple[str, str], data: bytes) -> FileFacts:
    base = cache_dir()
    if not base:
        return _read(data, k[0])
    name = hashlib.sha1(f"{k[0]}\0{k[1]}".encode()).hexdigest()
    cp = os.path.join(base, name[:2], name[2:] + ".pkl")
    try:
        with open(cp, "rb") as fh:
            got = pickle.load(fh)
        if isinstance(got, FileFacts) and got.path == k[0]:
            return got
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError,
            ValueError, IndexError):
        pass  # absent, or not what this version writes: read the file
    got = _read(data, k[0])
    try:
        os.makedirs(os.path.dirname(cp), exist_ok=True)
        tmp = f"{cp}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(got, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cp)
    except OSError:
        return got  # a read-only cache still lets the run finish
    if "REVIEWBOT_CONTEXT_CACHE" not in os.environ:  # ours, not a directory a user named
        cachelimit.after_write(os.path.dirname(base), f"v{VERSION}")
    return got


def _read(raw: bytes, path: str) -> FileFacts:
    header = path.endswith(".h")
    src = raw.decode("utf-8", "replace")
    cf = parse_c(raw, path)
    bodies: list[Body] = []
    for fn in cf.functions:
        if header and not fn.is_static:
            continue  # a header's code the includer sees: static inlines
        built = fn._cfg is None  # parse_c is cached: a walk in progress may own this graph
        bodies.append(_body(fn, path, "inline" if header else "function"))
        if built:
            fn.drop_cfg()
    known = {b.name for b in bodies}
    bodies += [m for m in _macros(src, path) if m.name not in known]
    return FileFacts(path, bodies, _entries(src), _INCLUDE.findall(src))


# ------------------------------------------------------------------ functions


def _calls(fn: Function) -> tuple[list, list[int]]:
    """The function's calls (from the body's node-type index, made in C) in source order,
    and their start offsets, to find those inside a node by bisection."""
    calls = fn.of_type("call_expression")  # pre-order: sorted by start
    return calls, [c.start_byte for c in calls]


def _calls_in(ts, calls: list, starts: list[int]) -> tuple[CallEv, ...]:
    """The calls inside a node, inner ones first (arguments are evaluated before the call
    they are passed to)."""
    lo, hi = ts.start_byte, ts.end_byte
    inside = [c for c in calls[bisect_left(starts, lo):bisect_right(starts, hi)]
              if c.end_byte <= hi]
    inside.sort(key=lambda c: (c.end_byte, -c.start_byte))
    return tuple(CallEv(callee(c), line_of(c), tuple(norm(text(a)) for a in args(c)))
                 for c in inside)


_SIMPLE_RHS = re.compile(r"^[\w>\-.&*()\[\]]+$")
_CALL_RHS = re.compile(r"^\w+\([\w>\-.&*\[\],]*\)$")


def _aliases(fn: Function) -> tuple[dict[str, str], dict[str, str]]:
    """Locals given one value that names an object (`gl = ip->i_iopen_gh.gh_gl`,
    `ip = GFS2_I(inode)`): a later put of the local is a put of that object. Second, those
    given the result of one call of plain arguments (`lock = ext4_group_lock_ptr(sb, g)`)."""
    seen: dict[str, set[str]] = {}
    for d in fn.of_type("init_declarator"):
        name = d.child_by_field_name("declarator")
        value = d.child_by_field_name("value")
        while name is not None and name.type == "pointer_declarator":
            name = name.child_by_field_name("declarator")
        if name is not None and name.type == "identifier" and value is not None:
            seen.setdefault(text(name), set()).add(norm(text(value)))
    for a in fn.of_type("assignment_expression"):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is not None and left.type == "identifier" and right is not None:
            seen.setdefault(text(left), set()).add(norm(text(right)))
    # a local whose address is passed on may be given another value there (`&ptl`): the
    # lock it names is not the one its call returned
    passed = {text(arg) for p in fn.of_type("pointer_expression")
              if (arg := p.child_by_field_name("argument")) is not None and
              arg.type == "identifier" and text(p.child_by_field_name("operator")) == "&"}
    single = {k: next(iter(v)) for k, v in seen.items() if len(v) == 1 and k not in fn.params}
    return ({k: v for k, v in single.items() if _SIMPLE_RHS.match(v)},
            {k: v for k, v in single.items() if _CALL_RHS.match(v) and k not in passed})


def _assigned_call(ts) -> tuple[str, str]:
    """(x, f) of a statement `x = f(...);` or a declaration `T x = f(...);`."""
    if ts is None:
        return "", ""
    node, left, right = ts, None, None
    if node.type == "expression_statement" and node.named_child_count == 1:
        node = node.named_children[0]
        if node.type == "assignment_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    elif node.type == "declaration":
        for d in node.named_children:
            if d.type == "init_declarator":
                left, right = d.child_by_field_name("declarator"), d.child_by_field_name("value")
    if left is None or right is None or left.type != "identifier" or \
            right.type != "call_expression":
        return "", ""
    return text(left), callee(right)


_WARNS = frozenset({"WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE"})
_THROUGH = frozenset({"likely", "unlikely", "unlikely_notrace"})


def _warn_side(ts) -> int:
    """For the atom of a condition: the successor (0 true, 1 false) on which the WARN_ON()
    it sits in fires, -1 if it is in none (the flow graph unwraps WARN_ON and `!`)."""
    if ts.type == "call_expression" and callee(ts) in _WARNS:
        return 0  # WARN(cond, fmt) is the atom itself
    flips, n = 0, ts
    while n.parent is not None:
        up = n.parent
        if up.type == "unary_expression" and text(up.child_by_field_name("operator")) == "!":
            flips ^= 1
        elif up.type == "argument_list" and up.parent is not None and \
                up.parent.type == "call_expression":
            name = callee(up.parent)
            if name in _WARNS:
                return flips
            if name not in _THROUGH:
                return -1
            up = up.parent
        elif up.type not in ("parenthesized_expression", "binary_expression"):
            return -1
        n = up
    return -1


def _debug_only(ts) -> bool:
    """Whether a statement is built only with a debugging macro defined (`#ifdef
    FOO_DEBUG`, the `#else` of `#ifndef FOO_DEBUG`) or never (`#if 0`)."""
    n, in_else = ts, False
    while n.parent is not None:
        up = n.parent
        if n.type in ("preproc_else", "preproc_elif", "preproc_elifdef"):
            in_else = True
        elif up.type in ("preproc_ifdef", "preproc_if"):
            name = up.child_by_field_name("name") or up.child_by_field_name("condition")
            word = text(name) if name is not None else ""
            negated = up.type == "preproc_ifdef" and text(up.children[0]).strip() == "#ifndef"
            if ("DEBUG" in word and in_else == negated) or (word.strip() == "0" and not in_else):
                return True
            in_else = False
        elif up.type == "function_definition":
            return False
        n = up
    return False


_CONST_TEXT = re.compile(r"^(?:-?\d\w*|true|false|NULL|[A-Z_][A-Z0-9_]*)$")


def _assigned_params(fn: Function) -> dict[str, frozenset[str] | None]:
    """The parameters the body changes: the constants assigned, None for anything else."""
    params = set(fn.params)
    out: dict[str, set[str] | None] = {}
    for a in fn.of_type("assignment_expression"):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or left.type != "identifier" or text(left) not in params:
            continue
        v = norm(text(right)) if right is not None else ""
        op = text(a.child_by_field_name("operator"))
        got = out.setdefault(text(left), set())
        if got is not None and op == "=" and _CONST_TEXT.match(v):
            got.add(v)
        else:
            out[text(left)] = None
    for u in fn.of_type("update_expression"):
        arg = u.child_by_field_name("argument")
        if arg is not None and arg.type == "identifier" and text(arg) in params:
            out[text(arg)] = None
    for p in fn.of_type("pointer_expression"):
        arg = p.child_by_field_name("argument")
        if arg is not None and arg.type == "identifier" and text(arg) in params and \
                text(p.child_by_field_name("operator")) == "&":
            out[text(arg)] = None
    return {k: (frozenset(v) if v is not None else None) for k, v in out.items()}


def _body(fn: Function, path: str, kind: str) -> Body:
    entry = fn.cfg()
    every, starts = _calls(fn)
    steps = []
    for n in fn.nodes:
        calls: tuple[CallEv, ...] = ()
        if n.ts is not None and n.kind in ("stmt", "cond", "return", "switch"):
            calls = _calls_in(n.ts, every, starts)
        cond = norm(text(n.ts)) if n.kind == "cond" and n.ts is not None else ""
        value = norm(text(n.ts)) if n.kind == "return" and n.ts is not None else ""
        steps.append(Step(calls, tuple(s.idx for s in n.succ), cond, n.kind == "return",
                          value, _assigned_call(n.ts) if n.kind == "stmt" else ("", ""),
                          _warn_side(n.ts) if cond else -1,
                          n.ts is not None and _debug_only(n.ts), n.kind == "cond" and n.loop, n.line))
    aliases, call_aliases = _aliases(fn)
    rel, acq = _annotations(fn)
    written, declared = _written(fn)
    copies = _copies(fn)
    return Body(fn.name, path, fn.start_line, fn.is_static, kind, tuple(fn.params), steps,
                entry.idx, aliases, call_aliases, _assigned_params(fn),
                ann_releases=rel, ann_acquires=acq, written=written, local_names=declared, copies=copies,
                types=declared_types(fn))


def _copies(fn: Function) -> dict[str, tuple[str, int]]:
    """The fields (`a->b`, `a.b`, also a local's designated initializer `.b = p`) every
    assignment of which in the body gives them the same parameter, itself never assigned
    (a parameter followed by `|` when the body also adds constant bits: `f |= K`)."""
    params = set(fn.params)
    got: dict[str, tuple[str, int] | None] = {}
    ored: set[str] = set()
    for a in fn.of_type("assignment_expression"):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None:
            continue
        if left.type == "identifier" and text(left) in params:
            got = {k: (v if v is None or v[0] != text(left) else None) for k, v in got.items()}
            params.discard(text(left))
            continue
        if left.type != "field_expression":
            continue
        k = norm(text(left))
        op = text(a.child_by_field_name("operator"))
        v = text(right) if right is not None and right.type == "identifier" else ""
        if op == "|=" and right is not None and re.fullmatch(r"[A-Z_][A-Z0-9_]*", text(right)):
            ored.add(k)  # bits added: a test that a given bit is set still holds
            continue
        if op != "=" or v not in params or (k in got and (got[k] is None or got[k][0] != v)):
            got[k] = None
        else:
            got[k] = (v, line_of(a))
    for u in fn.of_type("update_expression"):
        arg = u.child_by_field_name("argument")
        if arg is not None:
            got[norm(text(arg))] = None
    # `struct il_host_cmd cmd = { .flags = flags, ... }`: the local's field, from its line
    for d in fn.of_type("init_declarator"):
        name, value = d.child_by_field_name("declarator"), d.child_by_field_name("value")
        if name is None or name.type != "identifier" or value is None or \
                value.type != "initializer_list":
            continue
        for pair in value.named_children:
            if pair.type != "initializer_pair" or pair.named_child_count != 2:
                continue
            des, val = pair.named_children
            if des.type == "field_designator" and val.type == "identifier" and \
                    text(val) in params:
                k = f"{text(name)}.{text(des).lstrip('.').strip()}"
                if k not in got:
                    got[k] = (text(val), line_of(d))
    # a field bits were added to is kept as `|`: only a test of a bit it holds is decided
    return {k: (v[0] + ("|" if k in ored else ""), v[1]) for k, v in got.items()
            if v is not None and v[0] in params}


def _in_test(n) -> bool:
    """Whether a node is part of an `if`'s condition (an address given to a test is read:
    `static_branch_unlikely(&key)`, `test_bit(F, &x->flags)`)."""
    while n.parent is not None:
        up = n.parent
        if up.type == "if_statement":
            return up.child_by_field_name("condition") == n
        if up.type in ("compound_statement", "function_definition"):
            return False
        n = up
    return False


def _written(fn: Function) -> tuple[dict[str, int], frozenset[str]]:
    """The texts the body assigns, increments or takes the address of (each with the last
    line that does), and the names it declares."""
    out: dict[str, int] = {}

    def put(n) -> None:
        k = norm(text(n))
        out[k] = max(out.get(k, 0), line_of(n))

    for a in fn.of_type("assignment_expression"):
        left = a.child_by_field_name("left")
        if left is not None:
            put(left)
    for u in fn.of_type("update_expression"):
        arg = u.child_by_field_name("argument")
        if arg is not None:
            put(arg)
    for p in fn.of_type("pointer_expression"):
        arg = p.child_by_field_name("argument")
        if arg is not None and text(p.child_by_field_name("operator")) == "&" and \
                not _in_test(p):
            put(arg)
    declared: set[str] = set()
    for d in fn.of_type("declaration"):
        for c in d.named_children:
            n = c.child_by_field_name("declarator") if c.type == "init_declarator" else c
            while n is not None and n.type in ("pointer_declarator", "array_declarator"):
                n = n.child_by_field_name("declarator")
            if n is not None and n.type == "identifier":
                declared.add(text(n))
    return out, frozenset(declared)


_ANNOTATION = re.compile(r"\b__(releases|acquires)\s*\(((?:[^()]|\([^()]*\))*)\)")


def _annotations(fn: Function) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `__releases()`/`__acquires()` between the declarator and the body."""
    body = fn.body
    if body is None:
        return (), ()
    head = fn.source[fn.node.start_byte:body.start_byte].decode("utf-8", "replace")
    if "__" not in head:
        return (), ()
    found = {"releases": [], "acquires": []}
    for m in _ANNOTATION.finditer(head):
        found[m.group(1)].append(norm(m.group(2)))
    return tuple(found["releases"]), tuple(found["acquires"])


# ------------------------------------------------------------------ macros

_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NOT_CALLS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "typeof",
                        "__typeof__", "do", "defined", "__builtin_expect", "unlikely",
                        "likely", "__stringify", "offsetof", "_Generic"})


def _macros(src: str, path: str) -> list[Body]:
    out = []
    for m in _DEFINE.finditer(src):
        name, params, body = m.group(1), m.group(2), m.group(3)
        line = src.count("\n", 0, m.start()) + 1
        calls, margs = [], []
        for c in _CALL.finditer(body):
            if c.group(1) not in _NOT_CALLS and c.group(1) != name:
                calls.append(CallEv(c.group(1), line, ()))
                margs.append(_macro_args(body, c.end()))
        ps = tuple(p.strip() for p in params.split(",") if p.strip())
        out.append(Body(name, path, line, False, "macro", ps,
                        [Step(tuple(calls), (), "", True)], 0, margs=tuple(margs)))
    return out


def _macro_args(body: str, start: int) -> tuple[str, ...]:
    """The argument texts (white space removed) of the call whose `(` ends at `start`."""
    out, depth, cur = [], 0, []
    for ch in body[start:]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    last = "".join(cur)
    if out or last.strip():
        out.append(last)
    return tuple(norm(a.replace("\\\n", " ")) for a in out)


# ------------------------------------------------------------------ ops members

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_INIT = re.compile(r"\bstruct\s+(\w+)\s+(?:\w+\s+)*?(\w+)\s*(?:\[\s*\])?\s*=\s*\{")
_DESIGNATOR = re.compile(r"\.\s*(\w+)\s*=\s*&?\s*\(?\s*([A-Za-z_]\w*)\s*\)?\s*(?=[,}])")
_ASSIGNED = re.compile(r"(?:\.|->)\s*(\w+)\s*=\s*&?\s*([A-Za-z_]\w*)\s*;")
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.M)


def _entries(src: str) -> list[Entry]:
    clean = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)
    out = []
    for m in _INIT.finditer(clean):
        depth, i = 1, m.end()
        while i < len(clean) and depth:
            depth += {"{": 1, "}": -1}.get(clean[i], 0)
            i += 1
        for d in _DESIGNATOR.finditer(clean, m.end(), i):
            line = clean.count("\n", 0, d.start()) + 1
            out.append(Entry(m.group(1), d.group(1), d.group(2), line))
    for a in _ASSIGNED.finditer(clean):
        out.append(Entry("", a.group(1), a.group(2), clean.count("\n", 0, a.start()) + 1))
    return out


# ------------------------------------------------------------------ a first look

_DEF_LINE = re.compile(r"^[A-Za-z_][^;{}=]*?\b([A-Za-z_]\w*)\s*\([^;]*$")
_CLOSE = re.compile(r"^\}")


@dataclass(frozen=True)
class NameGraph:
    """What a file's text shows without parsing: the functions defined in it (a line in
    column 0 naming one, up to the next `}` in column 0), the names each body calls, and the
    functions stored in ops members. A superset of the calls: it decides whether the parsed
    graph is worth building for a review."""

    calls: dict[str, frozenset[str]]
    entries: tuple[Entry, ...]


_NAMES: dict[tuple[str, int, int], NameGraph] = {}


def name_graph(raw: bytes | str, path: str) -> NameGraph:
    src = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    k = (path, hash(src), len(src))  # a str keeps its hash: asked once per review
    got = _NAMES.get(k)
    if got is None:
        calls: dict[str, set[str]] = {}
        current: set[str] | None = None
        for line in src.split("\n"):
            if current is None:
                m = _DEF_LINE.match(line)
                if m is not None and not line.startswith(("#", "struct ", "typedef")):
                    current = calls.setdefault(m.group(1), set())
                continue
            if _CLOSE.match(line):
                current = None
                continue
            current.update(c for c in _CALL.findall(line) if c not in _NOT_CALLS)
        got = NameGraph({n: frozenset(c) for n, c in calls.items()}, tuple(_entries(src)))
        if len(_NAMES) >= _CACHE_MAX:
            _NAMES.pop(next(iter(_NAMES)))
        _NAMES[k] = got
    return got
