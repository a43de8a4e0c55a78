"""`reviewbot b4-check`: a per-patch check command for `b4 review`.

b4 feeds one patch message on standard input and reads a JSON list on standard output:
`[{"tool", "status": "pass|warn|fail", "summary", "url", "details"}]`, or `[]` when there is
nothing to say. Wire it in with:

    git config --add b4.review-perpatch-check-cmd 'reviewbot b4-check'

Without --tree (or `[mail] tree` in the configuration) the patch is analysed on its hunks
alone; b4 runs the command at the top of the repository, so `--tree .` analyses the patch
against the checked-out tree. Introduced findings make the result `warn` (`fail` if one has
severity error); a patch that only fixes known defects gets `pass`. Exit status is 0 whenever
the JSON was written, as b4 expects.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    p.add_argument("--base", metavar="REV", default="HEAD", help="revision in --tree (HEAD)")
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.add_argument("--pack", action="append", metavar="FILE|DIR",
                   help="also load this pack or directory of packs (repeatable; wins over "
                        "the shipped packs and the configuration's, see docs/packs.md)")
    p.set_defaults(run=run)
    return p


def checks_for(result) -> list[dict[str, str]]:
    """The b4 check entries for one reviewed patch (a SeriesResult of one patch)."""
    import json

    intro = [f for p in result.patches for f in p.findings if f.status == "introduced"]
    fixed = [f for p in result.patches for f in p.findings if f.status == "fixed"]
    hunks = any(p.context == "hunks" for p in result.patches)
    if intro:
        worst = "fail" if any(f.severity == "error" for f in intro) else "warn"
        n = len(intro)
        rules = sorted({f.rule for f in intro})
        summary = f"{n} finding{'s' if n != 1 else ''}: {', '.join(rules)}"
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
        details += [
            {"status": "pass", "description": f"fixes {f.file}: {f.function}(): {f.rule}"}
            for f in fixed
        ]
        if hunks:
            summary += " (hunks only)"
        return [
            {
                "tool": TOOL,
                "status": worst,
                "summary": summary,
                "url": "",
                "details": json.dumps(details),
            }
        ]
    if fixed:
        n = len(fixed)
        return [
            {
                "tool": TOOL,
                "status": "pass",
                "summary": f"fixes {n} known defect{'s' if n != 1 else ''}: "
                + ", ".join(sorted({f.rule for f in fixed})),
                "url": "",
                "details": json.dumps(
                    [
                        {
                            "status": "pass",
                            "description": f"{f.file}:{f.function}(): {f.rule}: "
                            + " ".join(f.message.split()),
                        }
                        for f in fixed
                    ]
                ),
            }
        ]
    return []


def check_bytes(data: bytes, tree: str | None = None, base: str = "HEAD",
                packs: Packs | None = None) -> list[dict[str, str]]:
    import email
    import email.policy

    from reviewbot.input.mail import patch_from_message
    from reviewbot.model import Series, SeriesResult
    from reviewbot.review.pipeline import review_series

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
    result: SeriesResult = review_series(series, tree=tree, base=base, packs=packs)
    return checks_for(result)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from reviewbot.config import load_config, section
    from reviewbot.model import InputError
    from reviewbot.packs import load_packs, user_pack_paths

    data = sys.stdin.buffer.read()
    # a broken pack is the installation's fault, not the patch's: one line and exit 2
    packs = load_packs(user_pack_paths(args.pack, args.config))
    try:
        cfg = load_config(args.config)
        tree = args.tree or section(cfg, "mail").get("tree") or None
        out = check_bytes(data, tree=tree, base=args.base, packs=packs)
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
