"""Importing events from a JSONL file, one RD event body a line (what POST /platform/events
takes), through the API's own path: each line is decoded and validated as that route does it,
then written as the job that route makes, through the store's group commit. So an imported event
changes its contact, funnel and custom fields, queues webhooks and relays, or is refused, exactly
as if it had been sent; rate limits do not apply.

Lines are read a chunk at a time, and a chunk is written while the next one is read: memory
holds two chunks, whatever the file's size.

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
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
from ..process import EventsJob, Outcome
from ..store import Store
from ..validation import validate_event

CHUNK = 1_000  # lines decoded, validated and then written together
_NAMESPACE = uuid.UUID("5a0f3d4e-8c1b-4e52-9a57-3f1d2b6c7e90")  # of imported events' uuids


def line_event_uuid(account_id: int, number: int, line: bytes) -> str:
    """The uuid of the event of a file's line: uuid5 of `{account_id}:{number}:{line}`."""
    digest = hashlib.sha1(_NAMESPACE.bytes + f"{account_id}:{number}:".encode() + line).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


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
class _Chunk:
    """A chunk's lines: their bytes read, those rejected, and the jobs of the others."""

    size: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    jobs: list[tuple[int, bytes, EventsJob]] = field(default_factory=list)


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
        """Import `lines` (each with its line break, as a binary file gives them)."""
        writing: tuple[_Chunk, Awaitable[list[Outcome]]] | None = None
        for chunk in self._chunks(lines):
            if self.dry_run:
                self.summary.valid += len(chunk.jobs)
                chunk.jobs = []
                self._settle(chunk, [])
                continue
            stored = await self.store.stored_event_uuids(
                [job.event_uuids[0] for _, _, job in chunk.jobs])
            self.summary.skipped += len(stored)
            chunk.jobs = [item for item in chunk.jobs if item[2].event_uuids[0] not in stored]
            # Queued in the order of the file, behind the chunk before: the group committer
            # takes jobs in order, so an event sees the contacts of the lines above it.
            submitted = asyncio.gather(*(self.store.write(job) for _, _, job in chunk.jobs))
            if writing is not None:
                self._settle(writing[0], await writing[1])
            writing = chunk, submitted
        if writing is not None:
            self._settle(writing[0], await writing[1])
        return self.summary

    def _chunks(self, lines: Iterable[bytes]) -> Iterator[_Chunk]:
        numbered = enumerate(lines, start=1)
        while batch := list(islice(numbered, CHUNK)):
            chunk = _Chunk()
            for number, raw in batch:
                chunk.size += len(raw)
                self._read(chunk, number, raw)
            yield chunk

    def _read(self, chunk: _Chunk, number: int, raw: bytes) -> None:
        """Decode and validate a line as POST /platform/events does its body; a job, or the
        line's rejection, in `chunk`."""
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
            payloads = stored_payloads([event])
        except ApiError as exc:
            chunk.rejected.append(Rejected(number, {"error_type": exc.error_type,
                                                    "error_message": exc.message}, _text(line)))
            return
        except InvalidEvents as exc:
            chunk.rejected.append(Rejected(number, exc.errors, _text(line)))
            return
        chunk.jobs.append((number, line, EventsJob(
            self.account_id, utc_now(), [event],
            [line_event_uuid(self.account_id, number, line)], payloads)))

    def _settle(self, chunk: _Chunk, outcomes: list[Outcome]) -> None:
        """Count a chunk's outcomes, and report its rejected lines in order."""
        rejected = chunk.rejected
        for (number, line, _), outcome in zip(chunk.jobs, outcomes, strict=True):
            try:
                raise_for(outcome, "$.body.payload")  # StoreUnavailable ends the import
            except InvalidEvents as exc:
                rejected.append(Rejected(number, exc.errors, _text(line)))
                continue
            self.summary.imported += 1
        for rejection in sorted(rejected, key=lambda r: r.line):
            self.reject(rejection)
        self.summary.rejected += len(rejected)
        self.progress(chunk.size, self.summary)


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
