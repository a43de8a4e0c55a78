"""C files parsed into functions: whole (cached, incremental from a recent text of the same
file) or only the regions a patch touches (``parse_region``)."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache

from tree_sitter import Node as TSNode
from tree_sitter import Parser, Range

from reviewbot.cmodel.annotations import Annotation, blank_disabled, preprocess
from reviewbot.cmodel.function import Function
from reviewbot.cmodel.syntax import c_parser, line_of, text, walk_type

__all__ = ["REGION_MIN_BYTES", "CFile", "lines_with", "parse_c", "parse_region"]


@dataclass
class CFile:
    path: str
    source: bytes
    tree: object
    functions: list[Function]
    clean: bytes = b""  # the source with annotations blanked: what the tree was parsed from

    def function_at(self, line: int) -> Function | None:
        for f in self.functions:
            if f.start_line <= line <= f.end_line:
                return f
        return None

    def by_name(self) -> dict[str, Function]:
        return {f.name: f for f in self.functions}


def _decl_name(decl: TSNode | None) -> str:
    while decl is not None:
        if decl.type in ("identifier", "field_identifier"):
            return text(decl)
        if decl.type == "parenthesized_declarator":
            decl = decl.named_children[0] if decl.named_child_count else None
            continue
        decl = decl.child_by_field_name("declarator")
    return ""


def _param_names(fdecl: TSNode) -> list[str]:
    out: list[str] = []
    plist = fdecl.child_by_field_name("parameters")
    for p in plist.named_children if plist is not None else []:
        if p.type == "parameter_declaration":
            name = _decl_name(p.child_by_field_name("declarator"))
            if name:
                out.append(name)
    return out


_CACHE: dict[tuple[str, int], CFile] = {}
_CACHE_MAX = 4


def parse_c(source: str | bytes, path: str = "") -> CFile:
    """Parse a C file (cached: the same text is often read by several rules). A new text of
    a file parsed recently (a patch's post-image after its pre-image) is parsed
    incrementally from the old tree: tree-sitter re-reads only what changed."""
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    key = (path, hash(raw))
    hit = _CACHE.get(key)
    if hit is not None and hit.source == raw:
        return hit
    base = next((c for c in reversed(_CACHE.values()) if c.path == path and c.clean), None)
    cf = _parse_c(raw, path, base)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = cf
    return cf


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common prefix (at most `limit`): equal 4 KiB blocks first, each one
    memcmp, then a bisection inside the first block that differs."""
    step, i = 4096, 0
    while i + step <= limit and a[i:i + step] == b[i:i + step]:
        i += step
    lo, hi = i, min(i + step, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[i:mid] == b[i:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix (at most `limit`), as _common_prefix from the end."""
    la, lb = len(a), len(b)
    step, i = 4096, 0
    while i + step <= limit and a[la - i - step:la - i] == b[lb - i - step:lb - i]:
        i += step
    lo, hi = i, min(i + step, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid:la - i] == b[lb - mid:lb - i]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(buf: bytes, off: int) -> tuple[int, int]:
    return buf.count(b"\n", 0, off), off - (buf.rfind(b"\n", 0, off) + 1)


def _parse_tree(clean: bytes, base: CFile | None):
    """A syntax tree of `clean`, reusing `base`'s tree for the unchanged text (one edit
    spanning everything between the common prefix and the common suffix)."""
    if base is None:
        return c_parser().parse(clean)
    old = base.clean
    pre = _common_prefix(old, clean, min(len(old), len(clean)))
    suf = _common_suffix(old, clean, min(len(old), len(clean)) - pre)
    tree = base.tree.copy()  # the old tree stays valid for whoever still holds it
    tree.edit(start_byte=pre, old_end_byte=len(old) - suf, new_end_byte=len(clean) - suf,
              start_point=_point(old, pre), old_end_point=_point(old, len(old) - suf),
              new_end_point=_point(clean, len(clean) - suf))
    return c_parser().parse(clean, tree)


def _parse_c(raw: bytes, path: str, base: CFile | None = None) -> CFile:
    clean, notes = preprocess(raw)
    tree = _parse_tree(clean, base)
    return CFile(path, raw, tree, _functions(tree.root_node, notes, raw), clean)


def _functions(root: TSNode, notes: list[Annotation], raw: bytes) -> list[Function]:
    funcs: list[Function] = []
    prev_end = 0
    for fn in sorted(walk_type(root, "function_definition"), key=lambda n: n.start_byte):
        fdecl = fn.child_by_field_name("declarator")
        while fdecl is not None and fdecl.type != "function_declarator":
            fdecl = fdecl.child_by_field_name("declarator")
        if fdecl is None:
            continue
        name = _decl_name(fdecl.child_by_field_name("declarator"))
        if not name:
            continue
        body = fn.child_by_field_name("body")
        start = fn.start_byte
        head_end = body.start_byte if body is not None else fn.end_byte
        # annotations between the previous function's end and this body belong to it
        mine = [a for a in notes if prev_end <= a.offset < fn.end_byte and a.offset >= start - 200]
        prev_end = fn.end_byte
        f = Function(
            name=name,
            node=fn,
            start_line=line_of(fn),
            end_line=fn.end_point[0] + 1,
            annotations=[a for a in mine if a.offset < head_end or a.name == "__free"],
            source=raw,
            params=_param_names(fdecl),
            is_static=any(
                c.type == "storage_class_specifier" and text(c) == "static" for c in fn.children
            ),
        )
        f._notes = [a for a in notes if start <= a.offset < fn.end_byte]
        funcs.append(f)
    return funcs


# ------------------------------------------------------------------ parts of a file

REGION_MIN_BYTES = 2_048  # smaller files are parsed whole: nothing to save
_CLOSER = re.compile(rb"^\}", re.M)
_NEWLINE = re.compile(rb"\n")


@lru_cache(maxsize=1)
def _region_parser() -> Parser:
    return Parser(c_parser().language)


def lines_with(text: str, word: str) -> set[int]:
    """1-based numbers of the lines that contain `word` (to parse only their functions)."""
    return {i for i, ln in enumerate(text.split("\n"), 1) if word in ln} if word in text else set()


def parse_region(source: str | bytes, path: str, lines: set[int],
                 names: set[str] | frozenset[str] = frozenset()) -> CFile:
    """The functions of a file that hold one of `lines` (1-based) or are named in `names`,
    parsed without the rest of the file: a patch touches a few functions of files that run
    to thousands of lines, and only those are analysed.

    A function is delimited as kernel style writes it: from the line after the previous
    top-level closing brace in column 0 to its own. Tree-sitter reads only those ranges
    (positions stay those of the whole file). Where that reading is not clean (the line is
    in a syntax error, or a construct is cut by a conditional), the whole file is parsed, so
    the result is never worse than parse_c's.
    """
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    if len(raw) < REGION_MIN_BYTES:
        return parse_c(raw, path)
    live = blank_disabled(raw)  # regions are cut in the code the compiler sees
    starts = [0] + [m.end() for m in _NEWLINE.finditer(raw)]  # offset of each line
    nlines = len(starts)

    def line_at(offset: int) -> int:
        return bisect_right(starts, offset) - 1

    closers = [line_at(m.start()) for m in _CLOSER.finditer(live)]
    targets = {ln - 1 for ln in lines if 0 < ln <= nlines}
    for name in names:
        if name.isidentifier():
            pat = rb"^(?:[A-Za-z_][^;(\n]*?\b)?" + re.escape(name.encode()) + rb"\s*\("
            targets |= {line_at(m.start()) for m in re.finditer(pat, raw, re.M)}
    if not targets:
        return CFile(path, raw, None, [], b"")
    spans: list[tuple[int, int]] = []  # 0-based inclusive line ranges
    for t in sorted(targets):
        i = bisect_left(closers, t)
        first = closers[i - 1] + 1 if i > 0 else 0
        last = closers[i] if i < len(closers) else nlines - 1
        if spans and first <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    if sum(b - a + 1 for a, b in spans) * 2 > nlines:
        return parse_c(raw, path)
    clean = bytearray(raw)
    notes: list[Annotation] = []
    ranges = []
    for a, b in spans:
        s = starts[a]
        e = starts[b + 1] if b + 1 < nlines else len(raw)
        part, part_notes = preprocess(live[s:e])
        clean[s:e] = part
        notes += [Annotation(n.name, n.arg, n.offset + s, n.line + a) for n in part_notes]
        end_point = (b + 1, 0) if b + 1 < nlines else (b, e - starts[b])
        ranges.append(Range((a, 0), end_point, s, e))
    cleanb = bytes(clean)
    parser = _region_parser()
    parser.included_ranges = ranges
    tree = parser.parse(cleanb)
    # the regions must read as whole top-level constructs: a cut one leaves an error or a
    # statement outside any function (errors inside a function, from macros taking types,
    # are the same in the whole file), else the whole file decides
    if any(c.type == "ERROR" or c.is_missing or (c.type.endswith("_statement")
                                                 and c.type != "expression_statement")
           for c in tree.root_node.children):
        return parse_c(raw, path)
    return CFile(path, raw, tree, _functions(tree.root_node, notes, raw), b"")
