"""docs/cron.md's crontab lines, systemd units and shell examples are commands as they are:
each reviewbot command on the page parses with reviewbot's own argument parser."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO_ROOT

from reviewbot import cli

DOC = (REPO_ROOT / "docs" / "cron.md").read_text()
HOME = "/home/maint"
CRON_FIELD = r"(\*|\*/\d+|\d+(-\d+)?(,\d+)*)"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def crontab_commands() -> list[str]:
    out = []
    for b in blocks("cron"):
        for ln in b.splitlines():
            if not ln.strip() or ln.lstrip().startswith("#"):
                continue
            fields = ln.split(None, 5)
            assert len(fields) == 6, f"not a crontab line: {ln!r}"
            assert all(re.fullmatch(CRON_FIELD, f) for f in fields[:5]), ln
            out.append(fields[5])
    return out


def unit(name: str) -> str:
    m = re.search(rf"`~/.config/systemd/user/{re.escape(name)}`:?\n```ini\n(.*?)```", DOC, re.S)
    assert m, f"{name} is not on the page"
    return m.group(1)


def exec_starts() -> list[str]:
    return [ln.split("=", 1)[1] for ln in unit("reviewbot-poll.service").splitlines()
            if ln.startswith("ExecStart=")]


def shell_commands() -> list[str]:
    return [ln.split("  #")[0] for b in blocks("sh") for ln in b.splitlines()
            if ln.startswith("reviewbot ")]


def parse(command: str):
    command = command.replace("$HOME", HOME).replace("%h", HOME)
    argv = shlex.split(command)
    assert argv[0] == "reviewbot" or argv[0] == f"{HOME}/reviewbot/.venv/bin/reviewbot", argv[0]
    args = cli.build_parser().parse_args(argv[1:])  # exits 2 on anything it does not take
    assert args.run is not None
    return args


def test_the_page_has_each_kind_of_command():
    assert len(crontab_commands()) >= 2 and len(exec_starts()) == 1
    assert any(" --since " in c for c in shell_commands())


@pytest.mark.parametrize("command", crontab_commands() + exec_starts() + shell_commands())
def test_each_command_on_the_page_parses(command):
    args = parse(command)
    assert args.command in ("poll", "send")
    if args.command == "poll":
        assert args.config == f"{HOME}/.config/reviewbot/config.toml" or "$HOME" not in command
    if args.command == "send":
        assert args.dir.startswith(HOME)


def test_a_wrong_command_would_fail():
    with pytest.raises(SystemExit) as e:
        parse("reviewbot poll --no-such-flag")
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        parse("reviewbot poll --since")  # --since takes a DATE


def test_the_timer_runs_the_service():
    timer, service = unit("reviewbot-poll.timer"), unit("reviewbot-poll.service")
    assert re.search(r"^\[Timer\]$", timer, re.M) and re.search(r"^OnUnitActiveSec=\d+min$",
                                                                timer, re.M)
    assert "WantedBy=timers.target" in timer
    assert re.search(r"^Type=oneshot$", service, re.M)
    # a user unit cannot order itself after the system's network-online.target
    assert "network-online.target" not in service
