"""The documents derived from the catalogue are current."""

from pathlib import Path

from rdevents.catalogue import EVENT_TYPES
from rdevents.reference import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_event_reference_is_generated_from_the_catalogue():
    assert (ROOT / "docs" / "events.md").read_text() == markdown(), (
        "docs/events.md is stale: run `python -m rdevents.reference > docs/events.md`")


def test_event_reference_lists_every_type_and_field():
    text = markdown()
    for event_type in EVENT_TYPES.values():
        assert f"## {event_type.name}\n" in text
        for field in event_type.fields:
            assert f"| `{field.name}` |" in text
