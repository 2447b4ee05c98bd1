"""The validator's quick pass (validation.py) against its full check, without a server."""

from __future__ import annotations

from hypothesis import given, settings

from rdevents.catalogue import EVENT_TYPES
from rdevents.validation import (
    _PLANS,
    _SHAPE_CHARACTERS,
    _SHAPE_KEYS,
    _SHAPES,
    _SHAPES_KEPT,
    Error,
    PayloadShape,
    custom_field_names,
    custom_field_problem,
    payload_errors,
    payload_plainly_valid,
    payload_shape,
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
    if payload_plainly_valid(event_type, payload, payload_shape(event_type, payload)):
        assert errors == []


@settings(max_examples=300, deadline=None)
@given(near_valid_events())
def test_a_payloads_shape_is_what_its_keys_say_whether_it_was_known_or_not(event):
    """payload_shape keeps the shapes it has worked out: a shape it knows must be the one it
    would work out again, for a payload with the same keys in the same order."""
    event_type = EVENT_TYPES.get(event.get("event_type")) if isinstance(
        event.get("event_type"), str) else None
    payload = event.get("payload")
    if event_type is None or not isinstance(payload, dict):
        return
    custom_fields = custom_field_names(event_type, payload)
    expected = PayloadShape(custom_fields,
                            all(custom_field_problem(key, "") is None for key in custom_fields),
                            all(f.name in payload for f in event_type.fields if f.required),
                            _PLANS[event_type.name].plain <= payload.keys())
    assert payload_shape(event_type, payload) == expected
    assert payload_shape(event_type, dict.fromkeys(payload, "again")) == expected


def test_shapes_kept_stay_few_and_small_whatever_keys_clients_send():
    conversion = EVENT_TYPES["CONVERSION"]
    example = conversion.example["payload"]
    kept = _SHAPES[conversion.name]
    for n in range(3 * _SHAPES_KEPT):
        payload_shape(conversion, {**example, f"unknown_{n}": "x"})
    assert len(kept) == _SHAPES_KEPT
    kept.clear()
    many_keys = {**example, **{f"cf_field_{n}": "x" for n in range(_SHAPE_KEYS)}}
    long_key = {**example, "x" * _SHAPE_CHARACTERS: "x"}
    for payload in (many_keys, long_key):
        shape = payload_shape(conversion, payload)
        assert shape == payload_shape(conversion, payload)
        assert tuple(payload) not in kept
    assert payload_shape(conversion, many_keys).custom_fields == (
        "cf_custom_field_api_identifier", *(f"cf_field_{n}" for n in range(_SHAPE_KEYS)))
