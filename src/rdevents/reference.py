"""The event reference in Markdown (docs/events.md), derived from the catalogue.

`python -m rdevents.reference > docs/events.md` regenerates it; a test keeps the file current.
"""

from __future__ import annotations

import json

from .catalogue import EVENT_TYPES, EventType, Field

_HEADER = """# Event reference

Generated from the event catalogue (`src/rdevents/catalogue/`) by
`python -m rdevents.reference > docs/events.md`; do not edit by hand.

Every event is sent as `{"event_type": ..., "event_family": "CDP", "payload": {...}}` to
`POST /platform/events`, or as an element of the array sent to `POST /platform/events/batch`.
Fields marked *contact* update the contact the event concerns; the others stay on the event.
Payload keys that no table lists are kept on the stored event and never applied to the contact.
"""


def _row(spec: Field, prefix: str = "") -> list[str]:
    notes = []
    if spec.options:
        notes.append("one of " + ", ".join(f"`{o}`" for o in spec.options))
    if spec.format == "email":
        notes.append("an e-mail address")
    if spec.type.label == "Timestamp":
        notes.append("RFC 3339 date-time")
    if spec.contact:
        notes.append("*contact*")
    note = f" ({'; '.join(notes)})" if notes else ""
    required = "yes" if spec.required else "no"
    rows = [f"| `{prefix}{spec.name}` | {spec.type.label} | {required} | "
            f"{spec.description.replace('|', '/')}{note} |"]
    for item in spec.items:
        rows.extend(_row(item, f"{prefix}{spec.name}[]."))
    return rows


def event_section(event_type: EventType) -> str:
    lines = [f"## {event_type.name}", "", f"{event_type.title}. {event_type.description}", ""]
    if event_type.deprecated:
        lines += [f"Deprecated: {event_type.deprecated}", ""]
    if event_type.source != "seed":
        lines += [f"Source: {event_type.source} of the RD Station reference notes.", ""]
    lines += ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for spec in event_type.fields:
        lines.extend(_row(spec))
    if event_type.custom_fields:
        lines.append("| `cf_*` | String | no | Any custom field of the contact, by its api "
                     "identifier (strings, numbers, booleans or lists of strings) (*contact*) |")
    rules = {
        "traffic_source_cookie": "When `traffic_source` is a `__trf.src` cookie (`encoded_` + "
        "base64 JSON, or JSON), `traffic_medium`, `traffic_campaign` and `traffic_value` must be "
        "empty.",
    }
    for rule in event_type.rules:
        lines += ["", rules[rule]]
    if not event_type.creates_contact:
        lines += ["", "Needs an existing contact: for an unknown e-mail the request is rejected "
                      "with `RESOURCE_NOT_FOUND` at `$.body.payload.email`."]
    lines += ["", "Example:", "", "```json", json.dumps(event_type.example, indent=2,
                                                          ensure_ascii=False), "```", ""]
    return "\n".join(lines)


def markdown() -> str:
    legal = ("Legal bases: `category` is `data_processing` or `communications`; `status` is "
             "required for `communications`, and for `data_processing` it may only be "
             "`granted`.\n")
    return "\n".join([_HEADER, legal, *(event_section(t) for t in EVENT_TYPES.values())])


if __name__ == "__main__":
    print(markdown(), end="")
