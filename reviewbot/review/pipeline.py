"""Series in, findings with differential status out.

For each patch (analysed on the tree with the series' earlier patches applied), every C
function the patch touches is analysed twice, in the pre-image and in the post-image, and
the findings are matched by rule, file, function and resource (never by line):
introduced = only after, fixed = only before, preexisting = both.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from reviewbot import gctune
from reviewbot.context.tree import NO_TREE_NOTE, CodeContext, discover_repo
from reviewbot.model import FileImage, Finding, Patch, PatchResult, Series, SeriesResult, Site
from reviewbot.packs import Packs, load_packs
from reviewbot.review import result_cache

if TYPE_CHECKING:  # the analysis is imported where a file is analysed: a review whose
    # files were all kept from a run before (result_cache.py) does without it
    from reviewbot.checks.ops_mismatch import TreeIndex
    from reviewbot.checks.siblings import SiblingIndex
    from reviewbot.cmodel import CFile
    from reviewbot.knowledge.tree_summaries import SummaryTable

C_SUFFIXES = (".c", ".h")


def _touched(cf, lines: set[int]) -> set[str]:
    names = set()
    for fn in cf.functions:
        if any(fn.start_line <= ln <= fn.end_line for ln in lines):
            names.add(fn.name)
    return names


def _near(lines: set[int], post_cf, pre_cf, removed: set[int]) -> set[str]:
    names = _touched(post_cf, lines) if post_cf is not None else set()
    if pre_cf is not None:
        names |= _touched(pre_cf, removed)
    return names


def diff_findings(pre: list[Finding], post: list[Finding], changed_pre: set[int] | None = None,
                  changed_post: set[int] | None = None) -> list[Finding]:
    """Introduced, fixed and preexisting findings, by match key. A key on both sides whose
    defect the patch puts in more places (a new error exit that leaks what another exit
    already leaks) is preexisting, and introduced at the new places too; in fewer places,
    fixed at the places gone. Lines are not compared (code moves): the places nearest the
    patch's lines are taken for the new ones."""
    before = {f.match_key(): f for f in pre}
    after = {f.match_key(): f for f in post}
    out: list[Finding] = []
    for k, f in after.items():
        g = before.get(k)
        f.status = "preexisting" if g is not None else "introduced"
        out.append(f)
        if g is not None:
            out += _more_places(f, g, changed_post or set(), "introduced")
    for k, g in before.items():
        f = after.get(k)
        if f is None:
            g.status = "fixed"
            out.append(g)
        else:
            out += _more_places(g, f, changed_pre or set(), "fixed")
    order = {"introduced": 0, "fixed": 1, "preexisting": 2}
    out.sort(key=lambda f: (order[f.status or ""], f.file, f.line))
    return out


def _more_places(f: Finding, other: Finding, changed: set[int], status: str) -> list[Finding]:
    """Copies of `f` at the places it has beyond `other`'s count, nearest `changed` first."""
    n = len(f.sites) - len(other.sites)
    if n <= 0:
        return []
    places = [Site(f.line, f.message, f.trace), *f.sites]
    places.sort(key=lambda s: min((abs(s.line - c) for c in changed), default=0))
    return [replace(f, line=s.line, message=s.message, trace=s.trace, status=status, sites=[],
                    lines=[s.line] + [ln for ln in f.lines if ln != s.line])
            for s in places[:n]]


def _trust_partial(found: list[Finding], partial: set[str], img: FileImage) -> list[Finding]:
    """In a function too big to walk every path, before and after may have explored
    different paths: a finding counts as introduced or fixed only near the patch's lines
    (else it is preexisting, or nothing when its key is preexisting already)."""
    def near(f: Finding, changed: set[int]) -> bool:
        return any(abs(ln - c) <= 3 for ln in (f.lines or [f.line]) for c in changed)

    kept = {f.match_key() for f in found if f.status == "preexisting"}
    out = []
    for f in found:
        if f.function in partial and (
                (f.status == "introduced" and not near(f, img.changed_post))
                or (f.status == "fixed" and not near(f, img.changed_pre))):
            if f.match_key() in kept:
                continue
            f.status = "preexisting"
            kept.add(f.match_key())
        out.append(f)
    return out


