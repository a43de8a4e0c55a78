"""Entry point: `reviewbot SUBCOMMAND ...`. Exit 0 clean, 1 findings, 2 bad input or usage."""

from __future__ import annotations

import sys

from reviewbot import __version__

COMMANDS = {
    "review": "review",
    "audit": "audit",
    "eval": "evaluate",
    "rules": "rules",
    "poll": "poll",
    "send": "send",
    "b4-check": "b4check",
    "serve": "serve",
    "learn": "learn",
}


def build_parser(only: str | None = None):
    """The command-line parser; with `only` (a command name), just that command's subparser,
    so a run imports and builds one command module, not all of them."""
    import argparse
    import importlib

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage)
            sys.stderr.write(f"reviewbot: {message}\n")
            raise SystemExit(2)

    p = _Parser(prog="reviewbot", description=__doc__)
    p.add_argument("--version", action="version", version=f"reviewbot {__version__}")
    # prog given: argparse would otherwise format a usage line (importing shutil) to find it
    sub = p.add_subparsers(dest="command", parser_class=_Parser, prog=p.prog)
    for name, module in COMMANDS.items():
        if only is None or name == only:
            mod = importlib.import_module(f".commands.{module}", __package__)
            mod.add_parser(sub, name)
    return p


def main(argv: list[str] | None = None, served: bool = False) -> int:
    if not served:  # a warm `reviewbot serve` answers before anything heavy is imported
        from reviewbot.serve.server import try_client

        rc = try_client(sys.argv[1:] if argv is None else argv)
        if rc is not None:
            return rc
    from reviewbot.model import InputError

    args_list = sys.argv[1:] if argv is None else argv
    # `reviewbot CMD ...`: only CMD's parser; anything else (--help, typos) gets them all
    parser = build_parser(args_list[0] if args_list and args_list[0] in COMMANDS else None)
    args = parser.parse_args(args_list)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except InputError as e:
        sys.stderr.write(f"reviewbot: {e}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        sys.stderr.write(f"reviewbot: {e.filename or ''}: {e.strerror or e}\n")
        return 2
    except Exception as e:  # noqa: BLE001 - one line for users; REVIEWBOT_DEBUG=1 for developers
        import os

        if os.environ.get("REVIEWBOT_DEBUG"):
            raise
        sys.stderr.write(f"reviewbot: internal error: {type(e).__name__}: {e} "
                         "(set REVIEWBOT_DEBUG=1 for the traceback)\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
