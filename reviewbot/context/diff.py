"""The patch model: parse diffs with unidiff, apply hunks in memory, sparse hunk images.

Nothing here runs git or anything named by a patch; patches are only read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import unidiff
from unidiff.errors import UnidiffParseError

from reviewbot.model import InputError

__all__ = [
    "ApplyError",
    "Applied",
    "apply_hunks",
    "apply_hunks_detailed",
    "changed_lines",
    "file_paths",
    "hunk_images",
    "index_blobs",
    "parse_diff",
    "split_lines",
]

_INDEX_RE = re.compile(r"^index ([0-9a-fA-F]+)\.\.([0-9a-fA-F]+)(?: (\d+))?\s*$", re.M)
_HUNK_HDR_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)
_HUNK_START_RE = re.compile(r"^@@[^@\n]*(?:@@|$)", re.M)  # what reads as a hunk header


class ApplyError(InputError):
    """A hunk does not apply to the pre-image."""


def parse_diff(text: str) -> unidiff.PatchSet:
    """Parse a diff (git or plain unified). InputError if there is none or it is corrupt."""
    if not text or not text.strip():
        raise InputError("no diff found (empty text)")
    text = text.replace("\r\n", "\n")
    try:
        ps = unidiff.PatchSet(text)
    except UnidiffParseError as e:
        raise InputError(f"corrupt diff: {e}") from None
    except Exception as e:  # unidiff may fail in other ways on garbage
        raise InputError(f"corrupt diff: {type(e).__name__}: {e}") from None
    if len(ps) == 0:
        if _HUNK_HDR_RE.search(text):
            raise InputError("corrupt diff: hunk without file header")
        raise InputError("no diff found")
    _check_hunk_headers(text)
    return ps


def _check_hunk_headers(text: str) -> None:
    """InputError for a hunk header that is not one (``@@ -55,6 +-5,10 @@``): unidiff
    passes over it, and with it the hunk's lines, which would read as a clean patch."""
    if "@@" not in text:
        return
    for m in _HUNK_START_RE.finditer(text):
        if not _HUNK_HDR_RE.match(m.group()):
            raise InputError(f"corrupt diff: malformed hunk header {m.group()[:80]!r}")


def split_lines(text: str) -> list[str]:
    """Split on "\\n" only (str.splitlines would also split on form feeds etc.)."""
    if not text:
        return []
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _strip_prefix(name: str | None, prefix: str) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if name.startswith('"') and name.endswith('"') and len(name) >= 2:
        name = name[1:-1]
    if name == "/dev/null":
        return None
    if name.startswith(prefix):
        return name[len(prefix):]
    return name


def file_paths(pf: unidiff.PatchedFile) -> tuple[str | None, str | None]:
    """(old path, new path) without the a/ b/ prefixes; None for /dev/null."""
    old = _strip_prefix(pf.source_file, "a/")
    new = _strip_prefix(pf.target_file, "b/")
    if pf.is_added_file:
        old = None
    if pf.is_removed_file:
        new = None
    return old, new


def index_blobs(pf: unidiff.PatchedFile) -> tuple[str | None, str | None, str | None]:
    """(pre blob id, post blob id, mode) from the `index abc..def 100644` line, if any."""
    info = str(pf.patch_info or "")
    m = _INDEX_RE.search(info)
    if not m:
        return None, None, None
    pre, post, mode = m.group(1).lower(), m.group(2).lower(), m.group(3)
    if set(pre) == {"0"}:
        pre = None
    if set(post) == {"0"}:
        post = None
    return pre, post, mode


@dataclass
class _Hunk:
    """One hunk, as lists of old and new lines."""

    start: int  # 0-based index into the pre-image where the hunk's old lines should begin
    old: list[str] = field(default_factory=list)
    new: list[tuple[str, bool]] = field(default_factory=list)  # (text, is_context)
    added_idx: list[int] = field(default_factory=list)  # indices into new that are added
    removed_idx: list[int] = field(default_factory=list)  # indices into old that are removed


def _hunks(pf: unidiff.PatchedFile) -> list[_Hunk]:
    out = []
    for h in pf:
        start = h.source_start - 1 if h.source_length else h.source_start
        hk = _Hunk(start=max(start, 0))
        last = None  # which lists the previous line went to: "ctx", "-", "+"
        for line in h:
            t = line.line_type
            v = line.value
            if t == "\\":
                # "\ No newline at end of file" applies to the previous line
                if last in ("ctx", "-") and hk.old:
                    hk.old[-1] = hk.old[-1].rstrip("\n")
                if last in ("ctx", "+") and hk.new:
                    txt, ctx = hk.new[-1]
                    hk.new[-1] = (txt.rstrip("\n"), ctx)
                continue
            if not v.endswith("\n"):
                v += "\n"
            if t == "+":
                hk.added_idx.append(len(hk.new))
                hk.new.append((v, False))
                last = "+"
            elif t == "-":
                hk.removed_idx.append(len(hk.old))
                hk.old.append(v)
                last = "-"
            else:  # context (also blank lines whose leading space was eaten)
                hk.old.append(v)
                hk.new.append((v, True))
                last = "ctx"
        out.append(hk)
    return out


