"""Request hygiene: media types, body syntax and shape, size limits, methods, unknown routes,
health, and the self-description (/openapi.json, /docs)."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from starlette.routing import Route

from conftest import Server, conversion, sqlite_settings
from rdevents.catalogue import EVENT_TYPES

UNSUPPORTED_MEDIA_TYPE = {"errors": {
    "error_type": "UNSUPPORTED_MEDIA_TYPE",
    "error_message": "The payload is in a format not supported by this method on the target "
                     "resource: send it as JSON, with the header Content-Type: "
                     "application/json."}}
UNPARSEABLE = {"errors": {
    "error_type": "BAD_REQUEST",
    "error_message": "Could not parse the body of the request according to the provided "
                     "Content-Type."}}
DEFAULT_LIMIT = 204_800
WRITE_PATHS = ["/platform/events", "/platform/events/batch"]


def assert_json_response(response: httpx.Response) -> None:
    """Every response of these tests, errors included, is JSON (RD: "incluindo casos de erro")."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == "application/json", (response.request.method,
                                              str(response.request.url), response.status_code)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    """The `api` client, but every response it gets must be JSON."""
    _, token = server.new_account()
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      event_hooks={"response": [assert_json_response]}) as http:
        yield http


def new_email() -> str:
    return f"hyg-{uuid.uuid4().hex[:12]}@example.com"


def post(client: httpx.Client, path: str, content: bytes | Any,
         content_type: str | None = "application/json") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return client.post(path, content=content, headers=headers)


def valid_body(path: str, email: str) -> bytes:
    event = conversion(email)
    return json.dumps(event if path == "/platform/events" else [event]).encode()


def assert_request_error(response: httpx.Response, status: int,
                         error_type: str | None = None) -> dict:
    """A request-level error: `errors` is an object with exactly error_type and error_message."""
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert isinstance(errors, dict) and set(errors) == {"error_type", "error_message"}
    assert isinstance(errors["error_message"], str) and errors["error_message"]
    if error_type is not None:
        assert errors["error_type"] == error_type
    return errors


# --- media type -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", None, "application/jsonx",
    "multipart/form-data; boundary=x", "application/vnd.api+json",
])
def test_unsupported_media_type(client, path, content_type):
    email = new_email()
    response = post(client, path, valid_body(path, email), content_type)
    assert response.status_code == 415
    assert response.json() == UNSUPPORTED_MEDIA_TYPE
    assert client.get(f"/platform/contacts/email:{email}").status_code == 404


def test_form_encoded_body_is_415(client):
    response = client.post("/platform/events", data={"event_type": "CONVERSION"})
    assert response.status_code == 415
    assert response.json() == UNSUPPORTED_MEDIA_TYPE


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "Application/JSON; charset=UTF-8",
                                          "application/json;charset=utf-8"])
def test_json_with_parameters_is_accepted(client, path, content_type):
    email = new_email()
    response = post(client, path, valid_body(path, email), content_type)
    assert response.status_code == 200, response.text
    assert client.get(f"/platform/contacts/email:{email}").status_code == 200


# --- body syntax and shape ------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize("content", [
    b"", b" ", b"{", b'{"event_type": "CONVERSION",}', b"{'a': 1}", b"[1, 2", b"nul",
    b"NaN", b'{"a": NaN}', b"{} {}", b"\xef\xbb\xbf{}",
    b'{"event_type": "CONVERSION", "event_family": "CDP", "payload": {"email": "\xff\xfe@x.co"}}',
    b"\xff\xfe\xfd", b'"\xc3\x28"', b'{"a": "\\ud800"}', b'{"a": "\\x41"}',
], ids=lambda c: repr(c)[:40])
def test_unparseable_body_is_bad_request(client, path, content):
    response = post(client, path, content)
    assert response.status_code == 400
    assert response.json() == UNPARSEABLE


@pytest.mark.parametrize("path, content", [
    ("/platform/events", b"[]"),
    ("/platform/events", json.dumps([conversion("a@example.com")]).encode()),
    ("/platform/events/batch", json.dumps(conversion("a@example.com")).encode()),
    ("/platform/events/batch", b"{}"),
    *[(path, scalar) for path in WRITE_PATHS
      for scalar in (b"null", b"true", b"false", b"0", b"-1.5", b'"CONVERSION"', b'""')],
])
def test_wrong_json_shape_is_bad_request(client, path, content):
    response = post(client, path, content)
    assert_request_error(response, 400, "BAD_REQUEST")


