"""The OpenAPI 3.1 document, derived from the event catalogue."""

from __future__ import annotations

from typing import Any

from . import __version__
from .catalogue import EVENT_FAMILY, EVENT_TYPES, EventType, Field, FieldType
from .catalogue.fields import LEGAL_BASES
from .contacts import LIFECYCLE_STAGES, RD_ATTRIBUTES
from .custom_fields import DATA_TYPES, INT64_MAX, INT64_MIN, PRESENTATION_TYPES
from .http import feed, idempotency
from .http.paging import MAX_PAGE, MAX_PAGE_SIZE
from .sandbox import EVERY_ROUTE, MAX_COUNT, MAX_LATENCY_MS
from .sandbox import KINDS as FAULT_KINDS
from .webhook_rules import RELATIONS, SECRET_LENGTHS, WEBHOOK_EVENT_TYPES

Spec = dict[str, Any]  # an object of the OpenAPI document

_SCALARS = {
    FieldType.STRING: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.FLOAT: {"type": "number"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.TIMESTAMP: {"type": "string", "format": "date-time"},
}


def field_schema(spec: Field) -> Spec:
    if spec.type in _SCALARS:
        schema: Spec = dict(_SCALARS[spec.type])
        if spec.format == "email":
            schema["format"] = "email"
    elif spec.type is FieldType.STRING_ARRAY:
        schema = {"type": "array", "items": {"type": "string"}}
    else:
        schema = {"type": "array", "items": _object_schema(spec.items)}
    if spec.options is not None:
        schema["enum"] = list(spec.options)
    if not spec.required:  # null means absent
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["description"] = spec.description
    return schema


def _object_schema(fields: tuple[Field, ...]) -> Spec:
    schema: Spec = {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


# A custom field's value: its data types (STRING, INTEGER in 64 bits, BOOLEAN, STRING[]).
_CUSTOM_VALUE = {
    "description": "A custom field of the contact, by its api_identifier.",
    "anyOf": [{"type": "string"}, {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
              {"type": "boolean"}, {"type": "array", "items": {"type": "string"}},
              {"type": "null"}]}


def event_schema(event_type: EventType) -> Spec:
    payload = _object_schema(event_type.fields)
    if event_type.custom_fields:
        payload["patternProperties"] = {"^cf_": _CUSTOM_VALUE}
    payload["additionalProperties"] = True  # kept on the stored event, never applied
    description = event_type.description
    if event_type.deprecated:
        description += f" Deprecated: {event_type.deprecated}"
    return {
        "title": event_type.name,
        "description": description,
        "type": "object",
        "required": ["event_type", "event_family", "payload"],
        "properties": {
            "event_type": {"const": event_type.name},
            "event_family": {"const": EVENT_FAMILY},
            "payload": payload,
        },
        "examples": [event_type.example],
    }


def _object(properties: Spec) -> Spec:
    """An object with exactly these properties, all required."""
    return {"type": "object", "required": list(properties), "properties": properties,
            "additionalProperties": False}


_STRING = {"type": "string"}
_REQUEST_ERROR = _object({"errors": _object({"error_type": _STRING, "error_message": _STRING})})
# RD's answer to a request without a token (an OAuth error body).
_MISSING_TOKEN = _object({"error": _STRING, "error_description": _STRING})
_VALIDATION_ERRORS = _object({"errors": {"type": "array", "items": _object({
    "error_type": {"type": "string", "enum": [
        "CANNOT_BE_NULL", "CANNOT_BE_BLANK", "INVALID_DATA_TYPE", "INVALID_OPTION",
        "INVALID_FORMAT", "TOO_LONG", "LIMIT_EXCEEDED", "RESOURCE_NOT_FOUND"]},
    "error_message": _STRING,
    "validation_rules": {"type": "object"},
    "path": {"type": "string", "examples": ["$.body.payload.email"]}})}})
# The OAuth routes' missing fields.
_MISSING_FIELDS = _object({"errors": {"type": "array", "items": _object({
    "error_type": _STRING, "error_message": _STRING, "path": _STRING})}})
# RD's errors of the contacts, fields and webhooks APIs: arrays of errors keyed by attribute
# (by locale too, for a field's name and label).
# An error may add the JSONPath of what it is about (beyond RD), e.g. a webhook's refused URL.
_ERROR_LIST = {"type": "array", "items": {
    **_object({"error_type": _STRING, "error_message": _STRING}),
    "properties": {"error_type": _STRING, "error_message": _STRING, "path": _STRING}}}
_ATTRIBUTE_ERRORS = _object({"errors": {
    "type": "object", "minProperties": 1, "additionalProperties": {
        "anyOf": [_ERROR_LIST, {"type": "object", "additionalProperties": _ERROR_LIST}]}}})
# RD's two 429 bodies: its gateway's for an account, its lead limiter's for a contact.
_RATE_LIMITED = {"oneOf": [
    _object({"message": _STRING}),
    _object({"error": _STRING, "max": {"type": "integer"}, "usage": {"type": "integer"},
             "remaining_time": {"type": "integer"}})]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Spec, description: str) -> Spec:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _html(description: str) -> Spec:
    return {"description": description, "content": {"text/html": {"schema": _STRING}}}


def _either(*names: str) -> Spec:
    return {"oneOf": [_ref(name) for name in names]}


_TOKEN_FIELDS = ("client_id", "client_secret", "code", "refresh_token", "grant_type")
_TOKEN_REQUEST = {
    "type": "object", "required": ["client_id", "client_secret"],
    "properties": {name: {"type": "string", "minLength": 1} for name in _TOKEN_FIELDS},
}
_TOKEN_RESPONSE = {
    "type": "object", "required": ["access_token", "expires_in", "refresh_token"],
    "properties": {"access_token": _STRING, "expires_in": {"type": "integer"},
                   "refresh_token": _STRING},
}
_REVOKE_REQUEST = {"type": "object", "required": ["token"], "properties": {
    "token": {"type": "string", "minLength": 1},
    "token_type_hint": {"type": "string", "examples": ["access_token", "refresh_token"],
                        "description": "A hint only: any value is read"}}}
_FORM_OR_JSON = ("application/json", "application/x-www-form-urlencoded")

_UUID = {"type": "string", "format": "uuid"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_TRANSLATIONS = {"type": "object", "required": ["pt-BR"],
                 "additionalProperties": {"type": "string"},
                 "examples": [{"pt-BR": "Plano contratado"}]}
_FIELD = {"type": "object", "properties": {
    "api_identifier": {"type": "string", "pattern": "^cf_[a-z0-9_]+$"},
    "data_type": {"enum": list(DATA_TYPES)}, "name": _TRANSLATIONS, "label": _TRANSLATIONS,
    "presentation_type": {"enum": list(PRESENTATION_TYPES)},
    "validation_rules": {"type": "object", "properties": {"valid_options": {
        "type": "array", "items": {"type": "object", "required": ["value", "label"],
                                   "properties": {"value": _STRING, "label": _STRING}}}}}}}
_SECRET = {"type": "string", "minLength": SECRET_LENGTHS.start,
           "maxLength": SECRET_LENGTHS.stop - 1, "pattern": "^[!-~]+$",
           "description": "What deliveries are signed with (beyond RD); chosen at creation or "
                          "random. A PUT does not change it: "
                          "/rdevents/v1/webhooks/{uuid}/secret/rotate does."}
_WEBHOOK = {"type": "object", "required": ["event_type", "url"], "properties": {
    "event_type": {"enum": list(WEBHOOK_EVENT_TYPES)}, "entity_type": {"enum": ["CONTACT"]},
    "url": {"type": "string", "format": "uri"}, "http_method": {"enum": ["POST"]},
    "include_relations": {"type": "array", "items": {"enum": list(RELATIONS)}},
    "event_identifiers": {"type": "array", "items": _STRING,
                          "description": "Only conversions with these identifiers "
                                         "(WEBHOOK.CONVERTED)"},
    "secret": _SECRET}}
_SECRET_BODY = {"type": "object", "additionalProperties": False,
                "properties": {"secret": _SECRET}}
_CONTACT_PARAM = {"name": "contact", "in": "path", "required": True,
                  "description": "uuid:<uuid>, email:<email> or a bare uuid",
                  "schema": {"type": "string", "pattern": "^(email:.*|uuid:[^:]*|[^:]*)$"}}


def _path_uuid(name: str) -> Spec:
    return {"name": name, "in": "path", "required": True, "schema": _UUID}


def _query(name: str, schema: Spec, description: str | None = None) -> Spec:
    parameter: Spec = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _pages(*extra: Spec) -> list[Spec]:
    number = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
    return [*extra, _query("page", number),
            _query("page_size", number, f"At most {MAX_PAGE_SIZE} are answered")]


def _operation(operation_id: str, summary: str, ok: tuple[str, str], *,
               ok_schema: Spec | None = None, parameters: list[Spec] | None = None,
               body: Spec | None = None, errors: tuple[str, ...] | None = None,
               not_found: str | None = None, links: Spec | None = None) -> Spec:
    """An operation that takes the account's Bearer token. `errors` are the schemas of its 400s
    beside RequestError (by default RD's attribute-keyed errors where there is a body); the
    responses every operation shares are added by _shared_responses."""
    if errors is None:
        errors = ("AttributeErrors",) if body is not None else ()
    status, description = ok
    success: Spec = {"description": description} if status == "204" else \
        _json(ok_schema or {"type": "object"}, description)
    if links:
        success["links"] = links
    responses: Spec = {status: success}
    if body is not None or parameters:
        responses["400"] = _json(_either(*errors, "RequestError"), "Invalid request")
    if not_found:
        responses["404"] = _json(_ref("RequestError"), not_found)
    operation: Spec = {"operationId": operation_id, "summary": summary,
                                 "security": _BEARER, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    return operation


def _links(parameter: str, *operation_ids: str, value: str = "$response.body#/uuid") -> Spec:
    """OpenAPI links: what a response creates, the operations that take it as `parameter`."""
    return {operation_id: {"operationId": operation_id, "parameters": {parameter: value}}
            for operation_id in operation_ids}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header",
    "description": "Sent again with the same body within the keys' retention (24 hours by "
                   "default), the request is answered as the first was (with "
                   "Idempotent-Replayed: true) and stores nothing again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_LENGTH,
               "pattern": "^[ -~]+$"}}


def _event_paths() -> Spec:
    def writes(operation_id: str, summary: str, body: Spec, success: Spec, *,
               security: bool = True, parameters: list[Spec] | None = None,
               links: Spec | None = None, refused: str | None = None) -> Spec:
        ok = _json(success, "Stored durably")
        ok["headers"] = {"Idempotent-Replayed": {
            "description": "true: the answer of the first request with this Idempotency-Key",
            "schema": {"const": "true"}}}
        if links:
            ok["links"] = links
        operation: Spec = {
            "operationId": operation_id, "summary": summary,
            "parameters": [*(parameters or ()), _IDEMPOTENCY_KEY],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": body}}},
            "responses": {"200": ok,
                          "400": _json(_either("ValidationErrors", "RequestError"),
                                       "Invalid events (nothing stored) or unparseable JSON"),
                          "409": _json(_ref("RequestError"), "IDEMPOTENCY_KEY_IN_USE: a "
                                       "request with this key is being stored"),
                          "422": _json(_ref("RequestError"), "IDEMPOTENCY_KEY_REUSED: the "
                                       "key was used with another request"),
                          "429": _json(_RATE_LIMITED, "A rate limit (with --rate-limits rd)")}}
        if security:
            operation["security"] = _BEARER
        if refused:
            operation["responses"]["401"] = _json(_ref("RequestError"), refused)
        return operation

    one_event = {"type": "object", "required": ["event_uuid"],
                 "properties": {"event_uuid": _UUID}}
    return {
        "/platform/events": {"post": writes(
            "sendEvent", "Send one event", _ref("Event"), one_event,
            parameters=[_query("event_type", _STRING,
                               "Optional, any case; must name the body's type")],
            links=_links("event_uuid", "getEvent", value="$response.body#/event_uuid"))},
        "/platform/conversions": {"post": writes(
            "sendConversion", "Send a CONVERSION with an API key (the one route with CORS)",
            _ref("CONVERSION"), one_event, security=False,
            parameters=[{**_query("api_key", _STRING), "required": True}],
            refused="Missing, unknown or deactivated API key")},
        "/platform/events/batch": {"post": writes(
            "sendBatch", "Send a batch of events, stored all together or not at all",
            {"type": "array", "minItems": 1, "items": _ref("Event")},
            {"type": "object", "required": ["event_batch_uuid", "events"],
             "properties": {"event_batch_uuid": _UUID, "events": {
                 "type": "array", "items": {"type": "object",
                                            "properties": {"event_uuid": _UUID}}}}})},
        "/platform/events/{event_uuid}": {"get": _operation(
            "getEvent", "A stored event, as it arrived", ("200", "The stored event"),
            parameters=[_path_uuid("event_uuid")], not_found="Unknown event")},
    }


def _contact_body(*, create: bool) -> Spec:
    """RD's contact attributes, tags, legal bases and cf_* fields (and the e-mail, to create)."""
    properties: Spec = {name: _STRING for name in RD_ATTRIBUTES}
    properties["tags"] = {"type": "array", "items": _STRING}
    properties["legal_bases"] = {"type": "array", "items": _object_schema(LEGAL_BASES.items)}
    schema = {"type": "object", "properties": properties,
              "patternProperties": {"^cf_[a-z0-9_]{1,196}$": _CUSTOM_VALUE},
              "additionalProperties": False}
    if create:
        properties["email"] = {"type": "string", "format": "email"}
        schema["required"] = ["email"]
    return schema


def _contact_paths() -> Spec:
    contact = [_CONTACT_PARAM]
    by_contact = ("getContact", "updateContact", "deleteContact", "tagContact",
                  "getContactEvents", "getFunnel", "putFunnel")
    funnel_body = {"type": "object", "additionalProperties": False, "properties": {
        "lifecycle_stage": {"enum": list(LIFECYCLE_STAGES)},
        "opportunity": {"type": "boolean"},
        "contact_owner_email": {"type": ["string", "null"], "format": "email"}}}
    return {
        "/platform/contacts": {
            "get": _operation(
                "listContacts", "List contacts (beyond RD)", ("200", "Contacts, oldest first"),
                parameters=_pages(_query("email", _STRING), _query("tag", _STRING),
                                  _query("lifecycle_stage", {"enum": list(LIFECYCLE_STAGES)})),
                errors=("ValidationErrors",)),
            "post": _operation(
                "createContact", "Create a contact", ("200", "The contact"),
                body=_contact_body(create=True), links=_links("contact", *by_contact)),
        },
        "/platform/contacts/{contact}": {
            "get": _operation("getContact", "A contact", ("200", "The contact"),
                              parameters=contact, not_found="Unknown contact"),
            "patch": _operation(
                "updateContact", "Update a contact, or create it (by e-mail); tags are "
                "replaced", ("200", "The contact"), parameters=contact,
                body=_contact_body(create=False), not_found="Unknown contact (by uuid)"),
            "delete": _operation("deleteContact", "Erase a contact (LGPD): its events keep "
                                 "no personal data", ("204", "Erased"), parameters=contact,
                                 not_found="Unknown contact"),
        },
        "/platform/contacts/{contact}/tag": {"post": _operation(
            "tagContact", "Add tags to a contact", ("200", "The contact"), parameters=contact,
            body={"type": "object", "required": ["tags"], "properties": {
                "tags": {"type": "array", "items": _STRING}}},
            not_found="Unknown contact")},
        "/platform/contacts/{contact}/events": {"get": _operation(
            "getContactEvents", "A contact's events", ("200", "Events, 10 a page"),
            ok_schema={"type": "array"}, errors=("ValidationErrors",),
            parameters=_pages(_CONTACT_PARAM,
                              _query("event_type", _STRING, "Types separated by | or ,"),
                              _query("order", {"enum": ["created_at:desc", "created_at:asc"]})),
            not_found="Unknown contact")},
        "/platform/contacts/{contact}/funnels/default": {
            "get": _operation("getFunnel", "A contact's funnel", ("200", "The funnel"),
                              parameters=contact, not_found="Unknown contact"),
            "put": _operation("putFunnel", "Change a contact's funnel (only what the body "
                              "names)", ("200", "The funnel"), parameters=contact,
                              body=funnel_body, not_found="Unknown contact"),
        },
    }


def _field_paths() -> Spec:
    field = [_path_uuid("uuid")]
    return {
        "/platform/contacts/fields": {
            "get": _operation("listFields", "Standard and custom fields",
                              ("200", "{fields: [...]}")),
            "post": _operation("createField", "Define a custom field", ("201", "The field"),
                               body={**_FIELD, "additionalProperties": False,
                                     "required": ["api_identifier", "data_type",
                                                  "presentation_type", "name", "label"]},
                               links=_links("uuid", "getField", "updateField", "deleteField")),
        },
        "/platform/contacts/fields/{uuid}": {
            "get": _operation("getField", "A field", ("200", "The field"), parameters=field,
                              not_found="Unknown field"),
            "patch": _operation("updateField", "Change a custom field's names, presentation or "
                                "rules", ("200", "The field"), parameters=field, body=_FIELD,
                                not_found="Unknown field"),
            "delete": _operation("deleteField", "Delete a custom field (contacts keep their "
                                 "values)", ("204", "Deleted"), parameters=field,
                                 not_found="Unknown field"),
        },
    }


def _webhook_paths() -> Spec:
    webhook, delivery = [_path_uuid("uuid")], _path_uuid("delivery")
    unknown = "Unknown webhook"
    return {
        "/integrations/webhooks": {
            "get": _operation("listWebhooks", "Webhook subscriptions",
                              ("200", "{webhooks: [...]}")),
            "post": _operation(
                "createWebhook", "Subscribe a URL (on a public address, unless the server allows "
                "its network; it must answer a validation request with a 2xx, else 401)",
                ("201", "The subscription, with its secret"),
                body={**_WEBHOOK, "additionalProperties": False},
                links=_links("uuid", "getWebhook", "updateWebhook", "deleteWebhook",
                             "listDeliveries")),
        },
        "/integrations/webhooks/{uuid}": {
            "get": _operation("getWebhook", "A subscription", ("200", "The subscription"),
                              parameters=webhook, not_found=unknown),
            "put": _operation("updateWebhook", "Replace a subscription",
                              ("200", "The subscription"), parameters=webhook, body=_WEBHOOK,
                              not_found=unknown),
            "delete": _operation("deleteWebhook", "Delete a subscription and its deliveries",
                                 ("204", "Deleted"), parameters=webhook, not_found=unknown),
        },
        "/rdevents/v1/webhooks/{uuid}/secret/rotate": {"post": {
            **_operation("rotateWebhookSecret", "Give a subscription a new secret (the one in "
                         "the body, or a random one without a body)",
                         ("200", "The subscription, with its new secret"),
                         parameters=webhook, body=_SECRET_BODY, not_found=unknown),
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _SECRET_BODY}}}}},
        "/integrations/webhooks/{uuid}/deliveries": {"get": _operation(
            "listDeliveries", "A subscription's deliveries, newest first, with their attempts",
            ("200", "{deliveries: [...]}"), not_found=unknown, errors=("ValidationErrors",),
            parameters=_pages(*webhook, _query("status", {
                "enum": ["pending", "delivered", "failed", "erased"]})))},
        "/integrations/webhooks/{uuid}/deliveries/{delivery}/resend": {"post": _operation(
            "resendDelivery", "Send a delivered or failed delivery again", ("202", "Queued"),
            parameters=[*webhook, delivery], not_found="Unknown webhook or delivery")},
    }


