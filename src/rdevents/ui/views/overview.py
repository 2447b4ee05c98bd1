"""The overview (/ui/): events per minute over the last hour and the last day, by type; the
requests rejected in the last day; the webhook and relay backlogs and how long their oldest
item has waited; how many contacts there are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from ...store.dashboard import MINUTE, TEN_MINUTES
from .. import charts, pages, times
from ..charts import Series
from ..sessions import Visitor
from .relays import Totals

HOUR_MINUTES = 60
DAY_PERIODS = 144  # of ten minutes


@dataclass(frozen=True)
class Activity:
    """Events of a stretch of time, by period and type, drawn and summed."""

    chart: Markup
    series: list[Series]
    total: int
    by_type: list[tuple[str, int]]  # biggest first


def activity(counts: list[tuple[str, str, int]], period: times.Period, per_minute: float,
             chart_id: str, title: str, tick: Callable[[str], bool]) -> Activity:
    """`counts` as (period prefix, event type, events); each bar shows events per minute (a
    period's count divided by its minutes, `per_minute`). The periods whose label `tick`
    accepts are named on the horizontal axis."""
    slots = period.index()
    by_type: dict[str, list[float]] = {}
    totals: dict[str, int] = {}
    for prefix, event_type, count in counts:
        if prefix not in slots:  # a clock ahead of this process's: not in the chart's range
            continue
        values = by_type.setdefault(event_type, [0.0] * len(period.prefixes))
        values[slots[prefix]] += count / per_minute
        totals[event_type] = totals.get(event_type, 0) + count
    series = charts.top_series(by_type)
    ticks = {i: label for i, label in enumerate(period.labels) if tick(label)}
    total = sum(totals.values())
    description = (f"{total:,} events from {period.labels[0]} to {period.labels[-1]} UTC"
                   + "".join(f"; {s.name}: {round(s.total * per_minute):,}" for s in series))
    chart = charts.stacked_bars(chart_id, title, description, period.labels, series, ticks)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return Activity(chart, series, total, ranked)


@pages.signed_in
async def overview(request: Request, visitor: Visitor) -> Response:
    store, now = pages.store_of(request), pages.now()
    hour = times.minutes(now, HOUR_MINUTES, 1)
    day = times.minutes(now, DAY_PERIODS, 10)
    hour_counts = await store.count_events(visitor.account_id, hour.since, MINUTE)
    day_counts = await store.count_events(visitor.account_id, day.since, TEN_MINUTES)
    backlog = await store.webhook_backlog(visitor.account_id)
    contacts = await store.count_contacts(visitor.account_id)
    lag = times.age(backlog.oldest_since, now) if backlog.oldest_since else None
    rejected = await store.count_requests(visitor.account_id, "rejected", day.since)
    relays = await store.list_relays(visitor.account_id)
    return pages.render(
        request, "overview.html", visitor,
        hour=activity(hour_counts, hour, 1, "chart-hour",
                      "Events per minute, last hour", tick=lambda hh_mm: hh_mm[4] == "0"),
        day=activity(day_counts, day, 10, "chart-day",
                     "Events per minute, last 24 hours (10-minute averages)",
                     tick=lambda hh_mm: hh_mm[3:] == "00" and int(hh_mm[:2]) % 3 == 0),
        backlog=backlog, lag=lag, contacts=contacts, rejected=rejected, relays=len(relays),
        relayed=Totals.of(relays))
