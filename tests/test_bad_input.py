"""Bad input gets a 4xx on both backends, never a 5xx: HEAD requests, the NUL character in paths,
queries and form fields, malformed e-mails in contact paths, custom field numbers beyond 64 bits,
JSON nested deeper than the documents that show it."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from starlette.routing import Mount, Route

from conftest import conversion
from rdevents.contacts import ContactChange
from rdevents.ingest import change_contact

NUL_REFUSED = {"errors": {
    "error_type": "BAD_REQUEST",
    "error_message": "The NUL character (%00) is not allowed in the path, the query string or "
                     "form fields."}}
LEAD_NOT_FOUND = {"errors": {"error_type": "RESOURCE_NOT_FOUND",
                             "error_message": "Lead not found."}}
INVALID_PATH_EMAIL = {"errors": {"email": [{"error_type": "INVALID_EMAIL_FORMAT",
                                             "error_message": "email must be a valid e-mail "
                                                              "address."}]}}
BAD_EMAILS = ["not-an-email", "", "ana@example", "a" * 3_000 + "@example.com",
              "ana@exa mple.com"]
INT64_RANGE = "Must be a whole number from -9223372036854775808 to 9223372036854775807."
# Integers beyond 64 bits unsigned are refused as the body is parsed (test_validation.py).
BEYOND_INT64 = ["1e300", "-1e300", "1e19", "9223372036854775808", "-9.3e18", "9.3e18"]


def new_email() -> str:
    return f"bad-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def anonymous(server):
    with httpx.Client(base_url=server.url, timeout=30, verify=False) as client:
        yield client


def served_routes(server, value: str) -> list[tuple[str, str]]:
    """(method, path) of every route but HEAD (no body to read), `value` in each parameter."""
    found = []
    for route in server.app.routes:
        path = re.sub(r"{[^}]+}", value, route.path)
        if isinstance(route, Mount):
            found.append(("GET", f"{path}/{value}"))
        elif isinstance(route, Route):
            found.extend((method, path) for method in sorted(route.methods) if method != "HEAD")
    return found


# --- HEAD ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/platform/contacts", "/platform/contacts/fields",
                                  "/integrations/webhooks", "/platform/contacts/email:{email}",
                                  "/platform/contacts/email:{email}/funnels/default",
                                  "/auth/dialog?client_id=x&redirect_uri=y", "/healthz"])
def test_head_answers_as_get_does_without_a_body(api, path):
    email = new_email()
    assert api.send_event(conversion(email)).status_code == 200
    path = path.format(email=email)
    got, head = api.get(path), api.head(path)
    assert got.status_code < 500
    assert (head.status_code, head.headers["content-type"], head.content) == (
        got.status_code, got.headers["content-type"], b"")


# --- NUL -----------------------------------------------------------------------------------------


def test_a_nul_in_any_path_is_refused_before_anything_else(server, api):
    routes = served_routes(server, "a%00b")
    assert len(routes) > 25
    for method, path in routes:
        if "%00" not in path:
            path += "%00"
        response = api.request(method, path)
        assert (response.status_code, response.json()) == (400, NUL_REFUSED), (method, path)


def test_a_nul_in_any_query_string_is_refused(server, api):
    for method, path in served_routes(server, "x"):
        for query in ("email=a%00", "%00=1", "page=1&tag=%00x"):
            response = api.request(method, f"{path}?{query}")
            assert (response.status_code, response.json()) == (400, NUL_REFUSED), (method, path)


def test_the_refusal_of_a_nul_on_the_conversions_route_still_answers_cors(anonymous):
    response = anonymous.post("/platform/conversions?api_key=%00", json={})
    assert (response.status_code, response.json()) == (400, NUL_REFUSED)
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path, form", [
    ("/auth/dialog", "client_id=a%00&redirect_uri=https://x.example"),
    ("/auth/dialog", "client_id=a&redirect_uri=b&username=%00&password=p"),
    ("/auth/token", "client_id=a%00&client_secret=s&code=c"),
    ("/oauth2/token", "client_id=a&client_secret=s&refresh_token=r%00"),
    ("/auth/revoke", "token=t%00&token_type_hint=access_token"),
    ("/auth/revoke", "to%00ken=t"),
])
def test_a_nul_in_a_form_field_is_refused(anonymous, path, form):
    response = anonymous.post(path, content=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.json()) == (400, NUL_REFUSED)


@pytest.mark.parametrize("path, body", [
    ("/auth/token", {"client_id": "a\u0000", "client_secret": "s", "code": "c"}),
    ("/auth/revoke", {"token": "t\u0000"}),
])
def test_a_nul_in_an_oauth_json_field_is_refused(anonymous, path, body):
    response = anonymous.post(path, json=body)
    assert (response.status_code, response.json()) == (400, NUL_REFUSED)


def test_an_oauth_json_field_that_is_not_text_counts_as_absent(anonymous):
    deep = b"[" * 1_000 + b"]" * 1_000
    response = anonymous.post("/auth/token", content=b'{"client_id": ' + deep
                              + b', "client_secret": "s", "code": "c"}',
                              headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"errors": [{
        "error_type": "CANNOT_BE_NULL", "error_message": "Cannot be null.",
        "path": "body.client_id"}]})


# --- e-mails in contact paths --------------------------------------------------------------------


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_reading_or_erasing_a_malformed_email_is_lead_not_found(api, email):
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/events"),
                           ("GET", "/funnels/default")]:
        response = api.request(method, f"/platform/contacts/email:{email}{suffix}")
        assert (response.status_code, response.json()) == (404, LEAD_NOT_FOUND), (method, suffix)


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_writing_a_malformed_email_is_refused_as_a_body_email_is(api, email):
    for method, suffix, body in [("PATCH", "", {"name": "Ana"}),
                                 ("POST", "/tag", {"tags": ["x"]}),
                                 ("PUT", "/funnels/default", {"opportunity": True})]:
        response = api.request(method, f"/platform/contacts/email:{email}{suffix}", json=body)
        assert (response.status_code, response.json()) == (400, INVALID_PATH_EMAIL), method
    in_body = api.post("/platform/contacts", json={"email": email})
    assert (in_body.status_code, in_body.json()) == (400, INVALID_PATH_EMAIL)
    assert api.get("/platform/contacts").json()["contacts"] == []


def test_a_path_email_is_trimmed_and_lower_cased_as_an_events(api):
    email = new_email()
    created = api.patch(f"/platform/contacts/email:%20{email.upper()}%20", json={"name": "Ana"})
    assert (created.status_code, created.json()["email"]) == (200, email)
    assert api.get(f"/platform/contacts/email:{email.upper()}").json()["name"] == "Ana"


def test_a_contact_stored_with_an_empty_email_can_be_erased_by_its_uuid(server):
    """Older versions stored what PATCH /platform/contacts/email: named."""
    account_id, token = server.new_account()
    server.call(change_contact(server.store, account_id, "",
                               ContactChange("upsert", {"name": "Nobody"})))
    with server.client(token) as api:
        (contact,) = api.get("/platform/contacts").json()["contacts"]
        assert contact["email"] == ""
        assert api.delete(f"/platform/contacts/uuid:{contact['uuid']}").status_code == 204
        assert api.get("/platform/contacts").json()["contacts"] == []


# --- custom field numbers ------------------------------------------------------------------------


def send_raw(api, path: str, method: str, json_text: str):
    return api.request(method, path, content=json_text.encode(),
                       headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("number", BEYOND_INT64)
def test_a_custom_field_number_beyond_64_bits_is_refused_in_events(api, number):
    email = new_email()
    body = ('{"event_type": "CONVERSION", "event_family": "CDP", "payload": {'
            f'"conversion_identifier": "x", "email": "{email}", "cf_seats": {number}}}}}')
    response = send_raw(api, "/platform/events", "POST", body)
    assert (response.status_code, response.json()) == (400, {"errors": [{
        "error_type": "INVALID_FORMAT", "error_message": INT64_RANGE,
        "validation_rules": {"format": "int64"}, "path": "$.body.payload.cf_seats"}]})
    batch = send_raw(api, "/platform/events/batch", "POST", f"[{body}]")
    assert batch.status_code == 400
    assert [e["path"] for e in batch.json()["errors"]] == ["$.body[0].payload.cf_seats"]
    assert api.contact(email).status_code == 404


@pytest.mark.parametrize("number", BEYOND_INT64)
def test_a_custom_field_number_beyond_64_bits_is_refused_by_the_contacts_api(api, number):
    email = new_email()
    for method, path in [("PATCH", f"/platform/contacts/email:{email}"),
                         ("POST", "/platform/contacts")]:
        body = f'{{"cf_seats": {number}' + (f', "email": "{email}"}}' if method == "POST" else "}")
        response = send_raw(api, path, method, body)
        assert (response.status_code, response.json()) == (400, {"errors": {"cf_seats": [{
            "error_type": "INVALID_FORMAT", "error_message": INT64_RANGE}]}}), method
    assert api.contact(email).status_code == 404


def test_the_ends_of_the_64_bit_range_are_integers(api):
    email = new_email()
    response = send_raw(api, f"/platform/contacts/email:{email}", "PATCH",
                        '{"cf_most": 9223372036854775807, "cf_least": -9223372036854775808, '
                        '"cf_float": 4.0e18}')
    assert response.status_code == 200, response.text
    assert (response.json()["cf_most"], response.json()["cf_least"],
            response.json()["cf_float"]) == (2**63 - 1, -(2**63), 4 * 10**18)


# --- nesting -------------------------------------------------------------------------------------


def nested(levels: int) -> str:
    """JSON arrays nested `levels` deep."""
    return "[" * levels + "]" * levels


def test_a_payload_is_kept_only_as_deep_as_every_document_can_show_it(api):
    email = new_email()

    def event(depth: int) -> str:  # the payload object is one level
        return ('{"event_type": "CONVERSION", "event_family": "CDP", "payload": {'
                f'"conversion_identifier": "x", "email": "{email}", "extra": '
                f'{nested(depth - 1)}}}}}')

    too_deep = send_raw(api, "/platform/events", "POST", event(253))
    assert (too_deep.status_code, too_deep.json()) == (400, {"errors": [{
        "error_type": "INVALID_FORMAT", "error_message": "Must not nest JSON deeper than 252 "
        "levels.", "validation_rules": {"max_depth": 252}, "path": "$.body.payload"}]})
    deepest = send_raw(api, "/platform/events", "POST", event(252))
    assert deepest.status_code == 200, deepest.text
    shown = api.get(f"/platform/events/{deepest.json()['event_uuid']}")
    assert shown.status_code == 200
    history = api.get(f"/platform/contacts/email:{email}/events")
    assert (history.status_code, len(history.json())) == (200, 1)


def test_validation_rules_are_kept_only_as_deep_as_the_fields_list_can_show_them(api):
    def field(name: str, depth: int) -> str:  # validation_rules is one level
        return ('{"api_identifier": "' + name + '", "data_type": "STRING", '
                '"presentation_type": "TEXT_INPUT", "name": {"pt-BR": "x"}, '
                '"label": {"pt-BR": "x"}, "validation_rules": {"x": '
                f'{nested(depth - 1)}}}}}')

    too_deep = send_raw(api, "/platform/contacts/fields", "POST", field("cf_deeper", 252))
    assert (too_deep.status_code, too_deep.json()) == (400, {"errors": {"validation_rules": [{
        "error_type": "INVALID", "error_message": "validation_rules must not nest deeper than "
                                                  "251 levels."}]}})
    deepest = send_raw(api, "/platform/contacts/fields", "POST", field("cf_deepest", 251))
    assert deepest.status_code == 201, deepest.text
    patched = send_raw(api, f"/platform/contacts/fields/{deepest.json()['uuid']}", "PATCH",
                       f'{{"validation_rules": {{"x": {nested(251)}}}}}')
    assert patched.status_code == 400
    listed = api.get("/platform/contacts/fields")
    assert listed.status_code == 200
    assert "cf_deepest" in {f["api_identifier"] for f in listed.json()["fields"]}
