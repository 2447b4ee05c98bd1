"""`rdevents relays`: what DESIGN.md §7 promises of it (names, flags, JSON shapes), against a
running server that picks up what the command changes within 5 seconds."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner, Result

from conftest import conversion
from rdevents.cli import main
from relaying import FAST, new_email, stays, wait_for_relay
from upstream_stub import json_reply

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
LISTED = ["uuid", "account", "url", "state", "backlog", "sent", "dead", "last_error"]


def relays(server, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["relays", *args, "--database",
                                       server.settings.database_url])
    assert result.exit_code == code, result.output
    return result


def test_relays_are_made_and_run_from_the_command_line(own_server, stub):
    server = own_server(**FAST)
    account_id, token = server.new_account()
    account = server.call(server.store.fetch("SELECT name FROM accounts WHERE id = ?",
                                             (account_id,)))[0][0]
    made = relays(server, "create", "--account", account, "--url", stub.url + "/",
                  "--token", "secret-token", "--events-per-minute", "500").stdout
    uuid = made.strip()
    assert UUID.match(uuid) and made == uuid + "\n"  # the uuid alone
    # The running server picks it up: an event accepted now is relayed.
    first = new_email()
    with server.client(token) as api:
        assert api.send_event(conversion(first)).status_code == 200
    assert stub.wait_for_accepted(1, timeout=5) == [first]
    assert stub.requests[0].path == "/platform/events"  # the URL without its slash
    listed = json.loads(relays(server, "list", "--json").stdout)
    [relay] = [r for r in listed if r["uuid"] == uuid]
    assert list(relay)[:8] == LISTED
    assert relay["account"] == account and relay["url"] == stub.url
    assert relay["state"] == "active" and relay["events_per_minute"] == 500
    assert "secret-token" not in relays(server, "list").stdout + json.dumps(listed)
    wait_for_relay(server, uuid, lambda r: r.sent == 1)
    # Paused: events are queued, not sent; resumed: they go.
    relays(server, "pause", uuid)
    second = new_email()
    with server.client(token) as api:
        assert api.send_event(conversion(second)).status_code == 200
    assert stays(lambda: len(stub.requests) == 1, 0.5)
    paused = json.loads(relays(server, "list", "--json", "--account", account).stdout)[0]
    assert (paused["state"], paused["backlog"]) == ("paused", 1)
    assert paused["paused_reason"] == "Paused by the operator."
    assert uuid in relays(server, "list").stdout
    relays(server, "resume", uuid)
    assert stub.wait_for_accepted(2, timeout=5) == [first, second]
    relays(server, "update", uuid, "--events-per-minute", "7", "--token", "other-token")
    with server.client(token) as api:
        assert api.send_event(conversion(new_email())).status_code == 200
    stub.wait_for_accepted(3, timeout=5)
    assert stub.requests[-1].headers["authorization"] == "Bearer other-token"
    assert json.loads(relays(server, "list", "--json").stdout)[0]["events_per_minute"] == 7
    relays(server, "delete", uuid)
    assert json.loads(relays(server, "list", "--json").stdout) == []
    assert "No relay" in relays(server, "pause", uuid, code=1).output


def test_dead_letters_are_listed_and_replayed_from_the_command_line(own_server, stub):
    stub.responder = lambda request: json_reply(400, {"errors": [{
        "error_type": "INVALID_FORMAT", "error_message": "Invalid email",
        "path": "$.body.payload.email"}]}) if stub.responder_on else None
    stub.responder_on = True
    server = own_server(**FAST)
    account_id, token = server.new_account()
    account = server.call(server.store.fetch("SELECT name FROM accounts WHERE id = ?",
                                             (account_id,)))[0][0]
    uuid = relays(server, "create", "--account", account, "--url", stub.url,
                  "--token", "t").stdout.strip()
    with server.client(token) as api:
        answer = api.send_event(conversion(new_email()))
    wait_for_relay(server, uuid, lambda r: r.dead == 1)
    [letter] = json.loads(relays(server, "dead-letters", uuid, "--json").stdout)
    assert list(letter) == ["event_uuid", "status", "error", "failed_at"]
    assert (letter["event_uuid"], letter["status"]) == (answer.json()["event_uuid"], 400)
    assert json.loads(letter["error"])["errors"][0]["error_type"] == "INVALID_FORMAT"
    assert letter["event_uuid"] in relays(server, "dead-letters", uuid).stdout
    assert "--all" in relays(server, "replay", uuid, code=2).output
    stub.responder_on = False
    assert relays(server, "replay", uuid, "--all").stdout == "1\n"
    wait_for_relay(server, uuid, lambda r: r.sent == 1 and r.dead == 0)
    assert relays(server, "replay", uuid, letter["event_uuid"]).stdout == "0\n"


@pytest.mark.parametrize("options, message", [
    (("--token", "t", "--client-id", "c"), "not both"),
    (("--client-id", "c", "--client-secret", "s"), "--refresh-token"),
    ((), "--token, or --client-id"),
])
def test_credentials_that_do_not_make_a_whole_are_refused(empty_database, options, message):
    _, url = empty_database

    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(main, [*args, "--database", url])
        assert result.exit_code == code, result.output
        return result

    run("accounts", "create", "acme")
    create = ("relays", "create", "--account", "acme", "--url")
    assert message in run(*create, "https://api.rd.services", *options, code=2).output
    assert "http(s) URL" in run(*create, "ftp://x", "--token", "t", code=2).output
    assert json.loads(run("relays", "list", "--json").stdout) == []
