#!/usr/bin/env python3
"""Single-patch review vs checkpatch.pl, whole processes, startup included.

For each patch (the public corpus cases with their base/ as --tree, plus patches generated
from linux-source-6.1 fs/ with the extracted git tree as --tree), run alternately

    reviewbot review PATCH --tree TREE
    perl TREE/scripts/checkpatch.pl --no-tree PATCH

(the order flips every round) and print the median wall time of each and their ratio, in
two modes: "cold" (no server: every run starts Python and imports everything) and "served"
(a `reviewbot serve` runs for the user, as for b4's per-patch check; each `reviewbot review`
is still a new process, which hands its command line to the warm server). The package's
bytecode is compiled once before timing, as pip does on a normal install (an editable install
under PYTHONDONTWRITEBYTECODE, as in this environment, would otherwise compile every module
in every cold run, ~50 ms), and the untimed warm-up run leaves the parsed rule packs and the
tree's summaries in the user's cache directory, as any first run does (packs.py). The
findings a review keeps for the next review of the same change (review/result_cache.py) are
dropped before each timed review unless --kept is given (then every timed review but the
first of each patch is a re-review). Target: reviewbot at most half of
checkpatch.pl (ratio <= 0.5).

    .venv/bin/python bench/vs_checkpatch.py [--generated 25] [--repeat 2] [--corpus DIR]
                                            [--mode both|cold|served] [--case 002] [--kept]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

# the public corpus sits in ../shared next to the repository (or where $REVIEWBOT_CORPUS says)
DEFAULT_CORPUS = Path(os.environ.get("REVIEWBOT_CORPUS") or c.REPO.parent / "shared" / "corpus")


def corpus_cases(corpus: Path) -> list[tuple[str, Path, Path]]:
    out = []
    for d in sorted((corpus / "cases").glob("*")):
        patch = next((d / n for n in ("patch.mbox", "patch.patch") if (d / n).exists()), None)
        if patch and (d / "base").is_dir():
            out.append((d.name, patch, d / "base"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS),
                    help="corpus directory (cases/*/patch.mbox + base/; default "
                         "$REVIEWBOT_CORPUS, else ../shared/corpus next to the repository); "
                         "'' to skip")
    ap.add_argument("--generated", type=int, default=25,
                    help="patches generated from linux-source-6.1 fs/ (default 25)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each tool per patch")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case", action="append", default=[], metavar="PREFIX",
                    help="only the corpus cases whose name starts with PREFIX (repeatable)")
    ap.add_argument("--mode", choices=["both", "cold", "served"], default="both",
                    help="without a server, with `reviewbot serve` running, or both")
    ap.add_argument("--kept", action="store_true",
                    help="keep the findings of earlier runs (review/result_cache.py): the "
                         "cost of reviewing a patch again (default: they are dropped before "
                         "each timed review, the cost of a patch not reviewed before, with "
                         "the packs and the tree's summaries cached)")
    args = ap.parse_args()

    tree = c.kernel_tree()
    checkpatch = tree / "scripts" / "checkpatch.pl"
    jobs: list[tuple[str, Path, Path]] = []
    if args.corpus and Path(args.corpus, "cases").is_dir():
        jobs += [j for j in corpus_cases(Path(args.corpus))
                 if not args.case or j[0].startswith(tuple(args.case))]
    elif args.corpus:
        c.log(f"bench: no corpus at {args.corpus}, generated patches only")
    gen_dir = c.cache_dir() / "vs_checkpatch"
    gen_dir.mkdir(exist_ok=True)
    for i, text in enumerate(c.make_patches(tree, args.generated, seed=args.seed)):
        p = gen_dir / f"{i:04d}.patch"
        p.write_text(text, errors="surrogateescape")
        jobs.append((f"gen-{i:04d}", p, tree))

    import compileall

    # written even under PYTHONDONTWRITEBYTECODE (py_compile does not look at it)
    compileall.compile_dir(str(c.REPO / "reviewbot"), quiet=1)
    print(f"bytecode: compiled {c.REPO / 'reviewbot'} once before timing "
          f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    print(f"patches: {len(jobs)} ({sum(1 for j in jobs if not j[0].startswith('gen-'))} "
          f"corpus cases, {sum(1 for j in jobs if j[0].startswith('gen-'))} generated "
          f"from linux-source-6.1 fs/), {args.repeat} run(s) each, alternating"
          f"{'; findings kept from the run before (--kept)' if args.kept else '; findings of earlier runs dropped before each review'}")
    modes = ["cold", "served"] if args.mode == "both" else [args.mode]
    for mode in modes:
        if mode == "served":
            with _server() as env:
                _measure(jobs, checkpatch, tree, args.repeat, env, mode, not args.kept)
        else:
            _measure(jobs, checkpatch, tree, args.repeat, dict(os.environ, REVIEWBOT_SERVER="off"),
                     mode, not args.kept)
    return 0


@contextlib.contextmanager
def _server():
    """A `reviewbot serve` in a private runtime directory of its own, for the measurement."""
    with tempfile.TemporaryDirectory() as d:
        run_dir = Path(d) / "run"
        run_dir.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(run_dir))
        env.pop("REVIEWBOT_SERVER", None)
        proc = subprocess.Popen([c.REVIEWBOT, "serve", "--idle", "0"], env=env,
                                stderr=subprocess.DEVNULL)
        def up() -> bool:
            return bool(list((run_dir / "reviewbot").glob("server-*.sock")))

        for _ in range(600):
            if up() or proc.poll() is not None:
                break
            time.sleep(0.05)
        if not up():
            proc.kill()
            raise SystemExit("bench: reviewbot serve did not start")
        try:
            yield env
        finally:
            subprocess.run([c.REVIEWBOT, "serve", "--stop"], env=env, check=False)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _measure(jobs, checkpatch: Path, tree: Path, repeat: int, env: dict, mode: str,
             fresh: bool = False) -> None:
    rb_times, cp_times, rb_rss, cp_rss = [], [], [], []
    rb_cmd = lambda patch, t: [c.REVIEWBOT, "review", str(patch), "--tree", str(t)]  # noqa: E731
    cp_cmd = lambda patch: ["perl", str(checkpatch), "--no-tree", str(patch)]  # noqa: E731
    # one untimed warm-up of each (page cache)
    c.run(rb_cmd(jobs[0][1], jobs[0][2]), env=env)
    c.run(cp_cmd(jobs[0][1]), cwd=tree)
    k = 0
    for _rep in range(repeat):
        for _name, patch, t in jobs:
            pair = [("rb", rb_cmd(patch, t), None), ("cp", cp_cmd(patch), tree)]
            if k % 2:
                pair.reverse()
            k += 1
            for tool, cmd, cwd in pair:
                if tool == "rb" and fresh:
                    c.drop_kept_results(env)
                r = c.run(cmd, cwd=cwd, env=env if tool == "rb" else None)
                if tool == "rb":
                    if r.rc not in (0, 1):
                        raise SystemExit(f"reviewbot failed on {patch}")
                    rb_times.append(r.wall)
                    rb_rss.append(r.maxrss_mb)
                else:
                    cp_times.append(r.wall)
                    cp_rss.append(r.maxrss_mb)
    rb, cp = c.median(rb_times), c.median(cp_times)
    print(f"[{mode}] reviewbot review --tree   median {rb * 1000:7.0f} ms  "
          f"(min {min(rb_times) * 1000:.0f}, max {max(rb_times) * 1000:.0f}), "
          f"peak RSS {max(rb_rss):.0f} MB{' (the client process)' if mode == 'served' else ''}")
    print(f"[{mode}] checkpatch.pl --no-tree   median {cp * 1000:7.0f} ms  "
          f"(min {min(cp_times) * 1000:.0f}, max {max(cp_times) * 1000:.0f}), "
          f"peak RSS {max(cp_rss):.0f} MB")
    ratio = rb / cp
    print(f"[{mode}] ratio reviewbot/checkpatch: {ratio:.2f}  (target <= 0.50: "
          f"{'met' if ratio <= 0.5 else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
