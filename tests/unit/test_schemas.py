"""The JSON schemas (gdb_tinyos/core/schemas.py): the validator catches each kind of
departure, naming where, and docs/json-schemas.md is the schemas' own rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdb_tinyos.core import schemas
from gdb_tinyos.core.schemas import OneOf, SchemaError, check, schema_for, validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "json-schemas.md"

GOOD_CHECK = {"ok": False, "summary": "cow-check: 1 violation", "pages": 1, "mappings": 2, "processes": 2,
              "violations": [{"kind": "refs", "pa": "0x40006000", "message": "m", "evidence": ["e"], "count": 1,
                              "last": None}],
              "warnings": [], "omitted": 0, "skipped": ["frame rules: no allocator"]}


def test_a_well_formed_answer_passes():
    check("cow-check", GOOD_CHECK)


@pytest.mark.parametrize(("change", "where"), [
    (lambda v: v["violations"][0].update(pa=0x40006000), "cow-check.violations[0].pa: 1073766400 is not null or addr"),
    (lambda v: v["violations"][0].update(pa="0X4000"), "cow-check.violations[0].pa: '0X4000' is not null or addr"),
    (lambda v: v.update(pages=True), "cow-check.pages: True is not int"),  # a bool is no count
    (lambda v: v.update(extra=1), "cow-check: fields missing [], undocumented ['extra']"),
    (lambda v: v.pop("skipped"), "cow-check: fields missing ['skipped'], undocumented []"),
    (lambda v: v.update(warnings="w"), "cow-check.warnings: 'w' is not an array"),
])
def test_each_departure_is_named(change, where):
    value = {**GOOD_CHECK, "violations": [dict(GOOD_CHECK["violations"][0])]}
    change(value)
    with pytest.raises(SchemaError) as err:
        check("cow-check", value)
    assert str(err.value) == where


def test_pairs_free_keys_and_either_shapes():
    validate({"1": "forkwrite"}, {"*": "str"}, "p")
    validate([["0x800000", 1]], [("addr", "int")], "s")
    with pytest.raises(SchemaError, match=r"s\[0\]: .* is not an array of 2"):
        validate([["0x800000"]], [("addr", "int")], "s")
    validate(None, OneOf({"a": "int"}, "null"), "x")
    with pytest.raises(SchemaError, match="x: fields missing"):
        validate({}, OneOf({"a": "int"}, "null"), "x")


def test_command_lines_find_their_schema():
    assert schema_for("cow status --pid 2 --json") is schemas.SCHEMAS["cow-status"]
    assert schema_for("pt --pid 2 --json") is schemas.SCHEMAS["pt"]
    assert schema_for("info registers") is None
    with pytest.raises(SchemaError, match="no JSON schema"):
        check("info", {})


def test_the_docs_are_the_schemas():
    assert DOC.read_text() == schemas.describe(), "regenerate: python -m gdb_tinyos.core.schemas > docs/json-schemas.md"
