"""Bearer authentication on every /platform route, and isolation between accounts."""

from __future__ import annotations

import uuid

import pytest

from conftest import conversion, event, let_token_cache_lapse
from rdevents.tokens import hash_secret, issue_token
from waiting import wait_until

MISSING = {"error": "invalid_request", "error_description": "The access token is missing"}
INVALID = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}}
EXPIRED_HEADER = ('Bearer realm="rdevents", error="expired_token", '
                  'error_description="The access token expired"')
QUALIFICATION = ("OPPORTUNITY", "SALE", "OPPORTUNITY_LOST")


def new_email() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}@example.com"


def routes(email: str) -> list[tuple[str, str, object]]:
    """(method, path, JSON body) for every /platform route."""
    return [
        ("POST", "/platform/events", conversion(email)),
        ("POST", "/platform/events/batch", [conversion(email)]),
        ("GET", f"/platform/events/{uuid.uuid4()}", None),
        ("GET", f"/platform/contacts/email:{email}", None),
        ("GET", f"/platform/contacts/email:{email}/events", None),
        ("GET", f"/platform/contacts/email:{email}/funnels/default", None),
    ]


ROUTE_IDS = ["event", "batch", "get-event", "contact", "contact-events", "funnel"]


def call(client, method: str, path: str, body: object, headers: dict | None = None):
    if body is None:
        return client.request(method, path, headers=headers)
    return client.request(method, path, json=body, headers=headers)


def assert_401(response, body: dict) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.json() == body


def second_token(server, account_id: int, expires_in: int | None = None) -> str:
    return server.call(issue_token(server.store, account_id, expires_in))


# --- missing, wrong, expired, revoked tokens ----------------------------------------------------


@pytest.mark.parametrize("index", range(6), ids=ROUTE_IDS)
def test_missing_token(server, index):
    method, path, body = routes(new_email())[index]
    with server.client() as anonymous:
        response = call(anonymous, method, path, body)
    assert_401(response, MISSING)


@pytest.mark.parametrize("index", range(6), ids=ROUTE_IDS)
@pytest.mark.parametrize("authorization", [
    "Bearer rdv_not-a-token",
    "VALID-PLUS-ONE",  # a live token with one more character
    "Bearer",
    "Basic dXNlcjpwYXNz",
    "VALID-AS-TOKEN-SCHEME",  # a live token, under the wrong scheme
    "VALID-ALONE",  # a live token with no scheme at all
], ids=["unknown", "near-miss", "bearer-only", "basic", "token-scheme", "no-scheme"])
def test_wrong_token_or_scheme(server, index, authorization):
    _, token = server.new_account()
    authorization = {"VALID-AS-TOKEN-SCHEME": f"Token {token}",
                     "VALID-PLUS-ONE": f"Bearer {token}x",
                     "VALID-ALONE": token}.get(authorization, authorization)
    method, path, body = routes(new_email())[index]
    with server.client() as anonymous:
        response = call(anonymous, method, path, body, {"Authorization": authorization})
    assert_401(response, INVALID)
    assert "expired_token" not in response.headers.get("www-authenticate", "")


