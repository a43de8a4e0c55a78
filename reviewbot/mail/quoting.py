"""Quote only the diff lines around each finding, the comment right under its line.

For each finding: the file's `diff --git` line, the hunk header, up to three lines above
the finding's line and the line itself; `[...]` where lines of the patch are left out. A
finding outside the hunks (the analysis reviews the whole post-image) is anchored at the
last line on its path that the patch adds, else at the nearest changed line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reviewbot.mail.comments import comment_for, exit_comment
from reviewbot.mail.exits import Exit, group_exits, label_after, right_label
from reviewbot.mail.headers import one_line
from reviewbot.model import Finding, Patch, PatchResult

if TYPE_CHECKING:
    from reviewbot.packs import Packs

QUOTE_BEFORE = 3  # diff lines quoted above the line of a finding
EXTRA_BEFORE = 2  # ... above a further line the finding names
FILL_GAP = 2  # quote up to this many lines rather than write [...]


@dataclass(frozen=True)
class Block:
    """A piece of a reply's body, in order: quoted diff lines, a comment, or [...]."""

    kind: str  # quote | comment | skip
    text: str


@dataclass(frozen=True)
class _Entry:
    """One quotable line of a file of a patch."""

    text: str  # as quoted: the diff line without its line end, or a header
    target: int | None  # its post-image line number (None: removed line or header)
    type: str  # file | hunk | "+" | "-" | " "
    hunk: int  # index of its hunk in the file (-1: the file header)


def _patchset(patch: Patch):
    try:
        return patch.patchset
    except ImportError:  # the shared parser is not there: plain unidiff does the job
        import unidiff

        ps = unidiff.PatchSet(patch.diff)
        patch.__dict__["_patchset"] = ps
        return ps