def _unbalanced(pre_cf, post_cf, names, path, packs, found: list[Finding],
                sources: tuple[str | None, str | None] = (None, None),
                back_packs=None) -> list[Finding]:
    """The patch-level (`change`) checkers on each touched function, merged with what the
    path rules found by the registry's policy; those that can, also read backwards (the
    post-image as the function before): what they find then, the patch fixes."""
    from reviewbot.checks import registry
    from reviewbot.engine import ChangeContext
    from reviewbot.review.analysis import to_finding

    pre_fns = pre_cf.by_name() if pre_cf is not None else {}
    out = []
    for fn in post_cf.functions:
        if fn.name not in names:
            continue
        before = pre_fns.get(fn.name)
        ctx = ChangeContext(before, fn, packs, before_source=sources[0],
                            after_source=sources[1], path=path)
        raws = [raw for c in registry.checkers_for("change") for raw in c.check_change(ctx)]
        for raw in registry.merge_change(raws, fn.name, found):
            f = to_finding(raw, path, fn)
            f.status = "introduced"
            out.append(f)
        if before is None:
            continue
        back = ChangeContext(fn, before, back_packs or packs, backwards=True,  # undone
                             before_source=sources[1], after_source=sources[0], path=path)
        raws = [raw for c in registry.checkers_for("change") if c.change_fixes
                for raw in c.check_change(back)]
        for raw in registry.merge_change(raws, fn.name, found):
            f = to_finding(raw, path, before)
            f.status = "fixed"
            out.append(f)
    return out


