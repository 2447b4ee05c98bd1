"""The OpenAPI 3.1 document, derived from the event catalogue."""

from __future__ import annotations

from typing import Any

from . import __version__
from .catalogue import EVENT_FAMILY, EVENT_TYPES, EventType, Field, FieldType
from .contacts import LIFECYCLE_STAGES
from .custom_fields import DATA_TYPES, PRESENTATION_TYPES
from .outbound.webhooks import RELATIONS, SECRET_LENGTHS, WEBHOOK_EVENT_TYPES

_SCALARS = {
    FieldType.STRING: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.FLOAT: {"type": "number"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.TIMESTAMP: {"type": "string", "format": "date-time"},
}


def field_schema(spec: Field) -> dict[str, Any]:
    if spec.type in _SCALARS:
        schema = dict(_SCALARS[spec.type])
        if spec.format == "email":
            schema["format"] = "email"
    elif spec.type is FieldType.STRING_ARRAY:
        schema = {"type": "array", "items": {"type": "string"}}
    else:
        schema = {"type": "array", "items": _object_schema(spec.items)}
    if spec.options is not None:
        schema["enum"] = list(spec.options)
    schema["description"] = spec.description
    return schema


def _object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def event_schema(event_type: EventType) -> dict[str, Any]:
    payload = _object_schema(event_type.fields)
    if event_type.custom_fields:
        payload["patternProperties"] = {"^cf_": {
            "description": "A custom field of the contact, by its api_identifier.",
            "type": ["string", "number", "boolean", "array", "null"]}}
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_REQUEST_ERROR = {
    "type": "object",
    "properties": {"errors": {"type": "object", "properties": {
        "error_type": {"type": "string"}, "error_message": {"type": "string"}}}},
}
_VALIDATION_ERRORS = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {
        "type": "object",
        "required": ["error_type", "error_message", "validation_rules", "path"],
        "properties": {
            "error_type": {"type": "string", "enum": [
                "CANNOT_BE_NULL", "CANNOT_BE_BLANK", "INVALID_DATA_TYPE", "INVALID_OPTION",
                "INVALID_FORMAT", "TOO_LONG", "RESOURCE_NOT_FOUND"]},
            "error_message": {"type": "string"},
            "validation_rules": {"type": "object"},
            "path": {"type": "string", "examples": ["$.body.payload.email"]},
        }}}},
}
_COMMON_ERRORS = {
    "401": _json(_ref("RequestError"), "Missing, invalid, revoked or expired token"),
    "413": _json(_ref("RequestError"), "Body larger than the limit"),
    "415": _json(_ref("RequestError"), "Content-Type is not application/json"),
    "503": _json(_ref("RequestError"), "The store cannot take the write now; retry"),
}


_TOKEN_REQUEST = {
    "type": "object", "required": ["client_id", "client_secret"],
    "properties": {name: {"type": "string"} for name in (
        "client_id", "client_secret", "code", "refresh_token", "grant_type")},
}
_TOKEN_RESPONSE = {
    "type": "object", "required": ["access_token", "expires_in", "refresh_token"],
    "properties": {"access_token": {"type": "string"}, "expires_in": {"type": "integer"},
                   "refresh_token": {"type": "string"}},
}


def _write_responses(success: dict) -> dict[str, Any]:
    return {
        "200": _json(success, "Stored durably"),
        "400": _json({"oneOf": [_ref("ValidationErrors"), _ref("RequestError")]},
                     "Invalid events (nothing stored) or unparseable JSON"),
        **_COMMON_ERRORS,
    }


_UUID = {"type": "string", "format": "uuid"}
_BEARER = [{"bearer": []}]
# RD's errors of the contacts, fields and webhooks APIs: arrays of errors keyed by attribute.
_ATTRIBUTE_ERRORS = {"type": "object", "properties": {"errors": {
    "type": "object", "additionalProperties": {"type": ["array", "object"]}}}}
_TRANSLATIONS = {"type": "object", "required": ["pt-BR"],
                 "additionalProperties": {"type": "string"},
                 "examples": [{"pt-BR": "Plano contratado"}]}
