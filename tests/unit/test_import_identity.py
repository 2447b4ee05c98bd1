"""The identity of an imported line's event (docs/cli.md, "Running it again imports nothing
twice"): a version 5 UUID of the account, the line's number and its text."""

import uuid

from rdevents.bulk.imports import _NAMESPACE, line_event_uuid


def test_a_lines_event_uuid_is_the_uuid5_of_account_number_and_text():
    line = '{"event_type": "CONVERSION", "payload": {"email": "ana@example.com"}}'
    made = line_event_uuid(7, 12, line.encode())
    assert made == str(uuid.uuid5(_NAMESPACE, f"7:12:{line}"))
    assert uuid.UUID(made).version == 5
    others = {line_event_uuid(8, 12, line.encode()), line_event_uuid(7, 13, line.encode()),
              line_event_uuid(7, 12, line.encode() + b" ")}
    assert made not in others and len(others) == 3


def test_it_is_what_the_standard_library_makes_for_any_line():
    for n in range(2000):
        line = f'{{"n": {n}}}'
        assert line_event_uuid(n % 7, n, line.encode()) == str(
            uuid.uuid5(_NAMESPACE, f"{n % 7}:{n}:{line}"))
