"""Kill -9 under load, restart, and check that no acknowledged event was lost or duplicated and
that the contacts agree with the events that were stored."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from conftest import BACKENDS
from serverproc import ServerProcess
from waiting import wait_until

RUNS = 3
CLIENTS = 12


@dataclass
class Ledger:
    """What the clients sent, and which events the server acknowledged."""

    sent: dict[str, list[dict]] = field(default_factory=dict)  # e-mail -> payloads sent
    acked: dict[str, dict] = field(default_factory=dict)  # event uuid -> event sent
    acked_contacts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_sent(self, events: list[dict]) -> None:
        with self.lock:
            for event in events:
                self.sent.setdefault(event["payload"]["email"], []).append(event)

    def record_acked(self, events: list[dict], uuids: list[str]) -> None:
        with self.lock:
            for event, event_uuid in zip(events, uuids, strict=True):
                self.acked[event_uuid] = event
                if event["event_type"] == "CONVERSION":
                    self.acked_contacts.append(event["payload"]["email"])


def conversion(email: str, marker: str) -> dict:
    return {"event_type": "CONVERSION", "event_family": "CDP", "payload": {
        "conversion_identifier": marker, "email": email, "tags": [f"T-{marker[:6]}"]}}


def qualification(event_type: str, email: str, marker: str) -> dict:
    # `marker` is a key no table lists: kept on the stored event, never applied to the contact.
    payload = {"email": email, "funnel_name": "default", "marker": marker}
    if event_type == "SALE":
        payload["value"] = 10.5
    return {"event_type": event_type, "event_family": "CDP", "payload": payload}


def marker_of(payload: dict) -> str:
    return payload.get("marker") or payload["conversion_identifier"]


def client_loop(url: str, headers: dict, ledger: Ledger, stop: threading.Event,
                rng: random.Random) -> None:
    """Send events until told to stop or the server is gone. Runs in a thread of its own: what
    it raises reaches the test through its future."""
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while not stop.is_set():
            marker = uuid.uuid4().hex
            choice = rng.random()
            with ledger.lock:
                known = rng.choice(ledger.acked_contacts) if ledger.acked_contacts else None
            if choice < 0.4 or known is None:
                events = [conversion(f"{marker}@crash.example", marker)]
            elif choice < 0.7:
                email = f"{marker}@crash.example"
                events = [conversion(email, marker),
                          qualification("OPPORTUNITY", email, marker + "o"),
                          qualification("SALE", email, marker + "s")]
            else:
                kind = rng.choice(["OPPORTUNITY", "OPPORTUNITY_LOST", "SALE"])
                events = [conversion(known, marker + "c"), qualification(kind, known, marker)]
            ledger.record_sent(events)
            try:
                if len(events) == 1:
                    response = client.post("/platform/events", json=events[0])
                    uuids = [response.json()["event_uuid"]] if response.status_code == 200 else []
                else:
                    response = client.post("/platform/events/batch", json=events)
                    uuids = ([e["event_uuid"] for e in response.json()["events"]]
                             if response.status_code == 200 else [])
            except httpx.HTTPError:
                return  # the server is gone
            assert response.status_code in (200, 503), response.text
            ledger.record_acked(events, uuids)


@dataclass(frozen=True)
class Moment:
    """When a run's server is killed: after this many more acknowledgements, and this many
    seconds more."""

    acknowledged: int
    delay: float

    def __str__(self) -> str:
        return f"{self.acknowledged} acknowledgements and {self.delay:.2f} s"


def load_then_kill(server: ServerProcess, ledger: Ledger, rng: random.Random,
                   kill_after: Moment) -> None:
    """CLIENTS clients send events, and the server is killed under them once `kill_after` says
    (a number of acknowledgements, then a delay, so that a slow machine proves as much as a fast
    one). A client's failure (a failed assertion, an unexpected exception, or not ending) fails
    the test here, in the test's own thread."""
    stop = threading.Event()
    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(client_loop, server.url, server.headers, ledger, stop,
                               random.Random(rng.random()))
                   for _ in range(CLIENTS)]
        acked_before = len(ledger.acked)
        wait_until(lambda: len(ledger.acked) >= acked_before + kill_after.acknowledged
                   or any(client.done() for client in clients), timeout=120)
        time.sleep(kill_after.delay)  # the point of the test: a kill at a moment no one chose
        server.kill9()
        stop.set()
        for client in clients:
            client.result(timeout=30)


def history(client: httpx.Client, contact_uuid: str) -> list[dict]:
    events, page = [], 1
    while True:
        batch = client.get(f"/platform/contacts/{contact_uuid}/events",
                           params={"order": "created_at:asc", "page": page, "page_size": 100})
        assert batch.status_code == 200, batch.text
        events += batch.json()
        if len(batch.json()) < 100:
            return events
        page += 1


def check(server: ServerProcess, ledger: Ledger) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        for event_uuid, event in ledger.acked.items():
            stored = client.get(f"/platform/events/{event_uuid}")
            assert stored.status_code == 200, f"acknowledged event {event_uuid} was lost"
            assert stored.json()["payload"] == event["payload"]
        acked_markers = {marker_of(e["payload"]) for e in ledger.acked.values()}
        for email in ledger.sent:
            response = client.get(f"/platform/contacts/email:{email}")
            if response.status_code == 404:
                assert not any(e["payload"]["email"] == email for e in ledger.acked.values())
                continue
            contact = response.json()
            events = history(client, contact["uuid"])
            markers = [marker_of(e["payload"]) for e in events]
            assert len(markers) == len(set(markers)), f"an event of {email} is stored twice"
            expected = {marker_of(e["payload"]) for e in ledger.sent[email]} & acked_markers
            assert expected <= set(markers), f"acknowledged events of {email} are missing"
            assert_contact_agrees(client, contact, events)


def assert_contact_agrees(client: httpx.Client, contact: dict, events: list[dict]) -> None:
    """The contact is what its stored events, applied in order, make of it."""
    tags: list[str] = []
    stage, opportunity = "Lead", False
    for event in events:
        kind, payload = event["event_type"], event["payload"]
        if kind == "CONVERSION":
            tags += [t.lower() for t in payload["tags"] if t.lower() not in tags]
        elif kind == "OPPORTUNITY":
            opportunity = True
        elif kind == "OPPORTUNITY_LOST":
            opportunity = False
        elif kind == "SALE":
            stage = "Client"
    assert contact["tags"] == tags
    funnel = client.get(f"/platform/contacts/{contact['uuid']}/funnels/default").json()
    assert (funnel["lifecycle_stage"], funnel["opportunity"]) == (stage, opportunity)


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_events_survive_kill_9(tmp_path, request, backend):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    database_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    server = ServerProcess(tmp_path, database_url)
    ledger = Ledger()
    try:
        for run in range(RUNS):
            server.start()
            kill_after = Moment(rng.randint(40, 150), rng.uniform(0, 0.3))
            try:
                load_then_kill(server, ledger, rng, kill_after)
                server.start()
                check(server, ledger)
            except AssertionError as failure:
                pytest.fail(f"run {run} (seed {seed}, killed after {kill_after}): "
                            f"{failure}")
            server.stop()
        assert len(ledger.acked) > 100, "too little was acknowledged to prove anything"
    finally:
        server.stop()
