"""Importing events from a JSONL file, one RD event body a line (what POST /platform/events
takes), through the API's own path: each line is decoded and validated as that route does it,
and the valid lines are written as the batch route writes a batch, through the store's group
commit. So an imported event changes its contact, funnel and custom fields, queues webhooks and
relays, or is refused, exactly as if it had been sent; rate limits do not apply.

Lines go a chunk at a time, each chunk written as one job (as a batch is). A big file's lines are
checked (decoded and validated) by a process of their own, a chunk or two ahead of the writing,
so that checking and writing use a core each; a small file's in this one. Memory holds a few
chunks, whatever the file's size.

A line's event has a uuid made of the account, the line's number and the line's text (a version
8 UUID that begins with the number: see line_event_uuid): the same line in the same place is the
same event. Lines whose event is stored already
are skipped, so running the import again stores nothing twice, also after correcting rejected
lines or adding lines at the end of the file; a line that moved (lines added or removed above
it) is taken for another event.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count, islice
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from ..clock import utc_now
from ..http.body import NOT_JSON, bad_shape, decode_json
from ..http.errors import ApiError
from ..ingest import InvalidEvents, stored_payloads
from ..ingest.answers import raise_for
from ..process import EventsJob, Failed
from ..store import Store
from ..validation import Error, ValidEvent, element_index, valid_event, validate_event

CHUNK = 1_000  # lines checked, then written, together (the API's largest batch)
AHEAD = 2  # chunks the checking process is given ahead of the one being written
# Files from this size have their lines checked by a process of their own, on a machine of more
# than one core; below it, starting the process (about 0.3 s) costs more than it saves.
PROCESS_FROM_BYTES = 1 << 20
_NAMESPACE = uuid.UUID("5a0f3d4e-8c1b-4e52-9a57-3f1d2b6c7e90")  # of imported events' uuids


def line_event_uuid(account_id: int, number: int, line: bytes) -> str:
    """The uuid of the event of a file's line: its first 48 bits the line's number, so that
    the events of a file's lines sit side by side in the uuid index (an import writes a few of
    its pages, not one a line), and the others, as a version 8 UUID, from the SHA-1 of
    `{account_id}:{number}:{line}`."""
    h = _digest(account_id, number, line)
    n = f"{number & _LINE_NUMBER_BITS:012x}"
    return f"{n[:8]}-{n[8:]}-8{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}"


def earlier_line_event_uuid(account_id: int, number: int, line: bytes) -> str:
    """The uuid that imports before the version 8 uuids gave the event of a line: uuid5 of
    `{account_id}:{number}:{line}`, as `str(uuid.uuid5(...))` gives it. Looked up too, so
    that a file such an import began is not imported twice."""
    h = _digest(account_id, number, line)
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _digest(account_id: int, number: int, line: bytes) -> str:
    return hashlib.sha1(_NAMESPACE.bytes + f"{account_id}:{number}:".encode()
                        + line).hexdigest()


_LINE_NUMBER_BITS = (1 << 48) - 1
# The digit that begins a UUID's fourth group, from the digest's: RFC 4122's variant (10xx).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass(frozen=True)
class Rejected:
    """A line that was not imported: its number, the errors the API would have answered (an
    array of event errors, or a request error object), and its text."""

    line: int
    errors: Any
    text: str


class Checked(NamedTuple):
    """A valid line, as its checking hands it over: its event's uuid (and the one an earlier
    version gave it), type, family and payload (as stored: see ingest.stored_payloads)."""

    line: int
    event_uuid: str
    earlier_uuid: str
    event_type: str
    event_family: str
    payload: str


def check_lines(account_id: int, first: int, raws: list[bytes]) -> list[Checked | Rejected]:
    """Decode and validate lines (the first numbered `first`) as POST /platform/events does its
    body. Pure: a process of its own runs it for a big file."""
    return [_check(account_id, number, raw) for number, raw in enumerate(raws, start=first)]


def _check(account_id: int, number: int, raw: bytes) -> Checked | Rejected:
    line = raw.strip()
    try:
        if not line:
            raise ApiError(400, "BAD_REQUEST", "The line is blank: each line holds one event, "
                                               "a JSON object.")
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
        return Rejected(number, {"error_type": exc.error_type, "error_message": exc.message},
                        _text(line))
    except InvalidEvents as exc:
        return Rejected(number, exc.errors, _text(line))
    return Checked(number, line_event_uuid(account_id, number, line),
                   earlier_line_event_uuid(account_id, number, line), event.type.name,
                   event.event_family, payload)


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
    earlier_uuid: str


@dataclass
class _Chunk:
    """A chunk's lines: their bytes read, those rejected, and the valid ones."""

    size: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)


