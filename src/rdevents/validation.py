"""The validator: checks request bodies against the catalogue and collects every error.

Each error is RD's object `{error_type, error_message, validation_rules, path}` with a JSONPath
(`$.body.payload.email`, `$.body[3].payload.legal_bases[1].status`). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

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


def error(error_type: str, message: str, path: str, rules: dict[str, Any] | None = None) -> Error:
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


# --- field types ----------------------------------------------------------------------------------
# The rule of each field type is written once, in `_first_problem`: given the rules of an
# object's fields and (name, value) pairs, it finds the first value that breaks its field's rule,
# with the report that appends that value's errors at a path. The quick pass below gives it a
# whole payload and only asks whether it found anything; the full check gives it one field at a
# time, in the catalogue's order, and runs the reports. So the two cannot disagree about a value,
# and no path or message is built for a valid one. The rules are branches of one loop, not a
# function for each type, because the quick pass is mostly that loop: a Python call for each
# field would make it several percent slower (bench/validation.py).

Report = Callable[[Any, str, list[Error]], None]  # (value, path, errors)


def _reporting(make: Callable[[str], Error]) -> Report:
    """The report of a value with one error, which `make` builds from the value's path."""

    def report(_value: Any, path: str, errors: list[Error]) -> None:
        errors.append(make(path))

    return report


def _wrong_type(data_type: str) -> Report:
    return _reporting(lambda path: type_error(data_type, path))


_NULL = _reporting(null_error)
_HAS_NUL = _reporting(nul_error)
_BLANK = _reporting(blank_error)
_NOT_A_STRING = _wrong_type("STRING")
_NOT_AN_EMAIL = _reporting(
    lambda path: format_error("Must be a valid e-mail address.", "email", path))
_NOT_A_DATE_TIME = _reporting(lambda path: format_error(
    "Must be an RFC 3339 date-time (example: '2019-03-15T15:00:00.05Z').", "date-time", path))
_NOT_AN_INTEGER = _wrong_type(FieldType.INTEGER.data_type)
_NOT_A_FLOAT = _wrong_type(FieldType.FLOAT.data_type)
_NOT_A_BOOLEAN = _wrong_type(FieldType.BOOLEAN.data_type)
_NOT_A_SET = _wrong_type(FieldType.STRING_ARRAY.data_type)
_NOT_AN_ARRAY = _wrong_type(FieldType.OBJECT_ARRAY.data_type)

_KIND_STRING, _KIND_INTEGER, _KIND_FLOAT, _KIND_BOOLEAN, _KIND_STRINGS, _KIND_OBJECTS = range(6)
_Format = tuple[Callable[[str], bool], Report]  # (the test, the report of a value failing it)
_FORMATS: dict[tuple[FieldType, str | None], _Format] = {
    (FieldType.STRING, "email"): (is_email, _NOT_AN_EMAIL),
    (FieldType.TIMESTAMP, None): (is_rfc3339, _NOT_A_DATE_TIME),
}


@dataclass(frozen=True, slots=True)
class _Text:
    """What a string field asks beyond no NUL: not blank, one of some options, a format."""

    not_blank: bool
    options: tuple[str, ...] | None
    format: _Format | None

    def not_an_option(self, _value: Any, path: str, errors: list[Error]) -> None:
        errors.append(option_error(self.options or (), path))


@dataclass(frozen=True, slots=True)
class _Items:
    """The elements of an array of objects: their fields and the item rules they keep."""

    required: frozenset[str]
    rules: dict[str, _Rule]
    item_rules: tuple[Callable[[Field, dict[str, Any], str, list[Error]], None], ...]
    field: Field
    report: Report  # of every element's errors
    # Elements found to keep everything whose values are all strings, as their (name, value)
    # pairs: clients send the same few again and again (legal bases), known then at a glance.
    # Only strings equal strings, so a pair of another type is never taken for one of these.
    kept: set[tuple[tuple[str, str], ...]]

    def all_keep(self, value: list[Any]) -> bool:
        """Whether every element of `value` is an object with its fields and item rules kept."""
        kept = self.kept
        for item in value:
            if not isinstance(item, dict):
                return False
            pairs = tuple(item.items())
            try:
                if pairs in kept:
                    continue
            except TypeError:  # a value that cannot be hashed: not one of them
                pass
            if not self.keeps(item):
                return False
            if len(kept) < _KEPT_MAX and _STRING.issuperset(map(type, item.values())):
                kept.add(pairs)
        return True

    def keeps(self, item: dict[str, Any]) -> bool:
        """Whether an object has the items' fields and keeps their item rules."""
        if (not self.required <= item.keys()
                or _first_problem(self.rules, item.items()) is not None):
            return False
        scratch: list[Error] = []
        for rule in self.item_rules:
            rule(self.field, item, "$", scratch)
        return not scratch


