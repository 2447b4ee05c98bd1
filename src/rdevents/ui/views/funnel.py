"""The funnel (/ui/funnel): contacts at each lifecycle stage, and the funnel's movements of the
last 30 days (from the recorded funnel transitions), by kind."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ...contacts import LIFECYCLE_STAGES
from ...store.dashboard import DAY, Movement
from .. import charts, pages, times
from ..charts import Series
from ..sessions import Visitor

DAYS = 30
NEW = "New contacts"
OPPORTUNITY = "Marked as opportunities"
LOST = "Opportunities lost"
STAGE_COLOURS = {"Lead": charts.PALETTE[0], "Qualified Lead": charts.PALETTE[4],
                 "Client": charts.PALETTE[2]}
# Each kind of movement, in the legend's order, with its colour.
KINDS = {NEW: charts.PALETTE[0], "Became Qualified Lead": charts.PALETTE[4],
         "Became Client": charts.PALETTE[2], "Back to Lead": charts.PALETTE[7],
         OPPORTUNITY: charts.PALETTE[1], LOST: charts.PALETTE[5]}


def kind(m: Movement) -> str:
    """The kind of a funnel movement: a stage change if there is one, else the opportunity's."""
    if m.from_stage is None:
        return NEW
    if m.from_stage != m.to_stage:
        return "Back to Lead" if m.to_stage == "Lead" else f"Became {m.to_stage}"
    return OPPORTUNITY if m.to_opportunity else LOST


def movement_series(movements: list[Movement], period: times.Period) -> list[Series]:
    """A series per kind of movement that happened, counted by day."""
    slots = period.index()
    counts: dict[str, list[float]] = {}
    for m in movements:
        if m.period in slots and (m.from_stage != m.to_stage or m.from_stage is None
                                  or m.from_opportunity != m.to_opportunity):
            values = counts.setdefault(kind(m), [0.0] * len(period.prefixes))
            values[slots[m.period]] += m.count
    return [Series(name, colour, tuple(counts[name])) for name, colour in KINDS.items()
            if name in counts]


@pages.signed_in
async def funnel_page(request: Request, visitor: Visitor) -> Response:
    store = pages.store_of(request)
    by_stage = {s.stage: s for s in await store.contacts_by_stage(visitor.account_id)}
    stages = [(stage, by_stage[stage].contacts if stage in by_stage else 0)
              for stage in LIFECYCLE_STAGES]
    opportunities = sum(s.opportunities for s in by_stage.values())
    period = times.days(pages.now(), DAYS)
    series = movement_series(
        await store.funnel_movements(visitor.account_id, period.since, DAY), period)
    total = sum(count for _, count in stages)
    stage_chart = charts.horizontal_bars(
        "chart-stages", "Contacts per lifecycle stage",
        [(stage, count, STAGE_COLOURS[stage]) for stage, count in stages])
    ticks = {i: label for i, label in enumerate(period.labels) if (DAYS - 1 - i) % 5 == 0}
    movements_chart = charts.stacked_bars(
        "chart-movements", f"Funnel movements per day, last {DAYS} days",
        "; ".join(f"{s.name}: {round(s.total):,}" for s in series) or "No movements",
        period.labels, series, ticks)
    days = [(label, [(s, s.values[i]) for s in series])
            for i, label in enumerate(period.labels)]
    return pages.render(request, "funnel.html", visitor, stages=stages, total=total,
                        opportunities=opportunities, stage_chart=stage_chart,
                        movements_chart=movements_chart, series=series, days=days)
