"""Event validation over real HTTP: exact 400 bodies, derived from the catalogue.

Every parametrisation walks the catalogue (event types, their fields, the fields of their
array-of-object elements); no list of event types is written by hand here.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from conftest import conversion
from rdevents.catalogue import EVENT_TYPES, Field, FieldType

PAYLOAD = "$.body.payload"
MISSING = object()

EMAIL_FORMAT = ("Must be a valid e-mail address.", "email")
TIMESTAMP_FORMAT = ("Must be an RFC 3339 date-time (example: '2019-03-15T15:00:00.05Z').",
                    "date-time")
BAD_COOKIE = ("Must be a UTM source or a '__trf.src' cookie: 'encoded_' followed by base64 JSON, "
              "or JSON.", "trf-src")
NOT_EMPTY_WITH_COOKIE = ("Must be empty when traffic_source is a '__trf.src' cookie.",
                         "empty-with-trf-src-cookie")


# --- expected error objects -----------------------------------------------------------------------

def err(error_type: str, message: str, path: str, rules: dict | None = None) -> dict:
    return {"error_type": error_type, "error_message": message, "validation_rules": rules or {},
            "path": path}


def null(path: str) -> dict:
    return err("CANNOT_BE_NULL", "Cannot be null.", path)


def blank(path: str) -> dict:
    return err("CANNOT_BE_BLANK", "Can not be blank.", path)


def data_type(kind: str, path: str) -> dict:
    return err("INVALID_DATA_TYPE", f"Must be of type '{kind}'.", path, {"data_type": kind})


def option(options, path: str) -> dict:
    return err("INVALID_OPTION", "Must be one of the valid options.", path,
               {"valid_options": list(options)})


def bad_format(kind: tuple[str, str], path: str) -> dict:
    message, fmt = kind
    return err("INVALID_FORMAT", message, path, {"format": fmt})


# --- requests -------------------------------------------------------------------------------------

def example(event_type: str) -> dict:
    return copy.deepcopy(EVENT_TYPES[event_type].example)


def assert_errors(response, *expected: dict) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"errors": list(expected)}


def assert_accepted(api, event: dict) -> str:
    """Send a valid event (after a CONVERSION when its type needs an existing contact)."""
    if not EVENT_TYPES[event["event_type"]].creates_contact:
        assert api.send_event(conversion(event["payload"]["email"])).status_code == 200
    response = api.send_event(event)
    assert response.status_code == 200, response.text
    return response.json()["event_uuid"]


def stored_payload(api, event_uuid: str) -> dict:
    return api.get(f"/platform/events/{event_uuid}").json()["payload"]


# --- walking the catalogue ------------------------------------------------------------------------

def sample(field: Field) -> Any:
    """A valid value for `field`."""
    if field.options:
        return field.options[0]
    if field.format == "email":
        return "someone@example.com"
    if field.type is FieldType.OBJECT_ARRAY:
        return [{item.name: sample(item) for item in field.items}]
    return {FieldType.STRING: "x", FieldType.TIMESTAMP: "2019-03-15T15:00:00Z",
            FieldType.INTEGER: 1, FieldType.FLOAT: 1.5, FieldType.BOOLEAN: True,
            FieldType.STRING_ARRAY: ["x"]}[field.type]


def wrong_type(field: Field) -> Any:
    return 1 if field.type.data_type == "STRING" else "x"


def locations(event_type: str, predicate) -> list[tuple[Field | None, Field]]:
    """(containing array field or None, field) for every field of `event_type` that `predicate`
    accepts: top-level fields and the fields of array-of-object elements alike."""
    found = []
    for field in EVENT_TYPES[event_type].fields:
        if predicate(field):
            found.append((None, field))
        found.extend((field, item) for item in field.items if predicate(item))
    return found


def types_having(predicate) -> list[str]:
    """The event types with at least one field `predicate` accepts."""
    return [name for name in EVENT_TYPES if locations(name, predicate)]


def event_with(event_type: str, container: Field | None, field: Field, value: Any) -> dict:
    """The type's example with `field` (inside the first element of `container`) set or removed."""
    event = example(event_type)
    target = event["payload"]
    if container is not None:
        target[container.name] = sample(container)
        target = target[container.name][0]
    if value is MISSING:
        target.pop(field.name, None)
    else:
        target[field.name] = value
    return event