_REPLAY = {"type": "object", "additionalProperties": False,
           "description": 'Either {"all": true} or {"event_uuids": [...]}',
           "properties": {"all": {"type": "boolean"},
                          "event_uuids": {"type": "array", "items": _UUID, "maxItems": 1000}}}


def _relay_paths() -> dict[str, Any]:
    relay, unknown = [_path_uuid("uuid")], "Unknown relay"
    return {
        "/rdevents/v1/relays": {"get": _operation(
            "listRelays", "The account's relays to an upstream RD Station (the operator "
            "creates them: `rdevents relays create`)", ("200", "{relays: [...]}"))},
        "/rdevents/v1/relays/{uuid}": {"get": _operation(
            "getRelay", "A relay: its state, backlog, lag, counts and last error",
            ("200", "The relay"), parameters=relay, not_found=unknown)},
        "/rdevents/v1/relays/{uuid}/dead-letters": {"get": _operation(
            "listDeadLetters", "The events the upstream refused, or that failed past the "
            "retries' time, in the order they were accepted", ("200", "{dead_letters: [...]}"),
            parameters=_pages(*relay), not_found=unknown, errors=("ValidationErrors",))},
        "/rdevents/v1/relays/{uuid}/dead-letters/replay": {"post": _operation(
            "replayDeadLetters", "Queue dead letters again, each in its place in the relay's "
            "order", ("200", "{replayed: N}"), parameters=relay, body=_REPLAY,
            errors=("ValidationErrors",), not_found=unknown)},
    }


