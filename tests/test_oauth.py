"""RD's OAuth flow: consent on /auth/dialog, code -> tokens -> refresh -> revoke, error bodies;
the consent page's defences, uncached token answers, codes used twice, revocation and the
token cache."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import BACKENDS, Server, backend_settings, conversion, let_token_cache_lapse
from consent import PASSWORD, REDIRECT, csrf_token, open_page, sign_in
from rdevents.oauth import create_app, issue_code
from rdevents.passwords import hash_password
from rdevents.tokens import hash_secret
from waiting import wait_until

ACCESS_DENIED = {"errors": {"error_type": "ACCESS_DENIED",
                            "error_message": "Wrong credentials provided."}}
EXPIRED_CODE = {"errors": {"error_type": "EXPIRED_CODE_GRANT",
                           "error_message": "The authorization code grant has expired."}}
INVALID_REFRESH = {"errors": {"error_type": "INVALID_REFRESH_TOKEN",
                              "error_message": "The provided refresh token is invalid or was "
                                               "revoked."}}
INVALID_TOKEN = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}}


def new_app(server) -> tuple[str, str, str]:
    """An account with an app and an administrator: (client_id, client_secret, username)."""
    account_id, _ = server.new_account()
    client_id, secret = server.call(create_app(server.store, account_id, REDIRECT))
    username = f"admin-{uuid.uuid4().hex[:8]}"
    server.call(server.store.create_admin(account_id, username, hash_password(PASSWORD)))
    return client_id, secret, username


@pytest.fixture
def app(server):
    return new_app(server)


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
    page = open_page(anonymous, client_id)
    assert "text/html" in page.headers["content-type"]
    assert client_id in page.text
    wrong = sign_in(anonymous, client_id, username, "nope")
    assert wrong.status_code == 401 and "Wrong administrator or password." in wrong.text
    consent = sign_in(anonymous, client_id, username, PASSWORD)
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
    let_token_cache_lapse(server)
    for headers in (bearer, new_bearer):  # every access token of the refresh token goes too
        response = anonymous.get(f"/platform/contacts/email:{email}", headers=headers)
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
    again = exchange(anonymous, client_id, secret, refresh_token=body["refresh_token"])
    assert (again.status_code, again.json()) == (401, INVALID_REFRESH)
    again = exchange(anonymous, client_id, secret, code=code)  # a code works once
    assert (again.status_code, again.json()) == (401, EXPIRED_CODE)


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
    server.call(server.store.create_admin(other_account, outsider, hash_password(PASSWORD)))
    response = sign_in(anonymous, client_id, outsider, PASSWORD)
    assert response.status_code == 401 and "Wrong administrator or password." in response.text


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
                     env={**os.environ, "RDEVENTS_ADMIN_PASSWORD": PASSWORD})
    assert admin.returncode == 0, admin.stderr
    again = rdevents("admins", "create", "--account", "crm", "--username", "ana",
                     env={**os.environ, "RDEVENTS_ADMIN_PASSWORD": PASSWORD})
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
    short_lived = {"Authorization": "Bearer rdv_short-lived"}
    wait_until(lambda: anonymous.get(f"/platform/contacts/email:nobody-{uuid.uuid4().hex}@"
                                     "example.com", headers=short_lived).status_code == 401)
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


# --- the consent page's defences ---------------------------------------------------------------


def test_consent_page_cannot_be_framed_or_cached(server, app, anonymous):
    client_id, _, username = app
    wrong = sign_in(anonymous, client_id, username, "nope")
    for page in (open_page(anonymous, client_id), wrong):
        csp = page.headers["content-security-policy"]
        style = re.search(r"<style>(.*)</style>", page.text).group(1)
        style_hash = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert csp == (f"default-src 'none'; style-src 'sha256-{style_hash}'; "
                       "frame-ancestors 'none'; base-uri 'none'")
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        cookie = page.headers["set-cookie"]
        assert cookie.startswith(f"rdevents_csrf={csrf_token(page)}; ")
        assert {"HttpOnly", "Path=/auth/dialog", "SameSite=strict"} <= {
            part.strip() for part in cookie.split(";")}
        assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is set
    redirect = sign_in(anonymous, client_id, username, PASSWORD)
    assert (redirect.status_code, redirect.headers["cache-control"]) == (302, "no-store")


@pytest.mark.parametrize("forgery", ["no cookie", "wrong field", "no field"])
def test_a_form_without_its_pages_token_is_refused(server, app, anonymous, forgery):
    """A form posted from another site, or from a page that is too old, signs nobody in."""
    client_id, _, username = app
    token = csrf_token(open_page(anonymous, client_id, state="s&t"))
    if forgery == "no cookie":
        anonymous.cookies.clear()
    fields = {"client_id": client_id, "redirect_uri": REDIRECT, "state": "s&t",
              "username": username, "password": PASSWORD,
              "csrf_token": {"no field": "", "wrong field": token[:-1] + "x"}.get(forgery, token)}
    response = anonymous.post("/auth/dialog", data=fields)
    assert response.status_code == 403
    assert "location" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"
    again = (f"/auth/dialog?client_id={client_id}&amp;redirect_uri=https%3A%2F%2Fcrm.example"
             "%2Fcallback&amp;state=s%26t")
    assert f'<a href="{again}">Reload the page</a> and sign in again.' in response.text
    reloaded = anonymous.get(again.replace("&amp;", "&"))
    assert reloaded.status_code == 200 and 'name="state" value="s&amp;t"' in reloaded.text


def test_each_page_has_its_own_token(server, app, anonymous):
    """A page opened again replaces the token: a form of the older page is refused."""
    client_id, _, username = app
    older = csrf_token(open_page(anonymous, client_id))
    assert csrf_token(open_page(anonymous, client_id)) != older
    response = anonymous.post("/auth/dialog", data={
        "csrf_token": older, "client_id": client_id, "redirect_uri": REDIRECT,
        "username": username, "password": PASSWORD})
    assert response.status_code == 403


# --- /auth/token answers are never cached -------------------------------------------------------


@pytest.mark.parametrize("case", ["code", "refresh", "wrong secret", "used code", "missing",
                                  "bad json", "too large"])
def test_token_answers_are_not_cached(server, app, anonymous, case):
    client_id, secret, _ = app
    grant = exchange(anonymous, client_id, secret, code=code_for(server, client_id))
    requests = {
        "code": lambda: grant,
        "refresh": lambda: exchange(anonymous, client_id, secret,
                                    refresh_token=grant.json()["refresh_token"]),
        "wrong secret": lambda: exchange(anonymous, client_id, "wrong", code="c"),
        "used code": lambda: exchange(anonymous, client_id, secret, code="nope"),
        "missing": lambda: anonymous.post("/auth/token", json={"client_id": client_id}),
        "bad json": lambda: anonymous.post("/auth/token", content=b"{",
                                           headers={"Content-Type": "application/json"}),
        "too large": lambda: anonymous.post("/oauth2/token", json={"code": "x" * 300_000}),
    }
    response = requests[case]()
    status = {"code": 200, "refresh": 200, "missing": 400, "bad json": 400,
              "too large": 413}.get(case, 401)
    assert response.status_code == status, response.text
    assert (response.headers["cache-control"], response.headers["pragma"]) == (
        "no-store", "no-cache")


# --- a code used twice --------------------------------------------------------------------------


def test_a_code_used_again_revokes_the_tokens_it_gave(server, app, anonymous):
    """RFC 6749 §4.1.2: whoever replays a code, the tokens it gave stop working at once."""
    client_id, secret, _ = app
    code = code_for(server, client_id)
    grant = exchange(anonymous, client_id, secret, code=code).json()
    refreshed = exchange(anonymous, client_id, secret,
                         refresh_token=grant["refresh_token"]).json()
    email = f"replay-{uuid.uuid4().hex[:6]}@example.com"
    for access_token in (grant["access_token"], refreshed["access_token"]):
        assert anonymous.post("/platform/events", json=conversion(email), headers={
            "Authorization": f"Bearer {access_token}"}).status_code == 200  # cached as live

    again = exchange(anonymous, client_id, secret, code=code)
    assert (again.status_code, again.json()) == (401, EXPIRED_CODE)
    for access_token in (grant["access_token"], refreshed["access_token"]):
        response = anonymous.get(f"/platform/contacts/email:{email}",
                                 headers={"Authorization": f"Bearer {access_token}"})
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
    response = exchange(anonymous, client_id, secret, refresh_token=grant["refresh_token"])
    assert (response.status_code, response.json()) == (401, INVALID_REFRESH)


def test_exchanges_of_one_code_at_once_give_one_grant_and_then_revoke_it(server, app):
    client_id, secret, _ = app
    code = code_for(server, client_id)
    responses: list[httpx.Response] = []
    start = threading.Barrier(4)

    def exchange_at_once() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            start.wait()
            responses.append(exchange(client, client_id, secret, code=code))

    threads = [threading.Thread(target=exchange_at_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]
    assert [r.json() for r in responses if r.status_code == 401] == [EXPIRED_CODE] * 3
    grant = next(r.json() for r in responses if r.status_code == 200)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = exchange(client, client_id, secret, refresh_token=grant["refresh_token"])
    assert (response.status_code, response.json()) == (401, INVALID_REFRESH)


def test_another_apps_replay_of_a_code_revokes_nothing(server, app, anonymous):
    """A code is its app's: presented by another app it is unknown, and its tokens stay."""
    client_id, secret, _ = app
    code = code_for(server, client_id)
    grant = exchange(anonymous, client_id, secret, code=code).json()
    other_id, other_secret, _ = new_app(server)
    response = exchange(anonymous, other_id, other_secret, code=code)
    assert (response.status_code, response.json()) == (401, EXPIRED_CODE)
    assert exchange(anonymous, client_id, secret,
                    refresh_token=grant["refresh_token"]).status_code == 200


