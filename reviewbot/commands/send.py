"""`reviewbot send DIR`: send the drafts in DIR (a Maildir, a folder of .eml files, or one
.eml file) over SMTP, only if `[mail] send = true` in the configuration; otherwise, or with
--dry-run, print what would be sent. The server, port, user, password and encryption come
from [mail], else from git's sendemail.* settings (the repository it runs in, or the global
git configuration). Sent drafts are moved out of the way (a Maildir's new/
to cur/ flagged seen; .eml files to DIR/sent/) so that a second run does not send them again.
A draft the server refuses stays, with its reason (DIR/.reviewbot-send.json), and is tried
again by later runs ([mail] retry_after_minutes, doubled each time) until [mail] max_tries,
then moved to DIR/parked/; the others are sent all the same. Exit 3 when one was refused.
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
    import time
    from pathlib import Path

    from reviewbot.config import load_config, section
    from reviewbot.mail import outbox as mailout
    from reviewbot.mail import send as sendmail
    from reviewbot.mail.sendstate import SendState
    from reviewbot.model import InputError
    from reviewbot.status import EXIT_CLEAN, EXIT_INCOMPLETE

    cfg = load_config(args.config)
    mail = section(cfg, "mail")
    try:
        max_tries = max(int(mail.get("max_tries", 5)), 1)
        retry_after = float(mail.get("retry_after_minutes", 15)) * 60
    except (TypeError, ValueError):
        raise InputError("[mail] max_tries / retry_after_minutes: not a number") from None
    drafts = mailout.read_drafts(args.dir)
    state = SendState.for_drafts(Path(args.dir), max_tries, retry_after)
    now = time.time()
    todo = []
    for p, m in drafts:
        held = state.waiting(p.name, now)
        if held is None:
            todo.append((p, m))
        else:
            sys.stdout.write(f"waiting (refused {held.tries}x, tried again after "
                             f"{time.strftime('%H:%M', time.localtime(held.next_at))}):"
                             f" {p.name}: {held.reason}\n")
    paths = [p for p, _ in todo]
    problems: list[str] = []

    def sent(i: int, _m) -> None:
        mailout.mark_sent(paths[i])
        state.sent(paths[i].name)

    def failed(i: int, _m, reason: str) -> None:
        r = state.refused(paths[i], reason, now)
        what = ("parked in parked/ after its last try" if r.parked
                else f"kept, try {r.tries} of {max_tries}")
        problems.append(f"{paths[i]}: refused ({reason}); {what}")

    sendmail.send_messages([m for _, m in todo], cfg, dry_run=args.dry_run, out=sys.stdout,
                           on_sent=sent, on_failed=failed)
    for line in problems:
        sys.stderr.write(f"reviewbot: {line}\n")
    return EXIT_INCOMPLETE if problems else EXIT_CLEAN
