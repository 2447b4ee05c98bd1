"""Webhooks: RD's subscriptions API, and deliveries sent from the outbox to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import (
    BACKENDS,
    LOOPBACK,
    Api,
    Server,
    backend_settings,
    conversion,
    event,
    free_port,
    sqlite_settings,
)
from hooks import attribute_error, deliveries, new_email, settled, subscribe
from rdevents.clock import utc_now
from receiver import Receiver
from serverproc import TO_LOOPBACK_RECEIVERS, ServerProcess
from waiting import wait_until

# Quick retries, so that a delivery fails for good within a second.
RETRY_DELAYS = (0.1, 0.2, 0.3)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[Server]:
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("db"),
                                webhook_retry_delays=RETRY_DELAYS, webhook_timeout=1.0,
                                webhook_poll_seconds=0.05, webhook_allowed_networks=LOOPBACK)
    running = Server(settings).start()
    yield running
    running.stop()


# --- subscriptions --------------------------------------------------------------------------------

def test_create_list_get_update_delete(server, receiver):
    account_id, token = server.new_account()
    with server.client(token) as api:
        check_the_whole_cycle(api, account_id, receiver)


def check_the_whole_cycle(api: Api, account_id: int, receiver: Receiver) -> None:
    created = subscribe(api, receiver.url, event_identifiers=["newsletter"],
                        include_relations=["COMPANY", "CONTACT_FUNNEL"])
    assert created == {
        "uuid": created["uuid"], "event_type": "WEBHOOK.CONVERTED", "entity_type": "CONTACT",
        "url": receiver.url, "http_method": "POST",
        "include_relations": ["COMPANY", "CONTACT_FUNNEL"], "event_identifiers": ["newsletter"],
        "created_at": created["created_at"], "updated_at": created["created_at"],
        "platform_account_id": account_id, "source": "MKT", "status": "active",
        "secret": created["secret"]}
    assert len(created["secret"]) == 64
    # RD checks the URL when subscribing: it got one validation request
    assert [v.json["event_type"] for v in receiver.validations] == ["WEBHOOK.CONVERTED"]

    assert api.get("/integrations/webhooks").json() == {"webhooks": [created]}
    path = f"/integrations/webhooks/{created['uuid']}"
    assert api.get(path).json() == created
    put = api.put(path, json={**created, "event_identifiers": [], "include_relations": []})
    assert put.status_code == 200, put.text
    assert (put.json()["event_identifiers"], put.json()["include_relations"],
            put.json()["secret"]) == ([], [], created["secret"])
    assert len(receiver.validations) == 1  # same URL: not checked again

    assert api.delete(path).status_code == 204
    for response in (api.get(path), api.delete(path), api.get(f"{path}/deliveries")):
        assert (response.status_code, response.json()) == (404, {"errors": {
            "error_type": "RESOURCE_NOT_FOUND", "error_message": "Webhook not found."}})


def test_a_url_once_per_event_type(api, receiver):
    subscribe(api, receiver.url)
    again = api.post("/integrations/webhooks", json={"event_type": "WEBHOOK.CONVERTED",
                                                     "url": receiver.url})
    assert (again.status_code, again.json()) == (400, {"errors": attribute_error(
        "url", "TAKEN", "url already in use for WEBHOOK.CONVERTED")})
    subscribe(api, receiver.url, event_type="WEBHOOK.MARKED_OPPORTUNITY")


def test_a_url_that_does_not_answer_2xx_is_refused_with_rds_401(api, receiver):
    receiver.validation_status = 404
    response = api.post("/integrations/webhooks", json={"event_type": "WEBHOOK.CONVERTED",
                                                        "url": receiver.url})
    assert (response.status_code, response.json()) == (401, {"errors": {
        "error_type": "UNAUTHORIZED",
        "error_message": "The URL did not answer the validation request with a 2xx status: "
                         "it answered 404."}})
    assert api.get("/integrations/webhooks").json() == {"webhooks": []}


def test_subscription_errors_are_keyed_by_attribute(api):
    response = api.post("/integrations/webhooks", json={
        "event_type": "crm_deal_created", "entity_type": "DEAL", "http_method": "GET",
        "url": "ftp://example.com/x", "include_relations": ["OWNER"],
        "event_identifiers": "newsletter"})
    assert (response.status_code, response.json()) == (400, {"errors": {
        **attribute_error("event_type", "INCLUSION", "invalid options, the valid options are: "
                          "[WEBHOOK.CONVERTED, WEBHOOK.MARKED_OPPORTUNITY]"),
        **attribute_error("entity_type", "INCLUSION",
                          "invalid options, the valid options are: [CONTACT]"),
        **attribute_error("http_method", "INCLUSION",
                          "invalid options, the valid options are: [POST]"),
        **attribute_error("url", "INVALID_FORMAT", "url must be an http or https URL."),
        **attribute_error("include_relations", "INCLUSION",
                          "invalid options, the valid options are: [COMPANY, CONTACT_FUNNEL]"),
        **attribute_error("event_identifiers", "MUST_BE_STRING_ARRAY",
                          "event_identifiers must be an array of strings.")}})
    filtered = api.post("/integrations/webhooks", json={
        "event_type": "WEBHOOK.MARKED_OPPORTUNITY", "url": "http://example.com/x",
        "event_identifiers": ["a"]})
    assert filtered.json() == {"errors": attribute_error(
        "event_identifiers", "INVALID", "event_identifiers filter WEBHOOK.CONVERTED webhooks "
                                        "only.")}
    missing = api.post("/integrations/webhooks", json={"colour": "red"})
    assert missing.json()["errors"]["error_type"] == "INVALID_FIELDS"


def test_webhooks_of_other_accounts_are_invisible(server, api, receiver):
    webhook = subscribe(api, receiver.url)
    _, token = server.new_account()
    with server.client(token) as other:
        assert other.get("/integrations/webhooks").json() == {"webhooks": []}
        for response in (other.get(f"/integrations/webhooks/{webhook['uuid']}"),
                         other.delete(f"/integrations/webhooks/{webhook['uuid']}"),
                         other.get(f"/integrations/webhooks/{webhook['uuid']}/deliveries")):
            assert response.status_code == 404
        # and its conversions go to no one else's webhook
        assert other.send_event(conversion(new_email())).status_code == 200
    assert api.send_event(conversion(new_email())).status_code == 200
    assert len(receiver.wait_for(1)) == 1
    assert len(settled(api, webhook, 1)) == 1


def test_an_account_has_at_most_20_webhooks(server, api, receiver):
    created = [subscribe(api, f"{receiver.url}?n={n}") for n in range(20)]
    over = api.post("/integrations/webhooks", json={"event_type": "WEBHOOK.MARKED_OPPORTUNITY",
                                                    "url": f"{receiver.url}?n=20"})
    assert (over.status_code, over.json()) == (400, {"errors": {"base": [{
        "error_type": "LIMIT_EXCEEDED",
        "error_message": "This account has 20 webhook subscriptions, the most this server "
                         "allows: delete one before adding another."}]}})
    assert len(receiver.validations) == 20  # the one over the limit was not even checked
    _, token = server.new_account()
    with server.client(token) as other:  # a limit of each account
        subscribe(other, receiver.url)
    assert api.delete(f"/integrations/webhooks/{created[0]['uuid']}").status_code == 204
    subscribe(api, f"{receiver.url}?n=20")


def test_concurrent_subscriptions_do_not_pass_the_limit(server, receiver):
    _, token = server.new_account()
    with server.client(token) as api:
        for n in range(17):
            subscribe(api, f"{receiver.url}?n={n}")

    def create(n: int) -> int:
        with server.client(token) as api:
            return api.post("/integrations/webhooks", json={
                "event_type": "WEBHOOK.CONVERTED", "url": f"{receiver.url}?m={n}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] * 3 + [400] * 5
    with server.client(token) as api:
        assert len(api.get("/integrations/webhooks").json()["webhooks"]) == 20


def signed_with(secret: str, received) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-rdevents-signature"], expected)


def test_a_secret_can_be_chosen_and_rotated(api, receiver):
    chosen = "chosen-secret-0123456789"
    webhook = subscribe(api, receiver.url, secret=chosen)
    assert webhook["secret"] == chosen
    api.send_event(conversion(new_email()))
    assert signed_with(chosen, receiver.wait_for(1)[0])

    path = f"/integrations/webhooks/{webhook['uuid']}"
    rotated = api.post(f"/rdevents/v1/webhooks/{webhook['uuid']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", new_secret)
    assert rotated.json() == {**webhook, "secret": new_secret,
                              "updated_at": rotated.json()["updated_at"]}
    assert api.get(path).json() == rotated.json()
    api.send_event(conversion(new_email()))
    assert signed_with(new_secret, receiver.wait_for(2)[1])

    again = api.post(f"/rdevents/v1/webhooks/{webhook['uuid']}/secret/rotate",
                     json={"secret": "0" * 64})
    assert (again.status_code, again.json()["secret"]) == (200, "0" * 64)
    # a PUT that sends a secret back does not change it: only rotation does
    put = api.put(path, json={**again.json(), "secret": chosen})
    assert (put.status_code, put.json()["secret"]) == (200, "0" * 64)
    assert len(receiver.validations) == 1  # neither rotation nor the PUT checked the URL


SECRET_ERROR = {"errors": {"secret": [{
    "error_type": "INVALID_FORMAT",
    "error_message": "secret must be 16 to 64 printable ASCII characters, without spaces.",
    "path": "$.body.secret"}]}}


@pytest.mark.parametrize("secret", ["fifteen-chars-x", "x" * 65, "a secret with spaces",
                                    "segredo-não-ascii-123", "tab\tinside-the-secret",
                                    1234567890123456, None])
def test_secrets_out_of_bounds_are_refused(api, receiver, secret):
    created = api.post("/integrations/webhooks", json={
        "event_type": "WEBHOOK.CONVERTED", "url": receiver.url, "secret": secret})
    assert (created.status_code, created.json()) == (400, SECRET_ERROR)
    webhook = subscribe(api, receiver.url)
    rotated = api.post(f"/rdevents/v1/webhooks/{webhook['uuid']}/secret/rotate",
                       json={"secret": secret})
    assert (rotated.status_code, rotated.json()) == (400, SECRET_ERROR)
    assert api.get(f"/integrations/webhooks/{webhook['uuid']}").json() == webhook


def test_rotating_refuses_other_fields_and_unknown_webhooks(server, api, receiver):
    webhook = subscribe(api, receiver.url)
    path = f"/rdevents/v1/webhooks/{webhook['uuid']}/secret/rotate"
    extra = api.post(path, json={"secret": "x" * 20, "url": receiver.url})
    assert (extra.status_code, extra.json()) == (400, {"errors": {
        "error_type": "INVALID_FIELDS",
        "error_message": "Payload contains fields that do not exist: (url)"}})
    unknown = api.post(f"/rdevents/v1/webhooks/{uuid.uuid4()}/secret/rotate")
    assert (unknown.status_code, unknown.json()["errors"]["error_message"]) == (
        404, "Webhook not found.")
    _, token = server.new_account()
    with server.client(token) as other:
        assert other.post(path).status_code == 404
    assert api.get(f"/integrations/webhooks/{webhook['uuid']}").json() == webhook


# --- deliveries -----------------------------------------------------------------------------------

def test_a_conversion_is_delivered_signed_in_rds_v2_format(api, receiver):
    webhook = subscribe(api, receiver.url, include_relations=["COMPANY", "CONTACT_FUNNEL"])
    email = new_email()
    sent = api.send_event(conversion(
        email, name="Ana", job_title="CTO", city="Recife", tags=["VIP"], cf_plan="gold",
        cf_empty="", company_name="Acme", legal_bases=[
            {"category": "communications", "type": "consent", "status": "granted"}]))
    assert sent.status_code == 200
    [received] = receiver.wait_for(1)
    contact = api.contact(email).json()
    body = received.json
    assert body == {
        "event_type": "WEBHOOK.CONVERTED", "entity_type": "CONTACT",
        "event_identifier": "signup", "timestamp": body["timestamp"],
        "event_timestamp": body["event_timestamp"],
        "contact": {
            "uuid": contact["uuid"], "email": email, "name": "Ana", "job_title": "CTO",
            "city": "Recife", "tags": ["vip"], "cf_plan": "gold",  # empty cf_empty left out
            "legal_bases": [{"category": "communications", "type": "consent",
                             "status": "granted"}],
            "company": {"name": "Acme"},
            "funnel": {"name": "default", "lifecycle_stage": "Lead", "opportunity": False,
                       "contact_owner_email": None, "interest": None, "fit": None,
                       "origin": None}}}
    assert body["event_timestamp"] <= body["timestamp"]
    assert received.headers["content-type"] == "application/json"
    # the receiver's check, as docs/webhooks.md shows it
    expected = "sha256=" + hmac.new(webhook["secret"].encode(), received.body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["x-rdevents-signature"], expected)

    [delivery] = settled(api, webhook, 1)
    assert delivery == {
        "uuid": received.headers["x-rdevents-delivery"],
        "event_uuid": sent.json()["event_uuid"], "status": "delivered", "attempts": 1,
        "created_at": delivery["created_at"], "updated_at": delivery["updated_at"],
        "history": [{"attempted_at": delivery["history"][0]["attempted_at"],
                     "status_code": 200, "error": None,
                     "duration_ms": delivery["history"][0]["duration_ms"]}]}


def test_each_delivery_shows_the_contact_as_its_event_left_it(api, receiver):
    subscribe(api, receiver.url)
    email = new_email()
    api.send_batch([conversion(email, name="First", tags=["a"]),
                    conversion(email, name="Second", tags=["b"])])
    contacts = sorted((r.json["contact"] for r in receiver.wait_for(2)),
                      key=lambda c: len(c["tags"]))
    assert [(c["name"], c["tags"]) for c in contacts] == [("First", ["a"]),
                                                         ("Second", ["a", "b"])]


def test_relations_only_when_asked_for(api, receiver):
    subscribe(api, receiver.url)
    api.send_event(conversion(new_email(), company_name="Acme"))
    [received] = receiver.wait_for(1)
    assert "company" not in received.json["contact"] and "funnel" not in received.json["contact"]


def test_event_identifiers_filter_conversions(api, receiver):
    webhook = subscribe(api, receiver.url, event_identifiers=["newsletter"])
    email = new_email()
    api.send_batch([conversion(email), {**conversion(email), "payload": {
        **conversion(email)["payload"], "conversion_identifier": "newsletter"}}])
    [received] = receiver.wait_for(1)
    assert received.json["event_identifier"] == "newsletter"
    assert len(settled(api, webhook, 1)) == 1


def test_marked_opportunity_from_events_and_from_the_funnel_api(api, receiver):
    webhook = subscribe(api, receiver.url, event_type="WEBHOOK.MARKED_OPPORTUNITY",
                        include_relations=["CONTACT_FUNNEL"])
    first, second = new_email(), new_email()
    api.send_batch([conversion(first), conversion(second),
                    event("OPPORTUNITY", email=first, funnel_name="default")])
    api.put(f"/platform/contacts/email:{second}/funnels/default", json={"opportunity": True})
    # setting what is already set marks nothing
    api.put(f"/platform/contacts/email:{second}/funnels/default", json={"opportunity": True})
    received = receiver.wait_for(2)
    by_email = {r.json["contact"]["email"]: r.json for r in received}
    assert set(by_email) == {first, second}
    for body in by_email.values():
        assert (body["event_type"], body["event_identifier"],
                body["contact"]["funnel"]["opportunity"]) == (
            "WEBHOOK.MARKED_OPPORTUNITY", "default", True)
    api_made = [d for d in settled(api, webhook, 2) if d["event_uuid"] is None]
    assert len(api_made) == 1  # the funnel API's change has no event


def test_a_rejected_batch_queues_nothing(api, receiver):
    webhook = subscribe(api, receiver.url)
    rejected = api.send_batch([conversion(new_email()), conversion("not-an-email")])
    assert rejected.status_code == 400
    api.send_event(conversion(new_email()))
    receiver.wait_for(1)
    assert len(settled(api, webhook, 1)) == 1


def test_retries_until_the_receiver_recovers(api, receiver):
    webhook = subscribe(api, receiver.url)
    receiver.fail_next = 2
    api.send_event(conversion(new_email()))
    [delivery] = settled(api, webhook, 1)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert [(a["status_code"], a["error"]) for a in delivery["history"]] == [
        (500, "HTTP 500"), (500, "HTTP 500"), (200, None)]
    bodies = [r.body for r in receiver.wait_for(3)]
    # the same delivery each time, with the time it was sent
    assert len({r.headers["x-rdevents-delivery"] for r in receiver.deliveries}) == 1
    assert len({orjson_without_timestamp(b) for b in bodies}) == 1


def orjson_without_timestamp(body: bytes) -> str:
    document = orjson.loads(body)
    document.pop("timestamp")
    return orjson.dumps(document).decode()


def test_after_three_retries_a_delivery_fails_and_can_be_sent_again(api, receiver):
    webhook = subscribe(api, receiver.url)
    receiver.failing = True
    api.send_event(conversion(new_email()))
    [failed] = settled(api, webhook, 1)
    assert (failed["status"], failed["attempts"], len(failed["history"])) == ("failed", 4, 4)
    assert deliveries(api, webhook, status="failed") == [failed]
    assert deliveries(api, webhook, status="delivered") == []

    receiver.failing = False
    path = f"/integrations/webhooks/{webhook['uuid']}/deliveries/{failed['uuid']}/resend"
    resent = api.post(path)
    assert (resent.status_code, resent.json()) == (202, {"uuid": failed["uuid"],
                                                         "status": "pending"})
    [delivered] = settled(api, webhook, 1)
    assert (delivered["status"], delivered["attempts"], len(delivered["history"])) == (
        "delivered", 1, 5)
    assert receiver.wait_for(5)[-1].headers["x-rdevents-delivery"] == failed["uuid"]
    unknown = api.post(f"/integrations/webhooks/{webhook['uuid']}/deliveries/{uuid.uuid4()}"
                       "/resend")
    assert (unknown.status_code, unknown.json()["errors"]["error_message"]) == (
        404, "Delivery not found.")


def test_a_slow_receiver_times_out_and_is_retried(api, receiver):
    webhook = subscribe(api, receiver.url)
    receiver.delay = 1.5  # the test server's timeout is 1 s
    api.send_event(conversion(new_email()))
    wait_until(lambda: deliveries(api, webhook)[0]["history"])
    receiver.delay = 0
    [delivery] = settled(api, webhook, 1)
    first = delivery["history"][0]
    assert (first["status_code"], first["error"]) == (None, "Timeout: no answer within 1 s")
    assert delivery["status"] == "delivered"


def test_erasing_a_contact_erases_its_deliveries(server, api, receiver):
    webhook = subscribe(api, receiver.url)
    email = new_email()
    api.send_event(conversion(email, name="Private Person"))
    [sent] = settled(api, webhook, 1)
    receiver.failing = True
    api.send_event(conversion(email, name="Private Person"))
    wait_until(lambda: len(receiver.deliveries) >= 2)  # the second is pending, retrying
    assert api.delete(f"/platform/contacts/email:{email}").status_code == 204
    found = deliveries(api, webhook)
    assert [d["status"] for d in found] == ["erased", "erased"]
    assert found[1]["history"] == sent["history"]  # status codes stay
    bodies = server.call(server.store.fetch(
        "SELECT DISTINCT body, contact_id FROM webhook_deliveries d JOIN webhooks w "
        "ON w.id = d.webhook_id WHERE w.uuid = ?", (webhook["uuid"],)))
    assert bodies == [("{}", None)]
    receiver.failing = False
    count = len(receiver.deliveries)
    for delivery in found:  # neither the pending one nor the one delivered goes out again
        resent = api.post(f"/integrations/webhooks/{webhook['uuid']}/deliveries/"
                          f"{delivery['uuid']}/resend")
        assert (resent.status_code, resent.json()["errors"]["error_message"]) == (
            400, "The delivery was erased with its contact.")
    time.sleep(0.5)  # nothing is to go out again: give a wrong delivery the time to show
    assert [d["status"] for d in deliveries(api, webhook)] == ["erased", "erased"]
    assert len(receiver.deliveries) == count


def test_a_slow_receiver_gets_each_delivery_once(api, receiver):
    webhook = subscribe(api, receiver.url)
    receiver.delay = 0.4  # within the test server's 1 s timeout, for a batch of them at once
    api.send_batch([conversion(new_email()) for _ in range(40)])
    found = settled(api, webhook, 40)
    assert {d["status"] for d in found} == {"delivered"}
    sent = [r.headers["x-rdevents-delivery"] for r in receiver.deliveries]
    assert len(sent) == len(set(sent)) == 40
    assert {len(d["history"]) for d in found} == {1}


@pytest.mark.parametrize("query", ["page=²", "page=0", "page_size=99999999999999999999",
                                   "status=lost"])
def test_bad_delivery_queries_are_400(api, receiver, query):
    webhook = subscribe(api, receiver.url)
    response = api.get(f"/integrations/webhooks/{webhook['uuid']}/deliveries?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["path"] == f"$.query.{query.split('=')[0]}"


def test_deliveries_over_are_pruned_after_the_retention(server, api, receiver):
    webhook = subscribe(api, receiver.url)
    receiver.fail_next = 1
    api.send_batch([conversion(new_email()), conversion(new_email())])
    assert len(settled(api, webhook, 2)) == 2
    prune = server.store.prune_deliveries
    server.call(prune(utc_now(-60), 1_000))  # over for a minute or more: none of these
    assert len(deliveries(api, webhook)) == 2
    receiver.failing, receiver.delay = True, 0.6  # slow failures: pending for seconds
    api.send_event(conversion(new_email()))
    wait_until(lambda: len(deliveries(api, webhook)) == 3)
    assert server.call(prune(utc_now(60), 1_000)) >= 2  # others' may go too: they are over
    [left] = deliveries(api, webhook)
    assert left["status"] == "pending"
    orphans = server.call(server.store.fetch(
        "SELECT count(*) FROM webhook_attempts WHERE delivery_id NOT IN "
        "(SELECT id FROM webhook_deliveries)"))
    assert orphans == [(0,)]


# --- across processes and restarts ---------------------------------------------------------------

QUICK = ("--webhook-retry-delays", "0.5,0.5,0.5", "--webhook-timeout", "1",
         "--webhook-poll-seconds", "0.05", *TO_LOOPBACK_RECEIVERS)


def database_for(request, backend: str) -> str | None:
    return request.getfixturevalue("postgres_url") if backend == "postgresql" else None


def delivered_uuids(receiver: Receiver) -> list[str]:
    return [r.headers["x-rdevents-delivery"] for r in receiver.deliveries]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_delivery_is_lost_when_the_server_is_killed(request, tmp_path, receiver, backend):
    server = ServerProcess(tmp_path, database_for(request, backend), serve_args=QUICK).start()
    try:
        with server.client() as client:
            webhook = subscribe(client, receiver.url)
            receiver.failing = True
            for _ in range(10):
                assert client.post("/platform/events",
                                   json=conversion(new_email())).status_code == 200
            receiver.wait_for(10)  # each has been tried, and failed
        server.kill9()
        receiver.failing = False
        server.start()
        with server.client() as client:
            found = wait_until(lambda: (lambda d: d if len(d) == 10 and all(
                x["status"] == "delivered" for x in d) else None)(deliveries(client, webhook)),
                timeout=30)
        assert {d["uuid"] for d in found} <= set(delivered_uuids(receiver))
    finally:
        server.stop()


def test_processes_share_the_outbox_without_sending_twice(postgres_url, tmp_path, receiver):
    first = ServerProcess(tmp_path, postgres_url, serve_args=QUICK).start()
    second = first.sibling().start()
    try:
        with first.client() as client:
            webhook = subscribe(client, receiver.url)
        for index in range(40):
            with (first if index % 2 else second).client() as client:
                assert client.post("/platform/events",
                                   json=conversion(new_email())).status_code == 200
        receiver.wait_for(40)
        with first.client() as client:
            found = settled(client, webhook, 40)
        assert all(d["status"] == "delivered" for d in found)
        sent = delivered_uuids(receiver)
        assert len(sent) == len(set(sent)) == 40
    finally:
        first.stop()
        second.stop()


# --- the receiver docs/webhooks.md shows ----------------------------------------------------------

def documented_receiver() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "webhooks.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    return code


def start_documented_receiver(port: int, secret: str | None) -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if name != "WEBHOOK_SECRET"}
    env["PORT"] = str(port)
    if secret is not None:
        env["WEBHOOK_SECRET"] = secret
    process = subprocess.Popen([sys.executable, "-c", documented_receiver()], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: process.poll() is not None or listening(port))
    assert process.poll() is None, process.stderr.read()
    return process


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(10)


def test_the_documented_receiver_verifies_deliveries(api):
    # As a user would: the receiver first (it knows no secret yet), then the subscription.
    port = free_port()
    url = f"http://127.0.0.1:{port}/rd"
    process = start_documented_receiver(port, secret=None)
    try:
        webhook = subscribe(api, url)
        first = new_email()
        assert api.send_event(conversion(first)).status_code == 200
        [refused] = settled(api, webhook, 1)
        assert [a["status_code"] for a in refused["history"]] == [503] * (len(RETRY_DELAYS) + 1)
        stop(process)
        assert "WEBHOOK_SECRET is not set" in process.stderr.read()

        process = start_documented_receiver(port, secret=webhook["secret"])
        resent = api.post(f"/integrations/webhooks/{webhook['uuid']}/deliveries/"
                          f"{refused['uuid']}/resend")
        assert resent.status_code == 202, resent.text
        second = new_email()
        assert api.send_event(conversion(second)).status_code == 200
        printed = {process.stdout.readline(), process.stdout.readline()}
        assert printed == {f"WEBHOOK.CONVERTED {first}\n", f"WEBHOOK.CONVERTED {second}\n"}
        assert {d["history"][-1]["status_code"] for d in settled(api, webhook, 2)} == {204}
        forged = httpx.post(url, content=b'{"event_type":"WEBHOOK.CONVERTED"}', headers={
            "X-RDEvents-Signature": "sha256=" + "0" * 64})
        assert forged.status_code == 401
    finally:
        stop(process)


def test_readyz_tells_when_the_sender_has_stopped(tmp_path):
    running = Server(sqlite_settings(tmp_path)).start()
    try:
        assert httpx.get(f"{running.url}/readyz").status_code == 200
        sender = running.app.state.webhook_sender
        running.call(_stop_task(sender._task))  # as if it had died
        response = httpx.get(f"{running.url}/readyz")
        assert (response.status_code, response.json()["errors"]["error_message"]) == (
            503, "The webhook sender has stopped: see the log.")
    finally:
        running.stop()


async def _stop_task(task) -> None:
    task.cancel()
    try:
        await task
    except BaseException:
        pass
