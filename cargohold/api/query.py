"""Query-string parsing with Quay's rules (truthy booleans, integer errors as `{"message": {...}}`).

Numbers and times are bounded here: page numbers and limits end up multiplied into SQL
offsets and timestamps into datetimes, and an unbounded value would overflow either.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query, Request

from cargohold.api import deps
from cargohold.api.errors import MessageError, invalid_request

# Larger than any real page number, limit or id, small enough that products of two fit in SQL.
MAX_QUERY_INTEGER = 2**31 - 1

# An optional integer query parameter declared on the endpoint (FastAPI validates it).
OptionalQueryInteger = Annotated[int | None, Query(ge=-MAX_QUERY_INTEGER, le=MAX_QUERY_INTEGER)]
# The superuser listings of users and organizations page at most this many rows at a time.
MAX_PAGE_LIMIT = 100


def check_page_limit(limit: int) -> int:
    if limit > MAX_PAGE_LIMIT:
        raise invalid_request(f"Page limit cannot be above {MAX_PAGE_LIMIT}")
    return limit


def truthy(request: Request, name: str, default: bool = False) -> bool:
    """Anything but false/False/FALSE/0/null and the empty string is true."""
    return deps.truthy(request.query_params.get(name), default)


def integer(request: Request, name: str, default: int, help_text: str) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    return parse_integer(value, name, help_text)


def parse_integer(value: str, name: str, help_text: str) -> int:
    """A query value as an integer within ±MAX_QUERY_INTEGER, else Quay's 400 naming it."""
    try:
        number = int(value)
    except ValueError as exc:
        raise MessageError(400, {name: help_text}) from exc
    if abs(number) > MAX_QUERY_INTEGER:
        raise MessageError(400, {name: help_text})
    return number


def unix_time(value: int, name: str, help_text: str) -> dt.datetime:
    """A Unix timestamp as an aware datetime; times outside the calendar are a 400."""
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MessageError(400, {name: help_text}) from exc
