"""Packs: TOML files that say which kernel calls acquire, release, consume and test what.

A maintainer adds a subsystem by writing a pack, not Python (docs/packs.md). The modules:
schema.py (the file format, defined once; docs/packs.md is generated from it), loading.py
(finding, reading, checking and merging the shipped and the user's packs), lookup.py (the
merged `Packs` the engine and checks consult), cache.py (checked packs kept between runs),
docs.py (the generated part of docs/packs.md); data/ holds the shipped packs.
"""

from reviewbot.datafiles import packs_dir
from reviewbot.packs.loading import load_packs, merge, pack_paths, user_pack_paths
from reviewbot.packs.lookup import (
    AssignSpec,
    CallSpec,
    Idioms,
    OpsFamily,
    OpsUse,
    Override,
    Packs,
    PackSource,
    ResourceKind,
    Target,
)

__all__ = [
    "AssignSpec", "CallSpec", "Idioms", "OpsFamily", "OpsUse", "Override", "PackSource", "Packs",
    "ResourceKind", "Target", "load_packs", "merge", "pack_paths", "packs_dir",
    "user_pack_paths",
]