# --- size limits ----------------------------------------------------------------------------------


def padded(event: Any, size: int) -> bytes:
    """`event` as JSON padded with trailing whitespace (still valid JSON) to `size` bytes."""
    body = json.dumps(event).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def chunks(body: bytes, size: int = 16_384) -> Iterator[bytes]:
    """A body sent with chunked transfer encoding: no Content-Length for the server to trust."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", WRITE_PATHS)
def test_body_at_the_default_limit_is_accepted(client, path, streamed):
    email = new_email()
    event = conversion(email)
    body = padded(event if path == "/platform/events" else [event], DEFAULT_LIMIT)
    assert len(body) == DEFAULT_LIMIT
    response = post(client, path, chunks(body) if streamed else body)
    assert response.status_code == 200, response.text
    assert client.get(f"/platform/contacts/email:{email}").status_code == 200


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", WRITE_PATHS)
def test_body_over_the_default_limit_is_413(client, path, streamed):
    email = new_email()
    event = conversion(email)
    body = padded(event if path == "/platform/events" else [event], DEFAULT_LIMIT + 1)
    response = post(client, path, chunks(body) if streamed else body)
    assert_request_error(response, 413)
    assert client.get(f"/platform/contacts/email:{email}").status_code == 404


def test_large_valid_batch_over_the_limit_stores_nothing(client):
    emails = [new_email() for _ in range(2_000)]
    body = json.dumps([conversion(e, name="x" * 20) for e in emails]).encode()
    assert len(body) > DEFAULT_LIMIT
    assert_request_error(post(client, "/platform/events/batch", body), 413)
    for email in (emails[0], emails[-1]):
        assert client.get(f"/platform/contacts/email:{email}").status_code == 404


@pytest.fixture(scope="module")
def small_server(tmp_path_factory) -> Iterator[Server]:
    running = Server(sqlite_settings(tmp_path_factory.mktemp("small"), max_body_bytes=1000))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_configured_body_limit(small_server, path):
    _, token = small_server.new_account()
    with httpx.Client(base_url=small_server.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      event_hooks={"response": [assert_json_response]}) as client:
        at, over = new_email(), new_email()
        event_at, event_over = conversion(at), conversion(over)
        if path.endswith("batch"):
            event_at, event_over = [event_at], [event_over]
        response = post(client, path, padded(event_at, 1000))
        assert response.status_code == 200, response.text
        for body in (padded(event_over, 1001), chunks(padded(event_over, 1001), 100)):
            errors = assert_request_error(post(client, path, body), 413)
            assert "1000" in errors["error_message"]
        assert client.get(f"/platform/contacts/email:{at}").status_code == 200
        assert client.get(f"/platform/contacts/email:{over}").status_code == 404


# --- methods and routes ---------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/platform/events", {"POST"}),
    ("PUT", "/platform/events", {"POST"}),
    ("DELETE", "/platform/events", {"POST"}),
    ("PUT", "/platform/events/batch", {"POST"}),
    ("GET", "/platform/events/batch", {"POST"}),
    ("PUT", "/platform/contacts/email:x@example.com", {"GET", "PATCH", "DELETE"}),
    ("POST", "/platform/contacts/email:x@example.com/funnels/default", {"GET", "PUT"}),
    ("POST", "/healthz", {"GET"}),
])
def test_wrong_method_on_a_known_route_is_405(client, method, path, allowed):
    response = client.request(method, path)
    errors = assert_request_error(response, 405)
    assert errors["error_type"] != "RESOURCE_NOT_FOUND"
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= allow and method not in allow


def test_wrong_method_without_token_is_still_not_404(server):
    with httpx.Client(base_url=server.url, event_hooks={"response": [assert_json_response]}) as c:
        response = c.get("/platform/events")
    assert_request_error(response, 405)


@pytest.mark.parametrize("method, path", [
    ("GET", "/nope"),
    ("POST", "/platform/event"),
    ("POST", "/platform/events/batch/extra"),
    ("GET", "/platform"),
    ("GET", "/platform/contacts/email:x@example.com/unknown"),
])
def test_unknown_route_is_404_json(client, method, path):
    response = client.request(method, path)
    assert_request_error(response, 404, "RESOURCE_NOT_FOUND")


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "pending_writes": 0}


# --- /openapi.json --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict:
    response = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert_json_response(response)
    return response.json()


def resolve(document: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def validate(document: dict, schema: dict, value: Any) -> list[str]:
    """The errors of `value` against `schema`, whose $refs point into `document`."""
    validator = jsonschema.Draft202012Validator(
        {**schema, "components": copy.deepcopy(document["components"])})
    return [error.message for error in validator.iter_errors(value)]


def test_openapi_document_is_valid(openapi):
    validate_spec(openapi)
    assert openapi["openapi"] == "3.1.0"
    assert openapi["info"]["title"] and openapi["info"]["version"]
    for ref in refs(openapi):
        resolve(openapi, ref)  # every $ref points at something
    schemes = openapi["components"]["securitySchemes"]
    required_paths = {
        "/platform/events": "post", "/platform/events/batch": "post",
        "/platform/events/{event_uuid}": "get", "/platform/contacts/{contact}": "get",
        "/platform/contacts/{contact}/events": "get",
        "/platform/contacts/{contact}/funnels/default": "get", "/healthz": "get",
    }
    for path, method in required_paths.items():
        assert method in openapi["paths"][path], path
    for path, item in openapi["paths"].items():
        templated = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            assert method in {"get", "put", "post", "delete", "patch", "head", "options",
                              "trace"}, (path, method)
            assert operation["responses"], (path, method)
            for status in operation["responses"]:
                assert re.fullmatch(r"[1-5](\d\d|XX)|default", status), (path, status)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (path, method)
            for p in operation.get("parameters", []):
                assert p["in"] in {"path", "query", "header", "cookie"}
                if p["in"] == "path":
                    assert p["required"] is True
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes), (path, method)


# Served, not described: the description itself, its page and the CORS preflight.
UNDESCRIBED = {("/openapi.json", "get"), ("/docs", "get"), ("/platform/conversions", "options")}


def test_openapi_describes_every_route(server, openapi):
    served = {(re.sub(r":\w+}", "}", route.path), method.lower()) for route in server.app.routes
              if isinstance(route, Route) for method in route.methods or ()
              if method != "HEAD"}
    described = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert served - UNDESCRIBED == described


def test_openapi_has_a_schema_per_catalogue_type(openapi):
    schemas = openapi["components"]["schemas"]
    event_refs = {one["$ref"] for one in schemas["Event"]["oneOf"]}
    for name, event_type in EVENT_TYPES.items():
        schema = schemas[name]
        payload = schema["properties"]["payload"]
        required = [f.name for f in event_type.fields if f.required]
        assert sorted(payload.get("required", [])) == sorted(required), name
        assert set(payload["properties"]) == {f.name for f in event_type.fields}, name
        assert f"#/components/schemas/{name}" in event_refs
        assert schema["properties"]["event_type"] == {"const": name}


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_catalogue_example_validates_against_its_schema(openapi, name):
    schema = openapi["components"]["schemas"][name]
    example = EVENT_TYPES[name].example
    assert validate(openapi, schema, example) == []
    assert validate(openapi, openapi["components"]["schemas"]["Event"], example) == []
    # the schema is not vacuous: a missing required field or a wrong type is caught
    first_required = next(f.name for f in EVENT_TYPES[name].fields if f.required)
    broken = copy.deepcopy(example)
    del broken["payload"][first_required]
    assert validate(openapi, schema, broken) != []
    retyped = copy.deepcopy(example)
    retyped["payload"]["email"] = ["not", "a", "string"]
    assert validate(openapi, schema, retyped) != []


# --- /docs ----------------------------------------------------------------------------------------


def test_docs_page_loads_swagger_ui_served_locally(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/docs/static/swagger-ui-bundle.js">' in page.text
        assert "/openapi.json" in page.text
        bundle = http.get("/docs/static/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        assert "javascript" in bundle.headers["content-type"]
        assert b"SwaggerUIBundle" in bundle.content
        for stylesheet in re.findall(r'href="(/docs/static/[^"]+)"', page.text):
            assert http.get(stylesheet).status_code == 200, stylesheet