class Reviewer:
    """Holds what is shared across the patches of a run: packs and the tree index."""

    def __init__(self, tree: str | None = None, base: str = "HEAD", packs: Packs | None = None,
                 keep_results: bool = False):
        self.ctx = CodeContext(tree, base)
        # files' findings kept between runs (review/result_cache.py): a command's choice
        self.keep_results = keep_results
        # everything this reviewer read of the tree (read id -> digest): the call graphs,
        # summaries and sibling indexes it keeps are built from it, some lazily, so a
        # kept file's result lists all of it (more than it needs, never less)
        self._reads: dict[str, str] | None = {} if keep_results else None
        self._digests: dict[str, str] = {}
        self.tree = tree
        self.packs = packs or load_packs()
        gctune.tune()
        self._index: dict[tuple[str, str], TreeIndex] = {}
        self._dirs: dict[tuple[str, str], dict[str, str]] = {}
        self._siblings: dict[frozenset[str], SiblingIndex] = {}
        self._directs: dict[str, dict[str, list]] = {}  # directory -> file -> summaries
        self._images: dict[int, tuple] = {}  # this patch's parsed images (see _parsed)
        self._graphs: dict[str, object] = {}  # the tree's call graph of a directory
        self._headers: dict[str, dict[str, str]] = {}

    def summaries_for(self, path: str, cf: CFile | None) -> SummaryTable | None:
        """The summaries of the functions of `path`'s directory in the tree, with those of
        `cf` (this image of the file) in place of the tree's; None without a tree."""
        from reviewbot.knowledge import summary_cache
        from reviewbot.knowledge.tree_summaries import build, file_directs

        if self.ctx.kind == "none":
            return None
        d = str(PurePosixPath(path).parent)
        base = self._directs.get(d)
        if base is None:
            base = {f: summary_cache.directs(f, text, self.packs)
                    for f, text in {**self.dir_files(d), **self._inline_headers(d)}.items()}
            self._directs = {d: base}  # one directory at a time: memory stays flat
        own = file_directs(path, cf, self.packs) if cf is not None else []
        mine = {x.name for x in own}
        rest = [x for f, lst in base.items() for x in lst if f != path or x.name not in mine]
        return build(rest + own, self.packs)

    def dir_files(self, d: str) -> dict[str, str]:
        """The tree's C files of one directory (a subsystem), read once."""
        return self._noted(f"c:{d}", _cached(self._dirs, ("dir", d),
                                              lambda: self.ctx.dir_files(d, (".c",))))

    def _dir_headers(self, d: str) -> dict[str, str]:
        return self._noted(f"h:{d}", _cached(self._headers, d,
                                              lambda: self.ctx.dir_files(d, (".h",))))

    def _noted(self, rid: str, texts: dict[str, str]) -> dict[str, str]:
        """`texts`, read from the tree: listed in the reads a kept result depends on."""
        if self._reads is not None and rid not in self._reads:
            self._reads[rid] = self._digest(rid, texts)
        return texts

    def _digest(self, rid: str, texts: dict[str, str]) -> str:
        got = self._digests.get(rid)
        if got is None:
            got = self._digests[rid] = result_cache.texts_digest(texts)  # type: ignore[arg-type]
        return got

    def _reads_same(self, reads: dict[str, str]) -> bool:
        """Whether the tree still reads as it did for a kept result."""
        for rid, digest in reads.items():
            kind, d = rid.split(":", 1)
            texts = self.dir_files(d) if kind == "c" else self._dir_headers(d)
            if self._digest(rid, texts) != digest:
                return False
        return True

    def worlds(self, images: list[FileImage], before: dict[str, str | None],
               after: dict[str, str | None]) -> tuple[SiblingIndex | None, SiblingIndex | None]:
        """Sibling indexes of the touched directories before and after the patch, only when
        a touched function takes objects off a list (the only thing siblings are asked)."""
        if not any(self._touches_teardown(i) for i in images):
            return None, None
        dirs = {str(PurePosixPath(i.path).parent) for i in images}
        base = self._sibling_base(frozenset(dirs))
        pre: dict[str, str] = {}
        post: dict[str, str] = {}
        for p, t in before.items():
            if str(PurePosixPath(p).parent) in dirs:
                pre[p] = t or ""
        for p, t in after.items():
            if str(PurePosixPath(p).parent) in dirs:
                post[p] = t or ""
        for i in images:
            if i.pre is not None:
                pre[i.old_path] = i.pre
            if i.post is not None:
                post[i.path] = i.post
        return base.with_files(pre), base.with_files(post)

    def _sibling_base(self, dirs: frozenset[str]) -> SiblingIndex:
        """The tree's sibling index of some directories, built once per reviewer: a patch's
        worlds are derived from it by re-reading only the files the series changes."""
        from reviewbot.checks.siblings import SiblingIndex

        def build() -> SiblingIndex:
            files: dict[str, str] = {}
            for d in sorted(dirs):
                files.update(self.dir_files(d))
            return SiblingIndex(files, self.packs)

        return _cached(self._siblings, dirs, build, 4)  # it holds the directories' texts

    def _touches_teardown(self, img: FileImage) -> bool:
        """A touched function frees an object it took off a list (before or after)."""
        from reviewbot.checks.siblings import teardowns

        pre_cf, post_cf, names = self._parsed(img)
        for cf in (post_cf, pre_cf):
            for fn in cf.functions if cf is not None else []:
                if fn.name in names and "list_del" in fn.text() and \
                        teardowns(fn, self.packs, {}):
                    return True
        return False

    def _parsed(self, img: FileImage) -> tuple[CFile | None, CFile | None, set[str]]:
        """The functions a patch touches, before and after, and their names; only those
        are parsed (parse_region), each once per patch."""
        from reviewbot.cmodel import parse_c, parse_region

        got = self._images.get(id(img))
        if got is not None and got[0] is img:
            return got[1]
        lines = {"pre": img.changed_pre, "post": img.changed_post}
        texts = {"pre": (img.pre, img.old_path), "post": (img.post, img.path)}
        cfs = {k: parse_region(t, p, lines[k]) if t else None for k, (t, p) in texts.items()}
        names = _near(img.changed_post, cfs["post"], cfs["pre"], img.changed_pre)
        for k, (t, p) in texts.items():
            cf = cfs[k]
            if cf is None or not names - {f.name for f in cf.functions}:
                continue
            # touched on the other side only (lines added, or only removed): read it here too
            cf = parse_region(t, p, lines[k], names)
            if names - {f.name for f in cf.functions}:
                cf = parse_c(t, p)  # absent from the region (a new or removed function, or
                # a definition the region search does not see): the whole file decides
            cfs[k] = cf
        out = (cfs["pre"], cfs["post"], names)
        self._images[id(img)] = (img, out)
        return out

    def review_file(self, img: FileImage, sib: tuple = (None, None),
                    failed: list[str] | None = None) -> list[Finding]:
        from reviewbot.review.analysis import analyze_cfile

        pre_cf, post_cf, names = self._parsed(img)
        if not names:
            return []
        index = None
        if self.ctx.kind != "none" and self.packs.ops and _has_getter(img.post or "", self.packs):
            # the file's own functions must not vote for themselves
            index = _without(img.path, self)
        partial: set[str] = set()
        summ = {k: self.summaries_for(img.path, cf) if cf is not None else None
                for k, cf in (("pre", pre_cf), ("post", post_cf))}
        try:
            pre = (analyze_cfile(pre_cf, img.path, names, self.packs, index, siblings=sib[0],
                                 incomplete=partial, failed=failed,
                                 summaries=summ["pre"],
                                 callgraph=self._graph(img, img.pre))
                   if pre_cf else [])
            post = (analyze_cfile(post_cf, img.path, names, self.packs, index,
                                  infer_from=pre_cf, siblings=sib[1], incomplete=partial,
                                  failed=failed,
                                  summaries=summ["post"],
                                  callgraph=self._graph(img, img.post))
                    if post_cf else [])
            found = diff_findings(pre, post, img.changed_pre, img.changed_post)
            if partial:
                found = _trust_partial(found, partial, img)
            if post_cf is not None:
                # the patch-level rules know the tree's summaries too: a release moved
                # into a helper of the file is a release
                packs = {k: self.packs.with_summaries(t.for_file(img.path)) if t else self.packs
                         for k, t in summ.items()}
                found += _unbalanced(pre_cf, post_cf, names, img.path, packs["post"], found,
                                    (img.pre, img.post), back_packs=packs["pre"])
        finally:
            for cf in (pre_cf, post_cf):
                for fn in cf.functions if cf is not None else []:
                    fn.drop_cfg()
        return found

    def _graph(self, img: FileImage, text: str | None):
        """The call graph the context rules check one image against: the directory's files
        of the tree with this image in place (and the headers they include), else the image
        alone; built only when a checker asks. The tree's graph of a directory is built once
        per reviewer; an image's is derived from it (only what the file changes is
        computed again)."""
        from reviewbot.knowledge.callgraph import LazyGraph, file_graph, reclaim_reach

        ctxk = self.packs.context
        if text is None or not ctxk:
            return None
        if self.ctx.kind == "none" or not img.resolved:
            return file_graph(text, img.path, ctxk, leaf_only=False)
        d = str(PurePosixPath(img.path).parent)
        texts = {p: t for p, t in self.dir_files(d).items() if p != img.old_path}
        texts[img.path] = text
        return LazyGraph(img.path, lambda: self._image_graph(d, img, text),
                         reclaim_reach(texts, ctxk))

    def _image_graph(self, d: str, img: FileImage, text: str):
        from reviewbot.knowledge.callgraph import build_callgraph
        from reviewbot.knowledge.ctxfacts import file_facts

        base = _cached(self._graphs, d, lambda: build_callgraph(
            self.dir_files(d), self.packs.context, self._header, leaf_only=False,
            lazy=True), 4)  # series come a directory at a time (_groups)
        if self.dir_files(d).get(img.path) == text and img.old_path == img.path:
            return base
        removed = [img.old_path] if img.old_path != img.path else []
        return base.derive([file_facts(text, img.path)], removed)

    def _header(self, path: str) -> str | None:
        return self._dir_headers(str(PurePosixPath(path).parent)).get(path)

    def _inline_headers(self, d: str) -> dict[str, str]:
        """The headers of directory `d` that may define static inlines (the summaries')."""
        return {f: t for f, t in self._dir_headers(d).items() if "inline" in t}

    def review_patch(self, patch: Patch, overlay: dict[str, str | None]) -> PatchResult:
        if patch.unreviewable:  # named in the output; the series' later patches go on
            return PatchResult(patch=patch, context="hunks",
                               notes=[f"not reviewed: {patch.unreviewable}"])
        self._images.clear()
        before = dict(overlay)
        images = self.ctx.images(patch, overlay)
        res = PatchResult(patch=patch, context="tree" if self.ctx.kind != "none" else "hunks")
        res.files = images
        c_images = [i for i in images if i.path.endswith(C_SUFFIXES)]
        sib: list[tuple] = []  # the worlds, made at the first file not kept from a run before

        def worlds() -> tuple:
            if not sib:
                sib.append(self.worlds(c_images, before, overlay))
            return sib[0]

        for img in images:
            if img.note:
                res.notes.append(img.note)
            if not img.path.endswith(C_SUFFIXES):
                continue
            if img.context != "tree":
                res.context = "hunks"
                if self.ctx.kind != "none" and not img.resolved:
                    res.unresolved.append(img.path)
            if img.pre is None and img.post is None:
                continue
            res.findings.extend(self._file_result(img, c_images, before, worlds,
                                                  res.not_analysed))
        res.not_analysed = list(dict.fromkeys(res.not_analysed))  # before and after: once
        res.notes += res.not_analysed
        return res

    def _file_result(self, img: FileImage, c_images: list[FileImage],
                     before: dict[str, str | None], worlds, failed: list[str]) -> list[Finding]:
        """review_file(), or what it gave in a run before for the same inputs."""
        key = result_cache.file_key(self.packs.signature, img,
                                    [i for i in c_images if i is not img], before,
                                    self.ctx.kind) if self.keep_results else None
        if key is not None:
            got = result_cache.load(key)
            if got is not None and self._reads_same(got.reads):
                for line in got.failed:
                    sys.stderr.write(f"reviewbot: {line}\n")
                failed += got.failed
                return got.findings
        mine: list[str] = []
        for d in {str(PurePosixPath(i.path).parent) for i in c_images}:
            self.dir_files(d)  # the worlds read them (made once for all files)
        found = self.review_file(img, worlds(), mine)
        failed += mine
        # a function the analyser failed on by an internal error (a bug, memory) is not
        # kept: the next run tries it again
        if key is not None and self._reads is not None and \
                not any("(internal error:" in line for line in mine):
            result_cache.store(key, result_cache.Entry(found, mine, dict(self._reads)))
        return found

    def review_series(self, series: Series) -> SeriesResult:
        overlay: dict[str, str | None] = {}
        out = SeriesResult(series=series)
        for p in series.patches:
            out.patches.append(self.review_patch(p, overlay))
        return out


