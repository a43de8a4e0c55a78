"""Find the shipped packs, the learned pack and the templates, from a checkout and from an installed wheel."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(checkout_name: str, package: str) -> Path:
    local = _ROOT / checkout_name
    if local.is_dir() and any(local.iterdir()):
        return local
    from importlib import resources  # here: ~10 ms a run in a checkout does without

    return Path(str(resources.files(package)))


def packs_dir() -> Path:
    """The shipped packs: package data of reviewbot.packs, in a checkout and in a wheel."""
    return Path(__file__).resolve().parent / "packs" / "data"


def learned_file() -> Path:
    """The pack learned from linux-source-6.1: package data of reviewbot.knowledge."""
    return Path(__file__).resolve().parent / "knowledge" / "data" / "learned-linux-6.1.json"


def templates_dir() -> Path:
    return _data_dir("templates", "reviewbot.templates_data")