_FEED_EVENT = _object({
    "event_uuid": _UUID, "event_type": {"enum": list(EVENT_TYPES)},
    "event_family": {"const": EVENT_FAMILY}, "payload": {"type": "object"},
    "contact_uuid": {**_UUID, "type": ["string", "null"],
                     "description": "null once the contact is erased"},
    "received_at": {"type": "string", "format": "date-time"}})


def _feed_paths() -> Spec:
    return {"/rdevents/v1/events": {"get": _operation(
        "readFeed", "The account's events in the order they became final, each once to a "
        "reader that follows next_cursor from the start (beyond RD)",
        ("200", "{events: [...], next_cursor}"),
        ok_schema=_object({"events": {"type": "array", "items": _FEED_EVENT},
                           "next_cursor": _STRING}),
        parameters=[
            _query("after", _STRING, "A next_cursor this route answered; none: the start"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                   f"Events at most (default {feed.DEFAULT_LIMIT}; more than "
                   f"{feed.MAX_LIMIT} are answered {feed.MAX_LIMIT})"),
            _query("wait", {"type": "number", "minimum": 0, "maximum": feed.MAX_WAIT},
                   "Seconds to wait for events when there are none yet (long polling)"),
            _query("event_type", _STRING, "Only these types, separated by commas"),
            _query("since", {"type": "string", "format": "date-time"},
                   "Only events received at or after this time")],
        errors=("ValidationErrors",))}}


