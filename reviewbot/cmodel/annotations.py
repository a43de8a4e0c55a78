"""Kernel annotation macros blanked before parsing, and remembered.

``__acquires(x)``, ``__free(kfree)``, ``__must_check`` and their kind confuse any C grammar.
They are overwritten with spaces of the same length (every byte offset and line stays where
it was); those whose argument means something to the rules (lock annotations, scope-based
cleanup) are kept as ``Annotation`` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Annotation", "preprocess"]

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


def preprocess(src: bytes) -> tuple[bytes, list[Annotation]]:
    """Blank kernel annotation macros (keeping offsets) and return what was blanked."""
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
