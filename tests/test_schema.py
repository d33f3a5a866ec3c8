"""The parameter schema: the single source of truth must be self-consistent and strict."""

import math

import pytest

from dsp import schema


def test_ids_unique_and_indexed():
    ids = [p.id for p in schema.PARAMS]
    assert len(ids) == len(set(ids))
    assert all(schema.INDEX[p.id] == i for i, p in enumerate(schema.PARAMS))


def test_defaults_are_valid_and_in_range():
    vals = schema.validate(schema.defaults())
    assert set(vals) == set(schema.BY_ID)


@pytest.mark.parametrize("p", schema.PARAMS, ids=lambda p: p.id)
def test_position_round_trip(p):
    for pos in (0.0, 0.25, 0.5, 1.0):
        v = p.from_position(pos)
        back = p.to_position(v)
        if p.curve in (schema.LIN, schema.LOG):
            assert math.isclose(back, pos, abs_tol=1e-12)
        assert p.check(v) == v or p.curve in (schema.LIN, schema.LOG)


def test_validate_reports_every_problem_by_name():
    with pytest.raises(schema.SchemaErrors) as e:
        schema.validate({"eq1.gain_db": 99, "nope": 1, "eq1.type": "wobble", "in.trim_db": "x"}, partial=True)
    fields = {err.field for err in e.value.errors}
    assert fields == {"eq1.gain_db", "nope", "eq1.type", "in.trim_db"}
    assert "out of range" in str(e.value)


def test_missing_reported_unless_partial():
    with pytest.raises(schema.SchemaErrors) as e:
        schema.validate({})
    assert len(e.value.errors) == schema.COUNT
    assert schema.validate({}, partial=True) == {}


def test_flat_round_trip():
    vals = schema.defaults()
    vals["eq3.type"] = "tilt"
    vals["mb.on"] = True
    assert schema.from_flat(schema.to_flat(vals)) == vals


def test_parse_assignment():
    assert schema.parse_assignment("eq1.gain_db=2.5") == ("eq1.gain_db", 2.5)
    assert schema.parse_assignment("mb.on=on") == ("mb.on", True)
    with pytest.raises(schema.ParamError, match="unknown"):
        schema.parse_assignment("eq9.gain_db=1")
    with pytest.raises(schema.ParamError, match="id=value"):
        schema.parse_assignment("eq1.gain_db")
    with pytest.raises(schema.ParamError, match="finite"):
        schema.parse_assignment("eq1.gain_db=nan")


def test_glue_macro_moves_parameters_within_their_ranges():
    m = schema.MACROS["glue"]
    for pos in (0.0, 0.3, 1.0):
        vals = m.values(pos)
        schema.validate(vals, partial=True)
    assert m.values(1.0)["mb.low.ratio"] > m.values(0.0)["mb.low.ratio"]