def path_of(container: Field | None, field: Field) -> str:
    if container is None:
        return f"{PAYLOAD}.{field.name}"
    return f"{PAYLOAD}.{container.name}[0].{field.name}"


def expect_rejections(api, cases: list[tuple[dict, list[dict]]]) -> None:
    """Send every (event, expected errors) case; report every mismatch at once."""
    assert cases
    failures = []
    for event, expected in cases:
        response = api.send_event(event)
        if response.status_code != 400 or response.json() != {"errors": expected}:
            failures.append(f"sent {json.dumps(event['payload'])}\n"
                            f"  expected 400 {json.dumps({'errors': expected})}\n"
                            f"  got {response.status_code} {response.text}")
    assert not failures, "\n".join(failures)


def expect_acceptances(api, events: list[dict]) -> list[str]:
    assert events
    return [assert_accepted(api, event) for event in events]


def field_cases(event_type: str, predicate, values, expected) -> list[tuple[dict, list[dict]]]:
    """For every matching field and every value: the event and its expected errors
    (`expected(field, path)` gives the error list)."""
    return [(event_with(event_type, container, field, value),
             expected(field, path_of(container, field)))
            for container, field in locations(event_type, predicate)
            for value in (values(field) if callable(values) else values)]


def types_where(predicate) -> list[str]:
    return [t.name for t in EVENT_TYPES.values() if predicate(t)]


WITH_LEGAL_BASES = types_where(lambda t: any(f.name == "legal_bases" for f in t.fields))
WITH_TRAFFIC_RULE = types_where(lambda t: "traffic_source_cookie" in t.rules)
WITH_CUSTOM_FIELDS = types_where(lambda t: t.custom_fields)
CREATING_CONTACTS = types_where(lambda t: t.creates_contact)
STRING_KINDS = (FieldType.STRING, FieldType.TIMESTAMP)
NUMBER_KINDS = (FieldType.INTEGER, FieldType.FLOAT)


def is_required(f: Field) -> bool:
    return f.required


def is_required_string(f: Field) -> bool:
    return f.required and f.type in STRING_KINDS


def of_type(*kinds: FieldType):
    return lambda f: f.type in kinds


def has_options(f: Field) -> bool:
    return f.options is not None


def is_email(f: Field) -> bool:
    return f.format == "email"


# --- required fields, data types, options --------------------------------------------------------

@pytest.mark.parametrize("event_type", types_having(is_required))
def test_required_fields_missing_or_null(api, event_type):
    expect_rejections(api, field_cases(event_type, is_required, [MISSING, None],
                                       lambda f, path: [null(path)]))


@pytest.mark.parametrize("event_type", types_having(is_required_string))
def test_required_strings_blank(api, event_type):
    expect_rejections(api, field_cases(event_type, is_required_string, ["", "  ", "\t\n"],
                                       lambda f, path: [blank(path)]))


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_empty_payload_lists_every_required_field_in_table_order(api, event_type):
    event = example(event_type)
    event["payload"] = {}
    required = [f.name for f in EVENT_TYPES[event_type].fields if f.required]
    assert_errors(api.send_event(event), *(null(f"{PAYLOAD}.{name}") for name in required))


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_wrong_data_types(api, event_type):
    """A string where a non-string is expected, a number where a string is expected."""
    expect_rejections(api, field_cases(event_type, lambda f: True, lambda f: [wrong_type(f)],
                                       lambda f, path: [data_type(f.type.data_type, path)]))


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.STRING_ARRAY)))
def test_array_of_strings_elements_must_be_strings(api, event_type):
    expect_rejections(api, field_cases(
        event_type, of_type(FieldType.STRING_ARRAY), [["ok", 1, None, ["x"]]],
        lambda f, path: [data_type("STRING", f"{path}[{i}]") for i in (1, 2, 3)]))


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.OBJECT_ARRAY)))
def test_array_of_objects_elements_must_be_objects(api, event_type):
    expect_rejections(api, field_cases(
        event_type, of_type(FieldType.OBJECT_ARRAY), lambda f: [[*sample(f), "x", ["y"]]],
        lambda f, path: [data_type("OBJECT", f"{path}[1]"), data_type("OBJECT", f"{path}[2]")]))