Checker = Callable[[int, list[bytes]], Awaitable[list[Checked | Rejected]]]


def worth_a_process(file_size: int) -> bool:
    """Whether a file of this size is checked by a process of its own."""
    return file_size >= PROCESS_FROM_BYTES and (os.cpu_count() or 1) > 1


class Importer:
    """Imports lines into an account. `reject` is told of each rejected line, in the order of the
    file; `progress` of each chunk done (its bytes, and the summary so far). With `process`, the
    lines are checked by a process of their own."""

    def __init__(self, store: Store, account_id: int, *, dry_run: bool,
                 reject: Callable[[Rejected], None],
                 progress: Callable[[int, Summary], None], process: bool = False) -> None:
        self.store = store
        self.account_id = account_id
        self.dry_run = dry_run
        self.reject = reject
        self.progress = progress
        self.process = process
        self.summary = Summary()
        self._earlier_runs = True  # whether lines may have been imported before

    async def run(self, lines: Iterable[bytes]) -> Summary:
        """Import `lines` (each with its line break, as a binary file gives them). A chunk is
        written once the one before is: so each line sees what the lines above it did."""
        writing: asyncio.Future[None] | None = None
        read: _Chunk | None = None
        # An account without events holds no line of an earlier run: none to look up.
        self._earlier_runs = await self.store.has_events(self.account_id)
        with self._checker() as check:
            async for chunk in self._chunks(lines, check):
                await self._finish(read, writing)
                read, writing = chunk, (None if self.dry_run else
                                        asyncio.ensure_future(self._write(chunk)))
            await self._finish(read, writing)
        return self.summary

    @contextmanager
    def _checker(self) -> Iterator[Checker]:
        if not self.process:
            async def here(first: int, raws: list[bytes]) -> list[Checked | Rejected]:
                return check_lines(self.account_id, first, raws)

            yield here
            return
        # spawn: this process runs threads (the store's), which a forked child would copy
        # in whatever state they were.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                yield lambda first, raws: asyncio.wrap_future(
                    pool.submit(check_lines, self.account_id, first, raws))
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    async def _chunks(self, lines: Iterable[bytes], check: Checker) -> AsyncIterator[_Chunk]:
        """The chunks of `lines`, checked: up to AHEAD of them are being checked while the
        caller writes one."""
        numbers, read = count(1, CHUNK), iter(lines)
        chunks = iter(lambda: list(islice(read, CHUNK)), [])
        checking: deque[tuple[int, list[bytes], asyncio.Future[list[Checked | Rejected]]]] = deque()
        while True:
            for raws in islice(chunks, AHEAD - len(checking)):
                first = next(numbers)
                checking.append((first, raws, asyncio.ensure_future(check(first, raws))))
            if not checking:
                return
            first, raws, checked = checking.popleft()
            yield self._chunk(first, raws, await checked)

    def _chunk(self, first: int, raws: list[bytes],
               checked: list[Checked | Rejected]) -> _Chunk:
        """The chunk of `raws`, the first numbered `first`, from what their checking found."""
        chunk = _Chunk(size=sum(map(len, raws)))
        for line in checked:
            if isinstance(line, Rejected):
                chunk.rejected.append(line)
                continue
            payload = orjson.loads(line.payload)  # as the line held it (see stored_payloads)
            chunk.lines.append(_Line(
                line.line, raws[line.line - first].strip(),
                valid_event(line.event_type, line.event_family, payload), line.payload,
                line.event_uuid, line.earlier_uuid))
        return chunk

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
        lines = await self._not_stored(chunk.lines) if self._earlier_runs else chunk.lines
        while lines:
            for index, line in enumerate(lines):
                line.event.path = f"$.body[{index}]"
            outcome = await self.store.write(EventsJob(
                self.account_id, utc_now(), [line.event for line in lines],
                [line.event_uuid for line in lines], [line.payload for line in lines]))
            if isinstance(outcome, Failed):
                # Another run of the same file, at the same time, may have stored some of the
                # lines since they were looked up (their uuids clash): look again, and at every
                # chunk from now on.
                self._earlier_runs = True
                not_stored = await self._not_stored(lines)
                if len(not_stored) < len(lines):
                    lines = not_stored
                    continue
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

    async def _not_stored(self, lines: list[_Line]) -> list[_Line]:
        """Those of `lines` whose event is not stored, under its uuid or the one an earlier
        version gave it; the others count as skipped."""
        stored = await self.store.stored_event_uuids(
            [uuid for line in lines for uuid in (line.event_uuid, line.earlier_uuid)])
        not_stored = [line for line in lines
                      if line.event_uuid not in stored and line.earlier_uuid not in stored]
        self.summary.skipped += len(lines) - len(not_stored)
        return not_stored


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
