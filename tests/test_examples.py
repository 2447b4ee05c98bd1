"""Every catalogue example is accepted over real HTTP and stored exactly as sent; the README's
first steps work as written."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import conversion, free_port
from rdevents.catalogue import EVENT_TYPES
from test_cli import create_token, serving

README = Path(__file__).resolve().parents[1] / "README.md"

TYPES = list(EVENT_TYPES)


def example(event_type: str) -> dict:
    return copy.deepcopy(EVENT_TYPES[event_type].example)


def canonical(value: object) -> str:
    """Equal only if values and JSON types are equal (1 != 1.0 != true)."""
    return json.dumps(value, sort_keys=True)


def assert_new_uuid(value: object) -> str:
    """A uuid rdevents made: time-ordered (version 7), written as str(uuid.UUID) writes it."""
    assert isinstance(value, str)
    parsed = uuid.UUID(value)
    assert parsed.version == 7 and str(parsed) == value
    return value


def assert_json(response) -> dict:
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    return response.json()


def create_contact_if_needed(api, event_type: str, email: str) -> None:
    """Qualification events never create a contact: a CONVERSION must come first."""
    if not EVENT_TYPES[event_type].creates_contact:
        assert api.send_event(conversion(email)).status_code == 200


def expected_identifier(event: dict) -> str:
    field = EVENT_TYPES[event["event_type"]].identifier_field
    return event["payload"][field] if field else event["event_type"]


def assert_stored(api, event_uuid: str, sent: dict, batch_uuid: str | None) -> None:
    response = api.get(f"/platform/events/{event_uuid}")
    assert response.status_code == 200
    stored = assert_json(response)
    contact = api.contact(sent["payload"]["email"])
    assert contact.status_code == 200
    assert stored["event_uuid"] == event_uuid
    assert stored["event_type"] == sent["event_type"]
    assert stored["event_family"] == "CDP"
    assert stored["event_identifier"] == expected_identifier(sent)
    assert canonical(stored["payload"]) == canonical(sent["payload"])
    assert stored["contact_uuid"] == contact.json()["uuid"]
    assert stored["event_batch_uuid"] == batch_uuid


@pytest.mark.parametrize("event_type", TYPES)
def test_example_is_accepted_and_stored_as_sent(api, event_type):
    sent = example(event_type)
    create_contact_if_needed(api, event_type, sent["payload"]["email"])

    response = api.send_event(sent)

    assert response.status_code == 200
    body = assert_json(response)
    assert list(body) == ["event_uuid"]
    assert_stored(api, assert_new_uuid(body["event_uuid"]), sent, batch_uuid=None)


@pytest.mark.parametrize("spelling", [str.lower, str.upper], ids=["lower", "upper"])
@pytest.mark.parametrize("event_type", TYPES)
def test_query_event_type_in_any_case_is_accepted(api, event_type, spelling):
    sent = example(event_type)
    create_contact_if_needed(api, event_type, sent["payload"]["email"])

    response = api.send_event(sent, event_type=spelling(event_type))

    assert response.status_code == 200
    event_uuid = assert_new_uuid(assert_json(response)["event_uuid"])
    assert api.get(f"/platform/events/{event_uuid}").json()["event_type"] == event_type


def test_all_examples_in_one_batch_are_stored_in_request_order(api):
    # CONVERSION first: it creates the contact the qualification events need.
    ordered = ["CONVERSION", *(t for t in TYPES if t != "CONVERSION")]
    batch = [example(t) for t in ordered]

    response = api.send_batch(batch)

    assert response.status_code == 200
    body = assert_json(response)
    assert list(body) == ["event_batch_uuid", "events"]
    batch_uuid = assert_new_uuid(body["event_batch_uuid"])
    assert [list(item) for item in body["events"]] == [["event_uuid"]] * len(batch)
    uuids = [assert_new_uuid(item["event_uuid"]) for item in body["events"]]
    assert len(set(uuids)) == len(batch) and batch_uuid not in uuids
    for event_uuid, sent in zip(uuids, batch, strict=True):
        assert_stored(api, event_uuid, sent, batch_uuid=batch_uuid)


def readme_block(section: str) -> str:
    """The first shell block of a README section."""
    text = README.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", text, re.S).group(1)


def test_the_readme_sends_a_first_event_as_written(tmp_path):
    """`make run` in the project's directory, then the README's commands in another terminal."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "rdevents").symlink_to(Path(sys.executable).parent / "rdevents")
    port = free_port()
    commands = readme_block("Sending events")
    assert "127.0.0.1:8080/" in commands
    with serving(tmp_path, "--port", str(port), port=port) as running:
        result = subprocess.run(["bash", "-e", "-c", commands.replace("127.0.0.1:8080/",
                                                                      f"127.0.0.1:{port}/")],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert list(body) == ["event_uuid"]
        token = create_token(tmp_path, "default")
        stored = httpx.get(f"{running.url}/platform/events/{assert_new_uuid(body['event_uuid'])}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert stored.status_code == 200
        assert stored.json()["payload"]["email"] == "ana@example.com"
