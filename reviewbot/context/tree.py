"""Code context: the pre- and post-image of each file a patch touches.

The tree may be None (hunks only), a git repository (bare or not; read with pygit2, never
checked out) or a plain directory. A patch's file names are untrusted: nothing outside the
tree is ever read, and nothing is ever written. pygit2 is imported only when a git tree is
opened: it is ~45 ms of a cold start that a plain directory does not need.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from reviewbot.context.diff import (
    ApplyError,
    apply_hunks_detailed,
    changed_lines,
    file_paths,
    hunk_images,
)
from reviewbot.context.diff import index_blobs as _index_blobs
from reviewbot.model import FileImage, InputError, Patch

if TYPE_CHECKING:
    import pygit2

__all__ = ["NO_TREE_NOTE", "CodeContext", "discover_repo", "safe_relpath"]

NO_TREE_NOTE = "no source tree: hunks only"

MAX_FILE_BYTES = 16 * 1024 * 1024
TREE_MODE = 0o040000
REGULAR_MODES = (0o100644, 0o100755)  # a file (not a link or a submodule), plain or executable


def _open_git(path: str) -> pygit2.Repository | None:
    """The repository at `path` (never one found above it); None if it is not one."""
    import pygit2

    try:
        return pygit2.Repository(path, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, ValueError):
        return None


def discover_repo(cwd: str = ".") -> str | None:
    """The top of the git repository `cwd` is in (its work tree, or a bare repository's
    directory), as git finds it; None outside one. pygit2 is imported only when a `.git`
    is seen on the way up."""
    p = Path(cwd).resolve()
    if not any(_looks_like_git(d) for d in (p, *p.parents)):
        return None
    import pygit2

    try:
        found = pygit2.discover_repository(str(p))
        repo = pygit2.Repository(found) if found else None
    except (pygit2.GitError, KeyError, ValueError):
        return None
    if repo is None:
        return None
    return str(Path(repo.workdir or repo.path).resolve())


def _looks_like_git(p: Path) -> bool:
    return (p / ".git").exists() or ((p / "HEAD").is_file() and (p / "objects").is_dir())


def safe_relpath(path: str | None) -> str | None:
    """`path` normalised if it is a safe relative path inside a tree, else None."""
    if not path or "\x00" in path or "\\" in path:
        return None
    if path.startswith("/"):
        return None
    parts = [p for p in PurePosixPath(path).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or parts[0] == ".git":
        return None
    return "/".join(parts)


def _git_cause(e: Exception) -> str:
    """libgit2's message on one line."""
    return " ".join(str(e).split())[:300] or type(e).__name__