def _cached(cache: dict, key, make, size: int = 12):
    """cache[key], made on a miss; the least recently used entry goes past `size` (a batch
    wanders over many subsystems, and one directory's texts can be megabytes)."""
    if key in cache:
        cache[key] = cache.pop(key)
    else:
        cache[key] = make()
        while len(cache) > size:
            del cache[next(iter(cache))]
    return cache[key]


def _has_getter(text: str, packs: Packs) -> bool:
    return any(f.getter in text for f in packs.ops.values())


def _without(path: str, rv: Reviewer) -> TreeIndex:
    """Ops-table usage mined from the other files of the file's directory (its subsystem)."""
    from reviewbot.checks.ops_mismatch import TreeIndex

    def build() -> TreeIndex:
        idx = TreeIndex()
        for p, text in rv.dir_files(str(PurePosixPath(path).parent)).items():
            if p != path:
                idx.add_file(p, text, rv.packs)
        return idx

    return _cached(rv._index, ("without", path), build, 16)


def review_series(series: Series, tree: str | None = None, base: str = "HEAD",
                  packs: Packs | None = None) -> SeriesResult:
    return Reviewer(tree, base, packs).review_series(series)


# ---------------------------------------------------------------------- which tree, and how much of it


def find_tree(series: list[Series], cwd: str = ".") -> str | None:
    """With no tree given: the git repository `cwd` is in, when it has the pre-image (by
    blob id or path at HEAD) of a file one of the patches changes, as checkpatch and b4 work
    from the tree they stand in; else None (hunks only)."""
    top = discover_repo(cwd)
    if top is None:
        return None
    try:
        ctx = CodeContext(top, "HEAD")
    except Exception:  # noqa: BLE001 - an unreadable repository is not the tree we look for
        return None
    return top if any(ctx.knows(p) for s in series for p in s.patches) else None


