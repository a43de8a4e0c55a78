"""One module per subcommand (b4's habit): each has add_parser(sub, name) and run(args) -> int.
The command names and modules are listed in reviewbot/cli.py; heavy imports happen in run()."""
