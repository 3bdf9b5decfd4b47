"""Tag policies: their validation, storage, and which tags an immutability policy covers.

Auto-prune policies (`number_of_tags` keeps the newest N, `creation_date` drops tags older
than a duration) and immutability policies (a tag pattern) belong to a namespace or to one
repository. Rules are stored in Quay's key names. Patterns are user-supplied regular
expressions, so every match runs with a time limit: a pathological pattern counts as no match
instead of stalling a push or the worker.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import regex
from sqlalchemy import CompoundSelect, bindparam, or_, select, update
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.config import parse_duration
from cargohold.db.base import begin_write
from cargohold.db.models.accounts import User
from cargohold.db.models.policies import (
    NamespaceAutoPrunePolicy,
    NamespaceImmutabilityPolicy,
    RepositoryAutoPrunePolicy,
    RepositoryImmutabilityPolicy,
)
from cargohold.db.models.registry import Repository, Tag
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, NotFound

AUTOPRUNE = "autoprunepolicy"
IMMUTABILITY = "immutabilitypolicy"
METHOD_NUMBER_OF_TAGS = "number_of_tags"
METHOD_CREATION_DATE = "creation_date"
AUTOPRUNE_METHODS = (METHOD_NUMBER_OF_TAGS, METHOD_CREATION_DATE)
MAX_PATTERN_LENGTH = 256
MATCH_TIMEOUT_S = 0.1
_MARK_BATCH = 500

PolicyModel = (
    type[NamespaceAutoPrunePolicy]
    | type[RepositoryAutoPrunePolicy]
    | type[NamespaceImmutabilityPolicy]
    | type[RepositoryImmutabilityPolicy]
)
PolicyRow = (
    NamespaceAutoPrunePolicy
    | RepositoryAutoPrunePolicy
    | NamespaceImmutabilityPolicy
    | RepositoryImmutabilityPolicy
)


class PolicyError(Invalid):
    """A policy is malformed or conflicts with an existing one; the message is Quay's."""


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def _check_pattern(pattern: str) -> None:
    try:
        _compiled(pattern)
    except regex.error as exc:
        raise PolicyError(f"Invalid regex pattern: {exc}") from exc


def pattern_selects(name: str, pattern: str | None, matches: bool, *, whole: bool) -> bool:
    """Whether a policy with this pattern applies to a tag name (no pattern: every tag).

    Immutability compares the whole name (Quay's fullmatch); auto-prune looks for the
    pattern anywhere in the name, as Quay's database regex search does.
    """
    if pattern is None:
        return True
    compiled = _compiled(pattern)
    try:
        found = (compiled.fullmatch if whole else compiled.search)(name, timeout=MATCH_TIMEOUT_S)
    except TimeoutError:
        return False
    return (found is not None) == matches


# --- validation --------------------------------------------------------------------------


def autoprune_config(body: dict[str, Any]) -> dict[str, Any]:
    """A stored auto-prune rule from a request body, or PolicyError with Quay's message."""
    method = body.get("method")
    value = body.get("value")
    if method is None or value is None:
        raise PolicyError("Missing the following parameters: method, value")
    pattern = body.get("tagPattern")
    if isinstance(pattern, str):
        pattern = pattern.strip()
    matches = body.get("tagPatternMatches", True)
    if method not in AUTOPRUNE_METHODS:
        raise PolicyError("Invalid method provided")
    if not _valid_value(method, value):
        raise PolicyError("Invalid value given for method type")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise PolicyError("tag_pattern must be string")
        if pattern == "":
            raise PolicyError("tag_pattern cannot be empty")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise PolicyError("tag_pattern must be 256 characters or less")
        _check_pattern(pattern)
    if not isinstance(matches, bool):
        raise PolicyError("tag_pattern_matches must be bool")
    return {
        "method": method,
        "value": value,
        "tag_pattern": pattern,
        "tag_pattern_matches": matches,
    }