def _strip_ab(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


class _FileQuote:
    """The quotable lines of one file of a patch, in patch order."""

    def __init__(self, pf, diff_lines: list[str]):
        self.path = _strip_ab(pf.path)
        self.entries: list[_Entry] = []
        header = next(
            (ln for ln in str(pf.patch_info or "").splitlines() if ln.startswith("diff ")), ""
        )
        if not header:
            header = f"+++ {pf.target_file}"
        self.entries.append(_Entry(header, None, "file", -1))
        for hi, hunk in enumerate(pf):
            self.entries.append(_Entry(_hunk_header(hunk, diff_lines), None, "hunk", hi))
            for line in hunk:
                self.entries.append(_Entry(line.line_type + line.value.rstrip("\r\n"),
                                           line.target_line_no, line.line_type, hi))
        self.by_target = {
            e.target: i for i, e in enumerate(self.entries) if e.target is not None
        }

    def hunk_start(self, idx: int) -> int:
        h = self.entries[idx].hunk
        return next(i for i, e in enumerate(self.entries) if e.hunk == h and e.type == "hunk")

    def window(self, idx: int, before: int) -> set[int]:
        """`idx` and up to `before` post-image lines above it in its hunk; removed lines in
        between or right above come along (they are part of the change), and then one line
        of context above them."""
        first = self.hunk_start(idx) + 1
        start, seen = idx, 0
        while start > first and seen < before:
            start -= 1
            if self.entries[start].type != "-":
                seen += 1
        if start > first and self.entries[start - 1].type == "-":
            while start > first and self.entries[start - 1].type == "-":
                start -= 1
            if start > first:
                start -= 1
        return set(range(start, idx + 1))

    def added_on_path(self, f: Finding) -> int | None:
        """The last line on the finding's path (trace, then its further lines) that the
        patch adds: where the patch meets the problem."""
        for lines in ([t.line for t in f.trace], list(f.lines)):
            added = [
                self.by_target[ln]
                for ln in lines
                if ln in self.by_target and self.entries[self.by_target[ln]].type == "+"
            ]
            if added:
                return added[-1]
        return None

    def nearest_changed(self, line: int, function: str) -> int | None:
        """Index of the changed line nearest to post-image `line`, preferring hunks of
        `function` (by the hunk's section header)."""
        best: tuple[int, int, int] | None = None
        for i, e in enumerate(self.entries):
            if e.type not in ("+", "-"):
                continue
            pos = e.target
            if pos is None:  # a removed line sits before the next post-image line
                pos = next((x.target for x in self.entries[i:] if x.target is not None), None)
                if pos is None:
                    pos = max(self.by_target, default=line)
            hdr = self.entries[self.hunk_start(i)].text
            other = 0 if function and re.search(rf"\b{re.escape(function)}\s*\(", hdr) else 1
            key = (other, abs(pos - line), i)
            if best is None or key < best:
                best = key
        return best[2] if best else None


def _hunk_header(hunk, diff_lines: list[str]) -> str:
    pat = re.compile(rf"^@@ -{hunk.source_start}(,\d+)? \+{hunk.target_start}(,\d+)? @@")
    for ln in diff_lines:
        if pat.match(ln):
            return ln.rstrip("\r\n")
    hdr = (
        f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
    )
    return f"{hdr} {hunk.section_header}" if hunk.section_header else hdr


def _post_line(pr: PatchResult, path: str, line: int) -> str:
    for fi in pr.files:
        if fi.path == path and fi.post:
            lines = fi.post.splitlines()
            if 0 < line <= len(lines):
                return lines[line - 1].strip()
    return ""


def _code_at(pr: PatchResult, f: Finding, fq: _FileQuote | None) -> str:
    if fq is not None and f.line in fq.by_target:
        return fq.entries[fq.by_target[f.line]].text[1:].strip()
    code = _post_line(pr, f.file, f.line)
    if code:
        return code
    for t in f.trace:
        if t.line == f.line and t.note:
            return one_line(t.note)
    return ""


def _post_image(pr: PatchResult, path: str) -> str | None:
    return next((fi.post for fi in pr.files if fi.path == path and fi.post), None)


def _comment(pr: PatchResult, item: Exit | Finding, in_hunk: bool, code: str,
             packs: Packs | None) -> str:
    if isinstance(item, Exit):
        advice = right_label(item, _post_image(pr, item.lead.file), packs)
        return exit_comment(item, in_hunk, code, advice)
    label = None
    if item.rule == "error-path.extra-release":
        label = label_after(item, _post_image(pr, item.file))
    return comment_for(item, in_hunk, code, label)


def quote_blocks(pr: PatchResult, findings: list[Finding],
                 packs: Packs | None = None) -> list[Block]:
    """Quoted lines and comments, in patch order: one comment per exit (``exits``), one
    per other finding."""
    patch = pr.patch
    diff_lines = patch.diff.splitlines()
    try:
        files = [_FileQuote(pf, diff_lines) for pf in _patchset(patch)]
    except Exception:  # an unparsable diff: comments only, nothing quoted
        files = []
    by_path = {fq.path: fq for fq in files}
    quoted: dict[int, set[int]] = {}  # file index -> entry indices
    comments: dict[tuple[int, int], list[str]] = {}
    loose: list[str] = []  # findings in files the patch does not touch

    for item in group_exits(findings, packs):
        f = item.lead if isinstance(item, Exit) else item
        fq = by_path.get(f.file)
        if fq is None:
            loose.append(_comment(pr, item, False, _code_at(pr, f, None), packs))
            continue
        fidx = files.index(fq)
        sel = quoted.setdefault(fidx, {0})
        anchor = fq.by_target.get(f.line)
        in_hunk = anchor is not None
        if anchor is None:
            anchor = fq.added_on_path(f)
        if anchor is None:
            anchor = fq.nearest_changed(f.line, f.function)
        if anchor is None:
            loose.append(_comment(pr, item, False, _code_at(pr, f, fq), packs))
            continue
        sel |= fq.window(anchor, QUOTE_BEFORE)
        members = item.findings if isinstance(item, Exit) else [item]
        for extra in sorted({ln for m in members for ln in m.lines}):
            j = fq.by_target.get(extra)
            if j is not None and j < anchor:
                sel |= fq.window(j, EXTRA_BEFORE)
        comments.setdefault((fidx, anchor), []).append(
            _comment(pr, item, in_hunk, _code_at(pr, f, fq), packs))

    blocks: list[Block] = []
    for fidx, fq in enumerate(files):
        sel = quoted.get(fidx)
        if not sel:
            continue
        # the header of each hunk something is quoted from
        sel |= {fq.hunk_start(i) for i in sel if i}
        idxs = sorted(sel)
        # fill small gaps inside a hunk rather than write [...]
        filled = set(idxs)
        for a, b in zip(idxs, idxs[1:], strict=False):
            same = fq.entries[a].hunk == fq.entries[b].hunk >= 0
            if same and 1 < b - a <= FILL_GAP + 1:
                filled.update(range(a + 1, b))
        if fidx > 0:  # files before this one are left out
            blocks.append(Block("skip", ""))
        run: list[str] = []
        prev = None
        for i in sorted(filled):
            if prev is not None and i != prev + 1:
                blocks.append(Block("quote", "\n".join(run)))
                blocks.append(Block("skip", ""))
                run = []
            run.append(fq.entries[i].text)
            for c in comments.get((fidx, i), []):
                blocks.append(Block("quote", "\n".join(run)))
                blocks.append(Block("comment", c))
                run = []
            prev = i
        blocks.append(Block("quote", "\n".join(run)))
    for c in loose:
        if blocks and blocks[-1].kind == "quote":
            blocks.append(Block("skip", ""))
        blocks.append(Block("comment", c))
    # merge adjacent quote runs split by an empty comment list
    merged: list[Block] = []
    for b in blocks:
        if b.kind == "quote" and not b.text:
            continue
        if merged and b.kind == "quote" and merged[-1].kind == "quote":
            merged[-1] = Block("quote", merged[-1].text + "\n" + b.text)
        elif merged and b.kind == "skip" and merged[-1].kind == "skip":
            continue
        else:
            merged.append(b)
    while merged and merged[-1].kind == "skip":
        merged.pop()
    return merged
