"""The catalogue transcribes the seed: every field table and every request example, row for row."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from rdevents.catalogue import EVENT_FAMILY, EVENT_TYPES, FieldType
from rdevents.catalogue.fields import LEGAL_BASES

SEED = Path(__file__).parents[3] / "shared/spec/events-api-seed.txt"
if not SEED.is_file():
    pytest.skip(f"the seed spec is not at {SEED}; the catalogue cannot be checked against it",
                allow_module_level=True)

# The current e-commerce events (reference §6.1): RD documents no field table for them.
ECOMMERCE_TYPES = (
    "ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_CART_ABANDONED", "ECOMMERCE_ORDER_PLACED",
    "ECOMMERCE_ORDER_PAID", "ECOMMERCE_ORDER_FULFILLED", "ECOMMERCE_SHIPMENT_DELIVERED",
    "ECOMMERCE_ORDER_CANCELLED", "ECOMMERCE_ORDER_REFUNDED",
)
# Rows whose field name the seed lost, named by a word of their description.
NAMELESS_ROWS = ("email", "twitter", "facebook", "linkedin")
CUSTOM_FIELD_ROW = "cf_custom_field_api_identifier"
# The one place the catalogue departs from a seed type label: RFC 3339 is required by the
# description, so the field is typed Timestamp although the table says String.
TYPE_DEPARTURE = ("MEDIA_PLAYBACK_STOPPED", "media_user_interaction_date_timestamp")


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    required: bool
    description: str


@dataclass(frozen=True)
class SeedTable:
    event_type: str
    rows: tuple[Row, ...]
    example: object


def _row(line: str) -> Row:
    cells = [cell.strip() for cell in line.split("|")]
    if cells[1] in ("true", "false"):  # the name cell was lost: the others shifted left
        cells.insert(0, "")
    name, label, required, description = cells[:4]
    assert required in ("true", "false"), line
    if not name:
        words = re.findall(r"[a-z]+", description.lower())
        candidates = [n for n in NAMELESS_ROWS if n in words]
        assert len(candidates) == 1, f"cannot infer the field name of {line!r}"
        name = candidates[0]
    return Row(name, label, required == "true", description)


def _parse_seed(text: str) -> list[SeedTable]:
    tables = []
    for section in text.split("Request body parameters\n")[1:]:
        lines = section.splitlines()
        assert lines[0] == "Field | Type | Required | Description |", lines[0]
        assert lines[1].startswith("---|")
        rows = []
        for line in lines[2:]:
            if "|" not in line:
                break
            rows.append(_row(line))
        match = re.search(r'should be sent as "([A-Z_]+)"', rows[0].description)
        if match is None:  # the batch table: not an event type
            continue
        example_text = section.split("Request body example\n", 1)[1]
        example_text = re.sub(r"/\*.*?\*/", "", example_text, flags=re.S)
        example, _ = json.JSONDecoder().raw_decode(example_text.lstrip())
        tables.append(SeedTable(match.group(1), tuple(rows), example))
    return tables


SEED_TEXT = SEED.read_text(encoding="utf-8")
TABLES = _parse_seed(SEED_TEXT)
BY_TYPE = {table.event_type: table for table in TABLES}
SEED_TYPES = [table.event_type for table in TABLES]


def _canonical(value: object) -> str:
    """JSON with sorted keys: equal only if values and JSON types are equal (1 != 1.0 != true)."""
    return json.dumps(value, sort_keys=True)


def test_the_seed_documents_thirteen_event_types_in_catalogue_order():
    assert len(SEED_TYPES) == 13
    assert len(set(SEED_TYPES)) == 13
    assert list(EVENT_TYPES)[:13] == SEED_TYPES
    assert all(EVENT_TYPES[name].source == "seed" for name in SEED_TYPES)


def test_the_catalogue_is_the_seed_types_and_the_ecommerce_types():
    assert set(EVENT_TYPES) == {*SEED_TYPES, *ECOMMERCE_TYPES}
    assert len(EVENT_TYPES) == 21


@pytest.mark.parametrize("event_type", SEED_TYPES)
def test_field_table_matches_the_seed(event_type):
    seed_rows = list(BY_TYPE[event_type].rows)
    envelope, seed_rows = seed_rows[:2], seed_rows[2:]
    assert [(r.name, r.label, r.required) for r in envelope] == [
        ("event_type", "String", True), ("event_family", "String", True)]
    assert f'should be sent as "{event_type}"' in envelope[0].description
    assert f'accepts only "{EVENT_FAMILY}" as valid option' in envelope[1].description

    seed_rows = [r for r in seed_rows if r.name != CUSTOM_FIELD_ROW]
    catalogue_rows = [Row(f.name, f.type.label, f.required, f.description)
                      for f in EVENT_TYPES[event_type].fields]
    if event_type == TYPE_DEPARTURE[0]:
        seed_rows = [Row(r.name, FieldType.TIMESTAMP.label, r.required, r.description)
                     if r.name == TYPE_DEPARTURE[1] else r for r in seed_rows]
    assert catalogue_rows == seed_rows


def test_the_one_type_label_departure_is_deliberate():
    event_type, field = TYPE_DEPARTURE
    [seed_row] = [r for r in BY_TYPE[event_type].rows if r.name == field]
    assert seed_row.label == "String"
    assert "RFC 3339" in seed_row.description
    assert EVENT_TYPES[event_type].fields_by_name[field].type is FieldType.TIMESTAMP


@pytest.mark.parametrize("event_type", SEED_TYPES)
def test_custom_fields_row_is_the_custom_fields_flag(event_type):
    rows = [r for r in BY_TYPE[event_type].rows if r.name == CUSTOM_FIELD_ROW]
    catalogue = EVENT_TYPES[event_type]
    assert CUSTOM_FIELD_ROW not in catalogue.fields_by_name
    assert catalogue.custom_fields is bool(rows)
    if rows:
        assert (rows[0].label, rows[0].required) == ("String", False)


def test_only_conversion_accepts_custom_fields_among_seed_types():
    assert [name for name in SEED_TYPES if EVENT_TYPES[name].custom_fields] == ["CONVERSION"]


@pytest.mark.parametrize("event_type", SEED_TYPES)
def test_example_matches_the_seed(event_type):
    assert _canonical(EVENT_TYPES[event_type].example) == _canonical(BY_TYPE[event_type].example)


def _legal_bases_tables(text: str) -> list[list[list[str]]]:
    tables = []
    for section in text.split("Legal Bases\nField | Type | Valid params |\n---|---|---|\n")[1:]:
        rows = []
        for line in section.splitlines():
            if "|" not in line:
                break
            rows.append([cell.strip() for cell in line.split("|")][:3])
        tables.append(rows)
    return tables


def _options(valid_params: str) -> list[str]:
    without_notes = re.sub(r"\(.*?\)", "", valid_params)
    return [word for word in re.findall(r"[a-z_]+", without_notes) if word != "or"]


def test_legal_bases_tables_match_the_catalogue_items():
    tables = _legal_bases_tables(SEED_TEXT)
    types_with_legal_bases = [n for n in SEED_TYPES
                              if "legal_bases" in EVENT_TYPES[n].fields_by_name]
    assert len(tables) == len(types_with_legal_bases) == 10
    for rows in tables:
        assert [(name, label, _options(params)) for name, label, params in rows] == [
            (item.name, item.type.label, list(item.options)) for item in LEGAL_BASES.items]
    assert all(EVENT_TYPES[n].fields_by_name["legal_bases"] == LEGAL_BASES
               for n in types_with_legal_bases)


@pytest.mark.parametrize("event_type", ECOMMERCE_TYPES)
def test_ecommerce_types_require_only_email(event_type):
    catalogue = EVENT_TYPES[event_type]
    assert [f.name for f in catalogue.fields if f.required] == ["email"]
    assert catalogue.example["event_type"] == event_type
    assert catalogue.example["event_family"] == EVENT_FAMILY
