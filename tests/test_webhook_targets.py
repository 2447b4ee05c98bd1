"""Where webhooks may go, through the app on both backends and the command line (the rules
alone are in unit/test_target_rules.py). Traffic only ever goes to loopback: other addresses are
refused before any connection is tried."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest

from conftest import conversion, free_port
from hooks import deliveries, new_email, settled, subscribe
from rdevents.clock import utc_now
from rdevents.outbound.client import COULD_NOT_CONNECT
from rdevents.outbound.targets import CREDENTIALS_REFUSED
from rdevents.store.webhook_records import Webhook
from receiver import Receiver
from waiting import wait_until

HINT = "The server's operator can allow networks with --webhook-allowed-networks."


def test_serve_refuses_a_bad_network():
    result = subprocess.run([sys.executable, "-m", "rdevents", "serve",
                             "--webhook-allowed-networks", "127.0.0.0/8, 10.0.0.1/8"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert ("Invalid value for '--webhook-allowed-networks': '10.0.0.1/8' is not a network in "
            "CIDR notation") in result.stderr


# --- over HTTP, on both backends ------------------------------------------------------------------

def refused(host: str, how: str) -> dict:
    return {"errors": {"url": [{"error_type": "FORBIDDEN_TARGET",
                                "error_message": f"Webhooks may not be sent to {host}: {how}. "
                                                 f"{HINT}",
                                "path": "$.body.url"}]}}


LOOPBACK_IS = "it is a loopback address (the server itself)"


def test_forbidden_targets_are_refused_before_any_connection(own_server, receiver):
    server = own_server()  # no network beyond the public internet allowed
    _, token = server.new_account()
    port = receiver.port  # a loopback target reached would show at this receiver
    cases = {
        f"http://127.0.0.1:{port}/hook": ("127.0.0.1", LOOPBACK_IS),
        f"http://127.1:{port}/hook": ("127.1", LOOPBACK_IS),
        f"http://0x7f000001:{port}/hook": ("0x7f000001", LOOPBACK_IS),
        f"http://2130706433:{port}/hook": ("2130706433", LOOPBACK_IS),
        f"http://0177.0.0.1:{port}/hook": ("0177.0.0.1", LOOPBACK_IS),
        f"http://[::ffff:127.0.0.1]:{port}/hook": ("::ffff:127.0.0.1", LOOPBACK_IS),
        f"http://[::1]:{port}/hook": ("::1", "it is the loopback address (the server itself)"),
        f"http://0.0.0.0:{port}/hook": ("0.0.0.0",
                                        "it is an unspecified address ('this network')"),
        f"http://localhost:{port}/hook": ("localhost", "it resolves to a loopback address "
                                                       "(the server itself)"),
        "http://169.254.169.254/latest/meta-data/": (
            "169.254.169.254",
            "it is a link-local address (where cloud metadata services answer)"),
        "https://10.0.0.8/hook": ("10.0.0.8", "it is a private network address"),
        "https://100.64.0.1/hook": ("100.64.0.1", "it is a carrier-grade NAT address (a "
                                                  "provider's shared network)"),
        "https://[fd00::1]/hook": ("fd00::1", "it is a unique local address (a private "
                                              "network)"),
        "https://[64:ff9b::a9fe:a9fe]/": ("64:ff9b::a9fe:a9fe", "it is an IPv6 address "
                                          "embedding a link-local address (where cloud "
                                          "metadata services answer)"),
        "http://224.0.0.1/": ("224.0.0.1", "it is a multicast address"),
    }
    with server.client(token) as api:
        for url, (host, how) in cases.items():
            response = api.post("/integrations/webhooks", json={
                "event_type": "WEBHOOK.CONVERTED", "url": url})
            assert (response.status_code, response.json()) == (400, refused(host, how)), url
        assert api.get("/integrations/webhooks").json() == {"webhooks": []}
    assert receiver.validations == receiver.deliveries == []


def test_credentials_are_refused_and_never_sent(server, receiver):
    account_id, token = server.new_account()
    with_credentials = receiver.url.replace("http://", "http://rd:hunter2@")
    with server.client(token) as api:
        response = api.post("/integrations/webhooks", json={
            "event_type": "WEBHOOK.CONVERTED", "url": with_credentials})
        assert (response.status_code, response.json()) == (400, {"errors": {"url": [{
            "error_type": "FORBIDDEN_TARGET", "error_message": CREDENTIALS_REFUSED,
            "path": "$.body.url"}]}})
        # one stored before the rule: its deliveries are refused
        webhook = store_webhook(server, account_id, with_credentials)
        assert api.send_event(conversion(new_email())).status_code == 200
        attempt = first_attempt(api, webhook)
    assert (attempt["status_code"], attempt["error"]) == (None, CREDENTIALS_REFUSED)
    assert receiver.validations == receiver.deliveries == []


def first_attempt(api, webhook: dict) -> dict:
    """The first attempt of the webhook's one delivery, once made."""
    return wait_until(lambda: deliveries(api, webhook)[0]["history"])[0]


