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

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip
from cargohold.api.errors import not_found, unauthorized
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.registry import Role
from cargohold.db.session import DbSession
from cargohold.domain import permissions, tag_policies
from cargohold.domain.accounts import get_namespace
from cargohold.domain.tag_policies import PolicyTarget

router = ApiRouter(tags=["policy"])

AUTOPRUNE = tag_policies.AUTOPRUNE
IMMUTABILITY = tag_policies.IMMUTABILITY


def _require_feature(settings: Settings, kind: str) -> None:
    enabled = settings.FEATURE_AUTO_PRUNE if kind == AUTOPRUNE else settings.FEATURE_IMMUTABLE_TAGS
    if not enabled:
        raise not_found()


def _organization_target(
    db: DbSession, auth: AuthContext, orgname: str, *, reading: bool
) -> PolicyTarget:
    """Rights are checked before existence, so outsiders learn nothing about names."""
    namespace = get_namespace(db, orgname)
    superuser_reads = reading and auth.is_global_readonly_superuser
    if namespace is None:
        if superuser_reads or auth.has_superuser_full_access:
            raise not_found()
        raise unauthorized(auth)
    if superuser_reads or permissions.can_admin_organization(db, auth, namespace):
        return PolicyTarget(namespace)
    raise unauthorized(auth)


def _repository_target(
    db: DbSession, auth: AuthContext, path: str, *, reading: bool
) -> PolicyTarget:
    repository = require_repository(db, auth, path, Role.admin, superuser_read=reading)
    return PolicyTarget(repository.namespace_user, repository)


def _user_target(auth: AuthContext) -> PolicyTarget:
    if auth.user is None or not auth.can_admin_self():
        raise unauthorized(auth)
    return PolicyTarget(auth.user)


# --- routes ------------------------------------------------------------------------------

TargetLookup = Callable[[DbSession, AuthContext, str, bool], PolicyTarget]


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
        target = lookup(db, auth, owner_name(request), True)
        rows = tag_policies.policies_of(db, kind, target)
        return {"policies": [tag_policies.policy_view(kind, row) for row in rows]}

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
        row = tag_policies.create_requested(
            db, kind, target, body, auth=auth, ip=client_ip(request)
        )
        db.commit()
        return JSONResponse({"uuid": row.uuid}, status_code=201)

    @router.get(item_path, operation_id=f"get{owner_label}{noun}Policy", name=f"get_{kind}_{param}")
    def get_policy(
        policy_uuid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
    ) -> Any:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), True)
        return tag_policies.policy_view(kind, tag_policies.policy_of(db, kind, target, policy_uuid))

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
        tag_policies.update_requested(
            db, kind, target, policy_uuid, body, auth=auth, ip=client_ip(request)
        )
        db.commit()
        return Response(status_code=204)

    @router.delete(
        item_path, operation_id=f"delete{owner_label}{noun}Policy", name=f"delete_{kind}_{param}"
    )
    def delete_policy(
        policy_uuid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
    ) -> Any:
        _require_feature(settings, kind)
        target = lookup(db, auth, owner_name(request), False)
        tag_policies.delete_requested(
            db, kind, target, policy_uuid, auth=auth, ip=client_ip(request)
        )
        db.commit()
        return {"uuid": policy_uuid}


def _org(db: DbSession, auth: AuthContext, name: str, reading: bool) -> PolicyTarget:
    return _organization_target(db, auth, name, reading=reading)


def _repo(db: DbSession, auth: AuthContext, path: str, reading: bool) -> PolicyTarget:
    return _repository_target(db, auth, path, reading=reading)


def _user(_db: DbSession, auth: AuthContext, _name: str, _reading: bool) -> PolicyTarget:
    return _user_target(auth)


_register(AUTOPRUNE, "Organization", "/api/v1/organization/{orgname}", _org, "AutoPrune")
_register(AUTOPRUNE, "Repository", "/api/v1/repository/{repository:repopath}", _repo, "AutoPrune")
_register(AUTOPRUNE, "User", "/api/v1/user", _user, "AutoPrune")
_register(IMMUTABILITY, "Org", "/api/v1/organization/{orgname}", _org, "Immutability")
_register(
    IMMUTABILITY, "Repository", "/api/v1/repository/{repository:repopath}", _repo, "Immutability"
)
