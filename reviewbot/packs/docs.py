"""The part of docs/packs.md that describes the format, generated from schema.py.

`python -m reviewbot.packs.docs` prints it, `--write` puts it into docs/packs.md between
the markers, `--check` exits 1 when the file differs (tests/test_packs_docs.py does too).
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from pathlib import Path

from reviewbot.packs.schema import PackFile

BEGIN = ("<!-- generated from reviewbot/packs/schema.py by `python -m reviewbot.packs.docs "
         "--write`: edit the schema, not this part -->")
END = "<!-- end of the generated part -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "packs.md"


def _default(f) -> str:
    if f.default is MISSING and f.default_factory is MISSING:
        return "required"
    d = f.default
    if d in ("", (), None):
        return ""
    if isinstance(d, bool):
        return f"`{str(d).lower()}`"
    return f'`"{d}"`' if isinstance(d, str) else f"`{d}`"


def _keys(cls: type, heading: str) -> list[str]:
    """A table of `cls`'s keys, then one for each nested entry class."""
    out = [heading, "", "| key | value | default | meaning |", "| --- | --- | --- | --- |"]
    nested = []
    for f in fields(cls):
        value = f.metadata["value"]
        what = value.describe
        if value.entry is not None:
            nested.append((f.name, value.entry))
            what += f" (`{f.name}` entries, below)"
        out.append(f"| `{f.name}` | {what} | {_default(f)} | {f.metadata['doc']} |")
    for name, entry in nested:
        out += [""] + _keys(entry, f"`{name}` entries: {_doc(entry)}")
    return out


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def reference() -> str:
    """Every section of a pack, its keys, their values and defaults, with an example."""
    out = [BEGIN, ""]
    for f in fields(PackFile):
        entry = f.metadata["value"].entry
        out += [f"### `{f.metadata['form']}`: {f.metadata['doc']}", "", _doc(entry), "",
                "```toml",
                f.metadata["example"].rstrip("\n"), "```", ""]
        out += _keys(entry, "Keys:") + [""]
    out.append(END)
    return "\n".join(out) + "\n"


def _spliced(text: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{DOC}: the markers of the generated part are missing")
    return head + reference().rstrip("\n") + tail


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(reference())
        return 0
    text = DOC.read_text()
    if argv == ["--check"]:
        same = _spliced(text) == text
        if not same:
            sys.stderr.write(f"{DOC} differs from the schema: run python -m "
                             "reviewbot.packs.docs --write\n")
        return 0 if same else 1
    if argv == ["--write"]:
        DOC.write_text(_spliced(text))
        return 0
    sys.stderr.write("usage: python -m reviewbot.packs.docs [--check | --write]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