@dataclass(frozen=True)
class Incomplete:
    """A C file reviewed on its hunks only, and why."""

    path: str
    why: str


def incomplete_files(results: list[SeriesResult], hunks_asked: bool = False
                     ) -> list[Incomplete]:
    """The C files whose pre-image was not found or the patch did not apply to (reviewed
    on the hunks only); with `hunks_asked` (--no-tree), those only for want of a tree do
    not count."""
    out = []
    for sr in results:
        for pr in sr.patches:
            for img in pr.files:
                if not img.path.endswith(C_SUFFIXES) or img.resolved:
                    continue
                if hunks_asked and img.note == NO_TREE_NOTE:
                    continue
                why = img.note.removeprefix(f"{img.path}: ") or "hunks only"
                out.append(Incomplete(img.path, why))
    return out


# ---------------------------------------------------------------------- many series at once

_WORK: list[Series] = []
_WORKER: Reviewer | None = None
_WORKER_ARGS: tuple[str | None, str, Packs | None, bool] = (None, "HEAD", None, False)


def _review_group(group: list[int]) -> list[tuple[int, list[tuple]]]:
    """In a worker: review the series of one group; return what the parent cannot
    recompute cheaply."""
    global _WORKER
    if _WORKER is None:
        _WORKER = Reviewer(*_WORKER_ARGS)
    out = []
    for i in group:
        res = _WORKER.review_series(_WORK[i])
        out.append((i, [(pr.context, pr.findings, pr.unresolved, pr.notes, pr.files,
                         pr.not_analysed) for pr in _trimmed(res).patches]))
    return out


