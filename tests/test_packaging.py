"""The wheel must carry every subpackage, the rule packs and the templates."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_packaged():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {"reviewbot"} | {
        "reviewbot." + p.parent.name for p in (ROOT / "reviewbot").glob("*/__init__.py")
    }
    assert found <= listed, f"missing from [tool.setuptools] packages: {found - listed}"
    assert cfg["package-dir"]["reviewbot.rules_data"] == "rules"
    assert cfg["package-dir"]["reviewbot.templates_data"] == "templates"
    data = cfg["package-data"]
    assert any((ROOT / "rules").glob(g) for g in data["reviewbot.rules_data"])
    assert any((ROOT / "templates").glob(g) for g in data["reviewbot.templates_data"])
