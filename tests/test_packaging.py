"""The wheel must carry every subpackage, the shipped packs and the templates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_packaged():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {"reviewbot"} | {
        "reviewbot." + p.parent.name for p in (ROOT / "reviewbot").glob("*/__init__.py")
    }
    assert found <= listed, f"missing from [tool.setuptools] packages: {found - listed}"
    assert cfg["package-dir"]["reviewbot.templates_data"] == "templates"
    data = cfg["package-data"]
    packs = ROOT / "reviewbot" / "packs"
    assert sorted(p for g in data["reviewbot.packs"] for p in packs.glob(g)) == \
        sorted((packs / "data").glob("*.toml"))
    assert any((ROOT / "templates").glob(g) for g in data["reviewbot.templates_data"])


def test_installed_wheel_finds_its_packs_and_templates(tmp_path):
    """Build a wheel from a copy of the sources, install it alone, and load the packs and
    templates from it (outside the checkout, without the editable install on the path)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", "build", "dist", "*.egg-info", "__pycache__", ".git", ".pytest_cache",
        ".ruff_cache", "tests", "bench"))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w",
                    str(tmp_path / "dist")], check=True, env=env, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("reviewbot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for pack in (ROOT / "reviewbot" / "packs" / "data").glob("*.toml"):
        assert f"reviewbot/packs/data/{pack.name}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what installing a pure-Python wheel does
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from reviewbot.datafiles import templates_dir\n"
            "from reviewbot.packs import load_packs, packs_dir\n"
            "p = load_packs()\n"
            "assert p.names == ['learned', 'kernel-core', 'gfs2', 'ocfs2'] and 'kfree' in p.calls, p.names\n"
            "assert (templates_dir() / 'patch_reply.txt.j2').is_file()\n"
            "print(packs_dir()); print(templates_dir())\n")
    # -S: no site-packages, so not the editable checkout; the cwd is not the checkout either
    out = subprocess.run([sys.executable, "-S", "-c", code, str(site)], cwd=tmp_path,
                         env=dict(env, XDG_CACHE_HOME=str(tmp_path / "cache")),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(site / "reviewbot" / "packs" / "data"),
                   str(site / "reviewbot" / "templates_data")]
