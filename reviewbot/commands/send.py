"""`reviewbot send DIR`: send the drafts in DIR (a Maildir, a folder of .eml files, or one
.eml file) over SMTP, only if `[mail] send = true` in the configuration; otherwise, or with
--dry-run, print what would be sent. Sent drafts are moved out of the way (a Maildir's new/
to cur/ flagged seen; .eml files to DIR/sent/) so that a second run does not send them again.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="send drafted replies over SMTP (when [mail] send = true)",
        description=__doc__,
    )
    p.add_argument("dir", metavar="DIR", help="Maildir, folder of .eml drafts, or one .eml")
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys

    from reviewbot.config import load_config
    from reviewbot.mail import outbox as mailout
    from reviewbot.mail import send as sendmail

    cfg = load_config(args.config)
    drafts = mailout.read_drafts(args.dir)
    paths = [p for p, _ in drafts]
    sendmail.send_messages(
        [m for _, m in drafts],
        cfg,
        dry_run=args.dry_run,
        out=sys.stdout,
        on_sent=lambda i, _m: mailout.mark_sent(paths[i]),
    )
    return 0
