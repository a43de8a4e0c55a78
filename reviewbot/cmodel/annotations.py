"""Kernel annotation macros blanked before parsing, and remembered.

``__acquires(x)``, ``__free(kfree)``, ``__must_check`` and their kind confuse any C grammar.
They are overwritten with spaces of the same length (every byte offset and line stays where
it was); those whose argument means something to the rules (lock annotations, scope-based
cleanup) are kept as ``Annotation`` records.

Code the compiler never sees is blanked the same way first (``blank_disabled``): the
branches of ``#if 0`` / ``#elif 0`` and the ``#else`` of ``#if 1``, so unbalanced braces
in them cannot shift the functions around them (a leak behind an ``#if 0 {`` went unseen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Annotation", "blank_disabled", "preprocess"]

# Annotation macros blanked before parsing. Group "arg" is kept for the ones that mean
# something to the rules (lock annotations, scope-based cleanup).
_ARG_NAMES = frozenset(
    b"__acquires __releases __must_hold __acquire __release __cond_lock __free __attribute__ "
    b"__aligned __printf __section __cleanup __counted_by __guarded_by __diagnose_as "
    b"__alloc_size __malloc __nonstring".split())
_WORD_NAMES = frozenset(
    b"__init __exit __user __iomem __rcu __percpu __force __must_check __maybe_unused "
    b"__always_inline noinline __cold __hot __read_mostly __initdata __exitdata __ref "
    b"__latent_entropy __weak __pure __noreturn __deprecated __bitwise __le32 __be32 "
    b"__le64 __be64 __le16 __be16 notrace __visible __sched __kprobes __nocfi asmlinkage "
    b"__packed __noinline inline __inline __inline__ __randomize_layout __private "
    b"__ro_after_init __initconst __no_sanitize_address __xdp_rxq_info".split())
# One pass finds every candidate word (and whether a parenthesis follows); the name sets
# decide. Cheaper than two regexes of fifty alternatives each over every byte.
_ANNOT = re.compile(rb"\b(__[A-Za-z]\w*|inline|noinline|notrace|asmlinkage)\b(\s*\()?")
_NOT_NL = re.compile(rb"[^\n]")
# le32 etc are types in kernel code; keep them parseable by mapping to a plain word.
_TYPE_WORDS = {b"__le32", b"__be32", b"__le64", b"__be64", b"__le16", b"__be16", b"__bitwise"}


@dataclass
class Annotation:
    name: str  # e.g. "__acquires"
    arg: str  # the text inside the parentheses
    offset: int  # byte offset in the source
    line: int


def _match_paren(src: bytes, start: int) -> int:
    """Index just past the parenthesis group that opens at src[start] == '('."""
    depth = 0
    i = start
    n = len(src)
    while i < n:
        c = src[i]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


# a conditional directive at the start of a line; `cond` is the whole condition
_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b([^\n]*)", re.M)
_CONSTANT = re.compile(rb"\s*\(?\s*([01])\s*\)?\s*(?:/\*.*?\*/\s*|//.*)?")
_MAYBE_CONSTANT = re.compile(rb"^[ \t]*#[ \t]*(?:el)?if[ \t(]+[01]\b", re.M)


def _constant(cond: bytes) -> bool | None:
    """True/False for a condition that is the literal 1/0, else None (unknown)."""
    m = _CONSTANT.fullmatch(cond)
    return None if m is None else m.group(1) == b"1"


def blank_disabled(src: bytes) -> bytes:
    """`src` with the code of always-false conditional branches blanked (newlines kept):
    ``#if 0``, ``#elif 0``, and what follows a branch that is always taken (``#if 1``'s
    ``#else``). The directives of a conditional decided entirely are blanked too, so the
    code that stays reads as plain code; `#elif X` after a blanked `#if 0` becomes `#if X`
    (same length)."""
    if _MAYBE_CONSTANT.search(src) is None:
        return src
    buf = bytearray(src)
    # one frame per open conditional: [taken: a branch so far is always true, off: this
    # branch is never compiled, undecided: the conditional stays (a condition not 0 or 1)]
    stack: list[list[bool]] = []

    def dead() -> bool:
        return any(f[1] for f in stack)

    spans: list[tuple[int, int]] = []  # ranges to blank
    off_from: int | None = None  # where the current dead stretch began
    for m in _DIRECTIVE.finditer(src):
        kind, cond = m.group(1), m.group(2)
        if kind in (b"if", b"ifdef", b"ifndef"):
            # in dead code nothing is decided: it is blanked whole
            value = _constant(cond) if kind == b"if" and not dead() else None
            stack.append([value is True, value is False, value is None])
            if value is not None:
                spans.append((m.start(), m.end()))
        elif not stack:
            continue  # an #elif/#else/#endif without its #if: left as it is
        elif kind == b"endif":
            if not stack.pop()[2]:
                spans.append((m.start(), m.end()))
        else:
            frame = stack[-1]
            taken, undecided = frame[0], frame[2]
            value = _constant(cond) if kind == b"elif" else True
            frame[1] = taken or value is False
            frame[0] = taken or value is True
            if kind == b"elif" and not taken and value is None and not undecided:
                # the first live branch after blanked #if 0s: the conditional starts here
                buf[m.start(1):m.start(1) + 4] = b"if  "
                frame[2] = True
            elif not undecided:
                spans.append((m.start(), m.end()))
        now_dead = dead()
        if now_dead and off_from is None:
            off_from = m.end()
        elif not now_dead and off_from is not None:
            spans.append((off_from, m.start()))
            off_from = None
    if off_from is not None:
        spans.append((off_from, len(src)))  # never closed: off to the end
    for a, b in spans:
        buf[a:b] = _NOT_NL.sub(b" ", bytes(buf[a:b]))
    return bytes(buf)


def preprocess(src: bytes) -> tuple[bytes, list[Annotation]]:
    """Blank code that is never compiled and kernel annotation macros (keeping offsets)
    and return the annotations blanked."""
    src = blank_disabled(src)
    buf = bytearray(src)
    notes: list[Annotation] = []
    for m in _ANNOT.finditer(src):
        name = m.group(1)
        if m.group(2) is not None and name in _ARG_NAMES:
            open_at = m.end() - 1
            end = _match_paren(src, open_at)
            arg = src[open_at + 1 : end - 1].decode("utf-8", "replace").strip()
            line = src.count(b"\n", 0, m.start()) + 1
            notes.append(Annotation(name.decode(), arg, m.start(), line))
            buf[m.start():end] = _NOT_NL.sub(b" ", src[m.start():end])
        elif name in _WORD_NAMES and name not in _TYPE_WORDS:
            buf[m.start():m.end(1)] = b" " * (m.end(1) - m.start())
    return bytes(buf), notes