def _oauth_paths() -> Spec:
    def form(operation_id: str, summary: str, schema: Spec, ok: Spec,
             refused: str | None = None) -> Spec:
        responses = {"200": ok, "400": _json(_either("MissingFields", "RequestError"),
                                             "A field is missing, or the body is unparseable")}
        if refused:
            responses["401"] = _json(_ref("RequestError"), refused)
        return {"operationId": operation_id, "summary": summary, "responses": responses,
                "requestBody": {"required": True, "content": {
                    media: {"schema": schema} for media in _FORM_OR_JSON}}}

    unknown_app = _json(_ref("RequestError"), "Unknown app or redirect")
    token = form("token", "Tokens for a code or a refresh token (RD's OAuth)", _TOKEN_REQUEST,
                 _json(_TOKEN_RESPONSE, "Tokens"),
                 "ACCESS_DENIED, EXPIRED_CODE_GRANT or INVALID_REFRESH_TOKEN")
    return {
        "/auth/dialog": {
            "get": {
                "operationId": "consentPage",
                "summary": "The consent page of RD's authorization-code flow",
                "parameters": [{**_query(name, _STRING), "required": name == "client_id"}
                               for name in ("client_id", "redirect_uri", "redirect_url",
                                            "state")],
                "responses": {"200": _html("The consent page"), "400": unknown_app},
            },
            "post": {
                "operationId": "consent",
                "summary": "The consent page's form: an administrator of the app's account "
                           "consents",
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["client_id", "redirect_uri"],
                        "properties": {name: _STRING for name in (
                            "client_id", "redirect_uri", "state", "username", "password",
                            "csrf_token")}}}}},
                "responses": {
                    "302": {"description": "Back to the redirect URI with ?code=...&state=...",
                            "headers": {"Location": {"schema": _STRING}}},
                    "400": unknown_app,
                    "401": _html("The consent page again: wrong administrator or password"),
                    "403": _html("The page has expired: its form's token is missing or is "
                                 "not the cookie's"),
                    "429": _html("The consent page again: too many failed sign-ins")},
            },
        },
        "/auth/token": {"post": token},
        "/oauth2/token": {"post": {**token, "operationId": "oauth2Token"}},
        "/auth/revoke": {"post": form("revoke", "Revoke an access or refresh token",
                                      _REVOKE_REQUEST,
                                      _json({"type": "object"}, "Revoked (or unknown)"))},
    }


