"""Time as rdevents stores it: UTC, ISO 8601, fixed width, so that text order is time order."""

from datetime import UTC, datetime, timedelta


def utc_now(offset_seconds: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
