"""Importing events from a JSONL file, one RD event body a line (what POST /platform/events
takes), through the API's own path: each line is decoded and validated as that route does it,
and the valid lines are written as the batch route writes a batch, through the store's group
commit. So an imported event changes its contact, funnel and custom fields, queues webhooks and
relays, or is refused, exactly as if it had been sent; rate limits do not apply.

Lines are read and written a chunk at a time, each chunk as one job (as a batch is), a chunk read
while the one before is written: memory holds two chunks, whatever the file's size.

A line's event has a uuid made of the account, the line's number and the line's text (a version
5 UUID): the same line in the same place is the same event. Lines whose event is stored already
are skipped, so running the import again stores nothing twice, also after correcting rejected
lines or adding lines at the end of the file; a line that moved (lines added or removed above
it) is taken for another event.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from ..clock import utc_now
from ..http.body import NOT_JSON, bad_shape, decode_json
from ..http.errors import ApiError
from ..ingest import InvalidEvents, stored_payloads
from ..ingest.answers import raise_for
from ..process import EventsJob
from ..store import Store
from ..validation import Error, ValidEvent, element_index, validate_event

CHUNK = 1_000  # lines decoded, validated and then written together (the API's largest batch)
TURN = 50  # lines read before the writing of the chunk before has a turn on the event loop
_NAMESPACE = uuid.UUID("5a0f3d4e-8c1b-4e52-9a57-3f1d2b6c7e90")  # of imported events' uuids


def line_event_uuid(account_id: int, number: int, line: bytes) -> str:
    """The uuid of the event of a file's line: uuid5 of `{account_id}:{number}:{line}`, as
    `str(uuid.uuid5(...))` gives it, written from the digest's text (a third of the cost)."""
    h = hashlib.sha1(_NAMESPACE.bytes + f"{account_id}:{number}:".encode() + line).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# The digit that begins a UUID's fourth group, from the digest's: RFC 4122's variant (10xx).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass(frozen=True)
class Rejected:
    """A line that was not imported: its number, the errors the API would have answered (an
    array of event errors, or a request error object), and its text."""

    line: int
    errors: Any
    text: str


@dataclass
class Summary:
    imported: int = 0
    rejected: int = 0
    skipped: int = 0  # imported by an earlier run
    valid: int = 0  # lines a dry run found valid


@dataclass
class _Line:
    """A valid line, and its event as the store takes it."""

    number: int
    text: bytes
    event: ValidEvent
    payload: str  # as stored (see ingest.stored_payloads)
    event_uuid: str


@dataclass
class _Chunk:
    """A chunk's lines: their bytes read, those rejected, and the valid ones."""

    size: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)