@pytest.mark.parametrize("event_type", types_having(has_options))
def test_values_outside_the_options(api, event_type):
    expect_rejections(api, field_cases(event_type, has_options, ["not-an-option"],
                                       lambda f, path: [option(f.options, path)]))


@pytest.mark.parametrize("event_type", types_having(has_options))
def test_every_option_is_accepted(api, event_type):
    events = []
    for container, field in locations(event_type, has_options):
        for value in field.options:
            event = event_with(event_type, container, field, value)
            if container is not None and field.name == "status":
                # a legal basis may be declined only for communications (the seed's Obs)
                event["payload"][container.name][0]["category"] = "communications"
            events.append(event)
    expect_acceptances(api, events)


@pytest.mark.parametrize("event_type", types_having(of_type(*NUMBER_KINDS)))
def test_booleans_are_not_numbers(api, event_type):
    expect_rejections(api, field_cases(event_type, of_type(*NUMBER_KINDS), [True, False],
                                       lambda f, path: [data_type(f.type.data_type, path)]))


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.BOOLEAN)))
def test_numbers_are_not_booleans(api, event_type):
    expect_rejections(api, field_cases(event_type, of_type(FieldType.BOOLEAN), [1, 0],
                                       lambda f, path: [data_type("BOOLEAN", path)]))


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.INTEGER)))
def test_integral_floats_are_integers(api, event_type):
    expect_acceptances(api, [event_with(event_type, container, field, 2.0)
                             for container, field in locations(event_type,
                                                               of_type(FieldType.INTEGER))])


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.INTEGER)))
def test_fractional_numbers_are_not_integers(api, event_type):
    expect_rejections(api, field_cases(event_type, of_type(FieldType.INTEGER), [2.5, 0.1],
                                       lambda f, path: [data_type("INTEGER", path)]))


@pytest.mark.parametrize("event_type", types_having(of_type(FieldType.FLOAT)))
def test_integers_are_floats(api, event_type):
    expect_acceptances(api, [event_with(event_type, container, field, 2)
                             for container, field in locations(event_type,
                                                               of_type(FieldType.FLOAT))])


# --- formats --------------------------------------------------------------------------------------

INVALID_EMAILS = ["plainaddress", "@example.com", "ana@", "ana@example", "ana@@example.com",
                  "ana smith@example.com", "ana@exa mple.com", "ana@example..com",
                  "ana@.example.com"]


@pytest.mark.parametrize("event_type", types_having(is_email))
def test_invalid_emails(api, event_type):
    expect_rejections(api, field_cases(event_type, is_email, INVALID_EMAILS,
                                       lambda f, path: [bad_format(EMAIL_FORMAT, path)]))


@pytest.mark.parametrize("value", ["  Ana@Example.COM  ", "a.b+tag@sub.example.com.br",
                                   "o'brien@example.io"])
def test_valid_email_variants(api, value):
    assert_accepted(api, conversion(value))


VALID_TIMESTAMPS = ["2019-03-15T15:00:00Z", "2019-03-15T15:00:00.05Z",
                    "2019-03-15T14:53:42.928123Z", "2019-03-15T15:00:00+03:00",
                    "2019-03-15T15:00:00-03:30", "2019-03-15T15:00:00.5+00:00",
                    "2019-03-15t15:00:00z", "2016-12-31T23:59:60Z"]
INVALID_TIMESTAMPS = ["2019-03-15T15:00:00", "2019-13-15T15:00:00Z", "2019-03-15 14:53:42Z",
                      "2019-03-15", "2019-02-30T10:00:00Z", "2019-03-15T24:00:00Z",
                      "2019-03-15T15:00:00+0300", "2019-03-15T15:00Z", "15/03/2019 15:00",
                      "1552661622"]
