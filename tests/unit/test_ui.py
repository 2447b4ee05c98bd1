"""The dashboard's pure parts: chart geometry and markup, periods and durations, where sign-in
may lead."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from rdevents.store.dashboard import Movement, TransitionRecord, like_pattern
from rdevents.ui import charts, times
from rdevents.ui.views.contacts import movement
from rdevents.ui.views.funnel import kind
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