def _valid_value(method: str, value: Any) -> bool:
    if method == METHOD_NUMBER_OF_TAGS:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if not isinstance(value, str) or not value:
        return False
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def immutability_config(body: dict[str, Any]) -> dict[str, Any]:
    """A stored immutability rule from a request body, or PolicyError with Quay's message."""
    pattern = body.get("tagPattern")
    if isinstance(pattern, str):
        pattern = pattern.strip()
    matches = body.get("tagPatternMatches", True)
    if not pattern or not isinstance(pattern, str):
        raise PolicyError("tag_pattern is required and must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PolicyError("tag_pattern must be 256 characters or less")
    _check_pattern(pattern)
    if not isinstance(matches, bool):
        raise PolicyError("tag_pattern_matches must be a boolean")
    return {"tag_pattern": pattern, "tag_pattern_matches": matches}


# --- storage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """Where a policy hangs: a namespace (user or organization) or a repository."""

    namespace_id: int | None = None
    repository_id: int | None = None


def _owner_clause(model: PolicyModel, owner: Owner):
    if owner.repository_id is not None:
        return model.repository_id == owner.repository_id  # type: ignore[union-attr]
    return model.namespace_id == owner.namespace_id  # type: ignore[union-attr]


def config_of(row: PolicyRow) -> dict[str, Any]:
    return json.loads(row.policy_json)


def autoprune_view(row: PolicyRow) -> dict[str, Any]:
    config = config_of(row)
    return {
        "uuid": row.uuid,
        "method": config.get("method"),
        "value": config.get("value"),
        "tagPattern": config.get("tag_pattern"),
        "tagPatternMatches": config.get("tag_pattern_matches"),
    }


def immutability_view(row: PolicyRow) -> dict[str, Any]:
    config = config_of(row)
    return {
        "uuid": row.uuid,
        "tagPattern": config.get("tag_pattern"),
        "tagPatternMatches": config.get("tag_pattern_matches", True),
    }


def list_policies(session: Session, model: PolicyModel, owner: Owner) -> list[PolicyRow]:
    return list(
        session.scalars(select(model).where(_owner_clause(model, owner)).order_by(model.id)).all()
    )


def find_policy(session: Session, model: PolicyModel, owner: Owner, uuid: str) -> PolicyRow | None:
    return session.scalar(select(model).where(_owner_clause(model, owner), model.uuid == uuid))


def _duplicate(
    session: Session, model: PolicyModel, owner: Owner, config: dict[str, Any], skip: str | None
) -> bool:
    """Auto-prune: the same rule twice; immutability: the same pattern twice (Quay's rules)."""
    is_immutability = model in (NamespaceImmutabilityPolicy, RepositoryImmutabilityPolicy)
    for row in list_policies(session, model, owner):
        if row.uuid == skip:
            continue
        existing = config_of(row)
        if is_immutability and existing.get("tag_pattern") == config["tag_pattern"]:
            return True
        if not is_immutability and existing == config:
            return True
    return False


def _duplicate_message(model: PolicyModel) -> str:
    if model in (NamespaceImmutabilityPolicy, RepositoryImmutabilityPolicy):
        return "A policy with the same tag_pattern already exists"
    scope = "namespace" if model is NamespaceAutoPrunePolicy else "repository"
    return (
        f"Existing policy with same values for this {scope}, duplicate policies are not permitted"
    )


def create_policy(
    session: Session, model: PolicyModel, owner: Owner, config: dict[str, Any]
) -> PolicyRow:
    begin_write(session)
    if _duplicate(session, model, owner, config, None):
        raise PolicyError(_duplicate_message(model))
    row = model(policy_json=json.dumps(config))
    if owner.repository_id is not None:
        row.repository_id = owner.repository_id  # type: ignore[union-attr]
    else:
        row.namespace_id = owner.namespace_id  # type: ignore[union-attr]
    session.add(row)
    session.flush()
    return row


def update_policy(
    session: Session, model: PolicyModel, owner: Owner, row: PolicyRow, config: dict[str, Any]
) -> None:
    begin_write(session)
    if _duplicate(session, model, owner, config, row.uuid):
        raise PolicyError(_duplicate_message(model))
    row.policy_json = json.dumps(config)
    session.flush()


def delete_policy(session: Session, row: PolicyRow) -> None:
    begin_write(session)
    session.delete(row)
    session.flush()


# --- immutability ------------------------------------------------------------------------


@cache
def _immutability_rules_statement() -> CompoundSelect:
    # Built once: every tag push runs it, and building it costs more than running it.
    repository_id = bindparam("repository_id")
    namespace_id = select(Repository.namespace_user_id).where(Repository.id == repository_id)
    own = select(RepositoryImmutabilityPolicy.policy_json).where(
        RepositoryImmutabilityPolicy.repository_id == repository_id
    )
    inherited = select(NamespaceImmutabilityPolicy.policy_json).where(
        NamespaceImmutabilityPolicy.namespace_id == namespace_id.scalar_subquery()
    )
    return own.union_all(inherited)


def _immutability_rules(session: Session, repository_id: int) -> list[dict[str, Any]]:
    """The rules of the repository's own policies and of its namespace's, in one query."""
    rows = session.scalars(_immutability_rules_statement(), {"repository_id": repository_id})
    return [json.loads(raw) for raw in rows.all()]


def _covered(name: str, rules: list[dict[str, Any]]) -> bool:
    return any(
        pattern_selects(
            name, rule["tag_pattern"], rule.get("tag_pattern_matches", True), whole=True
        )
        for rule in rules
    )


def immutable_by_policy(session: Session, repository_id: int, name: str) -> bool:
    """Whether a tag of this name starts immutable in this repository."""
    return _covered(name, _immutability_rules(session, repository_id))


def mark_covered_tags(
    session: Session, config: dict[str, Any], *, namespace_id: int, repository_id: int | None
) -> int:
    """Make the alive tags a new or changed policy covers immutable; returns how many changed.

    An immutable tag never expires, so a pending expiration on those tags is cleared.
    """
    begin_write(session)
    now = _now_ms()
    query = (
        select(Tag.id, Tag.name)
        .join(Repository, Repository.id == Tag.repository_id)
        .where(
            Tag.hidden.is_(False),
            Tag.immutable.is_(False),
            or_(Tag.lifetime_end_ms.is_(None), Tag.lifetime_end_ms > now),
        )
        .order_by(Tag.id)
    )
    if repository_id is not None:
        query = query.where(Tag.repository_id == repository_id)
    else:
        query = query.where(Repository.namespace_user_id == namespace_id)
    marked = 0
    last_id = 0
    while True:
        rows = session.execute(query.where(Tag.id > last_id).limit(_MARK_BATCH)).all()
        if not rows:
            return marked
        ids = [row.id for row in rows if _covered(row.name, [config])]
        if ids:
            result = session.execute(
                update(Tag)
                .where(Tag.id.in_(ids), Tag.immutable.is_(False))
                .values(immutable=True, lifetime_end_ms=None)
            )
            marked += result.rowcount
        last_id = rows[-1].id


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- the policy endpoints: one owner, one kind, each change with its audit entry -----------


@dataclass(frozen=True)
class PolicyTarget:
    """The owner a request names: a namespace, or one repository in it."""

    namespace: User
    repository: Repository | None = None

    @property
    def owner(self) -> Owner:
        if self.repository is not None:
            return Owner(repository_id=self.repository.id)
        return Owner(namespace_id=self.namespace.id)

    def audit_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"namespace": self.namespace.username}
        if self.repository is not None:
            metadata["repo"] = self.repository.name
        return metadata


