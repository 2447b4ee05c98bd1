"""The dashboard (/ui/) over plain HTTP, on SQLite and PostgreSQL: signing in and out, the session
cookie and CSRF tokens, what each page reads from the store, and that an administrator sees
their own account's data only. (tests/test_dashboard_browser.py drives the pages in Chromium.)"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from conftest import Server, conversion, event
from consent import forwarded, new_address
from dashboard import PASSWORD, Admin, browser, csrf_token, new_admin, sign_in, signed_in
from hooks import settled, subscribe
from rdevents.passwords import hash_password
from receiver import wait_until
from relaying import create_relay, wait_for_relay
from upstream_stub import json_reply

PAGES = ["/ui/", "/ui/events", "/ui/contacts", "/ui/funnel", "/ui/webhooks", "/ui/requests",
         "/ui/relays"]


def new_email(prefix: str = "ui") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def admin(server: Server) -> Admin:
    return new_admin(server)


@pytest.fixture
def ui(server: Server, admin: Admin) -> Iterator[httpx.Client]:
    """A client signed in as `admin`."""
    with signed_in(server, admin) as client:
        yield client


@pytest.fixture
def api(server: Server, admin: Admin):  # the API client of the administrator's account
    with server.client(admin.token) as client:
        yield client


def send(api: httpx.Client, body: dict) -> str:
    response = api.post("/platform/events", json=body)
    assert response.status_code == 200, response.text
    return response.json()["event_uuid"]


def figure(page: httpx.Response, title: str) -> str:
    """The number a card of the page shows under its title."""
    found = re.search(rf"<h2>{re.escape(title)}</h2>\s*<p class=\"figure\">([^<]*)", page.text)
    assert found is not None, page.text
    return found.group(1).strip()


def listed_events(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-uuid="([^"]+)"', page.text)


def contact_links(page: httpx.Response) -> list[str]:
    return re.findall(r'<a href="/ui/contacts/([0-9a-f-]{36})">', page.text)


def assert_page(response: httpx.Response, status: int = 200) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]


# --- signing in and out ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/ui/events?event_type=SALE",
                                  "/ui/contacts/0b5d6c0e-4a8e-4d2b-9d6e-0c1f2a3b4c5d"])
def test_pages_send_visitors_without_a_session_to_sign_in(server, path):
    with browser(server) as client:
        response = client.get(path)
    assert response.status_code == 303
    expected = "/ui/sign-in" if path == "/ui/" else f"/ui/sign-in?{urlencode({'next': path})}"
    assert response.headers["location"] == expected


def test_scripts_without_a_session_get_401(server):
    with browser(server) as client:
        response = client.get("/ui/events/live", headers={"Accept": "application/json"})
        assert response.status_code == 401
        assert response.json() == {"error": "signed_out"}
        client.cookies.set("rdevents_session", "x" * 43)
        forged = client.get("/ui/")
        assert forged.status_code == 303


def test_the_sign_in_page(server):
    with browser(server) as client:
        page = client.get("/ui/sign-in")
    assert_page(page)
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert '<button type="submit" class="primary">Sign in</button>' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"rdevents_csrf={csrf_token(page)};")
    assert "HttpOnly" in cookie and "Path=/ui/sign-in" in cookie and "SameSite=strict" in cookie


def test_signing_in_lands_on_the_overview_with_a_session_cookie(server, admin):
    with browser(server) as client:
        response = sign_in(client, admin.username)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/ui/"
        cookie = response.headers["set-cookie"]
        assert re.match(r"rdevents_session=[A-Za-z0-9_-]{43}; HttpOnly; Max-Age=43200; "
                        r"Path=/ui; SameSite=lax$", cookie), cookie
        overview = client.get("/ui/")
    assert_page(overview)
    assert "<h1>Overview</h1>" in overview.text
    assert f'<span class="user"><span class="visually-hidden">signed in as </span>' \
           f'{admin.username}</span>' in overview.text


def test_the_session_cookie_is_secure_over_https(server, admin):
    # As a TLS proxy on the server's host says (uvicorn believes 127.0.0.1's X-Forwarded-*);
    # the page is fetched over http, whose CSRF cookie the client may send back.
    with browser(server) as client:
        page = client.get("/ui/sign-in")
        response = client.post("/ui/sign-in", headers={"X-Forwarded-Proto": "https"}, data={
            "csrf_token": csrf_token(page), "username": admin.username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    assert "; Secure" in response.headers["set-cookie"]


def test_a_wrong_password_is_refused_with_the_form_again(server, admin):
    with browser(server) as client:
        response = sign_in(client, admin.username, "not the password")
        assert_page(response, 401)
        assert '<p class="error" role="alert" id="sign-in-error">Wrong username or password.' \
               "</p>" in response.text
        assert "rdevents_session" not in response.headers.get("set-cookie", "")
        assert f'value="{admin.username}"' in response.text  # kept for the next try
        assert csrf_token(response)
        unknown = sign_in(client, f"nobody-{uuid.uuid4().hex[:6]}")
        assert unknown.status_code == 401
        assert client.get("/ui/").status_code == 303


def test_a_sign_in_without_the_pages_token_is_refused(server, admin):
    with browser(server) as client:
        response = client.post("/ui/sign-in", data={"username": admin.username,
                                                    "password": PASSWORD})
        assert_page(response, 403)
        assert "This form expired" in response.text
        other = client.get("/ui/sign-in")
        client.cookies.clear()
        response = client.post("/ui/sign-in", data={
            "csrf_token": csrf_token(other), "username": admin.username, "password": PASSWORD})
        assert response.status_code == 403
        assert client.get("/ui/").status_code == 303


def test_sign_in_is_throttled_like_the_consent_page(server, admin):
    address = new_address()
    with browser(server) as client:
        for _ in range(5):
            response = sign_in(client, admin.username, "wrong", headers=forwarded(address))
            assert response.status_code == 401
        refused = sign_in(client, admin.username, PASSWORD, headers=forwarded(address))
        assert_page(refused, 429)
        assert refused.headers["retry-after"] in {"899", "900"}
        assert "Too many failed sign-ins for this administrator. Try again in 15 minutes." \
               in refused.text
        assert "rdevents_session" not in refused.headers.get("set-cookie", "")


@pytest.mark.parametrize("target, landing", [
    ("/ui/contacts?tag=vip", "/ui/contacts?tag=vip"),
    ("/ui/funnel", "/ui/funnel"),
    ("https://evil.example/ui/", "/ui/"),
    ("//evil.example/ui/", "/ui/"),
    ("/ui//evil.example", "/ui/"),
    ("/ui/\\evil", "/ui/"),
    ("/platform/events", "/ui/"),
])
def test_signing_in_goes_back_to_a_dashboard_page_only(server, admin, target, landing):
    with browser(server) as client:
        response = sign_in(client, admin.username, next_page=target)
    assert response.status_code == 303
    assert response.headers["location"] == landing


def test_a_signed_in_visitor_skips_the_sign_in_page(ui):
    response = ui.get("/ui/sign-in", params={"next": "/ui/funnel"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/funnel"


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(server, ui):
    session = ui.cookies["rdevents_session"]
    overview = ui.get("/ui/")
    refused = ui.post("/ui/sign-out", data={"csrf_token": "not it"})
    assert_page(refused, 403)
    assert ui.get("/ui/").status_code == 200
    response = ui.post("/ui/sign-out", data={"csrf_token": csrf_token(overview)})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in?signed_out=1"
    assert response.headers["set-cookie"].startswith('rdevents_session=""; ')
    assert "Max-Age=0" in response.headers["set-cookie"]
    with browser(server) as copy:
        copy.cookies.set("rdevents_session", session)
        assert copy.get("/ui/").status_code == 303
    page = ui.get("/ui/sign-in?signed_out=1")
    assert '<p class="notice" role="status">You have signed out.</p>' in page.text


def test_a_new_password_or_a_deletion_ends_the_administrators_sessions(server, admin):
    with signed_in(server, admin) as first, signed_in(server, admin) as second:
        assert first.get("/ui/").status_code == 200
        server.call(server.store.set_admin_password(admin.username,
                                                    hash_password("another password 1")))
        assert first.get("/ui/").status_code == 303
        assert second.get("/ui/").status_code == 303
    with browser(server) as client:
        assert sign_in(client, admin.username).status_code == 401
        assert sign_in(client, admin.username, "another password 1").status_code == 303
        server.call(server.store.delete_admin(admin.username))
        assert client.get("/ui/").status_code == 303


def test_a_session_expires(own_server):
    server = own_server(ui_session_seconds=1.0)
    admin = new_admin(server)
    with signed_in(server, admin) as client:
        assert client.get("/ui/").status_code == 200
        time.sleep(1.2)
        response = client.get("/ui/")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in"


# --- pages ----------------------------------------------------------------------------------


def test_every_page_answers_and_carries_the_sign_out_form(ui):
    for path in PAGES:
        page = ui.get(path)
        assert_page(page)
        assert '<form method="post" action="/ui/sign-out">' in page.text
        assert re.search(rf'<a href="{re.escape(path)}" aria-current="page">', page.text), path
        # Nothing from elsewhere: scripts, styles and images are the server's own.
        assert not re.search(r'(src|href)="(https?:)?//', page.text), path


def test_static_files_are_served(ui):
    page = ui.get("/ui/events")
    for path in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text):
        response = ui.get(path)
        assert response.status_code == 200, path
    assert ui.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    assert "javascript" in ui.get("/ui/static/live.js").headers["content-type"]


def test_an_unknown_page_is_a_page_that_says_so(ui, server):
    response = ui.get("/ui/nothing/here")
    assert_page(response, 404)
    assert "<h1>No such page</h1>" in response.text
    with browser(server) as client:
        assert client.get("/ui/nothing").status_code == 404
        assert client.get("/ui", follow_redirects=False).headers["location"].endswith("/ui/")


def test_the_overview_counts_events_by_type_and_the_webhook_backlog(ui, api, receiver):
    page = ui.get("/ui/")
    assert (figure(page, "Events, last hour"), figure(page, "Events, last 24 hours"),
            figure(page, "Contacts")) == ("0", "0", "0")
    assert "No events in the last hour." in page.text
    assert "Nothing waiting to be sent" in page.text
    subscribe(api, receiver.url)
    receiver.failing = True
    emails = [new_email() for _ in range(3)]
    for email in emails:
        send(api, conversion(email))
    send(api, event("OPPORTUNITY", email=emails[0], funnel_name="default"))
    wait_until(lambda: len(receiver.deliveries) >= 3)  # each failed once: pending, retried later
    page = ui.get("/ui/")
    assert_page(page)
    assert (figure(page, "Events, last hour"), figure(page, "Events, last 24 hours"),
            figure(page, "Contacts")) == ("4", "4", "3")
    assert figure(page, "Webhook backlog") == "3"
    assert re.search(r"Oldest waiting for \d+ s", page.text)
    rows = re.findall(r'<tr><th scope="row"><a href="/ui/events\?event_type=(\w+)">\1</a></th>'
                      r'\s*<td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', page.text)
    assert rows == [("CONVERSION", "3", "3"), ("OPPORTUNITY", "1", "1")]
    assert page.text.count('<svg class="chart"') == 2
    assert '<title id="chart-hour-title">Events per minute, last hour</title>' in page.text
    assert "4 events from" in page.text  # the charts' descriptions


def test_the_events_list_filters_by_type_and_email(ui, api):
    ana, bia = new_email("ana"), new_email("bia")
    first = send(api, conversion(ana))
    second = send(api, conversion(bia))
    third = send(api, event("OPPORTUNITY", email=ana, funnel_name="default"))
    page = ui.get("/ui/events")
    assert_page(page)
    assert listed_events(page) == [third, second, first]
    assert f'<a href="/ui/events/{third}">' in page.text
    assert ui.get("/ui/events", params={"event_type": "opportunity"}).text.count("data-uuid") == 1
    assert listed_events(ui.get("/ui/events", params={"email": f" {ana.upper()} "})) == [
        third, first]
    both = ui.get("/ui/events", params={"email": ana, "event_type": "CONVERSION"})
    assert listed_events(both) == [first]
    nobody = ui.get("/ui/events", params={"email": "nobody@example.com"})
    assert listed_events(nobody) == []
    assert "No contact of this account has the e-mail <strong>nobody@example.com</strong>" \
        in nobody.text


def test_the_events_list_pages(ui, api):
    sent = [send(api, conversion(new_email())) for _ in range(52)]
    first = ui.get("/ui/events")
    assert listed_events(first) == sent[::-1][:50]
    assert '<a href="/ui/events?page=2" rel="next">Older →</a>' in first.text
    assert 'data-live="/ui/events/live"' in first.text
    second = ui.get("/ui/events", params={"page": "2"})
    assert listed_events(second) == sent[::-1][50:]
    assert '<a href="/ui/events" rel="prev">← Newer</a>' in second.text
    assert "data-live" not in second.text  # only the newest page is live
    assert listed_events(ui.get("/ui/events", params={"page": "x"})) == sent[::-1][:50]


def test_the_live_list_gets_the_events_received_since_the_newest_shown(ui, api):
    email = new_email()
    first = send(api, conversion(email, name="Ana"))
    page = ui.get("/ui/events")
    since = re.search(r'data-since="([^"]+)"', page.text).group(1)
    second = send(api, event("OPPORTUNITY", email=email, funnel_name="default"))
    live = ui.get("/ui/events/live", params={"since": since},
                  headers={"Accept": "application/json"})
    assert live.status_code == 200
    assert live.headers["content-type"] == "application/json"
    body = live.json()
    # A few seconds before `since` too, so that a late commit is not missed; the script skips
    # what it shows already.
    assert [e["uuid"] for e in body["events"]] == [second, first]
    newest = body["events"][0]
    assert body["newest"] == newest["received_at"] > since
    contact_uuid = api.contact(email).json()["uuid"]
    assert newest == {
        "uuid": second, "event_type": "OPPORTUNITY", "identifier": "OPPORTUNITY",
        "received_at": newest["received_at"],
        "received_at_shown": f"{newest['received_at'][:10]} {newest['received_at'][11:19]} UTC",
        "contact_email": email, "contact_href": f"/ui/contacts/{contact_uuid}",
        "href": f"/ui/events/{second}"}
    filtered = ui.get("/ui/events/live", params={"since": since, "event_type": "CONVERSION"})
    assert [e["uuid"] for e in filtered.json()["events"]] == [first]
    later = ui.get("/ui/events/live", params={"since": "2999-01-01T00:00:00.000000Z"}).json()
    assert later == {"events": [], "newest": "2999-01-01T00:00:00.000000Z"}


def test_an_events_stored_json(ui, api):
    email = new_email()
    event_uuid = send(api, conversion(email, name="<b>Ana</b>", cf_plan="gold"))
    page = ui.get(f"/ui/events/{event_uuid}")
    assert_page(page)
    stored = api.get(f"/platform/events/{event_uuid}").json()
    shown = re.search(r'<pre class="json"[^>]*><code>(.*?)</code></pre>', page.text, re.S)
    assert json.loads(html.unescape(shown.group(1))) == stored
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page.text and "<b>Ana</b>" not in page.text
    assert f'<a href="/ui/contacts/{stored["contact_uuid"]}">{email}</a>' in page.text
    assert ui.get(f"/ui/events/{uuid.uuid4()}").status_code == 404


def test_contacts_are_found_by_part_of_the_email_tag_and_stage(ui, api):
    marker = uuid.uuid4().hex[:8]
    ana, bia, cid = (f"ana_{marker}@example.com", f"bia.{marker}@example.org",
                     f"cid{marker}@example.com")
    send(api, conversion(ana, tags=["VIP", "b2b"]))
    send(api, conversion(bia, tags=["b2b"]))
    send(api, conversion(cid))
    send(api, event("SALE", email=bia, funnel_name="default", value=10))
    uuids = {email: api.contact(email).json()["uuid"] for email in (ana, bia, cid)}

    def found(**params: str) -> list[str]:
        page = ui.get("/ui/contacts", params=params)
        assert_page(page)
        return contact_links(page)

    assert found() == [uuids[cid], uuids[bia], uuids[ana]]
    assert found(q=marker) == [uuids[cid], uuids[bia], uuids[ana]]
    assert found(q="EXAMPLE.ORG") == [uuids[bia]]
    assert found(q=f"_{marker}") == [uuids[ana]]  # "_" is a character, not LIKE's wildcard
    assert found(q="%") == []
    assert found(tag=" vip ") == [uuids[ana]]
    assert found(tag="b2b") == [uuids[bia], uuids[ana]]
    assert found(stage="Client") == [uuids[bia]]
    assert found(stage="Lead", tag="b2b") == [uuids[ana]]
    assert found(q="nobody-at-all") == []
    page = ui.get("/ui/contacts", params={"q": "nobody-at-all"})
    assert "No contact matches this search." in page.text
    assert "3 contacts in this account." in page.text


def test_a_contacts_page(ui, api):
    email = new_email()
    first = send(api, conversion(
        email, name="Ana <Souza>", city="Recife", tags=["VIP"], cf_plan="gold",
        legal_bases=[{"category": "communications", "type": "consent", "status": "granted"}]))
    second = send(api, event("OPPORTUNITY", email=email, funnel_name="default"))
    third = send(api, event("SALE", email=email, funnel_name="default", value=99.5))
    contact = api.contact(email).json()
    page = ui.get(f"/ui/contacts/{contact['uuid']}")
    assert_page(page)
    assert "<h1>Ana &lt;Souza&gt;</h1>" in page.text
    assert "<dt>City</dt><dd>Recife</dd>" in page.text
    assert '<th scope="row"><code>cf_plan</code></th><td>gold</td>' in page.text
    assert '<a class="tag" href="/ui/contacts?tag=vip">vip</a>' in page.text
    assert "<td>communications</td><td>consent</td><td>granted</td>" in page.text
    assert re.findall(r'<p class="what">([^<]*)</p>', page.text) == [
        "Lead → Client · value 99.5", "Marked as an opportunity", "Became a contact, as Lead"]
    timeline = page.text[page.text.index('id="timeline-title"'):]
    assert re.findall(r'<a href="/ui/events/([0-9a-f-]+)">', timeline) == [third, second, first]
    assert ui.get(f"/ui/contacts/{uuid.uuid4()}").status_code == 404
    assert ui.get("/ui/contacts/not-a-uuid").status_code == 404


def test_the_funnel_counts_contacts_per_stage_and_movements(ui, api):
    emails = [new_email() for _ in range(4)]
    for email in emails:
        send(api, conversion(email))
    send(api, event("OPPORTUNITY", email=emails[0], funnel_name="default"))
    send(api, event("OPPORTUNITY", email=emails[1], funnel_name="default"))
    send(api, event("OPPORTUNITY_LOST", email=emails[1], funnel_name="default",
                    reason="price"))
    send(api, event("SALE", email=emails[2], funnel_name="default", value=5))
    page = ui.get("/ui/funnel")
    assert_page(page)
    assert (figure(page, "Lead"), figure(page, "Qualified Lead"), figure(page, "Client"),
            figure(page, "Opportunities")) == ("3", "0", "1", "1")
    assert '<svg class="chart bars" id="chart-stages"' in page.text
    legend = re.findall(r'<span>([^<]+)</span> <span class="count">(\d+)</span>', page.text)
    assert legend == [("New contacts", "4"), ("Became Client", "1"),
                      ("Marked as opportunities", "2"), ("Opportunities lost", "1")]


def test_webhooks_their_deliveries_and_a_resend(ui, api, receiver):
    webhook = subscribe(api, receiver.url)
    event_uuid = send(api, conversion(new_email()))
    delivery = settled(api, webhook, 1)[0]
    assert delivery["status"] == "delivered"
    listing = ui.get("/ui/webhooks")
    assert_page(listing)
    assert f'<a href="/ui/webhooks/{webhook["uuid"]}">{receiver.url}</a>' in listing.text
    assert re.search(r'<td class="num">0</td>\s*<td class="num">1</td>\s*<td class="num">0</td>',
                     listing.text)
    page = ui.get(f"/ui/webhooks/{webhook['uuid']}")
    assert_page(page)
    assert '<span class="status status-delivered">Delivered</span>' in page.text
    assert f'<a href="/ui/events/{event_uuid}">' in page.text
    assert '<span class="good">HTTP 200</span>' in page.text
    action = f"/ui/webhooks/{webhook['uuid']}/deliveries/{delivery['uuid']}/resend"
    assert f'<form method="post" action="{action}"' in page.text

    refused = ui.post(action, data={"csrf_token": "forged"})
    assert_page(refused, 403)
    assert len(receiver.deliveries) == 1
    response = ui.post(action, data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/ui/webhooks/{webhook['uuid']}?resent=queued&delivery={delivery['uuid']}")
    receiver.wait_for(2)
    again = ui.get(response.headers["location"])
    assert "The delivery is queued: it will be sent again shortly" in again.text
    assert settled(api, webhook, 1)[0]["status"] == "delivered"


def test_a_pending_delivery_is_not_resent(ui, api, receiver):
    receiver.failing = True
    webhook = subscribe(api, receiver.url)
    send(api, conversion(new_email()))
    receiver.wait_for(1)
    delivery = wait_until(lambda: [d for d in api.get(
        f"/integrations/webhooks/{webhook['uuid']}/deliveries").json()["deliveries"]
        if d["attempts"] == 1])[0]
    assert delivery["status"] == "pending"
    page = ui.get(f"/ui/webhooks/{webhook['uuid']}")
    assert "/resend" not in page.text.split('id="deliveries-title"')[1]
    response = ui.post(f"/ui/webhooks/{webhook['uuid']}/deliveries/{delivery['uuid']}/resend",
                       data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert "resent=pending" in response.headers["location"]


# --- rejected requests and relays ------------------------------------------------------------


def opportunity(email: str) -> dict:
    return event("OPPORTUNITY", email=email, funnel_name="default")


def listed_requests(ui: httpx.Client, query: str = "") -> list[tuple[str, str, str]]:
    """(uuid, method, path) of each request the requests page lists."""
    page = ui.get(f"/ui/requests{query}")
    return re.findall(r'<tr data-uuid="([^"]+)">.*?<span class="method">(\w+)</span> ([^<]+)<',
                      page.text, re.S)


def logged(ui: httpx.Client, count: int = 1) -> list[str]:
    """The uuids the requests page lists, once it lists `count` (the request log writes in
    batches, a fraction of a second after the requests)."""
    def enough() -> list[str] | None:
        found = [found for found, _, _ in listed_requests(ui)]
        return found if len(found) >= count else None

    return wait_until(enough, timeout=10)


def test_a_rejected_request_shows_its_error_at_its_path_and_is_replayed(ui, api):
    email = new_email()
    refused = api.post("/platform/events", json=opportunity(email),
                       headers={"X-Request-Id": "trace-ui-1"})
    assert refused.status_code == 400
    [record] = logged(ui)
    listing = ui.get("/ui/requests")
    assert_page(listing)
    assert "<h1>Rejected requests</h1>" in listing.text
    assert '<td class="ident"><span class="method">POST</span> /platform/events</td>' \
        in listing.text
    assert '<span class="bad">HTTP 400</span>' in listing.text
    assert '<span class="badge type">RESOURCE_NOT_FOUND</span>' in listing.text

    page = ui.get(f"/ui/requests/{record}")
    assert_page(page)
    assert '<h1 class="wrap"><span class="method">POST</span> /platform/events</h1>' in page.text
    assert "<code>trace-ui-1</code>" in page.text
    assert '<td class="ident muted">[redacted]</td>' in page.text  # the Authorization header
    assert api.headers["authorization"].split()[1] not in page.text
    message = html.escape(refused.json()["errors"][0]["error_message"], quote=False)
    assert (f'<mark class="fault" id="fault-at-1">"email": "{email}"</mark>,'
            f'<span class="fault-note"> ← 1. {message}</span>') in page.text
    assert 'At <a href="#fault-at-1"><code>$.body.payload.email</code></a>' in page.text
    action = f"/ui/requests/{record}/replay"
    assert f'<form method="post" action="{action}#replay-title">' in page.text

    refused_replay = ui.post(action, data={"csrf_token": "forged"})
    assert_page(refused_replay, 403)
    assert "This form has expired" in refused_replay.text
    again = ui.post(action, data={"csrf_token": csrf_token(page)})
    assert_page(again)
    assert 'Replayed: answered <span class="bad">HTTP 400</span>' in again.text
    assert api.contact(email).status_code == 404  # nothing stored

    send(api, conversion(email))
    replayed = ui.post(action, data={"csrf_token": csrf_token(page)})
    assert_page(replayed)
    event_uuid = re.search(r'the event was stored: <a href="/ui/events/([0-9a-f-]{36})">',
                           replayed.text).group(1)
    stored = api.get(f"/platform/events/{event_uuid}").json()
    assert (stored["event_type"], stored["payload"]) == ("OPPORTUNITY",
                                                          opportunity(email)["payload"])
    assert api.get(f"/platform/contacts/email:{email}/funnels/default").json()["opportunity"]
    # A replay is not logged (the contact's 404 above is, in its own right).
    assert [found for found, method, path in listed_requests(ui)
            if (method, path) == ("POST", "/platform/events")] == [record]


def test_a_missing_field_is_shown_where_it_belongs_and_every_error_listed(ui, api):
    body = {"event_type": "CONVERSION", "event_family": "CDP", "payload": {
        "conversion_identifier": "signup",
        "legal_bases": [{"category": "communications", "type": "consent", "status": "maybe"}]}}
    assert api.post("/platform/events", json=body,
                    params={"event_type": "sale"}).status_code == 400
    [record] = logged(ui)
    page = ui.get(f"/ui/requests/{record}")
    assert_page(page)
    marks = re.findall(r'<mark class="fault" id="(fault-at-\d+)">(.*?)</mark>,?'
                       r'<span class="fault-note"> ← (.*?)</span>', page.text)
    assert marks == [("fault-at-1", '"payload": {', "1. email: Cannot be null."),
                     ("fault-at-2", '"status": "maybe"', "2. Must be one of the valid options.")]
    assert "<h3>3 errors</h3>" in page.text
    assert ('At <a href="#fault-at-1"><code>$.body.payload.email</code></a>: the body has no '
            '<code>email</code> there') in page.text
    assert "<code>valid_options</code>: granted, declined" in page.text
    assert "In the query string: <code>$.query.event_type</code>" in page.text


def test_unauthenticated_requests_are_shown_but_not_replayed(server, ui):
    path = f"/platform/events/{uuid.uuid4()}"
    with server.client("rdv_not-a-real-token") as stranger:
        assert stranger.get(path).status_code == 401
    record = wait_until(lambda: next((found for found, _, shown in listed_requests(
        ui, "?from=unauthenticated") if shown == path), None), timeout=10)
    assert listed_requests(ui) == []  # not among the account's
    page = ui.get(f"/ui/requests/{record}")
    assert_page(page)
    assert "no valid credentials" in page.text and "rdv_not-a-real-token" not in page.text
    assert "it has no account to run as: it cannot be replayed" in page.text
    assert "/replay" not in page.text
    response = ui.post(f"/ui/requests/{record}/replay", data={"csrf_token": csrf_token(page)})
    assert_page(response, 404)


def test_a_request_cut_short_says_why_it_cannot_be_replayed(own_server):
    server = own_server(request_log_max_body_bytes=40)
    admin = new_admin(server)
    with server.client(admin.token) as api, signed_in(server, admin) as ui:
        assert api.send_event(opportunity(new_email())).status_code == 400
        [record] = logged(ui)
        page = ui.get(f"/ui/requests/{record}")
        assert_page(page)
        assert "It cannot be replayed: its body was not kept whole (cut at the request log" \
               in page.text
        assert "Only its first 40 bytes of" in page.text
        assert "/replay" not in page.text
        response = ui.post(f"/ui/requests/{record}/replay",
                           data={"csrf_token": csrf_token(page)})
        assert_page(response, 409)


UPSTREAM_TOKEN = "upstream-token-never-shown"


def test_a_relay_its_dead_letters_and_their_replay(server, admin, ui, api, stub):
    refused_email = new_email("refused")
    refusing = [True]
    stub.responder = lambda request: json_reply(400, {"errors": [{
        "error_type": "INVALID_DATA_TYPE", "error_message": "Must be of type 'INTEGER'.",
        "path": "$.body.payload.cf_plan"}]}) \
        if refusing[0] and refused_email in request.emails else None
    relay = create_relay(server, admin.account_id, stub.url, UPSTREAM_TOKEN)
    refused = send(api, conversion(refused_email, cf_plan="gold"))
    send(api, conversion(new_email("fine")))
    wait_for_relay(server, relay, lambda r: r.dead == 1 and r.sent == 1)

    listing = ui.get("/ui/relays")
    assert_page(listing)
    assert f'<a href="/ui/relays/{relay}">{stub.url}</a>' in listing.text
    assert '<span class="status status-active">Active</span>' in listing.text
    assert '<span class="bad">1</span>' in listing.text
    page = ui.get(f"/ui/relays/{relay}")
    assert_page(page)
    assert f'<a href="/ui/events/{refused}" title="{refused}">Event {refused[:8]}</a>' \
        in page.text
    assert '<span class="bad">HTTP 400</span>' in page.text
    assert ('<li><span class="badge type">INVALID_DATA_TYPE</span> Must be of type '
            "&#39;INTEGER&#39;. <code>$.body.payload.cf_plan</code></li>") in page.text
    assert "a static token" in page.text
    for shown in (listing, page):
        assert UPSTREAM_TOKEN not in shown.text
    action = f"/ui/relays/{relay}/dead-letters/replay"
    assert f'<form method="post" action="{action}" class="inline">' in page.text
    assert "Replay all 1</button>" in page.text

    assert_page(ui.post(action, data={"csrf_token": "forged"}), 403)
    assert wait_for_relay(server, relay, lambda r: True).dead == 1
    refusing[0] = False
    response = ui.post(action, data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/relays/{relay}?replayed=1"
    notice = ui.get(response.headers["location"])
    assert "1 dead letter is queued again" in notice.text
    wait_for_relay(server, relay, lambda r: r.sent == 2 and r.dead == 0 and r.backlog == 0)
    assert stub.accepted.count(refused_email) == 1
    none_left = ui.post(action, data={"csrf_token": csrf_token(page), "event_uuid": refused})
    assert none_left.headers["location"] == f"/ui/relays/{relay}?replayed=0"
    assert ui.get(f"/ui/relays/{uuid.uuid4()}").status_code == 404


def test_the_overview_links_rejected_requests_and_the_relay_backlog(server, admin, ui, api):
    page = ui.get("/ui/")
    assert (figure(page, "Rejected requests"), figure(page, "Relay backlog")) == (
        "0", "0")
    assert '<a href="/ui/relays">No relays</a>' in page.text
    assert '<a href="/ui/webhooks">Nothing waiting to be sent</a>' in page.text
    relay = create_relay(server, admin.account_id, "http://127.0.0.1:9")
    server.call(server.store.set_relay_paused(relay, True, "Paused by the operator."))
    send(api, conversion(new_email()))
    for _ in range(2):
        assert api.send_event({"event_type": "NOPE"}).status_code == 400
    logged(ui, 2)
    page = ui.get("/ui/")
    assert_page(page)
    assert (figure(page, "Rejected requests"), figure(page, "Relay backlog")) == (
        "2", "1")
    assert '<a href="/ui/requests">See why</a>' in page.text
    assert re.search(r'<a href="/ui/relays">Oldest waiting for \d+ s</a>', page.text)


# --- one account's data only ----------------------------------------------------------------


def test_an_administrator_sees_their_own_accounts_data_only(server, receiver):
    mine, theirs = new_admin(server), new_admin(server)
    with server.client(theirs.token) as their_api, server.client(mine.token) as my_api:
        their_email, my_email = new_email("theirs"), new_email("mine")
        their_webhook = subscribe(their_api, receiver.url)
        their_event = send(their_api, conversion(their_email, tags=["secret-tag"]))
        send(my_api, conversion(my_email))
        their_contact = their_api.contact(their_email).json()["uuid"]
        their_delivery = settled(their_api, their_webhook, 1)[0]
    with signed_in(server, mine) as ui:
        pages = [ui.get(path) for path in (*PAGES, "/ui/contacts?tag=secret-tag",
                                           "/ui/events/live")]
        for page in pages:
            assert page.status_code == 200
            for secret in (their_email, their_event, their_contact, their_webhook["uuid"],
                           receiver.url):
                assert secret not in page.text, (page.url, secret)
        assert my_email in pages[1].text
        # Searching by their e-mail finds nothing (the page shows the e-mail searched for).
        search = ui.get("/ui/contacts", params={"q": their_email})
        assert contact_links(search) == [] and "No contact matches" in search.text
        listed = ui.get("/ui/events", params={"email": their_email})
        assert listed_events(listed) == [] and "No contact of this account" in listed.text
        for path in (f"/ui/events/{their_event}", f"/ui/contacts/{their_contact}",
                     f"/ui/webhooks/{their_webhook['uuid']}"):
            response = ui.get(path)
            assert_page(response, 404)
            assert their_email not in response.text
        token = csrf_token(pages[0])
        resend = ui.post(f"/ui/webhooks/{their_webhook['uuid']}/deliveries/"
                         f"{their_delivery['uuid']}/resend", data={"csrf_token": token})
        assert resend.status_code == 404
    assert len(receiver.deliveries) == 1  # not sent again


def test_another_accounts_requests_and_relays_are_not_found(server):
    mine, theirs = new_admin(server), new_admin(server)
    their_email = new_email("theirs")
    their_relay = create_relay(server, theirs.account_id, "http://127.0.0.1:9", UPSTREAM_TOKEN)
    server.call(server.store.set_relay_paused(their_relay, True, "Paused by the operator."))
    with server.client(theirs.token) as their_api, signed_in(server, theirs) as their_ui:
        assert their_api.send_event(opportunity(their_email)).status_code == 400
        [their_request] = logged(their_ui)
    with signed_in(server, mine) as ui:
        for path in ("/ui/requests", "/ui/requests?show=all", "/ui/relays", "/ui/"):
            page = ui.get(path)
            assert page.status_code == 200
            assert their_request not in page.text and their_relay not in page.text
        token = csrf_token(page)
        for path in (f"/ui/requests/{their_request}", f"/ui/relays/{their_relay}"):
            response = ui.get(path)
            assert_page(response, 404)
            assert their_email not in response.text
        assert ui.post(f"/ui/requests/{their_request}/replay",
                       data={"csrf_token": token}).status_code == 404
        assert ui.post(f"/ui/relays/{their_relay}/dead-letters/replay",
                       data={"csrf_token": token}).status_code == 404