def _match(pre: list[str], pos: int, old: list[str], loose: bool) -> bool:
    if pos < 0 or pos + len(old) > len(pre):
        return False
    if loose:
        return all(pre[pos + i].rstrip() == o.rstrip() for i, o in enumerate(old))
    return pre[pos:pos + len(old)] == old


def _find(pre: list[str], expected: int, lo: int, old: list[str]) -> int | None:
    """The position nearest to `expected` (not before `lo`) where `old` matches."""
    if not old:
        return min(max(expected, lo), len(pre))
    hi = len(pre) - len(old)
    if hi < lo:
        return None
    expected = min(max(expected, lo), hi)
    for loose in (False, True):
        for d in range(0, max(expected - lo, hi - expected) + 1):
            for pos in (expected - d, expected + d) if d else (expected,):
                if lo <= pos <= hi and _match(pre, pos, old, loose):
                    return pos
    return None


@dataclass
class Applied:
    """A patched file's text and the lines the patch removed and added."""

    post: str
    removed: set[int]  # 1-based pre-image line numbers removed
    added: set[int]  # 1-based post-image line numbers added
    offsets: list[int]  # per hunk: found position minus the position the header named


def apply_hunks_detailed(pre: str, pf: unidiff.PatchedFile) -> Applied:
    """Apply a file's hunks to `pre` in memory; the real changed line numbers too."""
    if pf.is_binary_file:
        raise ApplyError(f"{pf.path}: binary diff cannot be applied")
    if pf.is_added_file and pre:
        raise ApplyError(f"{pf.path}: new file already exists")
    pre_lines = split_lines(pre)
    out: list[str] = []
    removed: set[int] = set()
    added: set[int] = set()
    offsets: list[int] = []
    cur = 0  # next unconsumed pre line
    drift = 0
    for n, hk in enumerate(_hunks(pf), 1):
        pos = _find(pre_lines, hk.start + drift, cur, hk.old)
        if pos is None:
            raise ApplyError(
                f"{pf.path}: hunk #{n} (at line {hk.start + 1}) does not apply"
            )
        offsets.append(pos - hk.start)
        drift = pos - hk.start
        out.extend(pre_lines[cur:pos])
        for i in hk.removed_idx:
            removed.add(pos + i + 1)
        # context lines keep the pre-image's own text (it may differ in trailing blanks)
        rem = set(hk.removed_idx)
        ctx_src = [pre_lines[pos + i] for i in range(len(hk.old)) if i not in rem]
        ci = 0
        added_set = set(hk.added_idx)
        for j, (txt, is_ctx) in enumerate(hk.new):
            if is_ctx:
                real = ctx_src[ci] if ci < len(ctx_src) else txt
                ci += 1
                # keep a newline change the hunk asks for (no-newline marker)
                if txt.endswith("\n") != real.endswith("\n"):
                    real = real.rstrip("\n") + ("\n" if txt.endswith("\n") else "")
                out.append(real)
            else:
                out.append(txt)
            if j in added_set:
                added.add(len(out))
        cur = pos + len(hk.old)
    out.extend(pre_lines[cur:])
    # a line that lost its newline must be the last one
    for i, line in enumerate(out[:-1]):
        if not line.endswith("\n"):
            out[i] = line + "\n"
    post = "".join(out)
    if pf.is_removed_file:
        if post.strip():
            raise ApplyError(f"{pf.path}: deletion does not remove the whole file")
        post = ""
    return Applied(post=post, removed=removed, added=added, offsets=offsets)


def apply_hunks(pre: str, pf: unidiff.PatchedFile) -> str:
    """The post-image of one file: `pre` with the hunks of `pf` applied (offsets allowed)."""
    return apply_hunks_detailed(pre, pf).post


def hunk_images(pf: unidiff.PatchedFile) -> tuple[str, str]:
    """Sparse pre- and post-images from the hunks only, lines at their real numbers."""
    pre: dict[int, str] = {}
    post: dict[int, str] = {}
    for h in pf:
        for line in h:
            v = line.value.rstrip("\n")
            if line.source_line_no is not None and line.line_type in (" ", "-", ""):
                pre[line.source_line_no] = v
            if line.target_line_no is not None and line.line_type in (" ", "+", ""):
                post[line.target_line_no] = v

    def build(d: dict[int, str]) -> str:
        if not d:
            return ""
        n = max(d)
        return "".join(d.get(i, "") + "\n" for i in range(1, n + 1))

    return build(pre), build(post)


def changed_lines(pf: unidiff.PatchedFile) -> tuple[set[int], set[int]]:
    """(pre-image line numbers removed, post-image line numbers added), per the hunk headers."""
    removed: set[int] = set()
    added: set[int] = set()
    for h in pf:
        for line in h:
            if line.line_type == "-" and line.source_line_no is not None:
                removed.add(line.source_line_no)
            elif line.line_type == "+" and line.target_line_no is not None:
                added.add(line.target_line_no)
    return removed, added