_NUMBER = {"type": "number"}
_REQUEST_SUMMARY = _object({
    "uuid": _UUID, "received_at": {"type": "string", "format": "date-time"},
    "method": _STRING, "path": _STRING, "status": {"type": "integer"}, "duration_ms": _NUMBER})
_ANY_BODY = {"description": "The body's JSON value when it is JSON, else its text (cut at the "
                            "request log's size); null when empty."}
_LOGGED_REQUEST = _object({
    **_REQUEST_SUMMARY["properties"],
    "query": {"type": "string", "description": "The query string, credentials redacted"},
    "request_id": _STRING, "client_address": {"type": ["string", "null"]},
    "user_agent": {"type": ["string", "null"]},
    "headers": {"type": "object", "additionalProperties": _STRING,
                "description": "Lower-case names; credentials redacted"},
    "request_body": _ANY_BODY, "request_body_truncated": {"type": "boolean"},
    "response_body": _ANY_BODY, "response_body_truncated": {"type": "boolean"},
    "error_types": {"type": "array", "items": _STRING},
    "replayable": {"type": "boolean"}})
_REPLAYED = _object({"status": {"type": "integer"}, "response_body": _ANY_BODY})


def _request_log_paths() -> dict[str, Any]:
    request = [_path_uuid("uuid")]
    unknown = "Unknown request (or another account's, or no longer kept)"
    replay = _operation("replayRequest", "Send a logged request again, as the account (in "
                        "the server's process), and answer what it was answered",
                        ("200", "The replay's status and body"), ok_schema=_REPLAYED,
                        parameters=request, not_found=unknown)
    replay["responses"]["409"] = _json(_ref("RequestError"),
                                       "Its body was not kept whole: it cannot be replayed")
    return {
        "/rdevents/v1/requests": {"get": _operation(
            "listRequests", "The account's logged requests to RD's routes, newest first "
            "(beyond RD)", ("200", "{requests: [...], page, page_size}"),
            ok_schema=_object({"requests": {"type": "array", "items": _REQUEST_SUMMARY},
                               "page": {"type": "integer"}, "page_size": {"type": "integer"}}),
            parameters=_pages(_query("status", {"enum": ["rejected", "accepted"]},
                                     "rejected: answered 4xx or 5xx; accepted: the others")),
            errors=("ValidationErrors",))},
        "/rdevents/v1/requests/{uuid}": {"get": _operation(
            "getRequest", "A logged request, whole", ("200", "The request and its answer"),
            ok_schema=_LOGGED_REQUEST, parameters=request, not_found=unknown)},
        "/rdevents/v1/requests/{uuid}/replay": {"post": replay},
    }


