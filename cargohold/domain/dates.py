"""Dates as Quay renders them in every view and export file."""

from __future__ import annotations

import datetime as dt
from email.utils import formatdate


def format_date(value: dt.datetime | None) -> str | None:
    """RFC 2822 in UTC with Quay's `-0000` zone, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return formatdate(value.timestamp(), usegmt=False)