class Importer:
    """Imports lines into an account. `reject` is told of each rejected line, in the order of the
    file; `progress` of each chunk done (its bytes, and the summary so far)."""

    def __init__(self, store: Store, account_id: int, *, dry_run: bool,
                 reject: Callable[[Rejected], None],
                 progress: Callable[[int, Summary], None]) -> None:
        self.store = store
        self.account_id = account_id
        self.dry_run = dry_run
        self.reject = reject
        self.progress = progress
        self.summary = Summary()

    async def run(self, lines: Iterable[bytes]) -> Summary:
        """Import `lines` (each with its line break, as a binary file gives them). A chunk is
        read while the one before is written, and written once that one is: so each line sees
        what the lines above it did."""
        writing: asyncio.Future[None] | None = None
        read: _Chunk | None = None
        async for chunk in self._chunks(lines):
            await self._finish(read, writing)
            read, writing = chunk, (None if self.dry_run else
                                    asyncio.ensure_future(self._write(chunk)))
        await self._finish(read, writing)
        return self.summary

    async def _finish(self, chunk: _Chunk | None, writing: asyncio.Future[None] | None) -> None:
        """Wait for the chunk's lines to be written, then report its rejected lines in order."""
        if chunk is None:
            return
        if writing is None:
            self.summary.valid += len(chunk.lines)
        else:
            await writing
        for rejection in sorted(chunk.rejected, key=lambda r: r.line):
            self.reject(rejection)
        self.summary.rejected += len(chunk.rejected)
        self.progress(chunk.size, self.summary)

    async def _write(self, chunk: _Chunk) -> None:
        """Store the chunk's lines not stored yet, as one job, the way POST
        /platform/events/batch stores a batch. The database may refuse some (an unknown
        contact, a custom field's type): those are rejected, and the others are written again
        without them, until the job is accepted."""
        stored = await self.store.stored_event_uuids([line.event_uuid for line in chunk.lines])
        self.summary.skipped += len(stored)
        lines = [line for line in chunk.lines if line.event_uuid not in stored]
        while lines:
            for index, line in enumerate(lines):
                line.event.path = f"$.body[{index}]"
            outcome = await self.store.write(EventsJob(
                self.account_id, utc_now(), [line.event for line in lines],
                [line.event_uuid for line in lines], [line.payload for line in lines]))
            try:
                raise_for(outcome, "$.body")  # StoreUnavailable ends the import
            except InvalidEvents as exc:
                refused = _by_element(exc.errors)
                chunk.rejected += [Rejected(lines[index].number, errors,
                                            _text(lines[index].text))
                                   for index, errors in refused.items()]
                lines = [line for index, line in enumerate(lines) if index not in refused]
                continue
            self.summary.imported += len(lines)
            return

    async def _chunks(self, lines: Iterable[bytes]) -> AsyncIterator[_Chunk]:
        numbered = enumerate(lines, start=1)
        while batch := list(islice(numbered, CHUNK)):
            chunk = _Chunk()
            for number, raw in batch:
                chunk.size += len(raw)
                self._read(chunk, number, raw)
                if number % TURN == 0:
                    await asyncio.sleep(0)  # the writing of the chunk before goes on meanwhile
            yield chunk

    def _read(self, chunk: _Chunk, number: int, raw: bytes) -> None:
        """Decode and validate a line as POST /platform/events does its body; the line, or its
        rejection, in `chunk`."""
        line = raw.strip()
        try:
            if not line:
                raise ApiError(400, "BAD_REQUEST", "The line is blank: each line holds one "
                                                   "event, a JSON object.")
            try:
                body = decode_json(line)
            except NOT_JSON as exc:
                raise ApiError(400, "BAD_REQUEST", f"The line is not JSON: {exc}.") from None
            if not isinstance(body, dict):
                raise bad_shape("object with event_type, event_family and payload")
            event, errors = validate_event(body)
            if errors or event is None:
                raise InvalidEvents(errors)
            [payload] = stored_payloads([event])
        except ApiError as exc:
            chunk.rejected.append(Rejected(number, {"error_type": exc.error_type,
                                                    "error_message": exc.message}, _text(line)))
            return
        except InvalidEvents as exc:
            chunk.rejected.append(Rejected(number, exc.errors, _text(line)))
            return
        chunk.lines.append(_Line(number, line, event, payload,
                                 line_event_uuid(self.account_id, number, line)))


def _by_element(errors: list[Error]) -> dict[int, list[Error]]:
    """A refused job's errors by the element they are about, each with the path it has when the
    element is sent alone ($.body[3].payload.email: $.body.payload.email)."""
    found: dict[int, list[Error]] = {}
    for error in errors:
        index = element_index(error)
        if index < 0:
            raise RuntimeError(f"the store refused an import for no one line: {error}")
        found.setdefault(index, []).append(
            {**error, "path": "$.body" + error["path"][len(f"$.body[{index}]"):]})
    return found


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace")


class RejectedLines:
    """The rejected lines' file (FILE.rejected.jsonl), one rejected line a line:
    {"line", "errors", "text"}. Each run writes it anew; a run that rejects none removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __call__(self, rejected: Rejected) -> None:
        if self._file is None:
            self._file = self.path.open("wb")
        self._file.write(orjson.dumps(rejected, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        if self._file is None:
            self.path.unlink(missing_ok=True)
        else:
            self._file.close()
