"""The dashboard's pure parts: chart geometry and markup, periods and durations, where sign-in
may lead, errors found at their paths in a request body, upstreams shown without credentials."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import orjson
import pytest

from rdevents.store.dashboard import Movement, TransitionRecord, like_pattern
from rdevents.ui import charts, faults, times
from rdevents.ui.faults import Fault
from rdevents.ui.views.contacts import movement
from rdevents.ui.views.funnel import kind
from rdevents.ui.views.relays import upstream
from rdevents.ui.views.sign_in import safe_next


@pytest.mark.parametrize("value, expected", [
    (0, (1.0, 1.0)), (1, (1.0, 0.2)), (3, (3.0, 1.0)), (7, (8.0, 2.0)), (14, (15.0, 5.0)),
    (0.3, (0.3, 0.1)), (1234, (1250.0, 250.0)), (100, (100.0, 20.0)),
])
def test_an_axis_goes_a_little_past_the_largest_value_in_round_steps(value, expected):
    top, step = charts.nice_ceiling(value)
    assert (round(top, 9), round(step, 9)) == expected
    assert top >= value and 2 <= round(top / step) <= 5 or value == 0


def test_series_past_the_palette_are_summed_as_other_types():
    counts = {f"T{i}": [float(i), 1.0] for i in range(10)}
    series = charts.top_series(counts)
    assert [s.name for s in series] == ["T9", "T8", "T7", "T6", "T5", "T4", "T3",
                                        charts.OTHER]
    assert series[-1].values == (0 + 1 + 2, 3.0)  # T0, T1, T2
    assert series[-1].colour == charts.OTHER_COLOUR
    assert len({s.colour for s in series}) == 8
    few = charts.top_series({"A": [1.0], "B": [2.0]})
    assert [(s.name, s.values) for s in few] == [("B", (2.0,)), ("A", (1.0,))]


def test_stacked_bars_escape_every_text_and_stack_from_the_bottom():
    series = [charts.Series("<b>", "#000", (2.0, 0.0)), charts.Series("x\"y", "#111", (1.0, 4.0))]
    svg = str(charts.stacked_bars("c<1", "T & <t>", "d", ["<a>", "b"], series, {0: "<t0>"}))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "x&quot;y" in svg
    assert 'id="c&lt;1"' in svg and "T &amp; &lt;t&gt;" in svg and "&lt;t0&gt;" in svg
    rects = [(float(y), float(h)) for y, h in re.findall(
        r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg)]
    assert len(rects) == 3  # the zero value draws nothing
    (y0, h0), (y1, h1), (y2, h2) = rects
    assert y0 + h0 == pytest.approx(charts.HEIGHT - charts.BOTTOM)  # first layer on the axis
    assert y1 + h1 == pytest.approx(y0)  # the next on top of it
    assert h1 * 4 == pytest.approx(h2)
    assert "style=" not in svg  # the pages' CSP allows no inline style


def test_horizontal_bars_are_as_long_as_their_values():
    svg = str(charts.horizontal_bars("s", "Stages", [("Lead", 10, "#000"), ("Client", 5, "#111"),
                                                   ("None", 0, "#222")]))
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="[^"]+" width="([^"]+)"', svg)]
    assert widths[0] == 2 * widths[1] and widths[2] == 0


def test_numbers_read_with_separators():
    assert [charts.number(v) for v in (0, 7, 1234567, 2.5, 0.25, 3.0)] == [
        "0", "7", "1,234,567", "2.5", "0.2", "3"]


def test_minute_periods_end_with_the_current_one():
    now = datetime(2026, 12, 2, 14, 3, 27, tzinfo=UTC)
    hour = times.minutes(now, 60, 1)
    assert hour.prefixes[-1] == "2026-12-02T14:03" and hour.prefixes[0] == "2026-12-02T13:04"
    assert hour.since == "2026-12-02T13:04:00.000000Z"
    assert hour.labels[-1] == "14:03"
    day = times.minutes(now, 144, 10)
    assert day.prefixes[-1] == "2026-12-02T14:0" and day.prefixes[0] == "2026-12-01T14:1"
    assert day.since == "2026-12-01T14:10:00.000000Z"
    assert len(set(day.prefixes)) == 144
    month = times.days(now, 30)
    assert month.prefixes[-1] == "2026-12-02" and month.prefixes[0] == "2026-11-03"
    assert month.labels[-1] == "Dec 02"


def test_times_and_durations_as_pages_show_them():
    assert times.shown("2026-12-02T14:03:05.123456Z") == "2026-12-02 14:03:05 UTC"
    assert times.shown(None) == ""
    assert [times.duration(s) for s in (0, 45, 252, 3600, 7505, 277_200, -3)] == [
        "0 s", "45 s", "4 min 12 s", "1 h", "2 h 5 min", "3 d 5 h", "0 s"]


@pytest.mark.parametrize("target, safe", [
    ("/ui/contacts?tag=a", "/ui/contacts?tag=a"), (None, "/ui/"), ("", "/ui/"),
    ("https://evil.example/", "/ui/"), ("//evil.example", "/ui/"), ("/ui//evil", "/ui/"),
    ("/ui/\\\\evil", "/ui/"), ("/ui/\r\nSet-Cookie:x", "/ui/"), ("/docs", "/ui/"),
])
def test_signing_in_leads_to_dashboard_pages_only(target, safe):
    assert safe_next(target) == safe


def test_like_patterns_match_text_as_it_is():
    assert like_pattern("a_b%c\\d") == "%a\\_b\\%c\\\\d%"


@pytest.mark.parametrize("movement, expected", [
    (Movement("d", None, "Lead", None, False, 1), "New contacts"),
    (Movement("d", "Lead", "Client", False, False, 1), "Became Client"),
    (Movement("d", "Client", "Lead", False, False, 1), "Back to Lead"),
    (Movement("d", "Lead", "Lead", False, True, 1), "Marked as opportunities"),
    (Movement("d", "Lead", "Lead", True, False, 1), "Opportunities lost"),
])
def test_kinds_of_funnel_movement(movement, expected):
    assert kind(movement) == expected


def _transition(from_stage: str | None, to_stage: str, from_opportunity: bool | None,
                to_opportunity: bool, event_type: str | None) -> TransitionRecord:
    return TransitionRecord(from_stage, to_stage, from_opportunity, to_opportunity, None, None,
                            "event" if event_type else "api", "2026-12-02T00:00:00.000000Z",
                            "u" if event_type else None, event_type)


@pytest.mark.parametrize("transition, words", [
    (_transition(None, "Lead", None, False, "CONVERSION"), "Became a contact, as Lead"),
    (_transition("Lead", "Client", True, True, "SALE"), "Lead → Client"),
    (_transition("Lead", "Client", False, True, None),
     "Lead → Client; Marked as an opportunity"),
    (_transition("Lead", "Lead", True, False, "OPPORTUNITY_LOST"), "No longer an opportunity"),
    (_transition("Lead", "Lead", False, False, "OPPORTUNITY_LOST"),
     "Opportunity lost (it was not one)"),
    (_transition("Client", "Client", False, False, "SALE"), "Another sale (already a Client)"),
    (_transition("Lead", "Lead", False, False, None), "No change"),
])
def test_a_funnel_transition_in_words(transition, words):
    assert movement(transition) == words


@pytest.mark.parametrize("path, steps", [
    ("$", ()), ("$.body", ("body",)), ("$.body.payload.email", ("body", "payload", "email")),
    ("$.body[3].payload.legal_bases[0].status",
     ("body", 3, "payload", "legal_bases", 0, "status")),
    ("$['cf_a.b'][1]", ("cf_a.b", 1)), ("payload.email", None), ("$.body[x]", None),
])
def test_jsonpaths_read_as_steps(path, steps):
    assert faults.steps(path) == steps


def error(error_type: str, path: str | None = None, **rules: object) -> dict[str, object]:
    found: dict[str, object] = {"error_type": error_type, "error_message": f"{error_type}."}
    if path is not None:
        found.update(path=path, validation_rules=rules)
    return found


BODY = {"event_type": "CONVERSION", "event_family": "CDP",
        "payload": {"conversion_identifier": "x", "legal_bases": [{"status": "maybe"}]}}


def test_errors_are_found_at_their_paths_in_the_body():
    answer = {"errors": [error("CANNOT_BE_NULL", "$.body.payload.email"),
                         error("INVALID_OPTION", "$.body.payload.legal_bases[0].status",
                               valid_options=["granted"]),
                         error("INVALID_OPTION", "$.query.event_type"),
                         error("CANNOT_BE_BLANK", "$.payload.conversion_identifier"),
                         error("TOO_LONG", "$.body.payload.tags")]}
    found = faults.faults_of(answer, BODY, True)
    assert [(f.number, f.at, f.missing, f.in_query, f.first) for f in found] == [
        (1, ("payload",), "email", False, 1),
        (2, ("payload", "legal_bases", 0, "status"), "", False, 2),
        (3, None, "", True, 0),
        (4, ("payload", "conversion_identifier"), "", False, 4),
        (5, ("payload",), "tags", False, 1)]  # shown at the payload, as the first is
    assert found[1].rules == {"valid_options": ["granted"]}
    assert (found[0].note, found[4].anchor) == ("1. email: CANNOT_BE_NULL.", "fault-at-1")
    # A body that is not JSON shows no place.
    assert [f.at for f in faults.faults_of(answer, "{cut", False)] == [None] * 5


@pytest.mark.parametrize("answer, expected", [
    ({"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}},
     [("UNAUTHORIZED", "Invalid token.", None)]),
    ({"errors": {"lifecycle_stage": [error("MUST_BE_VALID_OPTION")],
                 "base": [error("INVALID")],
                 "secret": [error("INVALID_FORMAT", "$.body.secret")]}},
     [("MUST_BE_VALID_OPTION", "MUST_BE_VALID_OPTION.", "$.body.lifecycle_stage"),
      ("INVALID", "INVALID.", None), ("INVALID_FORMAT", "INVALID_FORMAT.", "$.body.secret")]),
    ({"error": "invalid_request", "error_description": "The access token is missing"},
     [("invalid_request", "The access token is missing", None)]),
    ({"event_uuid": "e"}, []), ("Bad Gateway", []), (None, []),
])
def test_every_shape_of_rd_errors_is_read(answer, expected):
    assert [(f.error_type, f.message, f.path) for f in faults.faults_of(answer, {}, True)] \
        == expected


@pytest.mark.parametrize("document", [
    BODY, [], {}, [1, [2, {"a": None}], {}], "text", 3.5, None, {"é <b>": ["&", True]}])
def test_json_is_drawn_as_orjson_indents_it(document):
    drawn = str(faults.marked_json(document))
    assert html.unescape(drawn) == orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def test_the_places_of_errors_are_marked_with_their_notes():
    found = [Fault(1, "CANNOT_BE_NULL", "Cannot be <null>.", "$.body.payload.email",
                   at=("payload",), missing="email", first=1),
             Fault(2, "INVALID_OPTION", "Invalid.", "$.body.payload.legal_bases[0].status",
                   at=("payload", "legal_bases", 0, "status"), first=2)]
    lines = str(faults.marked_json(BODY, found)).split("\n")
    assert lines[3] == ('  <mark class="fault" id="fault-at-1">"payload": {</mark>'
                        '<span class="fault-note"> ← 1. email: Cannot be &lt;null&gt;.</span>')
    assert lines[7] == ('        <mark class="fault" id="fault-at-2">"status": "maybe"</mark>'
                        '<span class="fault-note"> ← 2. Invalid.</span>')


@pytest.mark.parametrize("url, shown", [
    ("https://api.rd.services", "https://api.rd.services"),
    ("https://user:secret@rd.example:8443/base", "https://rd.example:8443/base"),
    ("http://a@b@host", "http://host"),
])
def test_upstreams_are_shown_without_credentials(url, shown):
    assert upstream(url) == shown
