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


def user_cache_dir(*parts: str) -> str | None:
    """$XDG_CACHE_HOME/reviewbot/PARTS (else $HOME/.cache/reviewbot/PARTS): where results
    are kept between runs; None when neither is an absolute path (no cache then)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "reviewbot", *parts)


def packs_dir() -> Path:
    """The shipped packs: package data of reviewbot.packs, in a checkout and in a wheel."""
    return Path(__file__).resolve().parent / "packs" / "data"


def learned_file() -> Path:
    """The pack learned from linux-source-6.1: package data of reviewbot.knowledge."""
    return Path(__file__).resolve().parent / "knowledge" / "data" / "learned-linux-6.1.json"


def templates_dir() -> Path:
    return _data_dir("templates", "reviewbot.templates_data")
