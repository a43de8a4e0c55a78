"""Read-only access to the objects of a git repository, for `--tree`, without pygit2.

Importing pygit2 takes about 60 ms, more than the rest of a single-patch review; reading the
few objects a review needs (the blob named on a patch's `index` line, a file or directory of
the base commit's tree) takes a fraction of that here. What is read: loose objects, packs
(index version 2, offset and reference deltas), loose and packed refs, worktree `.git`
files and alternates, of SHA-1 repositories. `open_repo` returns None for anything else
(a repository format extension such as sha256 or reftable, a pack index of another
version), and revisions other than ref names and hex ids are left to pygit2 by the caller
(context.py), so what is not read here is read as before.
"""

from __future__ import annotations

import os
import zlib
from bisect import bisect_left

__all__ = ["REGULAR_MODES", "TREE_MODE", "GitError", "GitRepo", "Objects", "open_repo",
           "parse_tree"]

TREE_MODE = 0o040000
REGULAR_MODES = (0o100644, 0o100755)  # a file (not a link or a submodule), plain or executable
_TYPES = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}
_OFS_DELTA, _REF_DELTA = 6, 7
_HEX = frozenset("0123456789abcdef")
# how `git rev-parse` completes a short ref name, in order
_DWIM = ("{}", "refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}",
         "refs/remotes/{}/HEAD")
_MAX_DELTA_CHAIN = 10_000  # git's own limit is far lower; this only stops a cycle


class GitError(Exception):
    """A corrupt or unreadable object, pack or ref."""


def _is_hex(s: str) -> bool:
    return bool(s) and set(s) <= _HEX


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read()
    except OSError:
        return None