def test_scheme_is_case_insensitive(server):
    """RFC 7235: the auth scheme is a case-insensitive token."""
    _, token = server.new_account()
    with server.client() as anonymous:
        response = anonymous.post("/platform/events", json=conversion(new_email()),
                                  headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def expired(server):
    """An account, a token of it that has expired, and a live token of the same account."""
    account_id, token = server.new_account(expires_in=2)
    with server.client(token) as client:  # live before it expires
        unknown = f"/platform/contacts/email:{new_email()}"
        assert client.get(unknown).status_code == 404
        live = second_token(server, account_id)
        wait_until(lambda: client.get(unknown).status_code == 401)
    return account_id, token, live


@pytest.mark.parametrize("index", range(6), ids=ROUTE_IDS)
def test_expired_token(server, expired, index):
    _, token, _ = expired
    method, path, body = routes(new_email())[index]
    with server.client(token) as client:
        response = call(client, method, path, body)
    assert_401(response, INVALID)
    assert response.headers["www-authenticate"] == EXPIRED_HEADER


def test_token_with_distant_expiry_works(server):
    _, token = server.new_account(expires_in=3600)
    with server.client(token) as client:
        assert client.send_event(conversion(new_email())).status_code == 200


@pytest.mark.parametrize("index", range(6), ids=ROUTE_IDS)
def test_revoked_token(server, index):
    account_id, token = server.new_account()
    email = new_email()
    with server.client(token) as client:
        assert client.send_event(conversion(email)).status_code == 200
        assert server.call(server.store.revoke_token(hash_secret(token))) is True
        let_token_cache_lapse(server)
        method, path, body = routes(email)[index]
        response = call(client, method, path, body)
    assert_401(response, INVALID)
    assert "expired_token" not in response.headers.get("www-authenticate", "")


def test_revoking_one_token_leaves_the_accounts_other_tokens_alive(server):
    account_id, token = server.new_account()
    other = second_token(server, account_id)
    server.call(server.store.revoke_token(hash_secret(token)))
    with server.client(other) as client:
        assert client.send_event(conversion(new_email())).status_code == 200


def test_a_401_stores_nothing(server, expired):
    account_id, expired_token, live = expired
    revoked = second_token(server, account_id)
    server.call(server.store.revoke_token(hash_secret(revoked)))
    let_token_cache_lapse(server)
    attempts = {
        "missing": {},
        "unknown": {"Authorization": "Bearer rdv_nope"},
        "basic": {"Authorization": f"Basic {live}"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "expired": {"Authorization": f"Bearer {expired_token}"},
    }
    emails = {}
    with server.client() as anonymous:
        for name, headers in attempts.items():
            single, batched = new_email(), new_email()
            emails[name] = (single, batched)
            single_response = anonymous.post("/platform/events", json=conversion(single),
                                             headers=headers)
            batch_response = anonymous.post("/platform/events/batch",
                                            json=[conversion(batched)], headers=headers)
            assert (single_response.status_code, batch_response.status_code) == (401, 401), name
    with server.client(live) as client:
        for name, (single, batched) in emails.items():
            assert client.contact(single).status_code == 404, name
            assert client.contact(batched).status_code == 404, name
        # the same request with the live token of the same account is stored
        single, _ = emails["expired"]
        assert client.send_event(conversion(single)).status_code == 200
        assert client.contact(single).status_code == 200


# --- isolation between accounts -----------------------------------------------------------------


@pytest.fixture
def two_accounts(server):
    _, token_a = server.new_account()
    _, token_b = server.new_account()
    with server.client(token_a) as a, server.client(token_b) as b:
        yield a, b


NOT_FOUND_TYPE = "RESOURCE_NOT_FOUND"


def assert_404(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, dict) and errors["error_type"] == NOT_FOUND_TYPE


def test_other_accounts_contact_and_events_are_not_found(two_accounts):
    a, b = two_accounts
    email = new_email()
    sent = a.send_event(conversion(email, name="Only A"))
    assert sent.status_code == 200
    event_uuid = sent.json()["event_uuid"]
    batch = a.send_batch([conversion(email, conversion_identifier="again")])
    assert batch.status_code == 200
    batch_event_uuid = batch.json()["events"][0]["event_uuid"]
    contact_uuid = a.contact(email).json()["uuid"]
    # A sees its own data
    assert a.get(f"/platform/events/{event_uuid}").status_code == 200
    assert a.get(f"/platform/contacts/uuid:{contact_uuid}").status_code == 200
    # B sees none of it, whichever way it asks
    for reference in (f"email:{email}", f"uuid:{contact_uuid}", contact_uuid):
        assert_404(b.get(f"/platform/contacts/{reference}"))
        assert_404(b.get(f"/platform/contacts/{reference}/events"))
        assert_404(b.get(f"/platform/contacts/{reference}/funnels/default"))
    assert_404(b.get(f"/platform/events/{event_uuid}"))
    assert_404(b.get(f"/platform/events/{batch_event_uuid}"))


def test_same_email_in_two_accounts_is_two_contacts(two_accounts):
    a, b = two_accounts
    email = new_email()
    assert a.send_event(conversion(email, name="Ana of A", tags=["from-a"],
                                   conversion_identifier="form-a")).status_code == 200
    assert b.send_event(conversion(email.upper(), name="Ana of B", tags=["from-b"],
                                   conversion_identifier="form-b")).status_code == 200
    assert b.send_event(event("OPPORTUNITY", email=email, funnel_name="default")).status_code == 200

    contact_a, contact_b = a.contact(email).json(), b.contact(email).json()
    assert contact_a["uuid"] != contact_b["uuid"]
    assert (contact_a["name"], contact_a["tags"]) == ("Ana of A", ["from-a"])
    assert (contact_b["name"], contact_b["tags"]) == ("Ana of B", ["from-b"])
    # each contact's history has only its own account's events
    history_a = a.get(f"/platform/contacts/email:{email}/events").json()
    history_b = b.get(f"/platform/contacts/email:{email}/events").json()
    assert [(e["event_type"], e["event_identifier"]) for e in history_a] == \
        [("CONVERSION", "form-a")]
    assert sorted((e["event_type"], e["event_identifier"]) for e in history_b) == \
        [("CONVERSION", "form-b"), ("OPPORTUNITY", "OPPORTUNITY")]
    # each account's uuid names only its own contact
    assert_404(a.get(f"/platform/contacts/uuid:{contact_b['uuid']}"))
    assert_404(b.get(f"/platform/contacts/uuid:{contact_a['uuid']}"))
    # B's OPPORTUNITY moved B's funnel only
    assert a.get(f"/platform/contacts/email:{email}/funnels/default").json()["opportunity"] is False
    assert b.get(f"/platform/contacts/email:{email}/funnels/default").json()["opportunity"] is True


@pytest.mark.parametrize("event_type", QUALIFICATION)
def test_qualification_for_another_accounts_contact_is_rejected(two_accounts, event_type):
    a, b = two_accounts
    email = new_email()
    assert a.send_event(conversion(email)).status_code == 200
    qualification = {"email": email, "funnel_name": "default"}
    if event_type == "SALE":
        qualification["value"] = 10
    if event_type == "OPPORTUNITY_LOST":
        qualification["reason"] = "price"

    response = b.send_event(event(event_type, **qualification))
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [(e["error_type"], e["path"]) for e in errors] == \
        [("RESOURCE_NOT_FOUND", "$.body.payload.email")]
    batch = b.send_batch([event(event_type, **qualification)])
    assert batch.status_code == 400, batch.text
    assert [(e["error_type"], e["path"]) for e in batch.json()["errors"]] == \
        [("RESOURCE_NOT_FOUND", "$.body[0].payload.email")]
    # nothing happened in either account
    assert_404(b.contact(email))
    funnel = a.get(f"/platform/contacts/email:{email}/funnels/default").json()
    assert (funnel["lifecycle_stage"], funnel["opportunity"]) == ("Lead", False)
    assert len(a.get(f"/platform/contacts/email:{email}/events").json()) == 1


def test_token_cache_trusts_a_live_token_for_its_ttl_only(server):
    """The cache spares a read per request; revocation reaches it when the entry expires."""
    from rdevents.http.auth import CredentialCache

    _, token = server.new_account()
    token_hash = hash_secret(token)
    cache = CredentialCache(server.store.find_token, ttl=60)
    assert server.call(cache.find(token_hash)).revoked is False
    server.call(server.store.revoke_token(token_hash))
    assert server.call(cache.find(token_hash)).revoked is False  # still trusted: cached
    uncached = CredentialCache(server.store.find_token, ttl=0)
    assert server.call(uncached.find(token_hash)).revoked is True