IS_TIMESTAMP = of_type(FieldType.TIMESTAMP)


@pytest.mark.parametrize("event_type", types_having(IS_TIMESTAMP))
def test_valid_rfc3339_timestamps(api, event_type):
    for container, field in locations(event_type, IS_TIMESTAMP):
        for value in VALID_TIMESTAMPS:
            event_uuid = assert_accepted(api, event_with(event_type, container, field, value))
            assert stored_payload(api, event_uuid)[field.name] == value


@pytest.mark.parametrize("event_type", types_having(IS_TIMESTAMP))
def test_invalid_rfc3339_timestamps(api, event_type):
    expect_rejections(api, field_cases(event_type, IS_TIMESTAMP, INVALID_TIMESTAMPS,
                                       lambda f, path: [bad_format(TIMESTAMP_FORMAT, path)]))


# --- legal bases ----------------------------------------------------------------------------------

LB = f"{PAYLOAD}.legal_bases"
DATA_PROCESSING = {"category": "data_processing", "type": "pre_existent_contract"}
COMMUNICATIONS = {"category": "communications", "type": "consent", "status": "granted"}


INVALID_LEGAL_BASES = [
    (DATA_PROCESSING, [data_type("ARRAY", LB)]),
    ([DATA_PROCESSING, "x"], [data_type("OBJECT", f"{LB}[1]")]),
    ([{"category": "communications", "type": "consent"}], [null(f"{LB}[0].status")]),
    ([{"category": "communications", "type": "consent", "status": None}],
     [null(f"{LB}[0].status")]),
    ([DATA_PROCESSING, {"category": "communications", "type": "consent"}],
     [null(f"{LB}[1].status")]),
    ([{**DATA_PROCESSING, "status": "declined"}], [option(["granted"], f"{LB}[0].status")]),
    ([{}], [null(f"{LB}[0].category"), null(f"{LB}[0].type")]),
]
VALID_LEGAL_BASES = [
    [{**DATA_PROCESSING, "status": "granted"}],
    [DATA_PROCESSING],
    [{**COMMUNICATIONS, "status": "declined"}],
    [DATA_PROCESSING, COMMUNICATIONS],
    [],
]


def with_legal_bases(event_type: str, legal_bases: Any) -> dict:
    event = example(event_type)
    event["payload"]["legal_bases"] = copy.deepcopy(legal_bases)
    return event


@pytest.mark.parametrize("event_type", WITH_LEGAL_BASES)
def test_invalid_legal_bases(api, event_type):
    expect_rejections(api, [(with_legal_bases(event_type, value), expected)
                            for value, expected in INVALID_LEGAL_BASES])


@pytest.mark.parametrize("event_type", WITH_LEGAL_BASES)
def test_valid_legal_bases(api, event_type):
    expect_acceptances(api, [with_legal_bases(event_type, value) for value in VALID_LEGAL_BASES])


# --- traffic_source cookie rule -------------------------------------------------------------------

def encoded(value: object, urlsafe: bool = False) -> str:
    raw = json.dumps(value).encode()
    text = (base64.urlsafe_b64encode(raw).rstrip(b"=") if urlsafe else base64.b64encode(raw))
    return "encoded_" + text.decode()


TRF_SRC = {"source": "google", "medium": "cpc", "campaign": "easter?>>", "value": "eggs"}
COOKIES = {
    "encoded": encoded(TRF_SRC),
    "encoded-urlsafe-unpadded": encoded(TRF_SRC, urlsafe=True),
    "json": json.dumps(TRF_SRC),
}
UTM_FIELDS = ("traffic_medium", "traffic_campaign", "traffic_value")


def with_traffic(event_type: str, source: str | None, **utm: Any) -> dict:
    event = example(event_type)
    for name in ("traffic_source", *UTM_FIELDS):
        event["payload"].pop(name, None)
    if source is not None:
        event["payload"]["traffic_source"] = source
    event["payload"].update(utm)
    return event


