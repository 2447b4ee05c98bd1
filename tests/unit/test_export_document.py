"""The JSONL line the database makes of an event (store/bulk.py) has the keys of GET
/platform/events/{uuid}'s document, in its order, each from the column the store reads it from."""

from rdevents.bulk.exports import EVENT_COLUMNS as DOCUMENT_KEYS
from rdevents.store.bulk import _EVENT_DOCUMENT
from rdevents.store.sql import EVENT_COLUMNS


def test_the_lines_keys_and_columns_are_the_documents():
    assert tuple(key for key, _, _ in _EVENT_DOCUMENT) == DOCUMENT_KEYS
    assert [column for _, column, _ in _EVENT_DOCUMENT] == [
        column.strip() for column in EVENT_COLUMNS.split(",")]