_FAULT_REQUEST = {
    "type": "object", "required": ["fault"], "additionalProperties": False,
    "properties": {
        "fault": {"enum": list(FAULT_KINDS)},
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1},
        "path": {"type": "string", "pattern": "^/", "default": EVERY_ROUTE,
                 "description": "A prefix of the RD routes' paths it answers"},
        "latency_ms": {"type": "integer", "minimum": 0, "maximum": MAX_LATENCY_MS,
                       "default": 0}}}
_FAULT = _object({"uuid": _UUID, "fault": {"enum": list(FAULT_KINDS)},
                  "count": {"type": "integer"}, "remaining": {"type": "integer"},
                  "path": _STRING, "latency_ms": {"type": "integer"},
                  "created_at": {"type": "string", "format": "date-time"}})


def _sandbox_paths() -> dict[str, Any]:
    """The sandbox's routes, served with `serve --sandbox` only (docs/testing.md)."""
    return {
        "/rdevents/v1/sandbox/faults": {
            "post": _operation(
                "addFault", "Have the account's next requests to RD's routes fail as RD "
                "Station does", ("201", "The fault"), ok_schema=_FAULT, body=_FAULT_REQUEST,
                errors=("ValidationErrors",)),
            "get": _operation("listFaults", "The account's faults not yet spent, in the order "
                              "they answer", ("200", "{faults: [...]}"),
                              ok_schema=_object({"faults": {"type": "array", "items": _FAULT}})),
            "delete": _operation("clearFaults", "Drop the account's faults",
                                 ("204", "Dropped"))},
        "/rdevents/v1/sandbox/reset": {"post": _operation(
            "reset", "Erase the account's data; its credentials and administrators stay",
            ("204", "Erased"))},
    }


