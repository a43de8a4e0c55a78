"""Issue 14: terse output (checkpatch.pl --terse style), per-rule summaries, a clear error
for non-C input to audit, rule short names, and no progress bar off a terminal."""

from __future__ import annotations

import re

import pytest
from conftest import EXAMPLES

from reviewbot import cli
from reviewbot.commands.rules import find_rule
from reviewbot.model import InputError

DEMO = EXAMPLES / "tree" / "drivers" / "misc" / "demo.c"
TERSE = re.compile(r"^[^\s:]+:\d+: [a-z-]+\.[a-z-]+: [^\n]+$")


def test_review_terse_is_one_line_per_finding(capsys):
    args = ["review", str(EXAMPLES / "series.mbox"), "--tree", str(EXAMPLES / "tree")]
    assert cli.main([*args, "--terse"]) == 1
    lines = capsys.readouterr().out.splitlines()
    # the early return skips the unlock, the free of priv and the put of the parent
    assert len(lines) == 3 and all(TERSE.match(ln) for ln in lines)
    assert [ln.split("leaves ")[1].split(" held")[0] for ln in lines] == \
        ["'parent'", "'demo_lock'", "'priv'"]
    assert lines[1].startswith("drivers/misc/demo.c:60: error-path.direct-return: this "
                               "'return ret' leaves 'demo_lock' held")
    assert cli.main([*args, "--format", "terse"]) == 1
    assert capsys.readouterr().out.splitlines() == lines
    # text output closes with the per-rule summary
    assert cli.main(args) == 1
    assert capsys.readouterr().out.splitlines()[-1] == \
        "summary: 3 new finding(s) in 2 patch(es): error-path.direct-return 3"


def test_audit_terse_and_summary(tmp_path, capsys):
    src = tmp_path / "demo.c"
    src.write_text(DEMO.read_text().replace("\tmutex_unlock(&demo_lock);\n\treturn 0;",
                                            "\treturn 0;", 1))
    assert cli.main(["audit", str(src), "--terse", "--min-confidence", "low"]) == 1
    terse = capsys.readouterr().out.splitlines()
    assert terse and all(TERSE.match(ln) and ln.startswith(f"{src}:") for ln in terse)
    assert cli.main(["audit", str(src), "--min-confidence", "low"]) == 1
    out = capsys.readouterr()
    last = out.out.splitlines()[-1]
    assert re.fullmatch(rf"{len(terse)} finding\(s\) in 1 file\(s\): ([a-z.-]+ \d+)(, [a-z.-]+ \d+)*",
                        last), last
    assert out.err == ""  # no progress bar: stderr is not a terminal


def test_audit_refuses_non_c_input(tmp_path, capsys):
    (tmp_path / "MAINTAINERS").write_text("GFS2 FILE SYSTEM\nM:\tA <a@b>\n")
    assert cli.main(["audit", str(tmp_path / "MAINTAINERS")]) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err == f"reviewbot: audit: {tmp_path / 'MAINTAINERS'}: not a C source file " \
                      "(.c or .h)\n"
    assert cli.main(["audit", str(tmp_path)]) == 2
    assert "no C source files" in capsys.readouterr().err


def test_rules_short_names(capsys):
    assert cli.main(["rules", "direct-return"]) == 0
    assert capsys.readouterr().out.startswith("error-path.direct-return  (error-path,")
    assert cli.main(["rules", "no-such-rule"]) == 2
    assert "unknown rule 'no-such-rule'" in capsys.readouterr().err
    ids = ["error-path.leak", "get-put.leak", "get-put.unchecked"]
    assert find_rule("unchecked", ids) == "get-put.unchecked"
    with pytest.raises(InputError, match=r"'leak' is ambiguous: error-path.leak, get-put.leak"):
        find_rule("leak", ids)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_audit_of_a_file_it_cannot_read_exits_3(tmp_path, capsys, jobs):
    for n in range(9):  # more than 8 files: -j 2 takes the worker pool
        (tmp_path / f"f{n}.c").write_text(DEMO.read_text())
    (tmp_path / "gone.c").symlink_to(tmp_path / "nowhere.c")
    assert cli.main(["audit", str(tmp_path), "-j", jobs]) == 3
    out = capsys.readouterr()
    assert out.out.splitlines()[-1] == "0 finding(s) in 10 file(s)"
    assert out.err.splitlines()[-1] == ("reviewbot: warning: audited incompletely: 1 file(s) "
                                        f"could not be read: {tmp_path / 'gone.c'}")
