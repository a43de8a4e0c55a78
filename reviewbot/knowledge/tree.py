"""One pass over a source tree: list the C files, extract each one's facts in worker
processes (or take them from the per-file cache, keyed by the file's git blob id), and fold
them into one Partial for aggregation.

The cache holds the facts of each blob ever seen, under
`$XDG_CACHE_HOME/reviewbot/learn/v<VERSION>/` (or `--cache DIR`): a newer tree shares most
blobs with an older one, so only changed files are parsed again; aggregation, which is
cheap, is always redone.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reviewbot.datafiles import user_cache_dir

from .aggregate import Partial
from .blobs import blob_id
from .learn import VERSION, FileFacts, file_facts

# User-space code in the kernel tree (perf, selftests, build tools): malloc/free, fopen/fclose
# are not kernel APIs. --exclude replaces this list.
DEFAULT_EXCLUDE = ("tools", "scripts", "Documentation", "usr")
MAX_BYTES = 4_000_000  # generated tables beyond this hold no functions worth learning from


def default_cache() -> Path:
    got = user_cache_dir("learn")
    return Path(got) if got else Path.home() / ".cache" / "reviewbot" / "learn"


def source_files(tree: Path, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> list[str]:
    """Relative paths of the .c files, and of the headers that define inline functions (the
    header test is made when the file is read), in a stable order."""
    out: list[str] = []
    skip = {e.strip("/") for e in exclude}
    for root, dirs, files in os.walk(tree):
        rel = os.path.relpath(root, tree)
        rel = "" if rel == "." else rel
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                         os.path.join(rel, d) not in skip)
        out += [os.path.join(rel, f) for f in sorted(files) if f.endswith((".c", ".h"))]
    return out


@dataclass(frozen=True, slots=True)
class Job:
    tree: str
    cache: str  # "" for no cache
    paths: tuple[str, ...]


def _cache_path(cache: str, bid: str) -> str:
    return os.path.join(cache, f"v{VERSION}", bid[:2], bid[2:] + ".pkl")


def facts_of(tree: str, rel: str, cache: str) -> tuple[FileFacts | None, str]:
    """(facts, how): how is "cached", "extracted", "skipped" or "failed"."""
    try:
        with open(os.path.join(tree, rel), "rb") as fh:
            data = fh.read()
    except OSError:
        return None, "failed"
    if len(data) > MAX_BYTES or (rel.endswith(".h") and b"inline" not in data):
        return None, "skipped"
    bid = blob_id(data)
    cp = _cache_path(cache, bid) if cache else ""
    if cp:
        try:
            with open(cp, "rb") as fh:
                return pickle.load(fh), "cached"
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            pass
    try:
        ff = file_facts(data, rel)
    except Exception:  # noqa: BLE001 - one odd file must not end a pass over 36,000
        return None, "failed"
    if cp:
        try:
            os.makedirs(os.path.dirname(cp), exist_ok=True)
            tmp = f"{cp}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(ff, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cp)
        except OSError:
            pass  # a read-only cache still lets the run finish
    return ff, "extracted"


def run_job(job: Job) -> Partial:
    part = Partial()
    for rel in job.paths:
        ff, how = facts_of(job.tree, rel, job.cache)
        if how == "failed":
            part.failed += 1
        if ff is None:
            continue
        if how == "cached":
            part.cached += 1
        else:
            part.extracted += 1
        part.add_file(rel, ff)
    return part


def _jobs(tree: Path, paths: list[str], cache: str, size: int = 48) -> Iterator[Job]:
    # big files first, so the last jobs are short and both workers finish together
    def weight(p: str) -> int:
        try:
            return os.path.getsize(tree / p)
        except OSError:
            return 0

    ordered = sorted(paths, key=weight, reverse=True)
    for i in range(0, len(ordered), size):
        yield Job(str(tree), cache, tuple(ordered[i:i + size]))


def learn_tree(tree: Path, cache: Path | None, jobs: int = 0,
               exclude: tuple[str, ...] = DEFAULT_EXCLUDE, progress: bool = False) -> Partial:
    paths = source_files(tree, exclude)
    cache_s = str(cache) if cache is not None else ""
    jobs = jobs or os.cpu_count() or 1
    total = Partial()
    work = list(_jobs(tree, paths, cache_s))
    if jobs <= 1 or len(work) <= 1:
        results: Iterator[Partial] = map(run_job, work)
        pool = None
    else:
        import multiprocessing

        # fork: the workers start with the parser and modules already imported;
        # maxtasksperchild bounds what a long run of large files leaves behind
        pool = multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=200)
        results = pool.imap_unordered(run_job, work)
    try:
        for i, part in enumerate(results, 1):
            total.merge(part)
            if progress and i % 50 == 0:
                sys.stderr.write(f"\rlearn: {total.files} files ({total.extracted} parsed, "
                                 f"{total.cached} cached)")
                sys.stderr.flush()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if progress:
        sys.stderr.write("\r" + " " * 70 + "\r")
    return total


def tree_info(tree: Path) -> dict:
    """What the tree is: its directory name, the kernel version its Makefile says, the git
    commit when it is a repository."""
    info = {"name": tree.name, "version": "", "git": ""}
    try:
        mk = (tree / "Makefile").read_text(errors="replace").splitlines()[:8]
        vals = {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in mk) if v}
        if vals.get("VERSION"):
            info["version"] = ".".join(vals.get(k, "") for k in
                                       ("VERSION", "PATCHLEVEL", "SUBLEVEL")).strip(".")
    except OSError:
        pass
    head = tree / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref = (tree / ".git" / ref[5:]).read_text().strip()
        info["git"] = ref
    except OSError:
        pass
    return info
