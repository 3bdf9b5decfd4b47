"""Finding repositories and entities (users, robots, teams) by name for search boxes and
permission pickers; callers only ever find what they may see."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cargohold.db.models.accounts import Team, User
from cargohold.db.models.registry import Repository, Star
from cargohold.domain import repositories

ENTITY_LIMIT = 10


def find_repositories(
    session: Session,
    user: User | None,
    text: str,
    *,
    see_everything: bool,
    offset: int,
    limit: int,
) -> Sequence[Repository]:
    """Readable repositories whose name, namespace or description contains `text`."""
    query = repositories.visible_repositories(
        user, include_public=True, see_everything=see_everything
    )
    if text:
        query = query.where(
            or_(
                Repository.name.icontains(text, autoescape=True),
                Repository.description.icontains(text, autoescape=True),
                User.username.icontains(text, autoescape=True),
            )
        )
    return session.scalars(
        query.order_by(Repository.name, Repository.id).offset(offset).limit(limit)
    ).all()


def star_counts(session: Session, repository_ids: Sequence[int]) -> dict[int, int]:
    if not repository_ids:
        return {}
    rows = session.execute(
        select(Star.repository_id, func.count())
        .where(Star.repository_id.in_(repository_ids))
        .group_by(Star.repository_id)
    ).all()
    return {repository_id: count for repository_id, count in rows}


def matching_users(
    session: Session,
    prefix: str,
    *,
    robot_namespace: str | None,
    exact_only: bool,
) -> Sequence[User]:
    """People whose name starts with `prefix`, and robots of `robot_namespace` whose short name
    does (robots of other namespaces are never listed). Disabled accounts are listed, as Quay
    lists them: permissions granted to them come back into force when they are re-enabled."""
    people = (
        User.username == prefix if exact_only else User.username.startswith(prefix, autoescape=True)
    )
    branches = [(User.robot.is_(False)) & people]
    if robot_namespace is not None:
        short = prefix.split("+", 1)[1] if prefix.startswith(robot_namespace + "+") else prefix
        branches.append(
            User.robot.is_(True)
            & User.username.startswith(f"{robot_namespace}+{short}", autoescape=True)
        )
    return session.scalars(
        select(User)
        .where(
            User.organization.is_(False),
            User.deleted.is_(False),
            or_(*branches),
        )
        .order_by(User.username)
        .limit(ENTITY_LIMIT)
    ).all()


def matching_teams(session: Session, organization: User, prefix: str) -> Sequence[Team]:
    return session.scalars(
        select(Team)
        .where(
            Team.organization_id == organization.id,
            Team.name.startswith(prefix, autoescape=True),
        )
        .order_by(Team.name)
        .limit(ENTITY_LIMIT)
    ).all()
