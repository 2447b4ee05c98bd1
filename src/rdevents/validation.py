"""The validator: checks request bodies against the catalogue and collects every error.

Each error is RD's object `{error_type, error_message, validation_rules, path}` with a JSONPath
(`$.body.payload.email`, `$.body[3].payload.legal_bases[1].status`). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import orjson

from .catalogue import (
    EVENT_FAMILY,
    EVENT_TYPE_NAMES,
    EVENT_TYPES,
    EventType,
    Field,
    FieldType,
    is_custom_field,
)
from .catalogue.fields import LEGAL_BASIS_STATUSES
from .custom_fields import API_IDENTIFIER, INT64_MAX, INT64_MIN, beyond_int64

CANNOT_BE_NULL = "CANNOT_BE_NULL"
CANNOT_BE_BLANK = "CANNOT_BE_BLANK"
INVALID_DATA_TYPE = "INVALID_DATA_TYPE"
INVALID_OPTION = "INVALID_OPTION"
INVALID_FORMAT = "INVALID_FORMAT"
TOO_LONG = "TOO_LONG"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"  # an account-wide cap (docs/security.md)
RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"

Error = dict[str, Any]


def error(error_type: str, message: str, path: str, rules: dict | None = None) -> Error:
    return {
        "error_type": error_type,
        "error_message": message,
        "validation_rules": rules or {},
        "path": path,
    }


_ELEMENT = re.compile(r"^\$\.body\[(\d+)\]")


def element_index(error: Error) -> int:
    """The index in the batch of the element an error is about; -1 for the whole request."""
    match = _ELEMENT.match(error["path"])
    return int(match.group(1)) if match else -1


def null_error(path: str) -> Error:
    return error(CANNOT_BE_NULL, "Cannot be null.", path)


def blank_error(path: str) -> Error:
    return error(CANNOT_BE_BLANK, "Can not be blank.", path)


def type_error(data_type: str, path: str) -> Error:
    return error(INVALID_DATA_TYPE, f"Must be of type '{data_type}'.", path,
                 {"data_type": data_type})


def option_error(options: tuple[str, ...] | list[str], path: str) -> Error:
    return error(INVALID_OPTION, "Must be one of the valid options.", path,
                 {"valid_options": list(options)})


def format_error(message: str, fmt: str, path: str) -> Error:
    return error(INVALID_FORMAT, message, path, {"format": fmt})


# U+0000 cannot be stored by every database (PostgreSQL refuses it in text), so values that
# become columns or contact attributes must not hold it.
NUL = "\x00"


def nul_error(path: str) -> Error:
    return error(INVALID_FORMAT, "Must not contain the NUL character (U+0000).", path,
                 {"format": "no-nul"})


# orjson writes JSON nested at most this deep: a value shown inside a document must leave room
# for the levels around it.
ORJSON_MAX_DEPTH = 254


def nests_deeper_than(value: Any, levels: int) -> bool:
    """Whether arrays and objects nest in `value` more than `levels` deep (`[]` is 1 deep)."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    return levels < 1 or any(nests_deeper_than(item, levels - 1) for item in children)


def child(path: str, key: str) -> str:
    """The JSONPath of `key` inside the object at `path`."""
    if key.isascii() and key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{orjson.dumps(key).decode()}]"


# --- scalar formats -------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s.\x00-\x1f\x7f]+(\.[^@\s.\x00-\x1f\x7f]+)+$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$"
)


def normalise_email(value: str) -> str:
    return value.strip().lower()


def is_email(value: str) -> bool:
    value = value.strip()
    return len(value) <= 254 and _EMAIL.match(value) is not None


def is_rfc3339(value: str) -> bool:
    match = _RFC3339.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    offset_hours, offset_minutes = match.group(9, 10)
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes) > 59):
        return False
    try:
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60  # RFC 3339 allows a leap second


# --- fields ---------------------------------------------------------------------------------------


def check_field(spec: Field, value: Any, parent: str, errors: list[Error]) -> None:
    """Append the errors of one field's value (absent and null are the same).

    `parent` is the JSONPath of the object holding the field; the field's own path is built only
    when there is an error to report.
    """
    if value is None:
        if spec.required:
            errors.append(null_error(child(parent, spec.name)))
        return
    kind = spec.type
    if _plainly_valid(spec, kind, value):
        return
    path = child(parent, spec.name)
    if kind is FieldType.STRING or kind is FieldType.TIMESTAMP:
        _check_string(spec, value, path, errors)
    elif kind is FieldType.INTEGER:
        if not _is_integer(value):
            errors.append(type_error(kind.data_type, path))
    elif kind is FieldType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(type_error(kind.data_type, path))
    elif kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            errors.append(type_error(kind.data_type, path))
    elif kind is FieldType.STRING_ARRAY:
        if not isinstance(value, list):
            errors.append(type_error(kind.data_type, path))
            return
        for index, item in enumerate(value):
            if not isinstance(item, str):
                errors.append(type_error("STRING", f"{path}[{index}]"))
            elif NUL in item:
                errors.append(nul_error(f"{path}[{index}]"))
    elif kind is FieldType.OBJECT_ARRAY:
        _check_object_array(spec, value, path, errors)