_KEPT_MAX = 1_000  # elements an array field remembers (see _Items.kept)


# A field as `_first_problem` reads it: (kind, null, text, items). `null` is the report of a null
# value, None when null is valid (absent and null are the same); `text`, what a string must be
# beyond a string without NUL, if anything; `items`, the elements of an array of objects.
_Rule = tuple[int, Report | None, _Text | None, _Items | None]
_Rules = dict[str, _Rule]  # by field name


def _first_problem(rules: _Rules, pairs: Iterable[tuple[str, Any]]) -> tuple[Any, Report] | None:
    """The first value of `pairs` that breaks its field's rule, with the report of its errors;
    None when every value keeps its rule. A name without a rule is not looked at."""
    for name, value in pairs:
        rule = rules.get(name)
        if rule is None:
            continue
        kind, null, text, items = rule
        if value is None:
            if null is not None:
                return value, null
            continue
        value_type = type(value)
        problem: Report
        if kind == _KIND_STRING:
            # A string without NUL; then, as the field asks, not blank, one of the options, in
            # the format. The first rule broken is the error.
            if value_type is not str and not isinstance(value, str):
                problem = _NOT_A_STRING
            elif NUL in value:
                problem = _HAS_NUL
            elif text is None:
                continue
            elif text.not_blank and (value == "" or value.isspace()):
                problem = _BLANK
            elif text.options is not None and value not in text.options:
                problem = text.not_an_option
            elif text.format is not None and not text.format[0](value):
                problem = text.format[1]
            else:
                continue
        elif kind == _KIND_INTEGER:
            # A whole number, not a boolean (JSON Schema: 2.0 is an integer).
            if value_type is int or not isinstance(value, bool) and (
                    isinstance(value, int) or isinstance(value, float) and value.is_integer()):
                continue
            problem = _NOT_AN_INTEGER
        elif kind == _KIND_FLOAT:
            # A number, not a boolean.
            if value_type is float or value_type is int or not isinstance(value, bool) and (
                    isinstance(value, (int, float))):
                continue
            problem = _NOT_A_FLOAT
        elif kind == _KIND_BOOLEAN:
            if value is True or value is False:
                continue
            problem = _NOT_A_BOOLEAN
        elif kind == _KIND_STRINGS:
            # A list of strings without NUL (null is not a string), each reported at its index.
            # Joined, the strings are looked at in one go (a value of another type fails the
            # join); any problem is then found element by element by the report.
            if not isinstance(value, list):
                problem = _NOT_A_SET
            else:
                try:
                    if NUL not in "".join(value):
                        continue
                except TypeError:
                    pass
                problem = _report_elements
        else:
            # A list of objects, each with its item fields and keeping the item rules.
            assert items is not None
            if not isinstance(value, list):
                problem = _NOT_AN_ARRAY
            elif items.all_keep(value):
                continue
            else:
                problem = items.report
        return value, problem
    return None


_ELEMENT_RULES: _Rules = {"": (_KIND_STRING, _NOT_A_STRING, None, None)}
_STRING = frozenset({str})


def _report_elements(value: list[Any], path: str, errors: list[Error]) -> None:
    for index, item in enumerate(value):
        found = _first_problem(_ELEMENT_RULES, (("", item),))
        if found is not None:
            found[1](item, f"{path}[{index}]", errors)


def _report_items(spec: Field) -> Report:
    item_rules = [ITEM_RULES[name] for name in spec.item_rules]

    def report(value: list[Any], path: str, errors: list[Error]) -> None:
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                errors.append(type_error("OBJECT", item_path))
                continue
            for item_field in spec.items:
                check_field(item_field, item.get(item_field.name), item_path, errors)
            for rule in item_rules:
                rule(spec, item, item_path, errors)

    return report


