"""The page parameters of the list routes: `?page=&page_size=`."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from ..validation import Error, format_error, type_error

MAX_PAGE = 1_000_000  # a page number (or size) past any real listing, within every integer
MAX_PAGE_SIZE = 100


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


def page_of(query: QueryParams, default_size: int, errors: list[Error]) -> tuple[int, int]:
    """(page, page_size) asked for; a page_size over MAX_PAGE_SIZE is cut down to it."""
    page = positive_int(query.get("page", "1"), "$.query.page", errors)
    size = positive_int(query.get("page_size", str(default_size)), "$.query.page_size", errors)
    return page, min(size, MAX_PAGE_SIZE)
