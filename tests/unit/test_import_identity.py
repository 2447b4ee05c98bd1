"""The identity of an imported line's event (docs/cli.md, "Running it again imports nothing
twice"): a version 8 UUID whose first 48 bits are the line's number and whose others come from
the SHA-1 of the account, the line's number and its text; and the version 5 UUID of the same
that imports gave before."""

import hashlib
import uuid

from rdevents.bulk.imports import _NAMESPACE, earlier_line_event_uuid, line_event_uuid

LINE = '{"event_type": "CONVERSION", "payload": {"email": "ana@example.com"}}'


def test_a_lines_event_uuid_is_its_number_then_the_hash_of_account_number_and_text():
    made = line_event_uuid(7, 12, LINE.encode())
    parsed = uuid.UUID(made)
    assert str(parsed) == made and parsed.version == 8 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == 12
    digest = int(hashlib.sha1(_NAMESPACE.bytes + f"7:12:{LINE}".encode()).hexdigest()[:19], 16)
    # After the version's 4 bits: 12 bits of the digest, the variant's 2, then 62 more.
    assert (parsed.int >> 64) & 0xFFF == digest >> 64
    assert parsed.int & ((1 << 62) - 1) == digest & ((1 << 62) - 1)
    others = {line_event_uuid(8, 12, LINE.encode()), line_event_uuid(7, 13, LINE.encode()),
              line_event_uuid(7, 12, LINE.encode() + b" ")}
    assert made not in others and len(others) == 3


def test_a_files_lines_have_uuids_in_the_order_of_their_numbers():
    made = [line_event_uuid(3, n, f'{{"n": {n % 5}}}'.encode()) for n in range(1, 3000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert line_event_uuid(3, (1 << 48) + 5, b"x")[:13] == line_event_uuid(3, 5, b"y")[:13]


def test_the_earlier_uuid_is_what_the_standard_library_makes_for_any_line():
    for n in range(2000):
        line = f'{{"n": {n}}}'
        assert earlier_line_event_uuid(n % 7, n, line.encode()) == str(
            uuid.uuid5(_NAMESPACE, f"{n % 7}:{n}:{line}"))