def test_urlsafe_cookie_really_uses_the_urlsafe_alphabet():
    assert set("-_") & set(COOKIES["encoded-urlsafe-unpadded"][len("encoded_"):])


@pytest.mark.parametrize("utm_field", UTM_FIELDS)
@pytest.mark.parametrize("cookie", list(COOKIES.values()), ids=list(COOKIES))
@pytest.mark.parametrize("event_type", WITH_TRAFFIC_RULE)
def test_cookie_source_forbids_utm_fields(api, event_type, cookie, utm_field):
    response = api.send_event(with_traffic(event_type, cookie, **{utm_field: "cpc"}))
    assert_errors(response, bad_format(NOT_EMPTY_WITH_COOKIE, f"{PAYLOAD}.{utm_field}"))


@pytest.mark.parametrize("event_type", WITH_TRAFFIC_RULE)
def test_cookie_source_reports_every_utm_field(api, event_type):
    response = api.send_event(with_traffic(event_type, COOKIES["encoded"],
                                           **{name: "x" for name in UTM_FIELDS}))
    assert_errors(response, *(bad_format(NOT_EMPTY_WITH_COOKIE, f"{PAYLOAD}.{name}")
                              for name in UTM_FIELDS))


@pytest.mark.parametrize("utm", [{}, {name: "" for name in UTM_FIELDS},
                                 {name: None for name in UTM_FIELDS}],
                         ids=["absent", "empty", "null"])
@pytest.mark.parametrize("cookie", list(COOKIES.values()), ids=list(COOKIES))
@pytest.mark.parametrize("event_type", WITH_TRAFFIC_RULE)
def test_cookie_source_with_empty_utm_fields_is_accepted(api, event_type, cookie, utm):
    assert_accepted(api, with_traffic(event_type, cookie, **utm))


@pytest.mark.parametrize("event_type", WITH_TRAFFIC_RULE)
def test_utm_source_with_utm_fields_is_accepted(api, event_type):
    assert_accepted(api, with_traffic(event_type, "google", traffic_medium="cpc",
                                      traffic_campaign="easter", traffic_value="eggs"))


@pytest.mark.parametrize("source", ["encoded_%%%", "encoded_" + base64.b64encode(b"[1]").decode(),
                                    "encoded_" + base64.b64encode(b"not json").decode(),
                                    "{not json"],
                         ids=["not-base64", "encoded-array", "encoded-not-json", "bad-json"])
@pytest.mark.parametrize("event_type", WITH_TRAFFIC_RULE)
def test_malformed_cookie(api, event_type, source):
    response = api.send_event(with_traffic(event_type, source))
    assert_errors(response, bad_format(BAD_COOKIE, f"{PAYLOAD}.traffic_source"))


# --- custom fields and unknown keys ---------------------------------------------------------------

@pytest.mark.parametrize("value", ["text", "", 3, 2.0, True, False, ["a", "b"], [], None],
                         ids=lambda v: json.dumps(v))
@pytest.mark.parametrize("event_type", WITH_CUSTOM_FIELDS)
def test_custom_field_scalars_and_string_lists_are_accepted(api, event_type, value):
    event = example(event_type)
    event["payload"]["cf_extra"] = value
    event_uuid = assert_accepted(api, event)
    assert json.dumps(stored_payload(api, event_uuid)["cf_extra"]) == json.dumps(value)


@pytest.mark.parametrize("value", [{"a": 1}, [1], ["a", {"b": 2}]],
                         ids=["object", "list-of-numbers", "list-with-object"])
@pytest.mark.parametrize("event_type", WITH_CUSTOM_FIELDS)
def test_custom_field_objects_are_rejected(api, event_type, value):
    event = example(event_type)
    event["payload"]["cf_extra"] = value
    assert_errors(api.send_event(event), data_type("STRING", f"{PAYLOAD}.cf_extra"))