_METRICS = {"get": {
    "operationId": "metrics",
    "summary": "Metrics in Prometheus' text format (every process's, with --workers N). Open "
               "unless the server has --metrics-token, then that token as a Bearer token.",
    "responses": {"200": {"description": "The metrics",
                          "content": {"text/plain": {"schema": _STRING}}},
                  "401": _json(_ref("RequestError"), "The server's metrics token is missing "
                                                     "or wrong")}}}


_HOME = {"type": "object", "required": ["name", "version", "links"], "properties": {
    "name": {"const": "rdevents"}, "version": {"type": "string"},
    "links": {"type": "object", "additionalProperties": {"type": "string"},
              "description": "The paths of docs, openapi, ui, healthz and readyz, by those "
                             "names"}}}


def _shared_responses(paths: Spec) -> None:
    """The answers any operation may give besides its own: 400 BAD_REQUEST (a NUL character in
    the path, the query or a form field), 401 without a valid token, 413 and 415 for a body, 431
    for a request head over 64 KiB, 503 while the database is away."""
    for path, item in paths.items():
        for operation in item.values():
            responses = operation["responses"]
            responses.setdefault("400", _json(_ref("RequestError"), "Bad request"))
            responses["431"] = _json(_ref("RequestError"), "Request line and headers too large")
            if "security" in operation:
                responses.setdefault("401", _json(_either("RequestError", "MissingToken"),
                                                  "Missing, invalid, revoked or expired token"))
            media = operation.get("requestBody", {}).get("content", {})
            if media:
                responses.setdefault("413", _json(_ref("RequestError"),
                                                  "Body larger than the limit"))
            if list(media) == ["application/json"]:
                responses.setdefault("415", _json(_ref("RequestError"),
                                                  "Content-Type is not application/json"))
            if path not in ("/", "/healthz"):
                responses.setdefault("503", _json(_ref("RequestError"),
                                                  "The database cannot answer now; retry"))


