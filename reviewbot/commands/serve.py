"""`reviewbot serve`: a warm reviewer that `reviewbot review` hands its work to."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(
        name, help="keep a warm reviewer running for this user (review answers faster)",
        description="Serve `reviewbot review` and `b4-check` for this user from a warm "
                    "process (see reviewbot/server.py); runs in the foreground.")
    p.add_argument("--idle", type=float, default=15.0, metavar="MINUTES",
                   help="exit after this long without a request (0: never; default 15)")
    p.add_argument("--read-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="time a client has to send its whole request (default 10)")
    p.add_argument("--max-children", type=int, default=4, metavar="N",
                   help="requests served at once; a caller past that runs its review "
                        "itself (default 4)")
    p.add_argument("--stop", action="store_true", help="stop the running server and exit")
    p.set_defaults(run=run)


def run(args) -> int:
    from reviewbot.serve import server

    if args.stop:
        if server.stop():
            return 0
        sys.stderr.write("reviewbot: no server is running\n")
        return 1
    if args.max_children < 1:
        sys.stderr.write("reviewbot: serve: --max-children must be at least 1\n")
        return 2
    return server.serve(args.idle, read_timeout=args.read_timeout,
                        max_children=args.max_children)