def _plainly_valid(spec: Field, kind: FieldType, value: Any) -> bool:
    """The valid scalar cases, decided without building paths or messages."""
    value_type = type(value)
    if kind is FieldType.STRING:
        if (value_type is not str or spec.required and (value == "" or value.isspace())
                or NUL in value):
            return False
        if spec.options is not None:
            return value in spec.options
        return spec.format is None or is_email(value)
    if kind is FieldType.INTEGER:
        return value_type is int
    if kind is FieldType.FLOAT:
        return value_type is float or value_type is int
    if kind is FieldType.BOOLEAN:
        return value_type is bool
    if kind is FieldType.TIMESTAMP:
        return value_type is str and is_rfc3339(value)  # RFC 3339 leaves no room for NUL
    return False


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()  # JSON Schema: 2.0 is an integer


def _check_string(spec: Field, value: Any, path: str, errors: list[Error]) -> None:
    if not isinstance(value, str):
        errors.append(type_error("STRING", path))
    elif NUL in value:
        errors.append(nul_error(path))
    elif spec.required and not value.strip():
        errors.append(blank_error(path))
    elif spec.options is not None and value not in spec.options:
        errors.append(option_error(spec.options, path))
    elif spec.format == "email" and not is_email(value):
        errors.append(format_error("Must be a valid e-mail address.", "email", path))
    elif spec.type is FieldType.TIMESTAMP and not is_rfc3339(value):
        errors.append(format_error(
            "Must be an RFC 3339 date-time (example: '2019-03-15T15:00:00.05Z').",
            "date-time", path))


def _check_object_array(spec: Field, value: Any, path: str, errors: list[Error]) -> None:
    if not isinstance(value, list):
        errors.append(type_error(spec.type.data_type, path))
        return
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            errors.append(type_error("OBJECT", item_path))
            continue
        for item_field in spec.items:
            check_field(item_field, item.get(item_field.name), item_path, errors)
        for rule in spec.item_rules:
            ITEM_RULES[rule](spec, item, item_path, errors)


def custom_field_name_error(path: str) -> Error:
    return format_error(CUSTOM_FIELD_NAME_RULE, "cf_[a-z0-9_]{1,196}", path)


CUSTOM_FIELD_NAME_RULE = ("A custom field's name is cf_ and then up to 196 lower-case letters, "
                          "digits or _.")


def check_custom_field(key: str, value: Any, path: str, errors: list[Error]) -> None:
    """A cf_* custom field's value: a string, a 64-bit integer, a boolean or a list of strings
    (the data types of custom fields; 2.0 counts as an integer)."""
    if NUL in key or isinstance(value, str) and NUL in value or (
            isinstance(value, list) and any(isinstance(i, str) and NUL in i for i in value)):
        errors.append(nul_error(path))
    elif not API_IDENTIFIER.fullmatch(key):
        errors.append(custom_field_name_error(path))
    elif isinstance(value, float) and not value.is_integer():
        errors.append(type_error("INTEGER", path))
    elif beyond_int64(value):
        errors.append(format_error(f"Must be a whole number from {INT64_MIN} to {INT64_MAX}.",
                                   "int64", path))
    elif value is None or isinstance(value, (str, bool, int, float)):
        return
    elif not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        errors.append(type_error("STRING", path))


# --- cross-field rules, named in the catalogue ---------------------------------------------------


def _legal_basis_status(spec: Field, item: dict, path: str, errors: list[Error]) -> None:
    """`status` is required for communications; for data_processing it may only be granted."""
    category, status = item.get("category"), item.get("status")
    if status is not None and status not in LEGAL_BASIS_STATUSES:
        return  # already reported by the field check
    if category == "communications" and status is None:
        errors.append(null_error(f"{path}.status"))
    elif category == "data_processing" and status is not None and status != "granted":
        errors.append(option_error(("granted",), f"{path}.status"))


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
TRAFFIC_COOKIE_EXCLUSIVE = ("traffic_medium", "traffic_campaign", "traffic_value")