_DIFF_PATH = re.compile(r"^\+\+\+ b/(\S+)", re.M)
GROUP_MAX = 16  # series per task: a directory's run of series, cut for the balance


def _groups(series: list[Series]) -> list[list[int]]:
    """The indexes of `series` in tasks of up to GROUP_MAX, each of series that change
    files of one directory: a worker then builds a directory's call graph and summaries
    once for all of them, and keeps only the last few directories (memory stays flat)."""
    def where(s: Series) -> str:
        for p in s.patches:
            m = _DIFF_PATH.search(p.diff)
            if m:
                return str(PurePosixPath(m.group(1)).parent)
        return ""

    by_dir: dict[str, list[int]] = {}
    for i, s in enumerate(series):
        by_dir.setdefault(where(s), []).append(i)
    return [idx[k:k + GROUP_MAX] for _d, idx in sorted(by_dir.items())
            for k in range(0, len(idx), GROUP_MAX)]


def _trimmed(res: SeriesResult) -> SeriesResult:
    """`res` with only what the report and the drafts read: a file's post-image where
    there are findings to quote, none of the pre-images, no parsed diffs (a list archive
    of thousands of patches is not held in memory twice)."""
    for pr in res.patches:
        keep = {f.file for f in pr.findings}
        pr.files = [FileImage(fi.path, fi.old_path, None, fi.post if fi.path in keep else None,
                              fi.context, fi.resolved, fi.note) for fi in pr.files]
        pr.patch.__dict__.pop("_patchset", None)  # parsed again if anyone asks
    return res


def review_all(series: list[Series], tree: str | None = None, base: str = "HEAD",
               jobs: int = 0, packs: Packs | None = None,
               keep_results: bool = False) -> list[SeriesResult]:
    """Review many series; independent series go to one worker process per core. With
    `keep_results`, each file's findings are kept for the next run (result_cache.py)."""
    import os

    jobs = jobs or (os.cpu_count() or 1)
    if jobs <= 1 or len(series) < 8:
        rv = Reviewer(tree, base, packs, keep_results)
        done = {i: _trimmed(rv.review_series(series[i]))
                for group in _groups(series) for i in group}  # a directory at a time
        return [done[i] for i in range(len(series))]
    Reviewer(tree, base, packs)  # bad --tree/--base: fail here, with one line, not in a worker
    import multiprocessing

    global _WORK, _WORKER_ARGS
    _WORK, _WORKER_ARGS = series, (tree, base, packs, keep_results)
    parts_of: dict[int, list[tuple]] = {}
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for done in pool.imap_unordered(_review_group, _groups(series)):
                parts_of.update(done)
        results: list[SeriesResult] = []
        for i, s in enumerate(series):
            sr = SeriesResult(series=s)
            for p, (ctx, findings, unresolved, notes, files, left) in zip(
                    s.patches, parts_of.pop(i), strict=True):
                sr.patches.append(PatchResult(p, ctx, findings, unresolved, notes, files,
                                              left))
            results.append(sr)
    finally:
        _WORK = []
    return results