_KINDS = {FieldType.STRING: _KIND_STRING, FieldType.TIMESTAMP: _KIND_STRING,
          FieldType.INTEGER: _KIND_INTEGER, FieldType.FLOAT: _KIND_FLOAT,
          FieldType.BOOLEAN: _KIND_BOOLEAN, FieldType.STRING_ARRAY: _KIND_STRINGS,
          FieldType.OBJECT_ARRAY: _KIND_OBJECTS}


def _rule(spec: Field) -> _Rule:
    """How `_first_problem` reads `spec` (a format it has no test for is refused at once)."""
    kind = _KINDS[spec.type]
    string_format = _FORMATS.get((spec.type, spec.format))
    if spec.format is not None and string_format is None:
        raise ValueError(f"{spec.name}: no rule for {spec.type.label} fields in the format "
                         f"{spec.format!r}")
    text: _Text | None = None
    items: _Items | None = None
    if kind == _KIND_STRING and (spec.required or spec.options is not None or string_format):
        text = _Text(spec.required, spec.options, string_format)
    elif kind == _KIND_OBJECTS:
        plan = _plan(spec.items)
        items = _Items(plan.required, plan.rules,
                      tuple(ITEM_RULES[name] for name in spec.item_rules), spec,
                      _report_items(spec), set())
    return kind, _NULL if spec.required else None, text, items


_FIELD_RULES: dict[int, tuple[Field, _Rules]] = {}  # by id(field): the field is kept, so is its id


def _rules_of(spec: Field) -> _Rules:
    """The rules of an object with `spec` alone (made once for each field)."""
    known = _FIELD_RULES.get(id(spec))
    if known is None:
        known = _FIELD_RULES[id(spec)] = (spec, {spec.name: _rule(spec)})
    return known[1]


def check_field(spec: Field, value: Any, parent: str, errors: list[Error]) -> None:
    """Append the errors of one field's value (absent and null are the same).

    `parent` is the JSONPath of the object holding the field; the field's own path is built only
    when there is an error to report.
    """
    found = _first_problem(_rules_of(spec), ((spec.name, value),))
    if found is not None:
        found[1](value, child(parent, spec.name), errors)


def custom_field_name_error(path: str) -> Error:
    return format_error(CUSTOM_FIELD_NAME_RULE, "cf_[a-z0-9_]{1,196}", path)


CUSTOM_FIELD_NAME_RULE = ("A custom field's name is cf_ and then up to 196 lower-case letters, "
                          "digits or _.")
_BAD_CUSTOM_FIELD_NAME = _reporting(custom_field_name_error)
_BEYOND_INT64 = _reporting(lambda path: format_error(
    f"Must be a whole number from {INT64_MIN} to {INT64_MAX}.", "int64", path))


def custom_field_problem(key: str, value: Any) -> Report | None:
    """A cf_* custom field: None when valid, or the report of its error. The value is a string,
    a 64-bit integer (2.0 counts), a boolean or a list of strings (the data types of custom
    fields). A NUL anywhere comes first, then a name that is not an RD identifier, then the
    value's type."""
    problem = _custom_value_problem(value)
    if problem is _HAS_NUL:
        return problem
    return _custom_name_problem(key) or problem


def _custom_name_problem(key: str) -> Report | None:
    if NUL in key:
        return _HAS_NUL
    if API_IDENTIFIER.fullmatch(key) is None:
        return _BAD_CUSTOM_FIELD_NAME
    return None


def _custom_value_problem(value: Any) -> Report | None:
    if isinstance(value, str):
        return _HAS_NUL if NUL in value else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            return _NOT_AN_INTEGER
        return _BEYOND_INT64 if beyond_int64(value) else None
    if isinstance(value, list):
        if any(isinstance(item, str) and NUL in item for item in value):
            return _HAS_NUL
        return None if all(isinstance(item, str) for item in value) else _NOT_A_STRING
    return _NOT_A_STRING


def check_custom_field(key: str, value: Any, path: str, errors: list[Error]) -> None:
    """Append the error of a cf_* custom field's value, if it has one."""
    problem = custom_field_problem(key, value)
    if problem is not None:
        problem(value, path, errors)


