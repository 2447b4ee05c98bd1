"""The validator's quick pass (validation.py) against its full check, without a server."""

from __future__ import annotations

from hypothesis import given, settings

from rdevents.catalogue import EVENT_TYPES
from rdevents.validation import (
    Error,
    custom_field_names,
    payload_errors,
    payload_plainly_valid,
)
from strategies import near_valid_events


@settings(max_examples=300, deadline=None)
@given(near_valid_events())
def test_the_quick_check_never_passes_what_the_full_check_refuses(event):
    """The validator's quick pass may only accept payloads that the full check finds valid."""
    event_type = EVENT_TYPES.get(event.get("event_type")) if isinstance(
        event.get("event_type"), str) else None
    payload = event.get("payload")
    if event_type is None or not isinstance(payload, dict):
        return
    errors: list[Error] = []
    payload_errors(event_type, payload, "$.body.payload", errors)
    if payload_plainly_valid(event_type, payload, custom_field_names(event_type, payload)):
        assert errors == []