_FIELD = {"type": "object", "properties": {
    "api_identifier": {"type": "string", "pattern": "^cf_[a-z0-9_]+$"},
    "data_type": {"enum": list(DATA_TYPES)}, "name": _TRANSLATIONS, "label": _TRANSLATIONS,
    "presentation_type": {"enum": list(PRESENTATION_TYPES)},
    "validation_rules": {"type": "object", "properties": {"valid_options": {
        "type": "array", "items": {"type": "object", "required": ["value", "label"],
                                   "properties": {"value": {"type": "string"},
                                                  "label": {"type": "string"}}}}}}}}
_SECRET = {"type": "string", "minLength": SECRET_LENGTHS.start,
           "maxLength": SECRET_LENGTHS.stop - 1, "pattern": "^[!-~]+$",
           "description": "What deliveries are signed with (beyond RD); chosen at creation or "
                          "random. A PUT does not change it: .../secret/rotate does."}
_WEBHOOK = {"type": "object", "required": ["event_type", "url"], "properties": {
    "event_type": {"enum": list(WEBHOOK_EVENT_TYPES)}, "entity_type": {"enum": ["CONTACT"]},
    "url": {"type": "string", "format": "uri"}, "http_method": {"enum": ["POST"]},
    "include_relations": {"type": "array", "items": {"enum": list(RELATIONS)}},
    "event_identifiers": {"type": "array", "items": {"type": "string"},
                          "description": "Only conversions with these identifiers "
                                         "(WEBHOOK.CONVERTED)"},
    "secret": _SECRET}}
_SECRET_BODY = {"type": "object", "additionalProperties": False,
                "properties": {"secret": _SECRET}}


