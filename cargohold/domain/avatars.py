"""The avatar object Quay attaches to users, robots, organizations, teams and applications."""

from __future__ import annotations

import hashlib
from typing import Any

from cargohold.config import Settings
from cargohold.db.models.accounts import User

# Quay's default palette; the first two hex digits of the hash pick the colour.
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


def avatar(settings: Settings, name: str, hash_source: str | None, kind: str) -> dict[str, Any]:
    """`hash_source` is the email (users, orgs, robots) or the name (teams); empty means name."""
    source = (hash_source or name).strip().lower()
    digest = (
        hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()
        if settings.AVATAR_KIND == "gravatar"
        else hashlib.sha256(source.encode()).hexdigest()
    )
    color = AVATAR_COLORS[int(digest[:2], 16) % len(AVATAR_COLORS)]
    return {"name": name, "hash": digest, "color": color, "kind": kind}


def user_avatar(settings: Settings, user: User, kind: str | None = None) -> dict[str, Any]:
    """A user, robot or organization; `kind` defaults to robot for robots and user otherwise."""
    default_kind = "robot" if user.robot else "user"
    return avatar(settings, user.username, user.email, kind or default_kind)


def team_avatar(settings: Settings, team_name: str) -> dict[str, Any]:
    return avatar(settings, team_name, team_name, "team")
