"""Where tests find linux-source-6.1 (read at test time, never copied into the repo).

In order: $LINUX_TREE; /work/kernel/linux-source-6.1 (the development machine's extracted
tree); else the directories a test asks for extracted once from Debian's
/usr/src/linux-source-6.1.tar.xz (`apt-get install linux-source-6.1`, which .ci/run does)
into ~/.cache/reviewbot-tests. None when none of these is there: the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
EXTRACTED = ["/work/kernel/linux-source-6.1"]
TOP = "linux-source-6.1"


def linux_tree(*dirs: str) -> Path | None:
    """A linux-source-6.1 tree that has `dirs` (e.g. "fs/gfs2"), or None."""
    for cand in (os.environ.get("LINUX_TREE"), *EXTRACTED):
        if cand and all(Path(cand, d).is_dir() for d in dirs) and Path(cand, "Makefile").exists():
            return Path(cand)
    if not TARBALL.exists():
        return None
    cache = Path(os.environ.get("REVIEWBOT_TEST_CACHE",
                                Path.home() / ".cache" / "reviewbot-tests")) / TOP
    missing = [d for d in dirs if not (cache / d).is_dir()]
    if missing or not (cache / "Makefile").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        members = [f"{TOP}/Makefile", *(f"{TOP}/{d}" for d in dirs)]
        r = subprocess.run(["tar", "-xJf", str(TARBALL), "-C", str(cache.parent), *members],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None
    return cache


CORPUS_REAL = Path(__file__).resolve().parents[2] / "shared" / "corpus-real" / "cases"


def tree_file(rel: str) -> Path:
    """linux-source-6.1's file `rel`; the calling test is skipped without the tree."""
    import pytest

    tree = linux_tree(str(Path(rel).parent))
    if tree is None:
        pytest.skip("linux-source-6.1 not available")
    return tree / rel


def corpus_real_file(case: str, rel: str) -> Path:
    """The file `rel` of the base/ of the corpus-real case named (or numbered: "058")
    `case`; the calling test is skipped without it."""
    import pytest

    hits = sorted(CORPUS_REAL.glob(f"{case}*/base/{rel}"))
    if not hits:
        pytest.skip(f"corpus-real case {case} not present")
    return hits[0]
