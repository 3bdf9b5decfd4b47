"""Auto-prune and immutability policies of organizations, users and repositories.

Organization policies need org admin rights (or a full-access superuser); global read-only
superusers may read them. Repository policies need admin rights on the repository. User
policies belong to the calling user. A policy uuid is looked up only under the namespace or
repository named in the path, so nobody learns about another owner's policies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip
from cargohold.api.errors import invalid_request, not_found, unauthorized
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.policies import (
    NamespaceAutoPrunePolicy,
    NamespaceImmutabilityPolicy,
    RepositoryAutoPrunePolicy,
    RepositoryImmutabilityPolicy,
)
from cargohold.db.models.registry import Repository, Role
from cargohold.domain import permissions, tag_policies
from cargohold.domain.accounts import get_namespace
from cargohold.domain.audit import log_action
from cargohold.domain.tag_policies import Owner, PolicyModel, PolicyRow

router = ApiRouter(tags=["policy"])

AUTOPRUNE = "autoprunepolicy"
IMMUTABILITY = "immutabilitypolicy"


class Target:
    """The owner named by a request path, with what its audit entries need."""

    def __init__(self, namespace: User, repository: Repository | None = None) -> None:
        self.namespace = namespace
        self.repository = repository

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


def _require_feature(settings: Settings, kind: str) -> None:
    enabled = settings.FEATURE_AUTO_PRUNE if kind == AUTOPRUNE else settings.FEATURE_IMMUTABLE_TAGS
    if not enabled:
        raise not_found()


def _organization_target(db: Session, auth: AuthContext, orgname: str, *, reading: bool) -> Target:
    """Rights are checked before existence, so outsiders learn nothing about names."""
    namespace = get_namespace(db, orgname)
    superuser_reads = reading and auth.is_global_readonly_superuser
    if namespace is None:
        if superuser_reads or auth.has_superuser_full_access:
            raise not_found()
        raise unauthorized(auth)
    if superuser_reads or permissions.can_admin_organization(db, auth, namespace):
        return Target(namespace)
    raise unauthorized(auth)


def _repository_target(db: Session, auth: AuthContext, path: str, *, reading: bool) -> Target:
    repository = require_repository(db, auth, path, Role.admin, superuser_read=reading)
    return Target(repository.namespace_user, repository)


def _user_target(auth: AuthContext) -> Target:
    if auth.user is None or not auth.can_admin_self():
        raise unauthorized(auth)
    return Target(auth.user)


def _model(kind: str, target: Target) -> PolicyModel:
    if kind == AUTOPRUNE:
        return NamespaceAutoPrunePolicy if target.repository is None else RepositoryAutoPrunePolicy
    if target.repository is None:
        return NamespaceImmutabilityPolicy
    return RepositoryImmutabilityPolicy


def _view(kind: str, row: PolicyRow) -> dict[str, Any]:
    if kind == AUTOPRUNE:
        return tag_policies.autoprune_view(row)
    return tag_policies.immutability_view(row)


def _config(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Quay's schema checks (required keys, types), then the policy rules."""
    required = ("method", "value") if kind == AUTOPRUNE else ("tagPattern",)
    for key in required:
        if key not in body:
            raise invalid_request(f"{key!r} is a required property")
    if kind == AUTOPRUNE:
        return tag_policies.autoprune_config(body)
    return tag_policies.immutability_config(body)


def _audit_kind(kind: str, action: str, target: Target) -> str:
    if kind == IMMUTABILITY:
        return f"{action}_immutability_policy"
    scope = "namespace" if target.repository is None else "repository"
    return f"{action}_{scope}_autoprune_policy"


def _audit_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    keys = ("tag_pattern", "tag_pattern_matches")
    if kind == AUTOPRUNE:
        keys = ("method", "value", *keys)
    return {key: config.get(key) for key in keys}


def _audit(
    db: Session,
    request: Request,
    auth: AuthContext,
    target: Target,
    kind: str,
    metadata: dict[str, Any],
) -> None:
    log_action(
        db,
        kind,
        namespace=target.namespace,
        auth=auth,
        repository=target.repository,
        ip=client_ip(request),
        metadata={**metadata, **target.audit_metadata()},
    )


def _find(db: Session, kind: str, target: Target, policy_uuid: str) -> PolicyRow:
    row = tag_policies.find_policy(db, _model(kind, target), target.owner, policy_uuid)
    if row is None:
        raise not_found()
    return row


def _mark_covered(
    db: Session,
    request: Request,
    auth: AuthContext,
    target: Target,
    kind: str,
    config: dict[str, Any],
) -> None:
    """A new or changed immutability policy also covers the tags that exist already."""
    if kind != IMMUTABILITY:
        return
    marked = tag_policies.mark_covered_tags(
        db,
        config,
        namespace_id=target.namespace.id,
        repository_id=target.repository.id if target.repository else None,
    )
    if marked:
        metadata = {**_audit_config(kind, config), "count": marked}
        _audit(db, request, auth, target, "tags_made_immutable_by_policy", metadata)


