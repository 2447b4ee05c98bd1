"""Exports: an account's events or contacts as JSONL (one JSON document a line) or CSV, read a
page at a time (see store/bulk.py), so that memory stays the same whatever their number.

An event's document is the one GET /platform/events/{event_uuid} answers; a contact's is the
one GET /platform/contacts/{uuid} answers, with its funnel's stage, opportunity and owner. CSV
has a column for each key of the documents (for contacts: each attribute, and each custom field
the account defines); a cell holds a text or a number as it is, true/false, an object or an
array as JSON, and nothing for null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import orjson

from ..contacts import RD_ATTRIBUTES, Contact
from ..http.contacts import EXTRA_ATTRIBUTES, contact_document
from ..store import Store

# The keys of GET /platform/events/{event_uuid}'s document (http.events.event_document), in
# its order: that of the values of the store's event rows.
EVENT_COLUMNS = ("event_uuid", "event_type", "event_family", "event_identifier", "payload",
                 "received_at", "contact_uuid", "event_batch_uuid")
FUNNEL = ("lifecycle_stage", "opportunity", "contact_owner_email")

T = TypeVar("T")
Document = dict[str, Any]
Writer = Callable[[list[Document]], None]
Progress = Callable[[int], None]  # told of each page written: how many rows it held


def contact_export_document(contact: Contact) -> Document:
    return {**contact_document(contact), "lifecycle_stage": contact.lifecycle_stage,
            "opportunity": contact.opportunity,
            "contact_owner_email": contact.contact_owner_email}


def contact_columns(custom_fields: list[str]) -> tuple[str, ...]:
    """The CSV columns of contacts: the keys of contact_export_document, in its order."""
    return ("uuid", "email", *RD_ATTRIBUTES, *EXTRA_ATTRIBUTES, "tags", "legal_bases",
            *sorted(custom_fields), "created_at", "updated_at", *FUNNEL)


async def export_events(store: Store, account_id: int, since: str | None, until: str | None,
                        file_format: str, out: IO[bytes], progress: Progress) -> int:
    """Write the account's events received from `since` to `until` to `out`; how many.

    A JSONL line is the document's text as the database makes it (store.event_lines); a CSV
    row holds the values of the store's row, the payload its stored JSON text."""
    if file_format == "jsonl":
        written = 0
        async for lines in store.event_lines(account_id, since, until):
            out.write(("\n".join(lines) + "\n").encode())
            written += len(lines)
            progress(len(lines))
        return written
    return await _export(store.event_rows(account_id, since, until),
                         lambda row: dict(zip(EVENT_COLUMNS, row, strict=False)), EVENT_COLUMNS,
                         file_format, out, progress)


async def export_contacts(store: Store, account_id: int, since: str | None, until: str | None,
                          file_format: str, out: IO[bytes], progress: Progress) -> int:
    """Write the account's contacts last changed from `since` to `until` to `out`; how many."""
    fields = [field.api_identifier for field in await store.list_fields(account_id)]
    return await _export(store.contact_pages(account_id, since, until), contact_export_document,
                         contact_columns(fields), file_format, out, progress)


async def _export(pages: AsyncIterator[list[T]], document: Callable[[T], Document],
                  columns: tuple[str, ...], file_format: str, out: IO[bytes],
                  progress: Progress) -> int:
    written = 0
    with _writer(file_format, out, columns) as write:
        async for page in pages:
            write([document(row) for row in page])
            written += len(page)
            progress(len(page))
    return written


@contextmanager
def _writer(file_format: str, out: IO[bytes], columns: tuple[str, ...]) -> Iterator[Writer]:
    if file_format == "jsonl":
        def lines(documents: list[Document]) -> None:
            out.write(b"".join(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
                               for document in documents))

        yield lines
        return
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    rows = csv.writer(text)
    rows.writerow(columns)
    yield lambda documents: rows.writerows([_cell(document.get(column)) for column in columns]
                                           for document in documents)
    text.flush()
    text.detach()  # `out` stays open: its opener closes it


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (bool, dict, list)):
        return orjson.dumps(value).decode()
    return value