@pytest.mark.parametrize("key, path", [
    ("cf_my-field", f'{PAYLOAD}["cf_my-field"]'), ("cf_Plan", f"{PAYLOAD}.cf_Plan"),
    ("cf_", f"{PAYLOAD}.cf_"), ("cf_" + "x" * 197, f"{PAYLOAD}.cf_{'x' * 197}"),
    ("cf_nl\n", f'{PAYLOAD}["cf_nl\\n"]')])
@pytest.mark.parametrize("event_type", WITH_CUSTOM_FIELDS)
def test_custom_field_names_are_rds_api_identifiers(api, event_type, key, path):
    """A cf_* key becomes a field of the account: it must be a name the fields API takes."""
    event = example(event_type)
    event["payload"][key] = "x"
    assert_errors(api.send_event(event), err(
        "INVALID_FORMAT", "A custom field's name is cf_ and then up to 196 lower-case letters, "
        "digits or _.", path, {"format": "cf_[a-z0-9_]{1,196}"}))


@pytest.mark.parametrize("event_type", WITH_CUSTOM_FIELDS)
def test_custom_field_numbers_must_be_integers(api, event_type):
    """Custom fields have no decimal type: a number is an INTEGER (2.0 is one, 2.5 is not)."""
    event = example(event_type)
    event["payload"]["cf_extra"] = 2.5
    assert_errors(api.send_event(event), data_type("INTEGER", f"{PAYLOAD}.cf_extra"))


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_unknown_payload_keys_are_accepted_and_kept(api, event_type):
    event = example(event_type)
    extra = {"unknown_key": {"nested": [1, None, "x"]}, "Another Key": 3.5}
    event["payload"].update(extra)
    event_uuid = assert_accepted(api, event)
    stored = stored_payload(api, event_uuid)
    assert {key: stored[key] for key in extra} == extra


# --- envelope -------------------------------------------------------------------------------------

ALL_TYPES = list(EVENT_TYPES)


@pytest.mark.parametrize("key, value, expected", [
    ("event_type", MISSING, null("$.body.event_type")),
    ("event_type", None, null("$.body.event_type")),
    ("event_type", 1, data_type("STRING", "$.body.event_type")),
    ("event_type", "NOPE", option(ALL_TYPES, "$.body.event_type")),
    ("event_family", MISSING, null("$.body.event_family")),
    ("event_family", None, null("$.body.event_family")),
    ("event_family", 1, data_type("STRING", "$.body.event_family")),
    ("event_family", "XYZ", option(["CDP"], "$.body.event_family")),
    ("event_family", "cdp", option(["CDP"], "$.body.event_family")),
    ("payload", MISSING, null("$.body.payload")),
    ("payload", None, null("$.body.payload")),
    ("payload", "x", data_type("OBJECT", "$.body.payload")),
    ("payload", [], data_type("OBJECT", "$.body.payload")),
], ids=lambda v: "missing" if v is MISSING else None)
def test_invalid_envelope(api, key, value, expected):
    event = example(ALL_TYPES[0])
    if value is MISSING:
        del event[key]
    else:
        event[key] = value
    assert_errors(api.send_event(event), expected)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_query_event_type_naming_another_type(api, event_type):
    other = ALL_TYPES[(ALL_TYPES.index(event_type) + 1) % len(ALL_TYPES)]
    event = example(event_type)
    response = api.send_event(event, event_type=other.lower())
    assert_errors(response, option([event_type], "$.query.event_type"))
    assert api.contact(event["payload"]["email"]).status_code == 404


@pytest.mark.parametrize("query", ["nope", "conversions", "CONVERSION,SALE"])
def test_query_event_type_unknown(api, query):
    event = example(ALL_TYPES[0])
    response = api.send_event(event, event_type=query)
    assert_errors(response, option(ALL_TYPES, "$.query.event_type"))
    assert api.contact(event["payload"]["email"]).status_code == 404


# --- many errors at once, nothing stored ----------------------------------------------------------

