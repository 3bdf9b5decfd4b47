"""Applying auto-prune policies to a repository.

Every policy that covers a repository (its own and its namespace's) is applied, as Quay
combines them: first each `creation_date` policy removes the tags older than its duration,
then each `number_of_tags` policy keeps the newest N of the tags it selects. Immutable tags
are never pruned and do not count towards N. Pruning ends tags through the normal tag
deletion, so they stay restorable from the time machine until GC reclaims them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cargohold.config import parse_duration
from cargohold.db.models.accounts import User
from cargohold.db.models.policies import NamespaceAutoPrunePolicy, RepositoryAutoPrunePolicy
from cargohold.db.models.registry import Repository, RepositoryState, Tag
from cargohold.domain import tag_policies, tags
from cargohold.domain.audit import log_action

log = logging.getLogger(__name__)

PERFORMER = "autoprune worker"


@dataclass(frozen=True)
class PruneCandidate:
    name: str
    start_ms: int


def repositories_with_policies(session: Session, after_id: int, limit: int) -> list[int]:
    """Ids of live, normal repositories some auto-prune policy covers, in id order."""
    own = select(RepositoryAutoPrunePolicy.repository_id)
    inherited = select(NamespaceAutoPrunePolicy.namespace_id)
    return list(
        session.scalars(
            select(Repository.id)
            .where(
                Repository.id > after_id,
                Repository.deleted.is_(False),
                Repository.state == RepositoryState.NORMAL,
                or_(Repository.id.in_(own), Repository.namespace_user_id.in_(inherited)),
            )
            .order_by(Repository.id)
            .limit(limit)
        ).all()
    )


def rules_for(session: Session, repository: Repository) -> list[dict[str, Any]]:
    """The namespace's rules, then the repository's own."""
    inherited = select(NamespaceAutoPrunePolicy.policy_json).where(
        NamespaceAutoPrunePolicy.namespace_id == repository.namespace_user_id
    )
    own = select(RepositoryAutoPrunePolicy.policy_json).where(
        RepositoryAutoPrunePolicy.repository_id == repository.id
    )
    raw = [*session.scalars(inherited).all(), *session.scalars(own).all()]
    return [json.loads(item) for item in raw]


def _prunable(session: Session, repository_id: int, now: int) -> list[PruneCandidate]:
    """Alive, visible, mutable tags, newest first."""
    rows = session.execute(
        select(Tag.name, Tag.lifetime_start_ms)
        .where(
            Tag.repository_id == repository_id,
            Tag.hidden.is_(False),
            Tag.immutable.is_(False),
            tags.alive_at(now),
        )
        .order_by(Tag.lifetime_start_ms.desc(), Tag.id.desc())
    ).all()
    return [PruneCandidate(name, start) for name, start in rows]


def _selected(candidates: list[PruneCandidate], rule: dict[str, Any]) -> list[PruneCandidate]:
    pattern = rule.get("tag_pattern")
    matches = rule.get("tag_pattern_matches", True) is not False
    return [
        tag
        for tag in candidates
        if tag_policies.pattern_selects(tag.name, pattern, matches, whole=False)
    ]


def _doomed_by(rule: dict[str, Any], candidates: list[PruneCandidate], now: int) -> set[str]:
    selected = _selected(candidates, rule)
    if rule["method"] == tag_policies.METHOD_CREATION_DATE:
        cutoff = now - parse_duration(rule["value"]) * 1000
        return {tag.name for tag in selected if tag.start_ms < cutoff}
    return {tag.name for tag in selected[int(rule["value"]) :]}


def tags_to_prune(
    rules: list[dict[str, Any]], candidates: list[PruneCandidate], now: int
) -> list[str]:
    """Names every rule removes: age rules first, then count rules on what remains."""
    doomed: set[str] = set()
    ordered = sorted(rules, key=lambda rule: rule["method"] != tag_policies.METHOD_CREATION_DATE)
    for rule in ordered:
        remaining = [tag for tag in candidates if tag.name not in doomed]
        doomed |= _doomed_by(rule, remaining, now)
    return [tag.name for tag in candidates if tag.name in doomed]


def plan(session: Session, repository_id: int) -> tuple[Repository | None, list[str]]:
    """The repository and the tag names its policies remove now."""
    repository = session.get(Repository, repository_id)
    if repository is None:
        return None, []
    rules = rules_for(session, repository)
    if not rules:
        return repository, []
    now = tags.now_ms()
    return repository, tags_to_prune(rules, _prunable(session, repository.id, now), now)


def prune(session: Session, repository: Repository, names: list[str]) -> int:
    """End each named tag that is still alive and mutable; one audit entry per tag."""
    namespace = session.get(User, repository.namespace_user_id)
    pruned = 0
    for name in names:
        try:
            ended = tags.delete_tag(session, repository.id, name)
        except tags.TagImmutable:
            continue
        if ended is None:
            continue
        pruned += 1
        log_action(
            session,
            "autoprune_tag_delete",
            namespace=namespace,
            repository=repository,
            metadata={
                "performer": PERFORMER,
                "namespace": namespace.username if namespace else None,
                "repo": repository.name,
                "tag": name,
            },
        )
    return pruned
