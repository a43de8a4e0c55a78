"""The JSON contract (docs/json.md) as a JSON Schema (docs/reviewbot-v2.schema.json),
validated against real output of review, audit and eval."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from conftest import EXAMPLES, REPO_ROOT

from reviewbot import cli
from reviewbot.checks import all_rules

SCHEMA = json.loads((REPO_ROOT / "docs" / "reviewbot-v2.schema.json").read_text())


def validate(doc, part: str | None = None) -> None:
    schema = SCHEMA if part is None else {**SCHEMA, "oneOf": [{"$ref": f"#/$defs/{part}"}]}
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)


def run_json(capsys, *argv) -> dict:
    cli.main(list(argv))
    return json.loads(capsys.readouterr().out)


def test_review_output_is_valid_and_the_schema_is_strict(capsys):
    doc = run_json(capsys, "review", str(EXAMPLES / "series.mbox"), "--tree",
                   str(EXAMPLES / "tree"), "--format", "json", "--all")
    validate(doc, "review")
    validate(doc)
    statuses = {f["status"] for s in doc["series"] for p in s["patches"] for f in p["findings"]}
    assert "introduced" in statuses
    # the schema rejects what the contract forbids: it would catch drift
    bad = json.loads(json.dumps(doc))
    bad["series"][0]["patches"][1]["findings"][0]["status"] = "new"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad, "review")
    del doc["series"][0]["patches"][1]["findings"][0]["status"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "review")  # a review finding always has a status


def test_hunks_only_review_is_valid(capsys):
    doc = run_json(capsys, "review", str(EXAMPLES / "series.mbox"), "--no-tree",
                   "--format", "json")
    validate(doc, "review")
    assert {p["context"] for p in doc["series"][0]["patches"]} == {"hunks"}


def test_audit_output_is_valid(capsys):
    doc = run_json(capsys, "audit", str(EXAMPLES / "tree"), "--format", "json",
                   "--min-confidence", "low")
    validate(doc, "audit")
    validate(doc)
    doc["findings"].append({**doc["findings"][0], "status": "introduced"} if doc["findings"]
                           else {"rule": "x"})
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "audit")


def test_eval_output_is_valid(capsys, corpus_dir: Path):
    doc = run_json(capsys, "eval", str(corpus_dir), "--format", "json")
    validate(doc, "eval")
    assert doc["cases"]
    # the same version field as review's and audit's, required by the schema
    review = run_json(capsys, "review", str(EXAMPLES / "series.mbox"), "--no-tree",
                      "--format", "json")
    assert doc["version"] == review["version"] == 2
    del doc["version"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "eval")
    doc["version"] = 2
    doc["precision"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "eval")


def test_every_rule_has_a_category_and_an_id_the_schema_allows():
    finding = SCHEMA["$defs"]["finding"]["properties"]
    categories = set(finding["category"]["enum"])
    assert {r.category for r in all_rules().values()} <= categories
    pattern = re.compile(finding["rule"]["pattern"])
    assert all(pattern.match(rid) for rid in all_rules())
    assert not pattern.match("style.line-length")


def test_an_audit_with_context_findings_is_valid(capsys, tmp_path):
    src = tmp_path / "fs" / "x"
    src.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "tests" / "fixtures" / "rules" / "context.sleep-in-atomic.c",
                src / "atomic.c")
    doc = run_json(capsys, "audit", str(tmp_path), "--format", "json")
    assert "context" in {f["category"] for f in doc["findings"]}
    validate(doc, "audit")