def _object_home(repo: pygit2.Repository, oid: str) -> str:
    """Where an object is stored: its loose file or the pack whose index lists it (read
    here: libgit2 does not say which pack it failed in), for an error message."""
    import mmap

    objects = Path(repo.path) / "objects"
    if (objects / oid[:2] / oid[2:]).is_file():
        return str(objects / oid[:2] / oid[2:])
    want = bytes.fromhex(oid)
    for idx in sorted((objects / "pack").glob("*.idx")):
        try:
            with open(idx, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                if m[:8] != b"\xfftOc\x00\x00\x00\x02":
                    continue  # version 2, what git has written since 1.5.2
                first = want[0]
                lo = int.from_bytes(m[8 + 4 * (first - 1):8 + 4 * first], "big") if first else 0
                hi = int.from_bytes(m[8 + 4 * first:12 + 4 * first], "big")
                while lo < hi:  # the ids are sorted: bisect the fan-out bucket
                    mid = (lo + hi) // 2
                    at = m[1032 + 20 * mid:1052 + 20 * mid]
                    if at == want:
                        return str(idx.with_suffix(".pack"))
                    lo, hi = (mid + 1, hi) if at < want else (lo, mid)
        except (OSError, ValueError):
            continue
    return "no pack or loose file of this repository"


def _broken_object(repo: pygit2.Repository, base: str) -> str:
    """The id and home of the object that fails to read on the way from `base` (a
    reference or an id) to its tree; "" when it cannot be told."""
    import pygit2

    try:
        ref = repo.lookup_reference_dwim(base).resolve()
        oid = str(ref.target)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        oid = base if len(base) == 40 else ""
    if not oid:
        return ""
    try:
        commit = repo[oid]
        oid = str(commit.peel(pygit2.Commit).tree_id)
        repo[oid]
    except (KeyError, ValueError, pygit2.GitError):
        return f"object {oid} in {_object_home(repo, oid)}"
    return ""


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class CodeContext:
    """Where pre-images come from: nothing, a git repository, or a directory."""

    def __init__(self, tree: str | None, base: str = "HEAD"):
        self.tree = tree
        self.base = base
        self.repo: pygit2.Repository | None = None
        self.base_tree: pygit2.Tree | None = None  # the tree at `base`
        self.root: Path | None = None
        self.kind = "none"
        self.refused: dict[str, int] = {}  # git objects over MAX_FILE_BYTES: id -> size
        if tree is None:
            return
        p = Path(tree)
        if not p.exists():
            raise InputError(f"--tree {tree}: no such file or directory")
        if not p.is_dir():
            raise InputError(f"--tree {tree}: not a directory")
        repo = _open_git(str(p)) if _looks_like_git(p) else None
        if repo is not None:
            import pygit2

            self.kind = "git"
            self.repo = repo
            try:
                unborn = repo.head_is_unborn
            except pygit2.GitError:
                unborn = True
            if base == "HEAD" and unborn:
                self.base_tree = None  # empty repository: only index-line blobs can be found
            else:
                try:
                    self.base_tree = repo.revparse_single(base).peel(pygit2.Tree)
                except (KeyError, ValueError, pygit2.InvalidSpecError):
                    raise InputError(f"--base {base}: does not resolve in {tree}") from None
                except pygit2.GitError as e:  # a corrupt pack or object: say which
                    where = _broken_object(repo, base)
                    raise InputError(f"--base {base}: cannot be read in {tree}: "
                                     f"{where + ': ' if where else ''}{_git_cause(e)}"
                                     ) from None
        else:
            self.kind = "dir"
            self.root = p.resolve()

    # ------------------------------------------------------------ reading

    def _git_object(self, oid: str | pygit2.Oid) -> pygit2.Object | None:
        """An object by full or abbreviated id; None if absent, ambiguous, malformed or
        larger than MAX_FILE_BYTES by its header (read first: libgit2 inflates a whole
        object on lookup, so an object bomb is refused before it costs memory). A corrupt
        repository is bad input (one line, exit 2), not a file to skip quietly."""
        import pygit2

        assert self.repo is not None
        try:
            full = self.repo.expand_id(oid) if isinstance(oid, str) and len(oid) < 40 \
                else oid
            _kind, size = self.repo.odb.read_header(full)
            if size > MAX_FILE_BYTES:
                self.refused[str(full)] = size
                return None
            return self.repo[full]
        except (KeyError, ValueError):  # pygit2's AmbiguousError and InvalidError are these
            return None
        except pygit2.GitError as e:
            try:
                full = str(self.repo.expand_id(oid))
            except (KeyError, ValueError, pygit2.GitError):
                full = str(oid)
            raise InputError(f"--tree {self.tree}: cannot read git object {full} in "
                             f"{_object_home(self.repo, full)}: {_git_cause(e)}") from None

    def _git_blob(self, oid: str | pygit2.Oid | None) -> bytes | None:
        """A blob's data by id; None if absent, not a blob or too large."""
        obj = self._git_object(oid) if oid and self.repo is not None else None
        if obj is None or obj.type_str != "blob" or obj.size > MAX_FILE_BYTES:
            return None
        return obj.data

    def _git_entry(self, rel: str) -> pygit2.Object | None:
        """The entry at a slash-separated path below the base tree; None if absent. Each
        directory's tree is read through _git_object (its size checked by its header): a
        lookup by path would inflate every tree on the way whole."""
        tree = self.base_tree
        *dirs, last = rel.split("/")
        try:
            for part in dirs:
                entry = tree[part] if tree is not None else None  # not read yet
                if entry is None or entry.filemode != TREE_MODE:
                    return None
                tree = self._git_object(entry.id)
                if tree is None or tree.type_str != "tree":
                    return None
            return tree[last] if tree is not None else None
        except (KeyError, ValueError, TypeError):
            return None

    def _git_base_blob(self, rel: str) -> bytes | None:
        entry = self._git_entry(rel)
        if entry is None or entry.filemode not in REGULAR_MODES:
            return None
        return self._git_blob(entry.id)

    def _git_blob_by_prefix(self, prefix: str | None) -> bytes | None:
        if not prefix or self.repo is None or len(prefix) < 4:
            return None
        return self._git_blob(prefix)

    def _git_files(self, tree: pygit2.Tree, prefix: str, suffixes: tuple[str, ...],
                   recurse: bool) -> Iterator[tuple[str, str]]:
        """(path, text) of the regular files of a tree whose names end with a suffix, in
        name order; with `recurse`, those of its subtrees too."""
        entries = [(e.raw_name.decode("utf-8", "surrogateescape"), e.filemode, e.id)
                   for e in tree]
        for name, mode, oid in sorted(entries, key=lambda e: e[0]):
            path = f"{prefix}{name}"
            if mode == TREE_MODE and recurse:
                sub = self._git_object(oid)
                if sub is not None and sub.type_str == "tree":
                    yield from self._git_files(sub, path + "/", suffixes, recurse)
            elif mode in REGULAR_MODES and path.endswith(suffixes):
                data = self._git_blob(oid)
                if data is not None:
                    yield path, _decode(data)

    def _dir_read(self, rel: str) -> bytes | None:
        assert self.root is not None
        full = self.root / rel
        try:
            real = Path(os.path.realpath(full))
        except OSError:
            return None
        if real != self.root and self.root not in real.parents:
            return None  # a symlink that leaves the tree
        try:
            st = os.stat(real)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        try:
            return real.read_bytes()
        except OSError:
            return None

    def read_file(self, path: str) -> str | None:
        """The whole file at `base` (git) or in the directory; None if absent or unsafe."""
        rel = safe_relpath(path)
        if rel is None or self.kind == "none":
            return None
        data = self._git_base_blob(rel) if self.kind == "git" else self._dir_read(rel)
        return None if data is None else _decode(data)

    def iter_files(self, suffixes: tuple[str, ...] = (".c",)) -> Iterator[tuple[str, str]]:
        """(path, text) of every regular file in the tree whose name ends with a suffix."""
        if self.kind == "git":
            if self.base_tree is None:
                return
            yield from self._git_files(self.base_tree, "", tuple(suffixes), recurse=True)
        elif self.kind == "dir":
            assert self.root is not None
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if d != ".git")
                for fn in sorted(filenames):
                    if not fn.endswith(tuple(suffixes)):
                        continue
                    rel = os.path.relpath(os.path.join(dirpath, fn), self.root)
                    rel = rel.replace(os.sep, "/")
                    data = self._dir_read(rel)
                    if data is not None:
                        yield rel, _decode(data)

    def dir_files(self, d: str, suffixes: tuple[str, ...] = (".c",)) -> dict[str, str]:
        """(path, text) of the regular files directly in one directory of the tree (not
        below it) whose names end with a suffix; {} for a missing or unsafe directory."""
        rel = safe_relpath(d) if d not in ("", ".") else ""
        if rel is None:
            return {}
        out: dict[str, str] = {}
        if self.kind == "git" and self.base_tree is not None:
            tree = self.base_tree
            if rel:
                entry = self._git_entry(rel)
                tree = self._git_object(entry.id) if entry is not None and \
                    entry.filemode == TREE_MODE else None
            if tree is None:
                return {}
            out.update(self._git_files(tree, f"{rel}/" if rel else "", suffixes, recurse=False))
        elif self.kind == "dir":
            assert self.root is not None
            try:
                names = sorted(os.listdir(self.root / rel))
            except OSError:
                return {}
            for name in names:
                if name.endswith(suffixes):
                    path = f"{rel}/{name}" if rel else name
                    data = self._dir_read(path)
                    if data is not None:
                        out[path] = _decode(data)
        return out

    # ------------------------------------------------------------ images

    def _candidates(self, pf, old: str | None) -> list[tuple[str, str]]:
        """Possible pre-image texts, each with where it came from."""
        out: list[tuple[str, str]] = []
        rel = safe_relpath(old)
        if self.kind == "git":
            pre_id, _post_id, mode = _index_blobs(pf)
            if mode != "120000":
                data = self._git_blob_by_prefix(pre_id)
                if data is not None:
                    out.append((_decode(data), f"blob {pre_id}"))
            if rel is not None:
                data = self._git_base_blob(rel)
                if data is not None:
                    out.append((_decode(data), f"{rel} at {self.base}"))
        elif self.kind == "dir" and rel is not None:
            data = self._dir_read(rel)
            if data is not None:
                out.append((_decode(data), rel))
        return out

    def _missing_note(self, old: str | None) -> str:
        """Why no pre-image of `old` was found: refused as too large, or not there."""
        if self.refused:
            oid, size = next(reversed(self.refused.items()))
            return (f"{old}: git object {oid} is {size} bytes by its header, over the "
                    f"limit of {MAX_FILE_BYTES}: not read")
        return f"{old}: not found in the tree ({self.tree})"

    def knows(self, patch: Patch) -> bool:
        """Whether this tree has the pre-image of one of the files `patch` changes (by the
        blob id of its index line or by its path): whether it is the tree the patch is for."""
        for pf in patch.patchset:
            if pf.is_added_file or pf.is_binary_file:
                continue
            old, _new = file_paths(pf)
            if self._candidates(pf, old):
                return True
        return False

    def _exists(self, rel: str | None) -> bool:
        rel = safe_relpath(rel)
        if rel is None:
            return False
        if self.kind == "git":
            return self._git_base_blob(rel) is not None
        if self.kind == "dir":
            return self._dir_read(rel) is not None
        return False

    def _strip_level(self, pf, old, new, overlay):
        """For non-git diffs with other prefixes (quilt: linux.orig/fs/x.c), strip one level."""
        if "diff --git" in str(pf.patch_info or "") or self.kind == "none":
            return old, new
        probe = old or new
        if probe is None or probe in overlay or self._exists(probe) or "/" not in probe:
            return old, new
        strip = [p.split("/", 1)[1] if p and "/" in p else p for p in (old, new)]
        if self._exists(strip[0] or strip[1]) or (strip[0] or strip[1]) in overlay:
            return strip[0], strip[1]
        return old, new

    def _hunks_image(self, pf, path, old, note, resolved=False) -> FileImage:
        pre, post = hunk_images(pf)
        rem, add = changed_lines(pf)
        return FileImage(
            path=path,
            old_path=old or path,
            pre=None if pf.is_added_file else pre,
            post=None if pf.is_removed_file else post,
            context="hunks",
            resolved=resolved,
            note=note,
            changed_pre=rem,
            changed_post=add,
        )

    def images(self, patch: Patch, overlay: dict[str, str | None]) -> list[FileImage]:
        """The pre- and post-image of each file `patch` touches; updates `overlay`."""
        out: list[FileImage] = []
        for pf in patch.patchset:
            old, new = self._strip_level(pf, *file_paths(pf), overlay)
            path = new or old or pf.path
            oldp = old or path
            if pf.is_binary_file:
                out.append(
                    FileImage(
                        path=path, old_path=oldp, pre=None, post=None,
                        context="tree" if self.kind != "none" else "hunks",
                        resolved=True, note=f"{path}: binary diff skipped",
                    )
                )
                continue
            unsafe = [p for p in (old, new) if p is not None and safe_relpath(p) is None]
            if unsafe:
                out.append(self._hunks_image(
                    pf, path, oldp, f"{unsafe[0]}: unsafe path in patch, not read from the tree"))
                continue

            # pre-image candidates: overlay first, then the tree
            cands: list[tuple[str, str]] = []
            if pf.is_added_file:
                if path in overlay and overlay[path] is not None and overlay[path] != "":
                    cands = [(overlay[path], "earlier patch of the series")]
                else:
                    cands = [("", "new file")]
            elif old in overlay:
                if overlay[old] is None:
                    out.append(self._hunks_image(
                        pf, path, oldp, f"{old}: deleted by an earlier patch of the series"))
                    continue
                cands = [(overlay[old], "earlier patch of the series")]
            elif self.kind == "none":
                out.append(self._hunks_image(pf, path, oldp, NO_TREE_NOTE))
                continue
            else:
                cands = self._candidates(pf, old)
                if not cands:
                    out.append(self._hunks_image(
                        pf, path, oldp, self._missing_note(old)))
                    continue

            applied = None
            errors = []
            for text, _where in cands:
                try:
                    applied = apply_hunks_detailed(text, pf)
                    pre_text = text
                    break
                except ApplyError as e:
                    errors.append(str(e))
            if applied is None:
                out.append(self._hunks_image(
                    pf, path, oldp, f"patch does not apply to the tree: {errors[0]}"))
                continue

            if self.kind == "none":
                # only a new file (whole text in the patch) or an overlay got here
                context, resolved, note = "hunks", True, ""
            else:
                context, resolved, note = "tree", True, ""
            post = None if pf.is_removed_file else applied.post
            out.append(
                FileImage(
                    path=path,
                    old_path=oldp,
                    pre=None if pf.is_added_file else pre_text,
                    post=post,
                    context=context,
                    resolved=resolved,
                    note=note,
                    changed_pre=applied.removed,
                    changed_post=applied.added,
                )
            )
            if pf.is_removed_file:
                overlay[path] = None
            else:
                overlay[path] = applied.post
                if old and old != path and pf.is_rename and "\ncopy from " not in \
                        "\n" + str(pf.patch_info or ""):
                    overlay[old] = None
        return out