def store_webhook(server, account_id: int, url: str) -> dict:
    """A subscription written straight to the store, as an older version let it be made."""
    now = utc_now()
    webhook = Webhook(uuid=str(uuid.uuid4()), event_type="WEBHOOK.CONVERTED", url=url,
                      include_relations=(), event_identifiers=(), secret="s" * 64,
                      created_at=now, updated_at=now)
    assert server.call(server.store.create_webhook(account_id, webhook, 20))
    return {"uuid": webhook.uuid}


def test_stored_targets_now_forbidden_are_refused_at_delivery(own_server, receiver):
    server = own_server(webhook_retry_delays=(0.1, 0.1, 0.1), webhook_poll_seconds=0.05)
    account_id, token = server.new_account()
    by_address = store_webhook(server, account_id, receiver.url)
    by_name = store_webhook(server, account_id, receiver.url.replace("127.0.0.1", "localhost"))
    with server.client(token) as api:
        assert api.send_event(conversion(new_email())).status_code == 200
        for webhook, how in ((by_address, f"127.0.0.1: {LOOPBACK_IS}"),
                             (by_name, "localhost: it resolves to a loopback address (the "
                                       "server itself)")):
            [delivery] = settled(api, webhook, 1)
            assert delivery["status"] == "failed"
            assert {(a["status_code"], a["error"]) for a in delivery["history"]} == {
                (None, f"Webhooks may not be sent to {how}. {HINT}")}
        # and a PUT cannot move a subscription there either
        moved = api.put(f"/integrations/webhooks/{by_name['uuid']}", json={
            "event_type": "WEBHOOK.CONVERTED", "url": f"http://[::1]:{receiver.port}/"})
        assert (moved.status_code, moved.json()) == (400, refused(
            "::1", "it is the loopback address (the server itself)"))
    assert receiver.deliveries == []


@pytest.fixture
def not_http() -> Iterator[dict[str, str]]:
    """Open loopback ports that do not answer HTTP: one closes each connection at once, one
    speaks another protocol."""
    listeners = {}
    for name, greeting in (("closes", None), ("speaks SSH", b"SSH-2.0-OpenSSH_9.6\r\n")):
        listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=_answer_with, args=(listener, greeting), daemon=True).start()
        listeners[name] = listener
    yield {name: f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
           for name, listener in listeners.items()}
    for listener in listeners.values():
        listener.close()


def _answer_with(listener: socket.socket, greeting: bytes | None) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # closed
            return
        with connection:
            if greeting:
                connection.sendall(greeting)


def test_failures_to_connect_do_not_tell_open_ports_from_closed(api, receiver, not_http):
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    for url in (closed, *not_http.values()):
        response = api.post("/integrations/webhooks", json={"event_type": "WEBHOOK.CONVERTED",
                                                            "url": url})
        assert (response.status_code, response.json()) == (401, {"errors": {
            "error_type": "UNAUTHORIZED",
            "error_message": "The URL did not answer the validation request with a 2xx "
                             "status: could not connect to the receiver."}}), url
    # deliveries to a receiver that went away read the same
    webhook = subscribe(api, receiver.url)
    receiver.stop()
    assert api.send_event(conversion(new_email())).status_code == 200
    attempt = first_attempt(api, webhook)
    assert (attempt["status_code"], attempt["error"]) == (None, COULD_NOT_CONNECT)


def test_proxies_named_in_the_environment_are_not_used(api, receiver, monkeypatch):
    proxy = Receiver().start()  # were it used, requests would arrive here
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        webhook = subscribe(api, receiver.url)
        assert api.send_event(conversion(new_email())).status_code == 200
        [delivery] = settled(api, webhook, 1)
        assert delivery["status"] == "delivered"
        assert (len(receiver.validations), len(receiver.deliveries)) == (1, 1)
        assert proxy.validations == proxy.deliveries == []
    finally:
        proxy.stop()