def _operation(summary: str, ok: tuple[str, str], *, parameters: list | None = None,
               body: dict | None = None, not_found: str | None = None) -> dict[str, Any]:
    """An operation of the contacts, fields or webhooks APIs (Bearer token, RD's errors)."""
    responses: dict[str, Any] = {ok[0]: _json({"type": "object"}, ok[1]) if ok[0] != "204"
                                 else {"description": ok[1]}}
    if body is not None:
        responses["400"] = _json({"oneOf": [_ref("AttributeErrors"), _ref("RequestError")]},
                                 "Invalid attributes")
    if not_found:
        responses["404"] = _json(_ref("RequestError"), not_found)
    responses["401"] = _COMMON_ERRORS["401"]
    operation: dict[str, Any] = {"summary": summary, "security": _BEARER,
                                 "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    return operation


def _path_uuid(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _UUID}


def _pages(*extra: dict) -> list[dict]:
    return [*extra, {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "page_size", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]


def _management_paths(contact_param: dict) -> dict[str, Any]:
    """Contacts, custom fields and webhooks: RD's APIs beside the events."""
    contact_body = {"type": "object", "additionalProperties": True,
                    "description": "RD's contact attributes, tags, legal_bases, cf_* fields"}
    webhook, delivery = _path_uuid("uuid"), _path_uuid("delivery")
    field = _path_uuid("uuid")
    return {
        "/platform/contacts": {
            "get": _operation("List contacts (beyond RD)", ("200", "Contacts, oldest first"),
                              parameters=_pages(*({"name": n, "in": "query",
                                                   "schema": {"type": "string"}}
                                                  for n in ("email", "tag", "lifecycle_stage")))),
            "post": _operation("Create a contact", ("200", "The contact"), body={
                **contact_body, "required": ["email"]}),
        },
        "/platform/contacts/{contact}/tag": {"post": _operation(
            "Add tags to a contact", ("200", "The contact"), parameters=[contact_param],
            body={"type": "object", "required": ["tags"], "properties": {
                "tags": {"type": "array", "items": {"type": "string"}}}},
            not_found="Unknown contact")},
        "/platform/contacts/fields": {
            "get": _operation("Standard and custom fields", ("200", "{fields: [...]}")),
            "post": _operation("Define a custom field", ("201", "The field"),
                               body={**_FIELD, "required": ["api_identifier", "data_type",
                                                            "presentation_type", "name",
                                                            "label"]}),
        },
        "/platform/contacts/fields/{uuid}": {
            "get": _operation("A field", ("200", "The field"), parameters=[field],
                              not_found="Unknown field"),
            "patch": _operation("Change a custom field's names, presentation or rules",
                                ("200", "The field"), parameters=[field], body=_FIELD,
                                not_found="Unknown field"),
            "delete": _operation("Delete a custom field (contacts keep their values)",
                                 ("204", "Deleted"), parameters=[field],
                                 not_found="Unknown field"),
        },
        "/integrations/webhooks": {
            "get": _operation("Webhook subscriptions", ("200", "{webhooks: [...]}")),
            "post": _operation("Subscribe a URL (on a public address, unless the server "
                               "allows its network; it must answer a validation request "
                               "with a 2xx, else 401)",
                               ("201", "The subscription, with its secret"),
                               body=_WEBHOOK),
        },
        "/integrations/webhooks/{uuid}": {
            "get": _operation("A subscription", ("200", "The subscription"),
                              parameters=[webhook], not_found="Unknown webhook"),
            "put": _operation("Replace a subscription", ("200", "The subscription"),
                              parameters=[webhook], body=_WEBHOOK, not_found="Unknown webhook"),
            "delete": _operation("Delete a subscription and its deliveries",
                                 ("204", "Deleted"), parameters=[webhook],
                                 not_found="Unknown webhook"),
        },
        "/integrations/webhooks/{uuid}/secret/rotate": {"post": {
            **_operation("Give a subscription a new secret (the one in the body, or a random "
                         "one without a body)", ("200", "The subscription, with its new secret"),
                         parameters=[webhook], body=_SECRET_BODY, not_found="Unknown webhook"),
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": _SECRET_BODY}}}}},
        "/integrations/webhooks/{uuid}/deliveries": {"get": _operation(
            "A subscription's deliveries, newest first, with their attempts",
            ("200", "{deliveries: [...]}"), not_found="Unknown webhook",
            parameters=_pages(webhook, {"name": "status", "in": "query", "schema": {
                "enum": ["pending", "delivered", "failed", "erased"]}}))},
        "/integrations/webhooks/{uuid}/deliveries/{delivery}/resend": {"post": {
            **_operation("Send a delivered or failed delivery again", ("202", "Queued"),
                         parameters=[webhook, delivery], not_found="Unknown delivery"),
            }},
    }


def build_openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {name: event_schema(t) for name, t in EVENT_TYPES.items()}
    event = {"oneOf": [_ref(name) for name in EVENT_TYPES],
             "discriminator": {"propertyName": "event_type",
                               "mapping": {n: f"#/components/schemas/{n}" for n in EVENT_TYPES}}}
    schemas.update(Event=event, RequestError=_REQUEST_ERROR, ValidationErrors=_VALIDATION_ERRORS,
                   AttributeErrors=_ATTRIBUTE_ERRORS)
    uuid = _UUID
    bearer = _BEARER
    contact_param = {"name": "contact", "in": "path", "required": True,
                     "description": "uuid:<uuid>, email:<email> or a bare uuid",
                     "schema": {"type": "string"}}
    read_errors = {"404": _json(_ref("RequestError"), "Unknown contact"),
                   "401": _COMMON_ERRORS["401"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rdevents", "version": __version__,
                 "description": "A self-hosted, wire-compatible RD Station Marketing Events API."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/platform/events": {"post": {
                "summary": "Send one event", "security": bearer,
                "parameters": [{"name": "event_type", "in": "query", "required": False,
                                "description": "Optional, any case; must name the body's type",
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("Event")}}},
                "responses": _write_responses({"type": "object", "required": ["event_uuid"],
                                               "properties": {"event_uuid": uuid}}),
            }},
            "/platform/conversions": {"post": {
                "summary": "Send a CONVERSION with an API key (the one route with CORS)",
                "parameters": [{"name": "api_key", "in": "query", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("CONVERSION")}}},
                "responses": _write_responses({"type": "object", "required": ["event_uuid"],
                                               "properties": {"event_uuid": uuid}}),
            }},
            "/platform/events/batch": {"post": {
                "summary": "Send a batch of events, stored all together or not at all",
                "security": bearer,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "array", "minItems": 1, "items": _ref("Event")}}}},
                "responses": _write_responses({
                    "type": "object", "required": ["event_batch_uuid", "events"],
                    "properties": {"event_batch_uuid": uuid, "events": {
                        "type": "array", "items": {"type": "object",
                                                   "properties": {"event_uuid": uuid}}}}}),
            }},
            "/platform/events/{event_uuid}": {"get": {
                "summary": "A stored event, as it arrived", "security": bearer,
                "parameters": [{"name": "event_uuid", "in": "path", "required": True,
                                "schema": uuid}],
                "responses": {"200": _json({"type": "object"}, "The stored event"),
                              **read_errors},
            }},
            "/platform/contacts/{contact}": {
                "get": {"summary": "A contact", "security": bearer,
                        "parameters": [contact_param],
                        "responses": {"200": _json({"type": "object"}, "The contact"),
                                      **read_errors}},
                "patch": _operation("Update a contact, or create it (by e-mail); tags are "
                                    "replaced", ("200", "The contact"),
                                    parameters=[contact_param], body={
                                        "type": "object", "additionalProperties": True}),
                "delete": _operation("Erase a contact (LGPD): its events keep no personal data",
                                     ("204", "Erased"), parameters=[contact_param],
                                     not_found="Unknown contact"),
            },
            "/platform/contacts/{contact}/events": {"get": {
                "summary": "A contact's events", "security": bearer,
                "parameters": [
                    contact_param,
                    {"name": "event_type", "in": "query", "schema": {"type": "string"},
                     "description": "Types separated by | or ,"},
                    {"name": "order", "in": "query", "schema": {
                        "type": "string", "enum": ["created_at:desc", "created_at:asc"]}},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    {"name": "page_size", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                ],
                "responses": {"200": _json({"type": "array"}, "Events, 10 a page"),
                              "400": _json(_ref("ValidationErrors"), "Bad query"),
                              **read_errors},
            }},
            "/platform/contacts/{contact}/funnels/default": {
                "get": {
                    "summary": "A contact's funnel", "security": bearer,
                    "parameters": [contact_param],
                    "responses": {"200": _json({"type": "object"}, "The funnel"),
                                  **read_errors},
                },
                "put": {
                    "summary": "Change a contact's funnel (only what the body names)",
                    "security": bearer, "parameters": [contact_param],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "properties": {
                                       "lifecycle_stage": {"enum": list(LIFECYCLE_STAGES)},
                                       "opportunity": {"type": "boolean"},
                                       "contact_owner_email": {
                                           "type": ["string", "null"], "format": "email"}}}}}},
                    "responses": {"200": _json({"type": "object"}, "The funnel"),
                                  "400": _json({"type": "object"}, "Invalid values"),
                                  **read_errors},
                },
            },
            **_management_paths(contact_param),
            "/healthz": {"get": {"summary": "The process is alive, and its write-queue depth",
                                 "responses": {"200": _json({"type": "object"}, "Alive")}}},
            "/readyz": {"get": {"summary": "The database answers and its schema is current",
                                "responses": {"200": _json({"type": "object"}, "Ready"),
                                              "503": _json(_ref("RequestError"), "Not ready")}}},
            "/auth/dialog": {"get": {
                "summary": "The consent page of RD's authorization-code flow",
                "parameters": [{"name": n, "in": "query", "required": n == "client_id",
                                "schema": {"type": "string"}}
                               for n in ("client_id", "redirect_uri", "redirect_url", "state")],
                "responses": {"200": {"description": "The consent page (HTML)"},
                              "400": _json(_ref("RequestError"), "Unknown app or redirect")},
            }},
            **{path: {"post": {
                "summary": "Tokens for a code or a refresh token (RD's OAuth)",
                "requestBody": {"required": True, "content": {
                    media: {"schema": _TOKEN_REQUEST} for media in (
                        "application/json", "application/x-www-form-urlencoded")}},
                "responses": {"200": _json(_TOKEN_RESPONSE, "Tokens"),
                              "400": _json({"type": "object"}, "A field is missing"),
                              "401": _json(_ref("RequestError"), "ACCESS_DENIED, "
                                           "EXPIRED_CODE_GRANT or INVALID_REFRESH_TOKEN")},
            }} for path in ("/auth/token", "/oauth2/token")},
            "/auth/revoke": {"post": {
                "summary": "Revoke an access or refresh token",
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["token"], "properties": {
                            "token": {"type": "string"},
                            "token_type_hint": {"enum": ["access_token",
                                                         "refresh_token"]}}}}}},
                "responses": {"200": _json({"type": "object"}, "Revoked (or unknown)")},
            }},
        },
    }
