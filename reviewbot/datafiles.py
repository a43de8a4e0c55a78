"""Find the rule packs and templates from a checkout and from an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(checkout_name: str, package: str) -> Path:
    local = _ROOT / checkout_name
    if local.is_dir() and any(local.iterdir()):
        return local
    return Path(str(resources.files(package)))


def rules_dir() -> Path:
    return _data_dir("rules", "reviewbot.rules_data")


def templates_dir() -> Path:
    return _data_dir("templates", "reviewbot.templates_data")
