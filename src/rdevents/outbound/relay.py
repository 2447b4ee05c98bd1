"""The relay sender: a background task of every server process that forwards the events in the
relays' outbox to their upstream (RD Station, or another rdevents), never inside a request.

Each round, a process takes batches of due events of each relay (store/relays.py: leases, the
budget, per-contact order), at most `relay_concurrency` batches under way for one relay, sends
each (one request, or several when the upstream refuses some of its events), and records what
became of every event in one transaction. What the upstream answers decides (relay_rules.py):

- 2xx: sent. 5xx, 408, no answer, a body that is not JSON (RD's HTML 504): retried later, with
  exponential backoff and jitter, for `relay_give_up_hours`; then a dead letter.
- 400/422 for a batch (RD's batches are stored whole or not at all): the events its errors name
  become dead letters with those errors, and the others are sent again at once; when the
  errors name none, the batch is split in halves, down to single events.
- 429: RD's gateway body (the account's limit) holds the relay until `Retry-After-Quotas`
  (or `Retry-After`); its lead limiter's body holds the contact it names for `remaining_time`.
- 401: with OAuth credentials, the access token is refreshed once at the upstream's
  /auth/token and the request sent again; a refused refresh, or a static token refused, pauses
  the relay until a person gives it new credentials and resumes it.
- 403, 404, 405, 3xx: the relay pauses (its URL or rights are wrong).

Delivery is at least once: an event is sent again when its answer was lost (a timeout, a
connection broken after the upstream stored it, the process killed before recording), or when
its lease ended before the answer came.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .. import __version__
from ..config import Settings
from ..relay_rules import (
    BATCH_PATH,
    REFRESH_AHEAD,
    SINGLE_PATH,
    TOKEN_PATH,
    AccountLimit,
    Answer,
    ContactLimit,
    Delivered,
    Grant,
    Refused,
    RetryPolicy,
    Transient,
    Unauthorized,
    Verdict,
    batch_body,
    grant,
    refresh_body,
    verdict,
)
from ..store import Store, StoreUnavailable
from ..store.relay_records import RelayBatch, RelayCredentials, RelayItem, RelayOutcome

log = logging.getLogger(__name__)

# A lease covers a request, a token refresh and the request again, and this margin (at most
# twice the timeout).
_LEASE_MARGIN = 10.0
# How long a process leaves a relay alone after a take found its budget spent: at most this,
# so that a budget raised by the CLI is seen within 5 seconds.
_MOST_IDLE = 4.0
_SUMMARY_SECONDS = 5.0  # how old the relays' summary /readyz shows may be
_PROGRESS_SECONDS = 60.0  # how often the log tells each relay's progress
_FAILURE_LOG_SECONDS = 60.0  # how often the log repeats that a relay's sends keep failing
_MAX_ANSWER_BYTES = 1 << 20  # what of an answer is read


@dataclass
class _Job:
    """A batch being sent: its lease (renewed as it lasts), what became of its events, the
    contacts whose events must wait (one of theirs waits for a retry or a limit: the later
    ones may not pass it), and the failure that stopped it, if one did."""

    batch: RelayBatch
    outcome: RelayOutcome
    deadline: float  # monotonic: when its lease ends
    refreshed: bool = False
    lost: bool = False
    requests: int = 0
    waiting: set[int] = field(default_factory=set)  # contact ids
    failure: Transient | None = None


class RelaySender:
    def __init__(self, store: Store, settings: Settings,
                 rng: random.Random | None = None) -> None:
        self._store = store
        self._timeout = settings.relay_timeout
        self._poll_seconds = settings.relay_poll_seconds
        self._policy = RetryPolicy(settings.relay_retry_first_seconds,
                                   settings.relay_retry_max_seconds,
                                   settings.relay_give_up_hours * 3600)
        self._max_events = settings.relay_batch_events
        self._max_bytes = settings.relay_batch_bytes
        self._concurrency = settings.relay_concurrency
        self._lease_margin = min(_LEASE_MARGIN, 2 * self._timeout)
        self._lease_seconds = 3 * self._timeout + self._lease_margin
        self._rng = rng or random.Random()
        self._client: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy: Counter[int] = Counter()  # batches under way, by relay
        self._not_before: dict[int, float] = {}  # monotonic: when to look at a relay again
        self._jobs: set[asyncio.Task[None]] = set()
        self._ended = asyncio.Event()
        self._refreshing: dict[int, asyncio.Lock] = {}
        self._refreshed: dict[int, RelayCredentials] = {}  # this process's latest, by relay
        self._failing_since: dict[int, float] = {}  # monotonic, by relay: last failure logged
        self._sent: Counter[int] = Counter()  # by relay, since the last progress line
        self._next_progress = time.monotonic() + _PROGRESS_SECONDS
        self._summary: tuple[float, list[dict[str, Any]]] = (0.0, [])

    async def start(self) -> None:
        # Relays are made by the operator, so they may go anywhere (no target rules), through
        # the proxies the environment names.
        self._client = aiohttp.ClientSession(
            trust_env=True, timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": f"rdevents/{__version__} relay"})
        self._task = asyncio.get_running_loop().create_task(self._run(), name="relay-sender")

    async def stop(self) -> None:
        """Let the batches under way end (each within its timeouts) and record them, then stop.
        What is queued stays for the next start."""
        self._stopping = True
        self._ended.set()
        if self._task is not None:
            for outcome in await asyncio.gather(self._task, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    log.warning("the relay sender had stopped: %r", outcome)
        if self._client is not None:
            await self._client.close()

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def summary(self) -> list[dict[str, Any]]:
        """Each relay's state, backlog, lag and dead letters, at most _SUMMARY_SECONDS old (for
        /readyz, which anyone may read: no URL, account or error)."""
        taken_at, relays = self._summary
        if time.monotonic() - taken_at > _SUMMARY_SECONDS:
            relays = [{"uuid": r.uuid, "state": r.state, "backlog": r.backlog,
                       "lag_seconds": r.lag_seconds, "dead": r.dead}
                      for r in await self._store.list_relays()]
            self._summary = (time.monotonic(), relays)
        return relays

    # --- rounds -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._round()
            except StoreUnavailable as exc:
                log.warning("relay outbox unreachable: %s", exc)
                await asyncio.sleep(self._poll_seconds)
            except Exception:
                log.exception("a round of the relay sender failed")
                await asyncio.sleep(self._poll_seconds)
        if self._jobs:
            await asyncio.wait(self._jobs)

    async def _round(self) -> None:
        """Start sending batches of every relay that has room and events due, then wait until a
        batch ends or the poll interval passes."""
        self._ended.clear()
        await self._progress_now_and_then()
        for relay_id in await self._store.relays_due():
            if self._not_before.get(relay_id, 0.0) > time.monotonic():
                continue
            while self._busy[relay_id] < self._concurrency and not self._stopping:
                taken = await self._store.take_relay_batch(
                    relay_id, self._max_events, self._max_bytes, self._lease_seconds)
                if taken.batch is None:
                    if taken.wait > 0:
                        self._not_before[relay_id] = time.monotonic() + min(taken.wait,
                                                                            _MOST_IDLE)
                    break
                self._not_before.pop(relay_id, None)
                self._busy[relay_id] += 1
                job = asyncio.create_task(self._deliver(taken.batch))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)
        if not self._stopping:
            try:
                await asyncio.wait_for(self._ended.wait(), self._poll_seconds)
            except TimeoutError:
                pass

    async def _deliver(self, batch: RelayBatch) -> None:
        """Send a batch and record what became of its events."""
        job = _Job(batch, RelayOutcome(), time.monotonic() + batch.lease_seconds)
        try:
            try:
                await self._send(job, batch.items)
            except Exception as exc:  # a bug: what is undecided is taken again at once
                log.exception("sending a batch of relay %s failed", batch.relay_uuid)
                job.outcome.last_error = f"internal error: {exc!r}"
            decided = {*job.outcome.sent, *job.outcome.release,
                       *(item.id for item, _, _ in job.outcome.retry),
                       *(row[0] for row in job.outcome.dead),
                       *(row[0] for row in job.outcome.hold_contacts)}
            job.outcome.release += [item.id for item in batch.items if item.id not in decided]
            await self._record(job)
        finally:
            self._busy[batch.relay_id] -= 1
            if not self._busy[batch.relay_id]:
                del self._busy[batch.relay_id]
            self._ended.set()

    async def _record(self, job: _Job) -> None:
        batch, outcome = job.batch, job.outcome
        try:
            recorded = await self._store.record_relay_outcome(batch, outcome, self._policy,
                                                              self._rng)
        except Exception as exc:
            # Their leases run out and they are sent again: late, maybe twice, never lost.
            log.warning("recording what relay %s sent failed (%s): its %d events go again "
                        "once their lease ends", batch.relay_uuid, exc, len(batch.items))
            return
        self._sent[batch.relay_id] += recorded.sent
        self._log_outcome(batch, outcome, recorded.dead, recorded.lost_lease)

    # --- sending ----------------------------------------------------------------------------------

    async def _send(self, job: _Job, items: list[RelayItem]) -> None:
        """Send `items` (in their order) and note what became of them. A refused batch is sent
        again without the events its errors name, or in halves; a contact's limit sends its
        events one at a time. No event passes an earlier one of its contact that waits."""
        outcome = job.outcome
        held = [item for item in items if item.contact_id in job.waiting]
        outcome.release += [item.id for item in held]  # due, behind the waiting one
        items = [item for item in items if item.contact_id not in job.waiting]
        if not items:
            return
        if job.failure is not None:  # the upstream is failing: no use trying these now
            self._retry(job, items, job.failure)
            return
        if (outcome.stopped or job.lost or not await self._keep_lease(job)
                or not await self._spend(job, items)):
            outcome.release += [item.id for item in items]
            return
        found = await self._request(job, items)
        if found is None:  # the budget left none for a request after a refresh
            outcome.release += [item.id for item in items]
            return
        if isinstance(found, Delivered):
            outcome.sent += [item.id for item in items]
            return
        outcome.last_error = found.error
        if isinstance(found, Transient):
            job.failure = found
            self._retry(job, items, found)
        elif isinstance(found, Refused):
            await self._refused(job, items, found)
        elif isinstance(found, AccountLimit):
            outcome.hold_relay = found.seconds
            outcome.release += [item.id for item in items]
        elif isinstance(found, ContactLimit):
            await self._contact_limit(job, items, found)
        elif isinstance(found, Unauthorized):
            outcome.pause = self._pause_reason(job, found)
            outcome.release += [item.id for item in items]
        else:  # Misconfigured
            outcome.pause = found.error
            outcome.release += [item.id for item in items]

    @staticmethod
    def _retry(job: _Job, items: list[RelayItem], failure: Transient) -> None:
        job.outcome.retry += [(item, failure.status, failure.error) for item in items]
        job.waiting.update(item.contact_id for item in items)

    async def _refused(self, job: _Job, items: list[RelayItem], refused: Refused) -> None:
        if len(items) == 1:
            job.outcome.dead.append((items[0].id, refused.status,
                                     refused.by_index.get(0, refused.error)))
            return
        named = {index: error for index, error in refused.by_index.items()
                 if 0 <= index < len(items)}
        if named:
            job.outcome.dead += [(items[index].id, refused.status, error)
                                 for index, error in sorted(named.items())]
            rest = [item for index, item in enumerate(items) if index not in named]
            if rest:
                await self._send(job, rest)
            return
        middle = len(items) // 2
        await self._send(job, items[:middle])
        await self._send(job, items[middle:])

    async def _contact_limit(self, job: _Job, items: list[RelayItem],
                             limit: ContactLimit) -> None:
        """The contact it names waits for its limit; the others go again. When the batch held
        several events of that contact, they go one at a time until one is refused: those
        before it fit the contact's limit."""
        limited = [item for item in items if limit.email and item.email == limit.email]
        if not limited:  # no contact named, or one not in the batch: each alone
            limited = items
        if len(limited) == 1:
            job.outcome.hold_contacts.append((limited[0].id, limit.seconds))
            job.waiting.add(limited[0].contact_id)
        else:
            for item in limited:
                await self._send(job, [item])
        named = {item.id for item in limited}
        others = [item for item in items if item.id not in named]
        if others:
            await self._send(job, others)

    async def _spend(self, job: _Job, items: list[RelayItem]) -> bool:
        """Whether the budget lets these events go (again: the first request of a batch was
        counted when it was taken)."""
        job.requests += 1
        if job.requests == 1 or not job.batch.events_per_minute:
            return True
        return await self._store.spend_relay_budget(job.batch.relay_id, len(items))

    def _pause_reason(self, job: _Job, refused: Unauthorized) -> str:
        uuid = job.batch.relay_uuid
        if job.batch.credentials.oauth:
            return (f"{refused.error}. Give the relay a new refresh token "
                    f"(`rdevents relays update {uuid} --refresh-token TOKEN`), then resume it "
                    f"(`rdevents relays resume {uuid}`).")
        return (f"The upstream refused the relay's token: {refused.error}. Give it a new one "
                f"(`rdevents relays update {uuid} --token TOKEN`), then resume it "
                f"(`rdevents relays resume {uuid}`).")

    async def _keep_lease(self, job: _Job) -> bool:
        """Renew the batch's lease when what is left of it may not cover a refresh and a
        request; False (and the batch is given up) when it had ended."""
        if job.deadline - time.monotonic() > 2 * self._timeout + self._lease_margin / 2:
            return True
        renewed = await self._store.renew_relay_lease(job.batch)
        if renewed is None:
            log.warning("relay %s: a batch's lease ended before it was sent; another sender "
                        "has its events", job.batch.relay_uuid)
            job.lost = True
            return False
        job.batch, job.deadline = renewed, time.monotonic() + renewed.lease_seconds
        return True

    async def _request(self, job: _Job, items: list[RelayItem]) -> Verdict | None:
        """Post the items (one alone, several as a batch) with the relay's credentials: with
        OAuth ones, an access token refreshed when it is missing, about to expire, or refused
        (once a batch). None when the lease or the budget let no request follow a refresh."""
        credentials = self._credentials(job.batch)
        if credentials.oauth and _expiring(credentials):
            refreshed = await self._refresh(job, credentials)
            if not isinstance(refreshed, RelayCredentials):
                return refreshed
            credentials = refreshed
        path, body = ((SINGLE_PATH, items[0].body) if len(items) == 1
                      else (BATCH_PATH, batch_body([item.body for item in items])))
        found = await self._post(job.batch.url + path, body, credentials.bearer)
        if isinstance(found, Unauthorized) and credentials.oauth and not job.refreshed:
            refreshed = await self._refresh(job, credentials)
            if not isinstance(refreshed, RelayCredentials):
                return refreshed
            if not await self._keep_lease(job) or not await self._spend(job, items):
                return None
            found = await self._post(job.batch.url + path, body, refreshed.bearer)
            if isinstance(found, Unauthorized):
                return Unauthorized(f"the upstream refused a freshly refreshed access token: "
                                    f"{found.error}", False)
        return found

    def _credentials(self, batch: RelayBatch) -> RelayCredentials:
        """The batch's credentials (read when it was taken), or newer ones this process got."""
        newer = self._refreshed.get(batch.relay_id)
        taken = batch.credentials
        if (newer is not None and taken.oauth and newer.client_id == taken.client_id
                and newer.refresh_token == taken.refresh_token):
            return newer
        return taken

    async def _refresh(self, job: _Job, used: RelayCredentials
                       ) -> RelayCredentials | Transient | Unauthorized:
        """A new access token from the upstream's /auth/token, kept in the relay's row; one
        refresh at a time for a relay in a process, and none if another has just replaced the
        token `used` had."""
        job.refreshed = True
        relay_id = job.batch.relay_id
        async with self._refreshing.setdefault(relay_id, asyncio.Lock()):
            latest = self._refreshed.get(relay_id)
            if (latest is not None and latest.access_token != used.access_token
                    and latest.refresh_token == used.refresh_token and not _expiring(latest)):
                return latest
            assert used.client_id is not None and used.client_secret is not None
            answer = await self._call(job.batch.url + TOKEN_PATH, refresh_body(
                used.client_id, used.client_secret, used.refresh_token or ""), None)
            result = answer if isinstance(answer, Transient) else grant(answer)
            if isinstance(result, Unauthorized):
                # Refused: unless someone changed the credentials meanwhile (another process
                # refreshed and got a new refresh token, a person updated them).
                current = await self._store.relay_credentials(relay_id)
                if (current is not None and current.oauth and current.access_token
                        and (current.refresh_token != used.refresh_token
                             or current.access_token != used.access_token)):
                    self._refreshed[relay_id] = current
                    return current
                return result
            if not isinstance(result, Grant):
                return result
            saved = await self._store.save_relay_tokens(
                relay_id, used.access_token, result.access_token, result.expires_in,
                result.refresh_token)
            current = saved or RelayCredentials(
                None, used.client_id, used.client_secret,
                result.refresh_token or used.refresh_token, result.access_token, None)
            self._refreshed[relay_id] = current
            log.info("relay %s: access token refreshed", job.batch.relay_uuid)
            return current

    async def _post(self, url: str, body: bytes, bearer: str | None) -> Verdict:
        answer = await self._call(url, body, bearer)
        return answer if isinstance(answer, Transient) else verdict(answer)

    async def _call(self, url: str, body: bytes, bearer: str | None) -> Answer | Transient:
        """POST a JSON body; the answer, or what kept one from coming."""
        assert self._client is not None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            async with self._client.post(url, data=body, headers=headers,
                                         allow_redirects=False) as response:
                content = await response.content.read(_MAX_ANSWER_BYTES)
                return Answer(response.status,
                              {name.lower(): value for name, value in response.headers.items()},
                              content)
        except TimeoutError:
            return Transient(f"no answer within {self._timeout:g} s")
        except aiohttp.ClientError as exc:
            return Transient(f"could not reach the upstream: {type(exc).__name__}: {exc}")

    # --- the log ----------------------------------------------------------------------------------

    def _log_outcome(self, batch: RelayBatch, outcome: RelayOutcome, dead: int,
                     lost: int) -> None:
        uuid, now = batch.relay_uuid, time.monotonic()
        if outcome.pause is not None:
            log.warning("relay %s paused: %s", uuid, outcome.pause)
        elif outcome.hold_relay is not None:
            log.warning("relay %s: the upstream's account limit holds it for %.0f s (%s)",
                        uuid, outcome.hold_relay, outcome.last_error)
        if outcome.hold_contacts:
            log.info("relay %s: %d events wait %.0f s for their contact's limit (%s)", uuid,
                     len(outcome.hold_contacts), max(s for _, s in outcome.hold_contacts),
                     outcome.last_error)
        if dead:
            log.warning("relay %s: %d events are dead letters (%s); see `rdevents relays "
                        "dead-letters %s`", uuid, dead, outcome.last_error, uuid)
        if lost:
            log.warning("relay %s: %d events were taken by another sender before their "
                        "answer was recorded: they may be sent twice", uuid, lost)
        if outcome.retry:
            since = self._failing_since.get(batch.relay_id)
            if since is None or now - since > _FAILURE_LOG_SECONDS:
                self._failing_since[batch.relay_id] = now
                log.warning("relay %s: sending failed, %d events will be retried: %s", uuid,
                            len(outcome.retry), outcome.last_error)
        elif outcome.sent and self._failing_since.pop(batch.relay_id, None) is not None:
            log.info("relay %s: sending again", uuid)

    async def _progress_now_and_then(self) -> None:
        if time.monotonic() < self._next_progress:
            return
        self._next_progress = time.monotonic() + _PROGRESS_SECONDS
        sent, self._sent = self._sent, Counter()
        if not sent:
            return
        try:
            relays = {r.uuid: r for r in await self._store.list_relays()}
        except Exception as exc:
            log.warning("reading the relays' progress failed: %s", exc)
            return
        for relay in relays.values():
            log.info("relay %s: %s; backlog %d, lag %s, dead letters %d", relay.uuid,
                     relay.state, relay.backlog,
                     "-" if relay.lag_seconds is None else f"{relay.lag_seconds:.0f} s",
                     relay.dead)
        log.info("relays: %d events sent by this process in the last %.0f s", sum(sent.values()),
                 _PROGRESS_SECONDS)


def _expiring(credentials: RelayCredentials) -> bool:
    """Whether an OAuth access token is missing, or expires within REFRESH_AHEAD seconds (by
    this host's clock, close enough to the database's for a minute's margin)."""
    if not credentials.access_token:
        return True
    expires = credentials.access_expires_at
    return expires is not None and expires / 1e6 - time.time() < REFRESH_AHEAD
