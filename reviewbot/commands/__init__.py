"""One module per subcommand (b4's habit): each has add_parser(sub) and run(args) -> int."""

NAMES = ["review", "audit", "eval", "rules", "poll", "send", "b4check"]
