"""The event feed, GET /rdevents/v1/events, on both backends: an account's events in commit
order with an opaque cursor, filters, long polling; and exactly once to a reader tailing it
while many requests write at once, from two server processes on PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable

import httpx

from conftest import Server, conversion, event
from serverproc import ServerProcess

FEED = "/rdevents/v1/events"


def page(api: httpx.Client, **params) -> dict:
    response = api.get(FEED, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def read(api: httpx.Client, count: int, **params) -> tuple[list[dict], str]:
    """The `count` events from the cursor given (or the start) on, and the cursor after them;
    then no more. (On PostgreSQL an event committed a moment ago may come a moment later,
    while an older transaction of the database server still runs: the reader waits for it.)"""
    events: list[dict] = []
    while len(events) < count:
        answer = page(api, wait=10, **params)
        assert answer["events"], f"{len(events)} events of {count}"
        events += answer["events"]
        params["after"] = answer["next_cursor"]
    assert page(api, **params)["events"] == []
    return events, params["after"]


def test_the_feed_gives_each_event_once_in_commit_order(api):
    emails = [f"{uuid.uuid4().hex[:8]}@feed.example" for _ in range(3)]
    sent = [api.send_event(conversion(email)).json()["event_uuid"] for email in emails]
    batch = api.send_batch([event("OPPORTUNITY", email=emails[0], funnel_name="default"),
                            conversion(emails[1], conversion_identifier="again")]).json()
    sent += [e["event_uuid"] for e in batch["events"]]
    events, _ = read(api, len(sent), limit=2)
    assert [e["event_uuid"] for e in events] == sent
    stored = api.get(f"/platform/events/{sent[3]}").json()
    assert events[3] == {key: stored[key] for key in (
        "event_uuid", "event_type", "event_family", "payload", "contact_uuid", "received_at")}


def test_a_cursor_at_the_end_gives_what_comes_after(api):
    api.send_event(conversion("first@feed.example"))
    _, cursor = read(api, 1)
    later = api.send_event(conversion("later@feed.example")).json()["event_uuid"]
    events, following = read(api, 1, after=cursor)
    assert [e["event_uuid"] for e in events] == [later]
    assert following != cursor


def test_filters_by_type_and_time(api):
    email = f"{uuid.uuid4().hex[:8]}@feed.example"
    api.send_event(conversion(email))
    opportunity = api.send_event(event("OPPORTUNITY", email=email,
                                       funnel_name="default")).json()["event_uuid"]
    sale = api.send_event(event("SALE", email=email, funnel_name="default",
                                value=1)).json()["event_uuid"]
    events, _ = read(api, 2, event_type="opportunity,SALE", limit=1)
    assert [e["event_uuid"] for e in events] == [opportunity, sale]
    sale_at = api.get(f"/platform/events/{sale}").json()["received_at"]
    events, _ = read(api, 1, since=sale_at)
    assert [e["event_uuid"] for e in events] == [sale]


def test_other_accounts_events_are_not_in_the_feed(server: Server):
    _, token = server.new_account()
    _, other = server.new_account()
    with server.client(token) as api, server.client(other) as other_api:
        mine = api.send_event(conversion("mine@feed.example")).json()["event_uuid"]
        other_api.send_event(conversion("theirs@feed.example"))
        assert [e["event_uuid"] for e in read(api, 1)[0]] == [mine]


def test_wrong_parameters_are_refused_with_each_error(api):
    response = api.get(FEED, params={"after": "not a cursor", "limit": "0", "wait": "31",
                                     "event_type": "NOPE", "since": "yesterday"})
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == [
        "$.query.after", "$.query.limit", "$.query.wait", "$.query.event_type",
        "$.query.since"]


def test_the_feed_needs_the_accounts_token(server: Server):
    assert httpx.get(server.url + FEED, timeout=30).status_code == 401


def test_wait_answers_as_soon_as_an_event_commits(api):
    api.send_event(conversion("first@feed.example"))
    _, cursor = read(api, 1)
    sender = threading.Timer(0.5, lambda: api.send_event(conversion("soon@feed.example")))
    started = time.monotonic()
    sender.start()
    try:
        answer = page(api, after=cursor, wait=20)
    finally:
        sender.join()
    assert [e["payload"]["email"] for e in answer["events"]] == ["soon@feed.example"]
    assert time.monotonic() - started < 10


def test_wait_ends_empty_after_its_seconds(api):
    api.send_event(conversion("first@feed.example"))
    _, cursor = read(api, 1)
    started = time.monotonic()
    assert page(api, after=cursor, wait=0.6)["events"] == []
    assert time.monotonic() - started >= 0.6


# --- exactly once, under concurrent writers -------------------------------------------------------


def write_concurrently(targets: list[tuple[str, dict]], seconds: float,
                       acknowledged: list[str], lock: threading.Lock) -> list[threading.Thread]:
    """Writers sending single events and batches to each target for `seconds`; the uuids of
    the events acknowledged go to `acknowledged`."""
    deadline = time.monotonic() + seconds

    def write(url: str, headers: dict) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while time.monotonic() < deadline:
                emails = [f"{uuid.uuid4().hex[:10]}@tail.example" for _ in range(
                    random.randint(1, 20))]
                if len(emails) == 1:
                    answer = http.post("/platform/events", json=conversion(emails[0]))
                    uuids = [answer.json()["event_uuid"]] if answer.status_code == 200 else []
                else:
                    answer = http.post("/platform/events/batch",
                                       json=[conversion(email) for email in emails])
                    uuids = ([e["event_uuid"] for e in answer.json()["events"]]
                             if answer.status_code == 200 else [])
                assert answer.status_code == 200, answer.text
                with lock:
                    acknowledged.extend(uuids)

    threads = [threading.Thread(target=write, args=target) for target in targets for _ in
               range(4)]
    for thread in threads:
        thread.start()
    return threads


def tail(url: str, headers: dict, done: Callable[[list[str]], bool]) -> list[str]:
    """A reader following next_cursor from the start, long polling, until `done` says so;
    every event uuid it was given, in order."""
    seen: list[str] = []
    cursor = None
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        deadline = time.monotonic() + 60
        while not done(seen):
            assert time.monotonic() < deadline, "the reader did not see every event in time"
            params: dict = {"limit": random.choice([7, 50, 500]), "wait": 1}
            if cursor is not None:
                params["after"] = cursor
            answer = http.get(FEED, params=params)
            assert answer.status_code == 200, answer.text
            seen += [e["event_uuid"] for e in answer.json()["events"]]
            cursor = answer.json()["next_cursor"]
    return seen


def assert_tail_sees_each_once(writers: list[tuple[str, dict]], reader: tuple[str, dict],
                               seconds: float) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    threads = write_concurrently(writers, seconds, acknowledged, lock)

    def all_seen(seen: list[str]) -> bool:
        if any(thread.is_alive() for thread in threads):
            return False
        return set(seen) >= set(acknowledged)

    seen = tail(*reader, all_seen)
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 200
    assert len(seen) == len(set(seen)), "an event was given twice"
    assert set(seen) == set(acknowledged)


def test_a_tailing_reader_sees_each_acknowledged_event_once(server: Server):
    _, token = server.new_account()
    target = (server.url, {"Authorization": f"Bearer {token}"})
    assert_tail_sees_each_once([target], target, seconds=3)


def test_with_several_writing_processes_on_postgresql_each_event_is_seen_once(tmp_path,
                                                                              postgres_url):
    """Two servers of two processes each write to one database at once: their transactions
    commit in another order than they took event ids."""
    first = ServerProcess(tmp_path, postgres_url, serve_args=("--workers", "2")).start()
    second = first.sibling().start()
    try:
        assert_tail_sees_each_once([(first.url, first.headers), (second.url, second.headers)],
                                   (first.url, first.headers), seconds=6)
    finally:  # SIGTERM: the supervisor stops its workers (a SIGKILL would leave them running)
        first.terminate()
        second.terminate()
