"""RD's OAuth flow: consent on /auth/dialog, code -> tokens -> refresh -> revoke, error bodies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import conversion, wait_for_token_cache
from rdevents.oauth import create_app, hash_password, issue_code

REDIRECT = "https://crm.example/callback"
ACCESS_DENIED = {"errors": {"error_type": "ACCESS_DENIED",
                            "error_message": "Wrong credentials provided."}}
EXPIRED_CODE = {"errors": {"error_type": "EXPIRED_CODE_GRANT",
                           "error_message": "The authorization code grant has expired."}}
INVALID_REFRESH = {"errors": {"error_type": "INVALID_REFRESH_TOKEN",
                              "error_message": "The provided refresh token is invalid or was "
                                               "revoked."}}
INVALID_TOKEN = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}}


@pytest.fixture
def app(server):
    """An account with an app and an administrator: (client_id, client_secret, username)."""
    account_id, _ = server.new_account()
    client_id, secret = server.call(create_app(server.store, account_id, REDIRECT))
    username = f"admin-{uuid.uuid4().hex[:8]}"
    server.call(server.store.create_admin(account_id, username, hash_password("s3cret")))
    return client_id, secret, username


@pytest.fixture
def anonymous(server):
    with httpx.Client(base_url=server.url, timeout=30, verify=False) as client:
        yield client


def code_for(server, client_id: str) -> str:
    found = server.call(server.store.find_app(client_id))
    return server.call(issue_code(server.store, found))


def exchange(client, client_id, secret, **fields):
    return client.post("/auth/token", json={"client_id": client_id, "client_secret": secret,
                                           **fields})


def test_consent_page_then_code_then_tokens_then_refresh_then_revoke(server, app, anonymous):
    client_id, secret, username = app
    page = anonymous.get("/auth/dialog", params={"client_id": client_id,
                                                 "redirect_uri": REDIRECT, "state": "xyz"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client_id in page.text
    wrong = anonymous.post("/auth/dialog", data={"client_id": client_id, "redirect_uri": REDIRECT,
                                                 "state": "xyz", "username": username,
                                                 "password": "nope"})
    assert wrong.status_code == 401 and "Wrong administrator or password." in wrong.text
    consent = anonymous.post("/auth/dialog", data={
        "client_id": client_id, "redirect_uri": REDIRECT, "state": "xyz", "username": username,
        "password": "s3cret"})
    assert consent.status_code == 302
    location = urlsplit(consent.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]

    # token_by=code and form encoding, as some clients send it
    tokens = anonymous.post("/auth/token", params={"token_by": "code"}, data={
        "client_id": client_id, "client_secret": secret, "code": code,
        "grant_type": "authorization_code"})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token"}
    assert body["expires_in"] == 86400
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    email = f"oauth-{uuid.uuid4().hex[:8]}@example.com"
    assert anonymous.post("/platform/events", json=conversion(email),
                          headers=bearer).status_code == 200

    assert exchange(anonymous, client_id, secret, code=code).json() == EXPIRED_CODE  # used once

    refreshed = anonymous.post("/oauth2/token", json={
        "client_id": client_id, "client_secret": secret, "refresh_token": body["refresh_token"],
        "grant_type": "refresh_token"})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] == body["refresh_token"]
    new_bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert anonymous.get(f"/platform/contacts/email:{email}", headers=new_bearer
                         ).status_code == 200

    revoked = anonymous.post("/auth/revoke", data={"token": body["refresh_token"],
                                                   "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    wait_for_token_cache(server)
    for headers in (bearer, new_bearer):  # every access token of the refresh token goes too
        response = anonymous.get(f"/platform/contacts/email:{email}", headers=headers)
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
    again = exchange(anonymous, client_id, secret, refresh_token=body["refresh_token"])
    assert (again.status_code, again.json()) == (401, INVALID_REFRESH)


def test_revoking_an_access_token_works_at_once(server, app, anonymous):
    client_id, secret, _ = app
    body = exchange(anonymous, client_id, secret, code=code_for(server, client_id)).json()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert anonymous.post("/platform/events", json=conversion(f"r-{uuid.uuid4().hex[:6]}@x.io"),
                          headers=bearer).status_code == 200
    assert anonymous.post("/auth/revoke", data={"token": body["access_token"],
                                                "token_type_hint": "access_token"}
                          ).status_code == 200
    response = anonymous.post("/platform/events", json=conversion("late@example.com"),
                              headers=bearer)
    assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
    # the refresh token still works
    assert exchange(anonymous, client_id, secret,
                    refresh_token=body["refresh_token"]).status_code == 200


@pytest.mark.parametrize("change", ["client_id", "client_secret"])
def test_wrong_app_credentials_are_access_denied(server, app, anonymous, change):
    client_id, secret, _ = app
    fields = {"client_id": client_id, "client_secret": secret, "code": code_for(server, client_id)}
    fields[change] = "wrong"
    response = anonymous.post("/auth/token", json=fields)
    assert (response.status_code, response.json()) == (401, ACCESS_DENIED)


def test_unknown_or_other_apps_codes_are_expired_grants(server, app, anonymous):
    client_id, secret, _ = app
    assert exchange(anonymous, client_id, secret, code="nope").json() == EXPIRED_CODE
    other_account, _ = server.new_account()
    other_id, _ = server.call(create_app(server.store, other_account, REDIRECT))
    response = exchange(anonymous, client_id, secret, code=code_for(server, other_id))
    assert (response.status_code, response.json()) == (401, EXPIRED_CODE)


def test_an_unknown_refresh_token_is_invalid(app, anonymous):
    client_id, secret, _ = app
    response = exchange(anonymous, client_id, secret, refresh_token="nope")
    assert (response.status_code, response.json()) == (401, INVALID_REFRESH)


@pytest.mark.parametrize("missing, fields", [
    ("client_secret", {"client_id": "x", "code": "c"}),
    ("client_id", {"client_secret": "s", "code": "c"}),
    ("code", {"client_id": "x", "client_secret": "s"}),
])
def test_missing_fields_are_cannot_be_null(anonymous, missing, fields):
    response = anonymous.post("/auth/token", json=fields)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"error_type": "CANNOT_BE_NULL",
                                           "error_message": "Cannot be null.",
                                           "path": f"body.{missing}"}]}


@pytest.mark.parametrize("params", [
    {"redirect_uri": "https://evil.example/callback"},
    {"redirect_uri": REDIRECT + "/"},
    {},
])
def test_dialog_refuses_a_redirect_that_is_not_the_apps(app, anonymous, params):
    client_id, _, _ = app
    response = anonymous.get("/auth/dialog", params={"client_id": client_id, **params})
    assert response.status_code == 400
    assert response.json()["errors"]["error_type"] == "ACCESS_DENIED"


def test_dialog_accepts_redirect_url_as_older_clients_send_it(app, anonymous):
    client_id, _, _ = app
    response = anonymous.get("/auth/dialog", params={"client_id": client_id,
                                                     "redirect_url": REDIRECT})
    assert response.status_code == 200


def test_administrator_of_another_account_cannot_consent(server, app, anonymous):
    client_id, _, _ = app
    other_account, _ = server.new_account()
    outsider = f"outsider-{uuid.uuid4().hex[:8]}"
    server.call(server.store.create_admin(other_account, outsider, hash_password("pw")))
    response = anonymous.post("/auth/dialog", data={"client_id": client_id,
                                                    "redirect_uri": REDIRECT,
                                                    "username": outsider, "password": "pw"})
    assert response.status_code == 401


def test_cli_apps_and_headless_authorization(tmp_path):
    def rdevents(*args, **kwargs):
        return subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, **kwargs)

    assert rdevents("accounts", "create", "crm").returncode == 0
    created = rdevents("apps", "create", "--account", "crm", "--redirect-uri", REDIRECT)
    assert created.returncode == 0, created.stderr
    app_json = json.loads(created.stdout)
    assert set(app_json) == {"client_id", "client_secret"}
    code = rdevents("apps", "authorize", "--client-id", app_json["client_id"])
    assert code.returncode == 0 and code.stdout.strip()
    admin = rdevents("admins", "create", "--account", "crm", "--username", "ana",
                     env={**os.environ, "RDEVENTS_ADMIN_PASSWORD": "pw"})
    assert admin.returncode == 0, admin.stderr
    again = rdevents("admins", "create", "--account", "crm", "--username", "ana",
                     env={**os.environ, "RDEVENTS_ADMIN_PASSWORD": "pw"})
    assert again.returncode == 1 and "taken" in again.stderr
    assert rdevents("apps", "authorize", "--client-id", "nope").returncode == 1


def test_a_code_expires_after_60_minutes(server, app, anonymous):
    from rdevents.clock import utc_now
    from rdevents.tokens import hash_secret

    client_id, secret, _ = app
    found = server.call(server.store.find_app(client_id))
    server.call(server.store.create_code(found.id, hash_secret("old-code"), utc_now(-1)))
    response = exchange(anonymous, client_id, secret, code="old-code")
    assert (response.status_code, response.json()) == (401, EXPIRED_CODE)


def test_a_client_that_refreshes_on_401_keeps_working_across_expiry(server, app, anonymous):
    """What RD client libraries do: on 401 with error="expired_token", refresh and retry."""
    import time

    from rdevents.clock import utc_now
    from rdevents.tokens import hash_secret

    client_id, secret, _ = app
    grant = exchange(anonymous, client_id, secret, code=code_for(server, client_id)).json()
    found = server.call(server.store.find_app(client_id))
    refresh_id, account_id = server.call(server.store.find_refresh_token(
        found.id, hash_secret(grant["refresh_token"])))
    # An access token of the same grant about to expire, as one does after 24 hours.
    server.call(server.store.create_token(account_id, hash_secret("rdv_short-lived"),
                                          utc_now(1), refresh_id))
    state = {"access_token": "rdv_short-lived", "refreshes": 0}

    def send(email: str) -> httpx.Response:
        for _ in range(2):
            response = anonymous.post("/platform/events", json=conversion(email), headers={
                "Authorization": f"Bearer {state['access_token']}"})
            if response.status_code != 401 or 'error="expired_token"' not in \
                    response.headers.get("www-authenticate", ""):
                return response
            renewed = exchange(anonymous, client_id, secret,
                               refresh_token=grant["refresh_token"]).json()
            state["access_token"] = renewed["access_token"]
            state["refreshes"] += 1
        return response

    assert send(f"before-{uuid.uuid4().hex[:6]}@example.com").status_code == 200
    time.sleep(1.1)
    assert send(f"after-{uuid.uuid4().hex[:6]}@example.com").status_code == 200
    assert state["refreshes"] == 1


def test_revoking_a_refresh_token_stops_its_access_tokens_at_once(server, app, anonymous):
    """On the process that revoked it, with no wait for the token cache; and an access token
    made from it in a race with the revocation is refused too."""
    from rdevents.clock import utc_now
    from rdevents.tokens import hash_secret

    client_id, secret, _ = app
    grant = exchange(anonymous, client_id, secret, code=code_for(server, client_id)).json()
    bearer = {"Authorization": f"Bearer {grant['access_token']}"}
    email = f"race-{uuid.uuid4().hex[:6]}@example.com"
    assert anonymous.post("/platform/events", json=conversion(email),
                          headers=bearer).status_code == 200  # now cached as live
    found = server.call(server.store.find_app(client_id))
    refresh_id, account_id = server.call(server.store.find_refresh_token(
        found.id, hash_secret(grant["refresh_token"])))
    assert anonymous.post("/auth/revoke", data={"token": grant["refresh_token"]}
                          ).status_code == 200
    late = "rdv_made-in-a-race"
    server.call(server.store.create_token(account_id, hash_secret(late), utc_now(3600),
                                          refresh_id))
    for token in (grant["access_token"], late):
        response = anonymous.get(f"/platform/contacts/email:{email}",
                                 headers={"Authorization": f"Bearer {token}"})
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)


def test_oauth_bodies_are_limited_like_the_others(anonymous):
    response = anonymous.post("/auth/revoke", content=b"token=" + b"x" * 300_000,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
