"""Configuration: one TOML file. Every key can also be given as a flag where a command says so.

Looked up in this order: --config FILE, $REVIEWBOT_CONFIG, ~/.config/reviewbot/config.toml.
Sections: [mail] (drafting and sending, see draft.py / sendmail.py), [poll] and [[lists]]
(cron mode, see poll.py), [packs] (the user's packs, see docs/packs.md). A missing file is
an empty configuration; a broken one is an InputError (one line, exit 2). Credentials are read from here or the environment only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reviewbot.model import InputError


def config_path(explicit: str | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("REVIEWBOT_CONFIG")
    if env:
        return Path(env)
    p = Path(os.path.expanduser("~/.config/reviewbot/config.toml"))
    return p if p.is_file() else None


def load_config(explicit: str | None = None) -> dict[str, Any]:
    path = config_path(explicit)
    if path is None:
        return {}
    import tomllib  # here: a run without a configuration file does not import it

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        if explicit or os.environ.get("REVIEWBOT_CONFIG"):
            raise InputError(f"config file not found: {path}") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read config {path}: {e}") from None


def section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    v = cfg.get(name, {})
    return v if isinstance(v, dict) else {}