def parse_traffic_cookie(value: str) -> dict | None | bool:
    """Decode a `__trf.src` cookie value.

    Returns the decoded object when `value` is a cookie, None when it is a plain UTM source, and
    False when it looks like a cookie (``encoded_`` prefix or a JSON object) but cannot be decoded.
    """
    text = value.strip()
    if text.startswith("encoded_"):
        encoded = text[len("encoded_"):].translate(_URLSAFE_TO_STANDARD).rstrip("=")
        try:
            text = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
        except (binascii.Error, ValueError):
            return False
    elif not text.startswith("{"):
        return None
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return decoded if isinstance(decoded, dict) else False


def _traffic_source_cookie(event_type: EventType, payload: dict, path: str,
                           errors: list[Error]) -> None:
    source = payload.get("traffic_source")
    if not isinstance(source, str):
        return
    cookie = parse_traffic_cookie(source)
    if cookie is False:
        errors.append(format_error(
            "Must be a UTM source or a '__trf.src' cookie: 'encoded_' followed by base64 JSON, "
            "or JSON.", "trf-src", child(path, "traffic_source")))
    elif cookie is not None:
        for name in TRAFFIC_COOKIE_EXCLUSIVE:
            if payload.get(name) not in (None, ""):
                errors.append(format_error(
                    "Must be empty when traffic_source is a '__trf.src' cookie.",
                    "empty-with-trf-src-cookie", child(path, name)))


ITEM_RULES: dict[str, Callable[[Field, dict, str, list[Error]], None]] = {
    "legal_basis_status": _legal_basis_status,
}
PAYLOAD_RULES: dict[str, Callable[[EventType, dict, str, list[Error]], None]] = {
    "traffic_source_cookie": _traffic_source_cookie,
}


# --- events ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ValidEvent:
    """An event that passed validation, with what the store needs to apply it."""

    type: EventType
    event_family: str
    payload: dict  # as received
    email: str  # trimmed and lower-cased
    path: str  # the JSONPath of the event in its request, for errors found while storing


def validate_event(body: Any, path: str = "$.body") -> tuple[ValidEvent | None, list[Error]]:
    """Validate one event envelope and its payload."""
    errors: list[Error] = []
    if not isinstance(body, dict):
        return None, [type_error("OBJECT", path)]
    name = _check_choice(body.get("event_type"), EVENT_TYPE_NAMES, child(path, "event_type"),
                         errors)
    event_type = EVENT_TYPES[name] if name is not None else None
    family = _check_choice(body.get("event_family"), (EVENT_FAMILY,), child(path, "event_family"),
                           errors)
    payload = body.get("payload")
    payload_path = child(path, "payload")
    if payload is None:
        errors.append(null_error(payload_path))
    elif not isinstance(payload, dict):
        errors.append(type_error("OBJECT", payload_path))
    elif event_type is not None:
        _check_payload(event_type, payload, payload_path, errors)
    if errors:
        return None, errors
    return ValidEvent(event_type, family, payload, normalise_email(payload["email"]), path), []


def _check_choice(value: Any, options: tuple[str, ...], path: str,
                  errors: list[Error]) -> str | None:
    """A required string among `options`: the value, or None with its error appended."""
    if value is None:
        errors.append(null_error(path))
    elif not isinstance(value, str):
        errors.append(type_error("STRING", path))
    elif value not in options:
        errors.append(option_error(options, path))
    else:
        return value
    return None


def _check_payload(event_type: EventType, payload: dict, path: str, errors: list[Error]) -> None:
    if not payload_plainly_valid(event_type, payload):
        payload_errors(event_type, payload, path, errors)


def payload_errors(event_type: EventType, payload: dict, path: str,
                   errors: list[Error]) -> None:
    """The full check of a payload: every error, with its path."""
    for spec in event_type.fields:
        check_field(spec, payload.get(spec.name), path, errors)
    if event_type.custom_fields:
        for key, value in payload.items():
            if is_custom_field(event_type, key):
                check_custom_field(key, value, child(path, key), errors)
    for rule in event_type.rules:
        PAYLOAD_RULES[rule](event_type, payload, path, errors)


# --- the quick check ----------------------------------------------------------------------------
# Most events are valid. They are recognised by one tight pass over the payload, with no paths
# or messages built; anything it is not sure of goes through the full check above, which alone
# decides what is wrong. It may send a valid payload to the full check, never the reverse.

(_KIND_STRING, _KIND_EMAIL, _KIND_INTEGER, _KIND_FLOAT, _KIND_BOOLEAN, _KIND_TIMESTAMP,
 _KIND_STRINGS, _KIND_OBJECTS) = range(8)
_KINDS = {FieldType.STRING: _KIND_STRING, FieldType.INTEGER: _KIND_INTEGER,
          FieldType.FLOAT: _KIND_FLOAT, FieldType.BOOLEAN: _KIND_BOOLEAN,
          FieldType.TIMESTAMP: _KIND_TIMESTAMP, FieldType.STRING_ARRAY: _KIND_STRINGS,
          FieldType.OBJECT_ARRAY: _KIND_OBJECTS}


