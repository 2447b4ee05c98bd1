"""The query parameters the list routes share: `?page=&page_size=`, filters that take one of a
set of values, and `?event_type=`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from ..catalogue import EVENT_TYPE_NAMES, EVENT_TYPES
from ..validation import Error, format_error, option_error, type_error

MAX_PAGE = 1_000_000  # a page number (or size) past any real listing, within every integer
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def positive_int(text: str, path: str, errors: list[Error]) -> int:
    """A whole number from 1 to MAX_PAGE from the query; else an error, and 1."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        errors.append(type_error("POSITIVE_INTEGER", path))
    elif int(text) > MAX_PAGE:
        errors.append(format_error(f"Must be a whole number from 1 to {MAX_PAGE}.",
                                   f"1..{MAX_PAGE}", path))
    else:
        return int(text)
    return 1


def page_of(query: QueryParams, default_size: int, errors: list[Error]) -> Page:
    """The page asked for; a page_size over MAX_PAGE_SIZE is cut down to it."""
    number = positive_int(query.get("page", "1"), "$.query.page", errors)
    size = positive_int(query.get("page_size", str(default_size)), "$.query.page_size", errors)
    return Page(number, min(size, MAX_PAGE_SIZE))


def one_of(query: QueryParams, name: str, options: tuple[str, ...],
           errors: list[Error]) -> str | None:
    """An optional filter that must be one of `options`."""
    value = query.get(name)
    if value is not None and value not in options:
        errors.append(option_error(options, f"$.query.{name}"))
    return value


def event_types_of(query: QueryParams, errors: list[Error]) -> list[str]:
    """The event types `?event_type=` names, separated by `,` or `|`, in any case (none: every
    type)."""
    types = [t.strip().upper() for t in re.split(r"[|,]", query.get("event_type", ""))
             if t.strip()]
    if any(t not in EVENT_TYPES for t in types):
        errors.append(option_error(EVENT_TYPE_NAMES, "$.query.event_type"))
    return types