def parse_tree(data: bytes) -> list[tuple[str, int, str]]:
    """(name, mode, hex id) of each entry of a raw tree object, in the tree's order."""
    out = []
    i, n = 0, len(data)
    while i < n:
        sp = data.index(b" ", i)
        nul = data.index(b"\0", sp)
        mode = int(data[i:sp], 8)
        name = data[sp + 1:nul].decode("utf-8", "surrogateescape")
        out.append((name, mode, data[nul + 1:nul + 21].hex()))
        i = nul + 21
    if i != n:
        raise GitError("truncated tree object")
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    """A delta header's size (7 bits a byte, low first) at buf[i]; and where it ends."""
    value = shift = 0
    while True:
        c = buf[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, i


def _apply_delta(base: bytes, delta: bytes) -> bytes:
    """A git delta (copy and insert instructions) applied to its base."""

    src_size, i = _varint(delta, 0)
    dst_size, i = _varint(delta, i)
    if src_size != len(base):
        raise GitError("delta does not fit its base")
    out = bytearray()
    n = len(delta)
    while i < n:
        op = delta[i]
        i += 1
        if op & 0x80:  # copy from the base: offset and size bytes present per flag bit
            off = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    off |= delta[i] << (8 * bit)
                    i += 1
            for bit in range(3):
                if op & (0x10 << bit):
                    size |= delta[i] << (8 * bit)
                    i += 1
            out += base[off:off + (size or 0x10000)]
        elif op:  # insert the next op bytes
            out += delta[i:i + op]
            i += op
        else:
            raise GitError("bad delta instruction")
    if len(out) != dst_size:
        raise GitError("delta result has the wrong size")
    return bytes(out)


class _Pack:
    """One pack file and its version-2 index, memory-mapped, read on demand."""

    def __init__(self, idx_path: str):
        import mmap

        self.path = idx_path[:-4] + ".pack"
        with open(idx_path, "rb") as fh:
            self.idx = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if self.idx[:8] != b"\377tOc\0\0\0\2":
            raise GitError(f"{idx_path}: not a version 2 pack index")
        self.count = int.from_bytes(self.idx[8 + 255 * 4:8 + 256 * 4], "big")
        self._names = 8 + 256 * 4
        self._offsets = self._names + self.count * 24  # past the names and their CRCs
        self._large = self._offsets + self.count * 4
        self._data = None

    @property
    def data(self):
        if self._data is None:
            import mmap

            with open(self.path, "rb") as fh:
                self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return self._data

    def _name(self, i: int) -> bytes:
        at = self._names + 20 * i
        return self.idx[at:at + 20]

    def _fanout(self, byte: int) -> tuple[int, int]:
        lo = int.from_bytes(self.idx[4 + 4 * byte:8 + 4 * byte], "big") if byte else 0
        hi = int.from_bytes(self.idx[8 + 4 * byte:12 + 4 * byte], "big")
        return lo, hi

    def find(self, prefix: str) -> list[str]:
        """Full ids in this pack starting with a hex prefix (two at most: enough to tell
        an ambiguous prefix)."""
        first = bytes.fromhex((prefix + "0")[:2])[0]
        lo, hi = self._fanout(first)
        low = bytes.fromhex((prefix + "0" * 40)[:40])
        names = _Names(self)
        i = bisect_left(names, low, lo, hi)
        out = []
        while i < hi and len(out) < 2:
            h = self._name(i).hex()
            if not h.startswith(prefix):
                break
            out.append(h)
            i += 1
        return out

    def offset(self, hexid: str) -> int | None:
        want = bytes.fromhex(hexid)
        lo, hi = self._fanout(want[0])
        i = bisect_left(_Names(self), want, lo, hi)
        if i >= hi or self._name(i) != want:
            return None
        at = self._offsets + 4 * i
        off = int.from_bytes(self.idx[at:at + 4], "big")
        if off & 0x80000000:
            at = self._large + 8 * (off & 0x7FFFFFFF)
            off = int.from_bytes(self.idx[at:at + 8], "big")
        return off

    def _header(self, off: int) -> tuple[int, int, int]:
        """(type, size, offset of what follows) of the entry at `off`."""
        data = self.data
        c = data[off]
        typ, size, shift = (c >> 4) & 7, c & 15, 4
        off += 1
        while c & 0x80:
            c = data[off]
            off += 1
            size |= (c & 0x7F) << shift
            shift += 7
        return typ, size, off

    def _inflate(self, start: int, size: int) -> bytes:
        d = zlib.decompressobj()
        parts = []
        step = size + 512
        data = self.data
        while not d.eof:
            chunk = data[start:start + step]
            if not chunk:
                raise GitError(f"{self.path}: truncated")
            parts.append(d.decompress(chunk))
            start += len(chunk)
            step = 1 << 16
        out = b"".join(parts)
        if len(out) != size:
            raise GitError(f"{self.path}: object of the wrong size")
        return out

    def size(self, off: int) -> int:
        """The size of the object at `off` (for a delta: read from the delta's header)."""
        typ, size, at = self._header(off)
        if typ < _OFS_DELTA:
            return size
        at = self._skip_base(typ, at)
        # the delta starts with two varints: its base's size, then the result's
        head = zlib.decompressobj().decompress(self.data[at:at + 4096], 20)
        _base_size, i = _varint(head, 0)
        return _varint(head, i)[0]

    def _skip_base(self, typ: int, at: int) -> int:
        return at + 20 if typ == _REF_DELTA else self._ofs(at)[1]

    def kind(self, off: int, repo: GitRepo) -> str:
        """The type of the object at `off` (for a delta: its base's), nothing inflated."""
        pack = self
        for _ in range(_MAX_DELTA_CHAIN):
            typ, _size, at = pack._header(off)
            if typ in _TYPES:
                return _TYPES[typ]
            if typ == _OFS_DELTA:
                off -= pack._ofs(at)[0]
            elif typ == _REF_DELTA:
                found = repo._locate(pack.data[at:at + 20].hex())
                if found is None:
                    raise GitError("delta base missing")
                if not isinstance(found[0], _Pack):
                    return repo._loose(found[1], 0)[0]
                pack, off = found
            else:
                raise GitError(f"{pack.path}: bad object type {typ}")
        raise GitError(f"{self.path}: delta chain too long")

    def _ofs(self, at: int) -> tuple[int, int]:
        """(distance back to the base, offset of the delta data) of an offset delta."""
        data = self.data
        c = data[at]
        at += 1
        back = c & 0x7F
        while c & 0x80:
            c = data[at]
            at += 1
            back = ((back + 1) << 7) | (c & 0x7F)
        return back, at

    def read(self, off: int, repo: GitRepo) -> tuple[str, bytes]:
        """(type, data) of the object at `off`, deltas resolved (bases may be elsewhere in
        the repository for a reference delta)."""
        chain: list[bytes] = []
        pack = self
        for _ in range(_MAX_DELTA_CHAIN):
            typ, size, at = pack._header(off)
            if typ in _TYPES:
                data = pack._inflate(at, size)
                kind = _TYPES[typ]
                break
            if typ == _OFS_DELTA:
                back, at = pack._ofs(at)
                chain.append(pack._inflate(at, size))
                off -= back
            elif typ == _REF_DELTA:
                base = pack.data[at:at + 20].hex()
                chain.append(pack._inflate(at + 20, size))
                found = repo._locate(base)
                if found is None:
                    raise GitError(f"delta base {base} missing")
                if not isinstance(found[0], _Pack):  # a loose base (a thin pack's fix-up)
                    kind, data = repo._read_loose(found[1])
                    break
                pack, off = found
            else:
                raise GitError(f"{pack.path}: bad object type {typ}")
        else:
            raise GitError(f"{self.path}: delta chain too long")
        for delta in reversed(chain):
            data = _apply_delta(data, delta)
        return kind, data


class _Names:
    """A pack index's sorted object names as a sequence, for bisect."""

    def __init__(self, pack: _Pack):
        self.pack = pack

    def __getitem__(self, i: int) -> bytes:
        return self.pack._name(i)

    def __len__(self) -> int:
        return self.pack.count


class Objects:
    """What a review reads from a repository: objects by id or abbreviated id, revisions,
    trees. Subclasses read objects and refs; trees and peeling are read the same way."""

    def read(self, hexid: str, limit: int | None = None) -> tuple[str, bytes | None] | None:
        """(type, data) of an object by full id, None if absent; data None when the object
        is larger than `limit` bytes (not read)."""
        raise NotImplementedError

    def find(self, prefix: str) -> str | None:
        """The full id of the one object whose id starts with a hex prefix (4 to 40
        digits); None if there is none or more than one."""
        raise NotImplementedError

    def resolve(self, rev: str) -> str | None:
        """The id of the object a revision names; None if it names none."""
        raise NotImplementedError

    def head_is_unborn(self) -> bool:
        raise NotImplementedError

    def peel_to_tree(self, hexid: str) -> str | None:
        """The tree of a commit, of a tag's target, or the tree itself; None otherwise."""
        for _ in range(16):  # tags of tags, then a commit
            got = self.read(hexid)
            if got is None or got[1] is None:
                return None
            kind, data = got
            if kind == "tree":
                return hexid
            if kind == "blob":
                return None
            field = b"tree " if kind == "commit" else b"object "
            line = data.split(b"\n", 1)[0]
            if not line.startswith(field):
                raise GitError(f"{kind} {hexid}: no {field.decode().strip()} line")
            hexid = line[len(field):].decode("ascii", "replace").strip()
        return None

    def tree(self, hexid: str) -> list[tuple[str, int, str]] | None:
        """(name, mode, id) of a tree's entries; None if `hexid` is not a tree."""
        got = self.read(hexid)
        if got is None or got[0] != "tree" or got[1] is None:
            return None
        return parse_tree(got[1])

    def tree_entry(self, tree: str, path: str) -> tuple[int, str] | None:
        """(mode, id) of the entry at a slash-separated path below a tree, None if absent."""
        entry = (TREE_MODE, tree)
        for part in path.split("/"):
            entries = self.tree(entry[1]) if entry[0] == TREE_MODE else None
            if entries is None:
                return None
            entry = next(((m, i) for n, m, i in entries if n == part), None)
            if entry is None:
                return None
        return entry


class GitRepo(Objects):
    """A repository's objects and refs, read here (see open_repo)."""

    def __init__(self, gitdir: str, commondir: str, object_dirs: list[str], packs: list[_Pack]):
        self.gitdir = gitdir
        self.commondir = commondir
        self.object_dirs = object_dirs
        self.packs = packs
        self._packed_refs: dict[str, str] | None = None

    # ---------------------------------------------------------------- objects

    def _loose_path(self, hexid: str) -> str | None:
        for d in self.object_dirs:
            p = os.path.join(d, hexid[:2], hexid[2:])
            if os.path.isfile(p):
                return p
        return None

    def _locate(self, hexid: str):
        """(pack, offset) or (None, loose path) of a full id; None if absent."""
        p = self._loose_path(hexid)
        if p is not None:
            return None, p
        for pack in self.packs:
            off = pack.offset(hexid)
            if off is not None:
                return pack, off
        return None

    @staticmethod
    def _loose(path: str, limit: int | None = None) -> tuple[str, bytes | None]:
        """(type, data) of a loose object; data None when larger than `limit`."""
        with open(path, "rb") as fh:
            raw = fh.read()
        head = zlib.decompressobj().decompress(raw, 64)
        nul = head.find(b"\0")
        kind, _, size = head[:max(nul, 0)].decode("ascii", "replace").partition(" ")
        if nul < 0 or kind not in ("blob", "tree", "commit", "tag") or not size.isdigit():
            raise GitError(f"{path}: not a loose object")
        if limit is not None and int(size) > limit:
            return kind, None
        data = zlib.decompress(raw)[nul + 1:]
        if len(data) != int(size):
            raise GitError(f"{path}: object of the wrong size")
        return kind, data

    def _read_loose(self, path: str) -> tuple[str, bytes]:
        kind, data = self._loose(path)
        assert data is not None  # no limit given
        return kind, data

    def find(self, prefix: str) -> str | None:
        prefix = prefix.lower()
        if not 4 <= len(prefix) <= 40 or not _is_hex(prefix):
            return None
        if len(prefix) == 40:
            return prefix if self._locate(prefix) is not None else None
        found: set[str] = set()
        for d in self.object_dirs:
            try:
                names = os.listdir(os.path.join(d, prefix[:2]))
            except OSError:
                continue
            found.update(prefix[:2] + n for n in names
                         if n.startswith(prefix[2:]) and len(n) == 38 and _is_hex(n))
        for pack in self.packs:
            found.update(pack.find(prefix))
            if len(found) > 1:
                return None
        return found.pop() if len(found) == 1 else None

    def read(self, hexid: str, limit: int | None = None) -> tuple[str, bytes | None] | None:
        found = self._locate(hexid)
        if found is None:
            return None
        try:
            if found[0] is None:
                return self._loose(found[1], limit)
            pack, off = found
            if limit is not None and pack.size(off) > limit:
                return pack.kind(off, self), None
            return pack.read(off, self)
        except (OSError, IndexError, ValueError, zlib.error) as e:
            raise GitError(f"object {hexid}: {e}") from None

    # ---------------------------------------------------------------- refs

    def _ref(self, name: str, depth: int = 0) -> str | None:
        """The object id a ref name points to (symbolic refs followed), None if absent."""
        if depth > 8 or ".." in name or name.startswith("/"):
            return None
        for d in dict.fromkeys((self.gitdir, self.commondir)):  # per-worktree, then shared
            text = _read_text(os.path.join(d, name))
            if text is None:
                continue
            text = text.strip()
            if text.startswith("ref:"):
                return self._ref(text[4:].strip(), depth + 1)
            return text.lower() if len(text) == 40 and _is_hex(text.lower()) else None
        return self._packed().get(name)

    def _packed(self) -> dict[str, str]:
        if self._packed_refs is None:
            self._packed_refs = {}
            for line in (_read_text(os.path.join(self.commondir, "packed-refs")) or "").splitlines():
                if line[:1] in ("#", "^") or " " not in line:
                    continue
                hexid, name = line.split(" ", 1)
                if len(hexid) == 40 and _is_hex(hexid):
                    self._packed_refs.setdefault(name.strip(), hexid)
        return self._packed_refs

    def head_is_unborn(self) -> bool:
        text = (_read_text(os.path.join(self.gitdir, "HEAD")) or "").strip()
        return text.startswith("ref:") and self._ref(text[4:].strip()) is None

    def resolve(self, rev: str) -> str | None:
        """The object a ref name (HEAD, a branch, a tag, refs/...) or a hex id names, as
        `git rev-parse` reads it; None for anything else (left to pygit2) or not found."""
        if not rev or any(c in rev for c in "~^:@{}[]\\ ?*") or rev.startswith("-"):
            return None
        low = rev.lower()
        if len(rev) == 40 and _is_hex(low) and self._locate(low) is not None:
            return low
        for rule in _DWIM:
            got = self._ref(rule.format(rev))
            if got is not None:
                return got
        return self.find(low) if _is_hex(low) else None


def _object_dirs(objects: str, depth: int = 0) -> list[str] | None:
    """An objects directory and those of its alternates (None: a loop or too deep)."""
    if depth > 5:
        return None
    out = [objects]
    text = _read_text(os.path.join(objects, "info", "alternates"))
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith('"'):
            return None  # a quoted path: left to pygit2
        alt = _object_dirs(os.path.normpath(os.path.join(objects, line)), depth + 1)
        if alt is None:
            return None
        out += [d for d in alt if d not in out]
    return out


def _supported_config(gitdir: str) -> bool:
    """No repository format extension (sha256, reftable, ...) this reader does not know."""
    section = ""
    for line in (_read_text(os.path.join(gitdir, "config")) or "").splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip().lower()
        elif section == "extensions" and line:
            key = line.split("=", 1)[0].strip().lower()
            if key not in ("worktreeconfig", "noop", "preciousobjects"):
                return False
        elif section == "core" and line.replace(" ", "").lower().startswith(
                "repositoryformatversion="):
            if line.split("=", 1)[1].strip() not in ("0", "1"):
                return False
    return True


def open_repo(path: str) -> GitRepo | None:
    """The repository at `path` (a work tree with .git, or a bare repository; never one
    found above it), or None when it is not one this module reads (the caller then asks
    pygit2, which decides as before)."""
    dotgit = os.path.join(path, ".git")
    if os.path.isdir(dotgit):
        gitdir = dotgit
    elif os.path.isfile(dotgit):  # a worktree or submodule: "gitdir: PATH"
        text = (_read_text(dotgit) or "").strip()
        if not text.startswith("gitdir:"):
            return None
        gitdir = os.path.normpath(os.path.join(path, text[7:].strip()))
    else:
        gitdir = path
    common = _read_text(os.path.join(gitdir, "commondir"))
    commondir = os.path.normpath(os.path.join(gitdir, common.strip())) if common else gitdir
    if not (os.path.isfile(os.path.join(gitdir, "HEAD"))
            and os.path.isdir(os.path.join(commondir, "objects"))
            and os.path.isdir(os.path.join(commondir, "refs"))):
        return None
    if not all(_supported_config(d) for d in dict.fromkeys((commondir, gitdir))):
        return None
    dirs = _object_dirs(os.path.join(commondir, "objects"))
    if dirs is None:
        return None
    packs = []
    try:
        for d in dirs:
            pack_dir = os.path.join(d, "pack")
            names = sorted(os.listdir(pack_dir)) if os.path.isdir(pack_dir) else []
            packs += [_Pack(os.path.join(pack_dir, n)) for n in names
                      if n.endswith(".idx") and n[:-4] + ".pack" in names]
    except (OSError, ValueError, GitError):
        return None
    return GitRepo(gitdir, commondir, dirs, packs)