@dataclass(frozen=True, slots=True)
class _Plan:
    required: frozenset[str]
    fields: dict[str, tuple]  # name -> (kind, required, options, item plan, field)


def _plan(fields: tuple[Field, ...]) -> _Plan:
    return _Plan(
        frozenset(f.name for f in fields if f.required),
        {f.name: (_KIND_EMAIL if f.format == "email" else _KINDS[f.type], f.required,
                  f.options, _plan(f.items) if f.items else None, f) for f in fields})


_PLANS = {name: _plan(t.fields) for name, t in EVENT_TYPES.items()}


def payload_plainly_valid(event_type: EventType, payload: dict) -> bool:
    """True only when the full check would find nothing wrong with `payload`."""
    if not _object_plainly_valid(_PLANS[event_type.name], payload):
        return False
    if event_type.custom_fields:
        known = event_type.fields_by_name
        for key in payload.keys() - known.keys():
            if is_custom_field(event_type, key) and not _custom_plainly_valid(key, payload[key]):
                return False
    scratch: list[Error] = []
    for rule in event_type.rules:
        PAYLOAD_RULES[rule](event_type, payload, "$", scratch)
    return not scratch


def _custom_plainly_valid(key: str, value: Any) -> bool:
    if not API_IDENTIFIER.fullmatch(key):
        return False
    kind = type(value)
    if kind is str:
        return NUL not in value
    if kind is list:
        return all(type(item) is str and NUL not in item for item in value)
    if kind is float and not value.is_integer():
        return False
    if kind is float or kind is int:
        return not beyond_int64(value)
    return value is None or kind is bool


def _object_plainly_valid(plan: _Plan, obj: dict) -> bool:
    if not plan.required <= obj.keys():
        return False
    rules = plan.fields
    for key, value in obj.items():
        rule = rules.get(key)
        if rule is None:
            continue
        kind, required, options, items, spec = rule
        if value is None:
            if required:
                return False
            continue
        value_type = type(value)
        if kind == _KIND_STRING:
            if (value_type is not str or NUL in value
                    or required and (value == "" or value.isspace())
                    or options is not None and value not in options):
                return False
        elif kind == _KIND_EMAIL:
            if value_type is not str or not is_email(value):
                return False
        elif kind == _KIND_INTEGER:
            if value_type is not int:
                return False
        elif kind == _KIND_FLOAT:
            if value_type is not float and value_type is not int:
                return False
        elif kind == _KIND_BOOLEAN:
            if value_type is not bool:
                return False
        elif kind == _KIND_TIMESTAMP:
            if value_type is not str or not is_rfc3339(value):
                return False
        elif kind == _KIND_STRINGS:
            if value_type is not list or not all(type(i) is str and NUL not in i for i in value):
                return False
        else:
            if value_type is not list:
                return False
            for item in value:
                if type(item) is not dict or not _object_plainly_valid(items, item):
                    return False
                scratch: list[Error] = []
                for item_rule in spec.item_rules:
                    ITEM_RULES[item_rule](spec, item, "$", scratch)
                if scratch:
                    return False
    return True


def unknown_contact_error(event_type: str, email: str, path: str) -> Error:
    """A qualification event for an e-mail that has no contact."""
    return error(
        RESOURCE_NOT_FOUND,
        f"No contact has the e-mail '{email}'. {event_type} does not create contacts: send a "
        "CONVERSION for this e-mail first (an earlier event of the same batch counts).",
        path,
    )


def check_query_event_type(query_value: str, body: Any) -> list[Error]:
    """`?event_type=` is optional and case-insensitive; when given it must name the body's type.

    Checked even when the body is invalid, so that one answer lists every error.
    """
    path = "$.query.event_type"
    wanted = query_value.strip().upper()
    if not wanted:
        return []
    if wanted not in EVENT_TYPES:
        return [option_error(EVENT_TYPE_NAMES, path)]
    named = body.get("event_type") if isinstance(body, dict) else None
    if isinstance(named, str) and named in EVENT_TYPES and named != wanted:
        return [option_error((named,), path)]
    return []


def validate_batch(body: Any, max_events: int) -> tuple[list[ValidEvent], list[Error]]:
    """Validate a batch: every error of every event, or every event valid."""
    if not body:
        return [], [blank_error("$.body")]
    if len(body) > max_events:
        return [], [error(TOO_LONG, f"Must contain at most {max_events} events.", "$.body",
                          {"max_items": max_events})]
    events: list[ValidEvent] = []
    errors: list[Error] = []
    for index, item in enumerate(body):
        event, item_errors = validate_event(item, f"$.body[{index}]")
        if event is not None:
            events.append(event)
        errors.extend(item_errors)
    return events, errors
