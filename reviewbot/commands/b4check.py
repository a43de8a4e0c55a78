"""`reviewbot b4-check`: a per-patch check command for `b4 review`.

b4 feeds one patch message on standard input and reads a JSON list on standard output:
`[{"tool", "status": "pass|warn|fail", "summary", "url", "details"}]` (`details` a JSON
list of `{"status", "description"}`, as b4's checkpatch check writes). Wire it in with:

    git config --add b4.review-perpatch-check-cmd 'reviewbot b4-check'

b4 runs the command at the top of the repository: without --tree (`[mail] tree` or
`[review] tree` in the configuration, `git config reviewbot.tree`), that repository is the
tree when it has the patch's blob ids or paths. Introduced findings make the result `warn`
(`fail` if one has severity error); a file reviewed on its hunks only (not found, not
applying, no tree) makes it at least `warn`, saying which and why (--no-tree: hunks only on
purpose); a patch reviewed whole with nothing new gets `pass` (and one that fixes known
defects says so); a cover letter or a reply gets `[]`. Exit status is 0 whenever the JSON
was written, as b4 expects.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reviewbot.config import IgnoreRule
    from reviewbot.packs import Packs

TOOL = "reviewbot"


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="check one patch message from stdin for b4 review (JSON out)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tree", metavar="PATH", help="source tree the patch applies to")
    p.add_argument("--no-tree", action="store_true", help="analyse the hunks only, on purpose")
    p.add_argument("--base", metavar="REV", default="HEAD", help="revision in --tree (HEAD)")
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.add_argument("--ignore", action="append", metavar="RULE[:GLOB[:FUNCTION]]",
                   help="leave out this rule's findings (repeatable)")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.set_defaults(run=run)
    return p


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def checks_for(result, incomplete: list | None = None) -> list[dict[str, str]]:
    """The b4 check entries for one reviewed patch (a SeriesResult of one patch);
    `incomplete`: the files reviewed on their hunks only (pipeline.Incomplete)."""
    import json

    intro = [f for p in result.patches for f in p.findings if f.status == "introduced"]
    fixed = [f for p in result.patches for f in p.findings if f.status == "fixed"]
    hunks = any(p.context == "hunks" for p in result.patches)
    details = [
        {
            "status": "fail" if f.severity == "error" else "warn",
            "description": (
                f"{f.file}:{f.line}: {f.function}(): {' '.join(f.message.split())}"
                f" [{f.rule}, {f.confidence} confidence]"
            ),
        }
        for f in intro
    ]
    details += [{"status": "warn", "description": f"{i.path}: reviewed on the hunks only: "
                 f"{i.why}"} for i in incomplete or ()]
    why = ""
    if incomplete:
        why = f"reviewed incompletely: {', '.join(sorted({i.path for i in incomplete}))} " \
              "on the hunks only"
    if intro:
        worst = "fail" if any(f.severity == "error" for f in intro) else "warn"
        summary = f"{_plural(len(intro), 'finding')}: {', '.join(sorted({f.rule for f in intro}))}"
        details += [
            {"status": "pass", "description": f"fixes {f.file}: {f.function}(): {f.rule}"}
            for f in fixed
        ]
        if why:
            summary += f"; {why}"
        elif hunks:
            summary += " (hunks only)"
        return [_entry(worst, summary, json.dumps(details))]
    details += [
        {"status": "pass", "description": f"{f.file}:{f.function}(): {f.rule}: "
         + " ".join(f.message.split())}
        for f in fixed
    ]
    if fixed:
        summary = f"fixes {_plural(len(fixed), 'known defect')}: " + \
            ", ".join(sorted({f.rule for f in fixed}))
    else:
        summary = "no new findings" + (" (hunks only)" if hunks and not why else "")
    if why:
        return [_entry("warn", f"{why}; {summary}", json.dumps(details))]
    return [_entry("pass", summary, json.dumps(details) if details else "")]


def _entry(status: str, summary: str, details: str) -> dict[str, str]:
    return {"tool": TOOL, "status": status, "summary": summary, "url": "", "details": details}


def check_bytes(data: bytes, tree: str | None = None, base: str = "HEAD",
                packs: Packs | None = None, no_tree: bool = False, find: bool = False,
                ignores: Sequence[IgnoreRule] = ()) -> list[dict[str, str]]:
    """The b4 entries for one message; with `find` and no tree, the git repository here is
    the tree if the patch is for it."""
    import email
    import email.policy

    from reviewbot.input.mail import patch_from_message
    from reviewbot.model import Series, SeriesResult
    from reviewbot.review.ignore import drop_ignored
    from reviewbot.review.pipeline import find_tree, incomplete_files, review_series

    msg = email.message_from_bytes(data, policy=email.policy.default)
    patch = patch_from_message(msg, source="<stdin>")
    if not patch.diff.strip():
        return []  # a cover letter or a reply: nothing to check
    series = Series(
        subject=patch.subject,
        revision=patch.revision,
        message_id=patch.message_id,
        patches=[patch],
        expected=patch.total,
    )
    if tree is None and find and not no_tree:
        tree = find_tree([series])
    result: SeriesResult = review_series(series, tree=tree, base=base, packs=packs)
    drop_ignored([result], list(ignores))
    return checks_for(result, incomplete_files([result], no_tree))


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from reviewbot.config import load_config, settings
    from reviewbot.input.limits import InputCaps, mib
    from reviewbot.model import InputError
    from reviewbot.packs import load_packs, user_pack_paths

    cap = InputCaps().max_message  # one patch message: stdin is not read past it
    data = sys.stdin.buffer.read(cap + 1)
    # a broken pack or configuration is the installation's fault, not the patch's: one
    # line and exit 2
    cfg = load_config(args.config)
    st = settings(args, cfg, tree_sections=("mail", "review"))
    packs = load_packs(tuple(st.git_packs) + user_pack_paths(args.pack, args.config))
    try:
        if len(data) > cap:
            raise InputError(f"standard input: more than {mib(cap)}, the limit for one patch")
        tree = None if args.no_tree else st.tree
        out = check_bytes(data, tree=tree, base=args.base, packs=packs, no_tree=args.no_tree,
                          find=True, ignores=st.ignores)
    except InputError as e:
        out = [
            {
                "tool": TOOL,
                "status": "fail",
                "summary": f"cannot check: {e}",
                "url": "",
                "details": "",
            }
        ]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0
