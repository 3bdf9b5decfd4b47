"""Small JSON building blocks shared by every /api/v1 view: dates and avatars."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import formatdate
from typing import Any

from cargohold.config import Settings

# Quay's default avatar palette; the first two hex digits of the hash pick a colour.
AVATAR_COLORS = [
    "#969696",
    "#aec7e8",
    "#ff7f0e",
    "#ffbb78",
    "#2ca02c",
    "#98df8a",
    "#d62728",
    "#ff9896",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#f7b6d2",
    "#7f7f7f",
    "#c7c7c7",
    "#bcbd22",
    "#1f77b4",
    "#17becf",
    "#9edae5",
    "#393b79",
    "#5254a3",
    "#6b6ecf",
    "#9c9ede",
    "#9ecae1",
    "#31a354",
    "#b5cf6b",
    "#a1d99b",
    "#8c6d31",
    "#ad494a",
    "#e7ba52",
    "#a55194",
]


def format_date(value: dt.datetime | None) -> str | None:
    """RFC 2822 in UTC with Quay's `-0000` zone, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return formatdate(value.timestamp(), usegmt=False)


def avatar(settings: Settings, name: str, email_or_id: str | None, kind: str) -> dict[str, Any]:
    """The avatar block: a colour and hash derived from the email (or the name when empty)."""
    source = (email_or_id or "").strip().lower() or name.strip().lower()
    if settings.AVATAR_KIND == "gravatar":
        digest = hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()
    else:
        digest = hashlib.sha256(source.encode()).hexdigest()
    color = AVATAR_COLORS[int(digest[:2], 16) % len(AVATAR_COLORS)]
    return {"name": name, "hash": digest, "color": color, "kind": kind}