# --- revocation and the token cache -------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def cached_server(request, tmp_path_factory):
    """A server that trusts a live token for a minute without reading the database again."""
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("cached"),
                                token_cache_seconds=60)
    running = Server(settings).start()
    yield running
    running.stop()


def revoke_behind_its_back(server, access_token: str) -> None:
    """Revoke in the database only, as another process would: this server's cache knows not."""
    assert server.call(server.store.revoke_token(hash_secret(access_token)))


def test_revoking_an_unknown_token_leaves_the_cache_alone(cached_server):
    server = cached_server
    client_id, secret, _ = new_app(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        grant = exchange(client, client_id, secret, code=code_for(server, client_id)).json()
        bearer = {"Authorization": f"Bearer {grant['access_token']}"}
        email = f"cache-{uuid.uuid4().hex[:6]}@example.com"
        assert client.post("/platform/events", json=conversion(email),
                           headers=bearer).status_code == 200
        revoke_behind_its_back(server, grant["access_token"])
        for hint in ("access_token", "refresh_token", None):
            answer = client.post("/auth/revoke", data={"token": "rdv_unknown",
                                                       **({"token_type_hint": hint} if hint
                                                          else {})})
            assert (answer.status_code, answer.json()) == (200, {})
        # Still trusted from the cache: an anonymous revocation did not empty it.
        assert client.get(f"/platform/contacts/email:{email}", headers=bearer
                          ).status_code == 200
        assert client.post("/auth/revoke", data={"token": grant["access_token"]}
                           ).status_code == 200
        response = client.get(f"/platform/contacts/email:{email}", headers=bearer)
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)


def test_revoking_a_refresh_token_forgets_its_access_tokens_only(cached_server):
    server = cached_server
    client_id, secret, _ = new_app(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        grant = exchange(client, client_id, secret, code=code_for(server, client_id)).json()
        refreshed = exchange(client, client_id, secret,
                             refresh_token=grant["refresh_token"]).json()
        other = exchange(client, client_id, secret, code=code_for(server, client_id)).json()
        email = f"cache-{uuid.uuid4().hex[:6]}@example.com"
        tokens = [grant["access_token"], refreshed["access_token"], other["access_token"]]
        for access_token in tokens:
            assert client.post("/platform/events", json=conversion(email), headers={
                "Authorization": f"Bearer {access_token}"}).status_code == 200
        revoke_behind_its_back(server, other["access_token"])
        assert client.post("/auth/revoke", data={"token": grant["refresh_token"],
                                                 "token_type_hint": "refresh_token"}
                           ).status_code == 200
        statuses = [client.get(f"/platform/contacts/email:{email}", headers={
            "Authorization": f"Bearer {access_token}"}).status_code for access_token in tokens]
        # The other grant's token is still trusted from the cache: only the revoked refresh
        # token's access tokens were forgotten.
        assert statuses == [401, 401, 200]
