"""What the issues say reviewbot must show on ../shared/corpus (real GFS2 patches)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.review.analysis import analyze_source
from reviewbot.review.evaluation import evaluate_corpus, review_case

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not (CORPUS / "cases").is_dir(), reason="../shared/corpus absent")


def case(prefix: str) -> Path:
    return next((CORPUS / "cases").glob(prefix + "-*"))


@pytest.fixture(scope="module")
def report():
    return {c["id"]: c for c in evaluate_corpus(str(CORPUS))["cases"]}


@pytest.mark.parametrize("cid", ["001", "002", "003", "004", "005", "006", "009", "010",
                                 "017", "018", "042", "043", "044"])
def test_eval_case_right(report, cid):
    c = next(v for k, v in report.items() if k.startswith(cid))
    assert c["ok"], c["problems"] + c["false_positives"]


def test_seed_fix_introduces_two_defects():
    found = [f for f in review_case(case("001")) if f.status == "introduced"]
    by_res = {(f.rule, f.resource): f for f in found}
    io = [f for f in found if f.resource == "io_gl"]
    assert io and io[0].line == 778 and 737 in io[0].lines
    acls = {f.resource: f.line for f in found if f.rule == "error-path.extra-release"}
    assert acls.get("default_acl") == 787 and acls.get("acl") == 789
    fixed = [f for f in review_case(case("001")) if f.status == "fixed"]
    assert any(f.resource.endswith("i_iopen_gh") for f in fixed), by_res


def _audit(prefix: str, name: str) -> list:
    base = case(prefix) / "base"
    src = next(base.rglob(name)).read_text()
    return analyze_source(src, name)


def test_audit_create_inode_before_and_after_fix():
    before = [f for f in _audit("001", "inode.c") if f.function == "gfs2_create_inode"]
    assert any(f.rule == "error-path.missing-release" and f.resource.endswith("i_iopen_gh")
               for f in before)
    after = [f for f in _audit("002", "inode.c") if f.function == "gfs2_create_inode"]
    assert not any(f.resource.endswith("i_iopen_gh") and "gl_object" not in f.resource
                   for f in after)
    assert {("error-path.extra-release", "io_gl"), ("error-path.extra-release", "acl")} <= {
        (f.rule, f.resource) for f in after}


def test_audit_double_put_and_glops():
    assert any(f.rule == "get-put.double-release" and f.function == "gfs2_inode_lookup"
               for f in _audit("005", "inode.c"))
    assert not any(f.function == "gfs2_inode_lookup" for f in _audit("006", "inode.c"))
    assert any(f.rule == "ops-mismatch.gfs2-glops" and f.function == "try_rgrp_unlink"
               for f in _audit("003", "rgrp.c"))
    assert not any(f.function == "try_rgrp_unlink" for f in _audit("004", "rgrp.c"))
