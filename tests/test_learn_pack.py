"""The learned pack file: deterministic output, the loader's checks, the command's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewbot.cli import main
from reviewbot.knowledge.learned import LearnedFormatError, dumps, load_learned, shipped_path

TREE = Path(__file__).parent / "fixtures" / "learn" / "tree"


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "learned.json"
    assert main(["learn", str(TREE), "-o", str(out), "--no-cache", "--quiet", "-j", "1"]) == 0
    return out


def test_written_pack_loads_and_is_deterministic(pack, tmp_path):
    k = load_learned(pack)
    assert k.pairs and k.acquirers and k.releases and k.noreturn
    assert "reviewbot learn" in k.generated_by and k.tree["name"] == "tree"
    assert dumps(k) == pack.read_text()  # what was loaded writes back to the same bytes
    again = tmp_path / pack.name
    assert main(["learn", str(TREE), "-o", str(again), "--no-cache", "--quiet"]) == 0
    assert again.read_bytes() == pack.read_bytes()  # two workers, same file


def _broken(pack: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(pack.read_text())
    edit(data)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize("edit, key", [
    (lambda d: d["pairs"]["rows"][0].__setitem__(5, "many"), "pairs.rows[0].support"),
    (lambda d: d["acquirers"]["rows"][0].pop(), "acquirers.rows[0]"),
    (lambda d: d["releases"]["fields"].reverse(), "releases.fields"),
    (lambda d: d.pop("noreturn"), "noreturn"),
    (lambda d: d.__setitem__("format", "other/9"), "format"),
    (lambda d: d["releases"]["rows"][0].__setitem__(1, "learned:x"), "releases.rows[0].resources"),
    (lambda d: d.__setitem__("extra", 1), "extra"),
])
def test_loader_refuses_malformed(pack, tmp_path, edit, key):
    bad = _broken(pack, tmp_path, edit)
    with pytest.raises(LearnedFormatError) as e:
        load_learned(bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and key in msg


def test_loader_refuses_non_json(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(LearnedFormatError, match="x.json: not valid JSON"):
        load_learned(bad)


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["learn", str(tmp_path / "missing"), "-o", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err
    afile = tmp_path / "afile"
    afile.write_text("")
    # the parent is a file (a read-only directory would be writable to root)
    assert main(["learn", str(TREE), "-o", str(afile / "o.json"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_output_that_is_a_directory(tmp_path, capsys):
    assert main(["learn", str(TREE), "-o", str(tmp_path), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_shipped_pack_loads():
    path = shipped_path()
    if not path.exists():
        pytest.skip("no shipped pack in this checkout")
    k = load_learned(path)
    assert k.tree.get("name") == "linux-source-6.1"
    assert k.acquirer("kmalloc") is not None and k.release("kfree").null_safe
    assert k.is_noreturn("panic")
