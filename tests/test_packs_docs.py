"""docs/packs.md is generated from the schema, its examples read, and the pack files point
to it instead of repeating the schema."""

from __future__ import annotations

import tomllib
from dataclasses import fields, is_dataclass

import pytest

from reviewbot.packs import docs, merge, packs_dir, schema
from reviewbot.packs.schema import PackFile, read_pack


def test_docs_are_the_schema():
    text = docs.DOC.read_text()
    assert docs.BEGIN in text and docs.END in text
    assert docs._spliced(text) == text, "run: python -m reviewbot.packs.docs --write"
    assert docs.main(["--check"]) == 0


def test_every_key_is_documented_in_the_docs():
    text = docs.DOC.read_text()
    seen = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        assert " ".join((cls.__doc__ or "").split()) in text
        for f in fields(cls):
            assert f.metadata["doc"], f"{cls.__name__}.{f.name} has no doc"
            assert f"| `{f.name}` | {f.metadata['value'].describe}" in text
            if f.metadata["value"].entry is not None:
                walk(f.metadata["value"].entry)

    for f in fields(PackFile):
        walk(f.metadata["value"].entry)
    entries = {c for c in vars(schema).values()
               if isinstance(c, type) and is_dataclass(c) and c not in (PackFile, schema.Value)}
    assert seen == entries  # no entry class is left out of the format


def _shipped() -> list[tuple[str, str, dict]]:
    return [("shipped", str(p), tomllib.loads(p.read_text()))
            for p in sorted(packs_dir().glob("*.toml"), key=lambda p: p.stem != "kernel-core")]


@pytest.mark.parametrize("section", [f.name for f in fields(PackFile)])
def test_each_example_reads_and_merges_with_the_shipped_packs(section):
    example = {f.name: f for f in fields(PackFile)}[section].metadata["example"]
    data = tomllib.loads(example)
    assert list(data) == [section]
    pack = read_pack(data, "example.toml")
    assert getattr(pack, section)
    merged = merge([*_shipped(), ("user", "example.toml", data)])
    assert merged.sources[-1].path == "example.toml"


def test_a_wrong_docs_file_is_noticed(tmp_path, monkeypatch):
    doc = tmp_path / "packs.md"
    doc.write_text(docs.DOC.read_text().replace("| `null_ok` | true or false",
                                                "| `null_ok` | yes or no"))
    monkeypatch.setattr(docs, "DOC", doc)
    assert docs.main(["--check"]) == 1
    assert docs.main(["--write"]) == 0 and docs.main(["--check"]) == 0


def test_pack_files_point_to_the_docs_instead_of_repeating_the_schema():
    for p in packs_dir().glob("*.toml"):
        header = p.read_text().split("[pack]", 1)[0]
        assert "docs/packs.md" in header, p.name
        assert len(header.splitlines()) <= 3 and "target" not in header, p.name
