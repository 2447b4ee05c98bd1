"""RD's custom fields API: /platform/contacts/fields."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..clock import utc_now
from ..custom_fields import (
    API_IDENTIFIER,
    DATA_TYPES,
    PRESENTATION_TYPES,
    RESERVED_NAMES,
    STANDARD_FIELDS,
    FieldDefinition,
)
from ..ids import new_uuid
from ..store import FieldExists
from ..validation import LIMIT_EXCEEDED, NUL, ORJSON_MAX_DEPTH, nests_deeper_than
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import (
    JSON,
    ApiError,
    AttributeErrors,
    AttributeProblems,
    attribute_error,
    not_found,
    refuse_unknown,
)
from .routing import by_method

# Standard fields have the same uuid in every account and on every server.
_STANDARD_NAMESPACE = uuid.UUID("3f0c7f0e-6d0e-4f5e-9a53-2b8f4c1d7e10")
_STANDARD = [{"uuid": str(uuid.uuid5(_STANDARD_NAMESPACE, name)), "api_identifier": name,
              "custom_field": False, "data_type": data_type,
              "name": {"default": title, "pt-BR": title},
              "label": {"default": title, "pt-BR": title},
              "presentation_type": presentation, "validation_rules": {}}
             for name, data_type, presentation, title in STANDARD_FIELDS]
_STANDARD_BY_UUID = {f["uuid"]: f for f in _STANDARD}

_WRITABLE = ("name", "label", "presentation_type", "validation_rules")
# Shown, not changed: a PATCH may repeat them (as a client sending a field back does) unchanged.
_READ_ONLY = ("uuid", "api_identifier", "custom_field", "data_type", "origin")


def field_document(f: FieldDefinition) -> dict[str, Any]:
    return {"uuid": f.uuid, "api_identifier": f.api_identifier, "custom_field": True,
            "data_type": f.data_type, "name": f.name, "label": f.label,
            "presentation_type": f.presentation_type, "validation_rules": f.validation_rules,
            "origin": f.origin}


def _translations(problems: AttributeProblems, name: str, value: Any) -> dict[str, str]:
    """RD's i18n attribute: {"pt-BR": "..."} (other locales allowed); the document adds
    "default", the Portuguese text. Empty when refused (the problem refuses the request)."""
    if value is None:
        problems.add(name, "CANNOT_BE_NULL", f"{name} cannot be null.")
    elif not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and NUL not in v for k, v in value.items()):
        problems.add(name, "MUST_BE_OBJECT",
                     f'{name} must be an object of texts by locale, as {{"pt-BR": "..."}}.')
    elif not str(value.get("pt-BR", "")).strip():
        problems.errors[name] = {"pt-BR": [{"error_type": "CANNOT_BE_BLANK",
                                            "error_message": "cannot be blank"}]}
    else:
        return {"default": value["pt-BR"], **{k: v for k, v in value.items() if k != "default"}}
    return {}


# The list of fields shows validation_rules three levels deep.
MAX_RULES_DEPTH = ORJSON_MAX_DEPTH - 3


def _validation_rules(problems: AttributeProblems, value: Any) -> dict[str, Any]:
    """Optional; `valid_options` lists the choices as [{"value", "label"}]."""
    if value is None:
        return {}
    options = value.get("valid_options", []) if isinstance(value, dict) else None
    if not isinstance(options, list) or not all(
            isinstance(o, dict) and isinstance(o.get("value"), str)
            and isinstance(o.get("label"), str) for o in options):
        problems.add("validation_rules", "INVALID",
                     'validation_rules must be an object, its valid_options a list of '
                     '{"value": "...", "label": "..."}.')
    elif nests_deeper_than(value, MAX_RULES_DEPTH):
        problems.add("validation_rules", "INVALID",
                     f"validation_rules must not nest deeper than {MAX_RULES_DEPTH} levels.")
    return value if isinstance(value, dict) else {}


def _api_identifier(problems: AttributeProblems, value: Any) -> None:
    if value is None:
        problems.add("api_identifier", "CANNOT_BE_NULL", "api_identifier cannot be null.")
    elif not isinstance(value, str):
        problems.add("api_identifier", "MUST_BE_STRING", "api_identifier must be string.")
    elif value in RESERVED_NAMES:
        problems.add("api_identifier", "EXCLUSION", "invalid options")
    elif not API_IDENTIFIER.fullmatch(value):
        problems.add("api_identifier", "INVALID_FORMAT",
                     "api_identifier must follow the structure cf_field_name: cf_ and then "
                     "lower-case letters, digits or _.")


async def list_fields(request: Request) -> JSON:
    account_id = await authenticate(request)
    custom = await request.app.state.store.list_fields(account_id)
    return JSON({"fields": [*_STANDARD, *(field_document(f) for f in custom)]})


async def create_field(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape("object")
    refuse_unknown(sorted(set(body) - {"api_identifier", "data_type", *_WRITABLE}))
    problems = AttributeProblems()
    _api_identifier(problems, body.get("api_identifier"))
    problems.require_option("data_type", body.get("data_type"), DATA_TYPES)
    problems.require_option("presentation_type", body.get("presentation_type"), PRESENTATION_TYPES)
    name = _translations(problems, "name", body.get("name"))
    label = _translations(problems, "label", body.get("label"))
    rules = _validation_rules(problems, body.get("validation_rules"))
    problems.raise_any()
    now = utc_now()
    definition = FieldDefinition(new_uuid(), body["api_identifier"], body["data_type"], name,
                                 label, body["presentation_type"], rules, "API", now, now)
    limit = request.app.state.settings.max_custom_fields
    try:
        created = await request.app.state.store.create_field(account_id, definition, limit)
    except FieldExists:
        raise AttributeErrors({"api_identifier": [
            {"error_type": "TAKEN", "error_message": "Already in use"}]}) from None
    if not created:  # an error of the field as a whole: keyed `base`, as the webhooks API's
        raise AttributeErrors({"base": [attribute_error(
            LIMIT_EXCEEDED, f"The account has {limit} custom fields, the most it may have: "
                            "delete one to create another.")]})
    return JSON(field_document(definition), 201)


async def _find_field(request: Request) -> tuple[int, FieldDefinition]:
    account_id = await authenticate(request)
    field_uuid = request.path_params["uuid"]
    if field_uuid in _STANDARD_BY_UUID:
        raise ApiError(400, "INVALID_FIELDS", "Standard fields cannot be changed or deleted.")
    found = await request.app.state.store.get_field(account_id, field_uuid.lower())
    if found is None:
        raise not_found("Field not found.")
    return account_id, found


async def get_field(request: Request) -> JSON:
    standard = _STANDARD_BY_UUID.get(request.path_params["uuid"])
    if standard is not None:
        await authenticate(request)
        return JSON(standard)
    _, found = await _find_field(request)
    return JSON(field_document(found))


async def update_field(request: Request) -> JSON:
    account_id, current = await _find_field(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape("object")
    refuse_unknown(sorted(set(body) - {*_WRITABLE, *_READ_ONLY}))
    shown = field_document(current)
    changed_read_only = [k for k in _READ_ONLY if k in body and body[k] != shown[k]]
    if changed_read_only:
        raise ApiError(400, "INVALID_FIELDS", "Payload contains fields that cannot be "
                                              f"modified: ({', '.join(changed_read_only)})")
    problems = AttributeProblems()
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _translations(problems, "name", body["name"])
    if "label" in body:
        changes["label"] = _translations(problems, "label", body["label"])
    if "presentation_type" in body:
        problems.require_option("presentation_type", body["presentation_type"], PRESENTATION_TYPES)
        changes["presentation_type"] = body["presentation_type"]
    if "validation_rules" in body:
        changes["validation_rules"] = _validation_rules(problems, body["validation_rules"])
    problems.raise_any()
    updated = replace(current, **changes, updated_at=utc_now())
    if not await request.app.state.store.update_field(account_id, updated):
        raise not_found("Field not found.")
    return JSON(field_document(updated))


async def delete_field(request: Request) -> Response:
    """The definition goes; contacts keep their values (a later value defines it again)."""
    account_id, found = await _find_field(request)
    if not await request.app.state.store.delete_field(account_id, found.uuid):
        raise not_found("Field not found.")
    return Response(status_code=204)


routes = [
    by_method("/platform/contacts/fields", GET=list_fields, POST=create_field),
    by_method("/platform/contacts/fields/{uuid}", GET=get_field, PATCH=update_field,
              DELETE=delete_field),
]