def _model(kind: str, target: PolicyTarget) -> PolicyModel:
    if kind == AUTOPRUNE:
        return NamespaceAutoPrunePolicy if target.repository is None else RepositoryAutoPrunePolicy
    if target.repository is None:
        return NamespaceImmutabilityPolicy
    return RepositoryImmutabilityPolicy


def policy_view(kind: str, row: PolicyRow) -> dict[str, Any]:
    if kind == AUTOPRUNE:
        return autoprune_view(row)
    return immutability_view(row)


def _requested_config(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Quay's schema checks (required keys), then the policy rules."""
    required = ("method", "value") if kind == AUTOPRUNE else ("tagPattern",)
    for key in required:
        if key not in body:
            raise PolicyError(f"{key!r} is a required property")
    if kind == AUTOPRUNE:
        return autoprune_config(body)
    return immutability_config(body)


def _audit_kind(kind: str, action: str, target: PolicyTarget) -> str:
    if kind == IMMUTABILITY:
        return f"{action}_immutability_policy"
    scope = "namespace" if target.repository is None else "repository"
    return f"{action}_{scope}_autoprune_policy"


def _audit_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    keys = ("tag_pattern", "tag_pattern_matches")
    if kind == AUTOPRUNE:
        keys = ("method", "value", *keys)
    return {key: config.get(key) for key in keys}


def _log(
    session: Session,
    target: PolicyTarget,
    kind: str,
    metadata: dict[str, Any],
    auth: AuthContext,
    ip: str | None,
) -> None:
    log_action(
        session,
        kind,
        namespace=target.namespace,
        auth=auth,
        repository=target.repository,
        ip=ip,
        metadata={**metadata, **target.audit_metadata()},
    )


def _log_change(
    session: Session,
    kind: str,
    action: str,
    target: PolicyTarget,
    config: dict[str, Any],
    auth: AuthContext,
    ip: str | None,
) -> None:
    """The change's entry; a new or changed immutability policy also covers existing tags."""
    _log(session, target, _audit_kind(kind, action, target), _audit_config(kind, config), auth, ip)
    if kind != IMMUTABILITY:
        return
    marked = mark_covered_tags(
        session,
        config,
        namespace_id=target.namespace.id,
        repository_id=target.repository.id if target.repository else None,
    )
    if marked:
        metadata = {**_audit_config(kind, config), "count": marked}
        _log(session, target, "tags_made_immutable_by_policy", metadata, auth, ip)


def policies_of(session: Session, kind: str, target: PolicyTarget) -> list[PolicyRow]:
    return list_policies(session, _model(kind, target), target.owner)


def policy_of(session: Session, kind: str, target: PolicyTarget, policy_uuid: str) -> PolicyRow:
    """The policy by uuid, looked up only under the target, so others' policies stay unseen."""
    row = find_policy(session, _model(kind, target), target.owner, policy_uuid)
    if row is None:
        raise NotFound()
    return row


def create_requested(
    session: Session,
    kind: str,
    target: PolicyTarget,
    body: dict[str, Any],
    *,
    auth: AuthContext,
    ip: str | None,
) -> PolicyRow:
    config = _requested_config(kind, body)
    row = create_policy(session, _model(kind, target), target.owner, config)
    _log_change(session, kind, "create", target, config, auth, ip)
    return row


def update_requested(
    session: Session,
    kind: str,
    target: PolicyTarget,
    policy_uuid: str,
    body: dict[str, Any],
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    config = _requested_config(kind, body)
    row = policy_of(session, kind, target, policy_uuid)
    update_policy(session, _model(kind, target), target.owner, row, config)
    _log_change(session, kind, "update", target, config, auth, ip)


def delete_requested(
    session: Session,
    kind: str,
    target: PolicyTarget,
    policy_uuid: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    row = policy_of(session, kind, target, policy_uuid)
    delete_policy(session, row)
    metadata = {"policy_uuid": policy_uuid}
    _log(session, target, _audit_kind(kind, "delete", target), metadata, auth, ip)