def test_every_problem_is_reported_at_once_in_order(api):
    body = {
        "event_type": "CONVERSION",
        "event_family": "XYZ",
        "payload": {
            "cf_extra": {"a": 1},
            "legal_bases": [{"category": "communications", "type": "consent"}, "x"],
            "available_for_mailing": "yes",
            "tags": "a",
            "traffic_medium": "cpc",
            "traffic_source": encoded({"source": "google"}),
            "email": "not-an-email",
            "name": 1,
            "conversion_identifier": "  ",
        },
    }
    # envelope first; then the table's fields in table order (array elements in order, each
    # element's fields then its rules); then cf_* custom fields; then cross-field rules.
    assert_errors(
        api.send_event(body),
        option(["CDP"], "$.body.event_family"),
        blank(f"{PAYLOAD}.conversion_identifier"),
        data_type("STRING", f"{PAYLOAD}.name"),
        bad_format(EMAIL_FORMAT, f"{PAYLOAD}.email"),
        data_type("SET", f"{PAYLOAD}.tags"),
        data_type("BOOLEAN", f"{PAYLOAD}.available_for_mailing"),
        null(f"{PAYLOAD}.legal_bases[0].status"),
        data_type("OBJECT", f"{PAYLOAD}.legal_bases[1]"),
        data_type("STRING", f"{PAYLOAD}.cf_extra"),
        bad_format(NOT_EMPTY_WITH_COOKIE, f"{PAYLOAD}.traffic_medium"),
    )


def test_envelope_errors_are_reported_together(api):
    body = {"event_type": "NOPE", "event_family": 1, "payload": "x"}
    assert_errors(api.send_event(body), option(ALL_TYPES, "$.body.event_type"),
                  data_type("STRING", "$.body.event_family"),
                  data_type("OBJECT", "$.body.payload"))


@pytest.mark.parametrize("event_type", CREATING_CONTACTS)
def test_invalid_event_creates_no_contact(api, event_type):
    event = example(event_type)
    last = [f for f in EVENT_TYPES[event_type].fields if f.name != "email"][-1]
    event["payload"][last.name] = wrong_type(last)
    assert api.send_event(event).status_code == 400
    assert api.contact(event["payload"]["email"]).status_code == 404


def test_invalid_event_leaves_an_existing_contact_unchanged(api):
    email = "ana@example.com"
    assert api.send_event(conversion(email, name="Ana", tags=["first"])).status_code == 200
    before = api.contact(email).json()
    invalid = conversion(email, name="Bea", tags=["second"], available_for_mailing="yes")
    assert api.send_event(invalid).status_code == 400
    assert api.contact(email).json() == before
    history = api.get(f"/platform/contacts/email:{email}/events").json()
    assert len(history) == 1


# --- values no database can store -----------------------------------------------------------------


def test_nul_characters_are_refused_where_they_would_be_stored(api):
    from conftest import conversion

    body = conversion("nul@example.com", name="A\u0000B", tags=["ok", "x\u0000"],
                      cf_note="n\u0000", conversion_identifier="id\u0000")
    body["payload"]["cf_bad\u0000key"] = "v"
    response = api.send_event(body)
    assert response.status_code == 400
    paths = [e["path"] for e in response.json()["errors"]]
    assert paths == ["$.body.payload.conversion_identifier", "$.body.payload.name",
                     "$.body.payload.tags[1]", '$.body.payload.cf_note',
                     '$.body.payload["cf_bad\\u0000key"]']
    assert {e["error_type"] for e in response.json()["errors"]} == {"INVALID_FORMAT"}
    assert api.contact("nul@example.com").status_code == 404


def test_an_unstorable_event_fails_alone_among_concurrent_ones(api):
    """A payload nested deeper than the store writes is refused with its own 400, and the
    requests that share its transaction are stored."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import conversion

    deep: list = []
    for _ in range(300):
        deep = [deep]
    bodies = [conversion(f"mate{i}@example.com") for i in range(12)]
    bodies[5]["payload"]["extra"] = deep
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(api.send_event, bodies))
    assert [r.status_code for r in responses] == [200] * 5 + [400] + [200] * 6
    assert responses[5].json()["errors"] == [{
        "error_type": "INVALID_FORMAT", "error_message": "Must not nest JSON deeper than 252 "
        "levels.", "validation_rules": {"max_depth": 252}, "path": "$.body.payload"}]