def build_openapi(sandbox: bool = False) -> Spec:
    """The document; with the sandbox's routes for a server that serves them."""
    schemas: Spec = {name: event_schema(t) for name, t in EVENT_TYPES.items()}
    event = {"oneOf": [_ref(name) for name in EVENT_TYPES],
             "discriminator": {"propertyName": "event_type",
                               "mapping": {n: f"#/components/schemas/{n}" for n in EVENT_TYPES}}}
    schemas.update(Event=event, RequestError=_REQUEST_ERROR, MissingToken=_MISSING_TOKEN,
                   ValidationErrors=_VALIDATION_ERRORS, AttributeErrors=_ATTRIBUTE_ERRORS,
                   MissingFields=_MISSING_FIELDS)
    paths = {
        **_event_paths(), **_contact_paths(), **_field_paths(), **_webhook_paths(),
        **_relay_paths(), **_feed_paths(), **_oauth_paths(), **_request_log_paths(),
        **(_sandbox_paths() if sandbox else {}), "/metrics": _METRICS,
        "/marketing/account_info": {"get": _operation(
            "accountInfo", "The name of the token's account (RD clients ask for it on setup)",
            ("200", "{name}"), ok_schema=_object({"name": _STRING}))},
        "/": {"get": {"operationId": "home",
                      "summary": "Where to go from here: HTML when Accept prefers text/html",
                      "responses": {"200": {"description": "Name, version and links", "content": {
                          "application/json": {"schema": _HOME},
                          "text/html": {"schema": {"type": "string"}}}}}}},
        "/healthz": {"get": {"operationId": "healthz",
                             "summary": "The process is alive, and its write-queue depth",
                             "responses": {"200": _json({"type": "object"}, "Alive")}}},
        "/readyz": {"get": {"operationId": "readyz",
                            "summary": "The database answers and its schema is current",
                            "responses": {"200": _json({"type": "object"}, "Ready")}}},
    }
    _shared_responses(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "rdevents", "version": __version__,
                 "description": "A self-hosted, wire-compatible RD Station Marketing Events API."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