# --- cross-field rules, named in the catalogue ---------------------------------------------------


def _legal_basis_status(spec: Field, item: dict[str, Any], path: str, errors: list[Error]) -> None:
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


def parse_traffic_cookie(value: str) -> dict[str, Any] | None | bool:
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


def _traffic_source_cookie(event_type: EventType, payload: dict[str, Any], path: str,
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


ITEM_RULES: dict[str, Callable[[Field, dict[str, Any], str, list[Error]], None]] = {
    "legal_basis_status": _legal_basis_status,
}
PAYLOAD_RULES: dict[str, Callable[[EventType, dict[str, Any], str, list[Error]], None]] = {
    "traffic_source_cookie": _traffic_source_cookie,
}


# --- events ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ValidEvent:
    """An event that passed validation, with what the store needs to apply it."""

    type: EventType
    event_family: str
    payload: dict[str, Any]  # as received
    email: str  # trimmed and lower-cased
    path: str  # the JSONPath of the event in its request, for errors found while storing
    custom_fields: tuple[str, ...]  # see custom_field_names


def validate_event(body: Any, path: str = "$.body") -> tuple[ValidEvent | None, list[Error]]:
    """Validate one event envelope and its payload. Paths are built only for errors."""
    errors: list[Error] = []
    if not isinstance(body, dict):
        return None, [type_error("OBJECT", path)]
    name = _check_choice(body.get("event_type"), EVENT_TYPE_NAMES, path, "event_type", errors)
    event_type = EVENT_TYPES[name] if name is not None else None
    family = _check_choice(body.get("event_family"), (EVENT_FAMILY,), path, "event_family",
                           errors)
    payload = body.get("payload")
    if payload is None:
        errors.append(null_error(child(path, "payload")))
    elif not isinstance(payload, dict):
        errors.append(type_error("OBJECT", child(path, "payload")))
    elif event_type is not None:
        shape = payload_shape(event_type, payload)
        if not payload_plainly_valid(event_type, payload, shape):
            payload_errors(event_type, payload, child(path, "payload"), errors)
    if errors or event_type is None or family is None or not isinstance(payload, dict):
        return None, errors
    return ValidEvent(event_type, family, payload, normalise_email(payload["email"]), path,
                      shape.custom_fields), []


def valid_event(type_name: str, family: str, payload: dict[str, Any],
                path: str = "$.body") -> ValidEvent:
    """The ValidEvent of an event that validate_event passed in another process, which handed
    over its parts."""
    event_type = EVENT_TYPES[type_name]
    return ValidEvent(event_type, family, payload, normalise_email(payload["email"]), path,
                      payload_shape(event_type, payload).custom_fields)


def custom_field_names(event_type: EventType, payload: dict[str, Any]) -> tuple[str, ...]:
    """The payload's keys that are custom fields of the contact beyond its type's table (see
    is_custom_field), in the payload's order: the order in which a group defines new fields."""
    if not event_type.custom_fields:
        return ()
    # The keys beyond the table's: a set difference, cheaper than a look at each key.
    extra = payload.keys() - event_type.fields_by_name.keys()
    if not extra:
        return ()
    in_order = [key for key in payload if key in extra] if len(extra) > 1 else extra
    return tuple(key for key in in_order if is_custom_field(event_type, key))


def _check_choice(value: Any, options: tuple[str, ...], parent: str, name: str,
                  errors: list[Error]) -> str | None:
    """A required string among `options`, the value of `name` in the object at `parent`: the
    value, or None with its error appended."""
    if value is None:
        errors.append(null_error(child(parent, name)))
    elif not isinstance(value, str):
        errors.append(type_error("STRING", child(parent, name)))
    elif value not in options:
        errors.append(option_error(options, child(parent, name)))
    else:
        return value
    return None


def payload_errors(event_type: EventType, payload: dict[str, Any], path: str,
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
# or messages built: `_first_problem` over its fields, the custom fields' rule, and the payload's
# rules on a scratch list. Anything it refuses goes through the full check, which alone says what
# is wrong.


@dataclass(frozen=True, slots=True)
class _Plan:
    """An object's fields as the quick pass reads them: their rules, and the same split into
    the plain strings (optional, asking nothing beyond a string without NUL: most of a payload's
    fields) and the others. `plain_values` gets the plain strings' values, all at once; None
    when there are too few of them to split."""

    required: frozenset[str]
    rules: _Rules  # by field name
    plain: frozenset[str]
    plain_values: Callable[[dict[str, Any]], tuple[Any, ...]] | None
    others: _Rules  # by field name


_PLAIN_STRING: _Rule = (_KIND_STRING, None, None, None)


def _plan(fields: tuple[Field, ...]) -> _Plan:
    rules = {f.name: _rule(f) for f in fields}
    plain = tuple(name for name, rule in rules.items() if rule == _PLAIN_STRING)
    if len(plain) < 2:  # an itemgetter of one name gets the value, not a tuple of it
        plain = ()
    return _Plan(frozenset(f.name for f in fields if f.required), rules, frozenset(plain),
                 itemgetter(*plain) if plain else None,
                 {name: rule for name, rule in rules.items() if name not in plain})


def _fields_plainly_valid(plan: _Plan, payload: dict[str, Any], has_plain: bool) -> bool:
    """Whether each field of `payload` keeps its rule. When every plain string is there
    (`has_plain`), they are looked at in one go, joined (which only strings can be); otherwise,
    or when one is not a string (a null), every field goes through `_first_problem`."""
    plain_values = plan.plain_values
    if plain_values is not None and has_plain:
        try:
            joined = "".join(plain_values(payload))
        except TypeError:
            pass
        else:
            others = plan.others
            return NUL not in joined and _first_problem(
                others, zip(others, map(payload.get, others), strict=True)) is None
    return _first_problem(plan.rules, payload.items()) is None


_PLANS = {name: _plan(t.fields) for name, t in EVENT_TYPES.items()}


@dataclass(frozen=True, slots=True)
class PayloadShape:
    """What a payload's keys alone say, the same for every payload of its type with the same
    keys in the same order."""

    custom_fields: tuple[str, ...]  # see custom_field_names
    custom_names_valid: bool  # each of them an RD identifier, without NUL
    has_required: bool  # every required field is there (maybe null)
    has_plain: bool  # every plain string field is there (see _Plan)


# Shapes known, by event type and then the payload's keys in order: an integration sends the
# same few again and again, and a shape known costs a tuple and a look-up where working it out
# costs several passes over the keys. Only shapes of at most _SHAPE_KEYS keys of at most
# _SHAPE_CHARACTERS characters in all are kept, at most _SHAPES_KEPT of each type, so that
# whatever keys clients send the memory kept stays small.
_SHAPES: dict[str, dict[tuple[str, ...], PayloadShape]] = {name: {} for name in EVENT_TYPES}
_SHAPES_KEPT, _SHAPE_KEYS, _SHAPE_CHARACTERS = 128, 64, 2_048


def payload_shape(event_type: EventType, payload: dict[str, Any]) -> PayloadShape:
    keys = tuple(payload)
    shapes = _SHAPES[event_type.name]
    shape = shapes.get(keys)
    if shape is None:
        plan = _PLANS[event_type.name]
        custom_fields = custom_field_names(event_type, payload)
        shape = PayloadShape(custom_fields,
                             not any(map(_custom_name_problem, custom_fields)),
                             plan.required <= payload.keys(), plan.plain <= payload.keys())
        if (len(shapes) < _SHAPES_KEPT and len(keys) <= _SHAPE_KEYS
                and sum(map(len, keys)) <= _SHAPE_CHARACTERS):
            shapes[keys] = shape
    return shape


def payload_plainly_valid(event_type: EventType, payload: dict[str, Any],
                          shape: PayloadShape) -> bool:
    """True only when the full check would find nothing wrong with `payload`, whose shape is
    `shape` (payload_shape)."""
    plan = _PLANS[event_type.name]
    if (not shape.has_required or not shape.custom_names_valid
            or not _fields_plainly_valid(plan, payload, shape.has_plain)):
        return False
    for key in shape.custom_fields:
        if _custom_value_problem(payload[key]) is not None:
            return False
    scratch: list[Error] = []
    for rule in event_type.rules:
        PAYLOAD_RULES[rule](event_type, payload, "$", scratch)
    return not scratch


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