# --- the five operations, shared by every owner and kind ----------------------------------


def _list(db: Session, kind: str, target: Target) -> dict[str, Any]:
    rows = tag_policies.list_policies(db, _model(kind, target), target.owner)
    return {"policies": [_view(kind, row) for row in rows]}


def _create(
    db: Session,
    request: Request,
    auth: AuthContext,
    kind: str,
    target: Target,
    body: dict[str, Any],
) -> JSONResponse:
    config = _config(kind, body)
    row = tag_policies.create_policy(db, _model(kind, target), target.owner, config)
    _audit(
        db, request, auth, target, _audit_kind(kind, "create", target), _audit_config(kind, config)
    )
    _mark_covered(db, request, auth, target, kind, config)
    db.commit()
    return JSONResponse({"uuid": row.uuid}, status_code=201)


def _update(
    db: Session,
    request: Request,
    auth: AuthContext,
    kind: str,
    target: Target,
    policy_uuid: str,
    body: dict[str, Any],
) -> Response:
    config = _config(kind, body)
    row = _find(db, kind, target, policy_uuid)
    tag_policies.update_policy(db, _model(kind, target), target.owner, row, config)
    _audit(
        db, request, auth, target, _audit_kind(kind, "update", target), _audit_config(kind, config)
    )
    _mark_covered(db, request, auth, target, kind, config)
    db.commit()
    return Response(status_code=204)


def _delete(
    db: Session, request: Request, auth: AuthContext, kind: str, target: Target, policy_uuid: str
) -> dict[str, Any]:
    row = _find(db, kind, target, policy_uuid)
    tag_policies.delete_policy(db, row)
    _audit(
        db, request, auth, target, _audit_kind(kind, "delete", target), {"policy_uuid": policy_uuid}
    )
    db.commit()
    return {"uuid": policy_uuid}


# --- routes ------------------------------------------------------------------------------

TargetLookup = Callable[[Session, AuthContext, str, bool], Target]


def _register(kind: str, owner_label: str, base: str, lookup: TargetLookup, noun: str) -> None:
    """The list, create, get, update and delete routes of one owner kind and policy kind."""
    list_path = f"{base}/{kind}/"
    item_path = f"{base}/{kind}/{{policy_uuid}}"
    param = "orgname" if "{orgname}" in base else "repository" if "{repository" in base else None

    def owner_name(request: Request) -> str:
        return request.path_params.get(param, "") if param else ""

    @router.get(
        list_path, operation_id=f"list{owner_label}{noun}Policies", name=f"list_{kind}_{param}"
    )
    def list_policies(request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
        _require_feature(settings, kind)
        return _list(db, kind, lookup(db, auth, owner_name(request), True))

    @router.post(
        list_path,
        operation_id=f"create{owner_label}{noun}Policy",
        status_code=201,
        name=f"create_{kind}_{param}",
    )
    def create_policy(
        request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep, body: JsonBody
    ) -> Any:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), False)
        return _create(db, request, auth, kind, target, body)

    @router.get(item_path, operation_id=f"get{owner_label}{noun}Policy", name=f"get_{kind}_{param}")
    def get_policy(
        policy_uuid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
    ) -> Any:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), True)
        return _view(kind, _find(db, kind, target, policy_uuid))

    @router.put(
        item_path,
        operation_id=f"update{owner_label}{noun}Policy",
        status_code=204,
        name=f"update_{kind}_{param}",
    )
    def update_policy(
        policy_uuid: str,
        request: Request,
        db: DbDep,
        auth: AuthDep,
        settings: SettingsDep,
        body: JsonBody,
    ) -> Response:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), False)
        return _update(db, request, auth, kind, target, policy_uuid, body)

    @router.delete(
        item_path, operation_id=f"delete{owner_label}{noun}Policy", name=f"delete_{kind}_{param}"
    )
    def delete_policy(
        policy_uuid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
    ) -> Any:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), False)
        return _delete(db, request, auth, kind, target, policy_uuid)


def _org(db: Session, auth: AuthContext, name: str, reading: bool) -> Target:
    return _organization_target(db, auth, name, reading=reading)


def _repo(db: Session, auth: AuthContext, path: str, reading: bool) -> Target:
    return _repository_target(db, auth, path, reading=reading)


def _user(_db: Session, auth: AuthContext, _name: str, _reading: bool) -> Target:
    return _user_target(auth)


_register(AUTOPRUNE, "Organization", "/api/v1/organization/{orgname}", _org, "AutoPrune")
_register(AUTOPRUNE, "Repository", "/api/v1/repository/{repository:repopath}", _repo, "AutoPrune")
_register(AUTOPRUNE, "User", "/api/v1/user", _user, "AutoPrune")
_register(IMMUTABILITY, "Org", "/api/v1/organization/{orgname}", _org, "Immutability")
_register(
    IMMUTABILITY, "Repository", "/api/v1/repository/{repository:repopath}", _repo, "Immutability"
)
