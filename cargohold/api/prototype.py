"""Default permissions ("prototypes") of an organization."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip
from cargohold.api.errors import invalid_request, not_found
from cargohold.api.orgauth import organization_for_admin
from cargohold.api.routing import ApiRouter
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.prototypes import PermissionPrototype
from cargohold.db.models.registry import Role
from cargohold.db.session import DbSession
from cargohold.domain import prototypes
from cargohold.domain.avatars import team_avatar, user_avatar
from cargohold.domain.teams import Actor

router = ApiRouter(tags=["prototype"])

PROTOTYPES_PATH = "/api/v1/organization/{orgname}/prototypes"
_ROLES = [role.value for role in Role]


def _user_view(settings: Settings, user: User, member_ids: set[int]) -> dict[str, Any]:
    return {
        "name": user.username,
        "is_robot": user.robot,
        "kind": "user",
        "is_org_member": user.robot or user.id in member_ids,
        "avatar": user_avatar(settings, user),
    }


def _views(
    db: DbSession, settings: Settings, organization: User, items: list[PermissionPrototype]
) -> list[dict[str, Any]]:
    users = [p.activating_user for p in items if p.activating_user is not None]
    users += [p.delegate_user for p in items if p.delegate_user is not None]
    member_ids = prototypes.organization_member_ids(db, organization, users)
    views = []
    for item in items:
        if item.delegate_team is not None:
            delegate = {
                "name": item.delegate_team.name,
                "kind": "team",
                "avatar": team_avatar(settings, item.delegate_team.name),
            }
        else:
            delegate = _user_view(settings, item.delegate_user, member_ids)
        activating = (
            _user_view(settings, item.activating_user, member_ids)
            if item.activating_user is not None
            else None
        )
        views.append(
            {
                "activating_user": activating,
                "delegate": delegate,
                "role": item.role.value,
                "id": item.uuid,
            }
        )
    return views


def _role(body: dict[str, Any]) -> Role:
    if "role" not in body:
        raise invalid_request("'role' is a required property")
    if body["role"] not in _ROLES:
        raise invalid_request(f"{body['role']!r} is not one of {_ROLES}")
    return Role(body["role"])


def _delegate_fields(body: dict[str, Any]) -> tuple[str, str, str | None]:
    delegate = body.get("delegate")
    if delegate is None:
        raise invalid_request("'delegate' is a required property")
    if not isinstance(delegate, dict):
        raise invalid_request(f"{delegate!r} is not of type 'object'")
    for key in ("name", "kind"):
        if key not in delegate:
            raise invalid_request(f"'{key}' is a required property")
    if delegate["kind"] not in ("user", "team"):
        raise invalid_request(f"{delegate['kind']!r} is not one of ['user', 'team']")
    if not isinstance(delegate["name"], str):
        raise invalid_request(f"{delegate['name']!r} is not of type 'string'")
    activating = body.get("activating_user")
    activating_name = None
    if activating is not None:
        if not isinstance(activating, dict):
            raise invalid_request(f"{activating!r} is not of type 'object'")
        activating_name = activating.get("name")
        if activating_name is not None and not isinstance(activating_name, str):
            raise invalid_request(f"{activating_name!r} is not of type 'string'")
    return delegate["name"], delegate["kind"], activating_name


@router.get(PROTOTYPES_PATH, operation_id="getOrganizationPrototypePermissions")
def list_prototypes(
    orgname: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname, read_only=True)
    items = prototypes.list_prototypes(db, organization)
    return {"prototypes": _views(db, settings, organization, items)}


@router.post(PROTOTYPES_PATH, operation_id="createOrganizationPrototypePermission")
def create_prototype(
    orgname: str, body: JsonBody, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname)
    role = _role(body)
    delegate_name, delegate_kind, activating_name = _delegate_fields(body)
    activating = prototypes.resolve_activating_user(db, activating_name)
    delegate = prototypes.resolve_delegate(db, organization, delegate_name, delegate_kind)
    item = prototypes.create_prototype(
        db,
        Actor(auth, client_ip(request)),
        organization,
        role=role,
        delegate=delegate,
        activating_user=activating,
    )
    db.commit()
    return _views(db, settings, organization, [item])[0]


def _existing(db: DbSession, organization: User, prototypeid: str) -> PermissionPrototype:
    item = prototypes.get_prototype(db, organization, prototypeid)
    if item is None:
        raise not_found()
    return item


@router.put(
    PROTOTYPES_PATH + "/{prototypeid}", operation_id="updateOrganizationPrototypePermission"
)
def update_prototype(
    orgname: str,
    prototypeid: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname)
    item = _existing(db, organization, prototypeid)
    role = _role(body)
    prototypes.change_prototype_role(db, Actor(auth, client_ip(request)), organization, item, role)
    db.commit()
    return _views(db, settings, organization, [item])[0]


@router.delete(
    PROTOTYPES_PATH + "/{prototypeid}",
    operation_id="deleteOrganizationPrototypePermission",
    status_code=204,
)
def delete_prototype(
    orgname: str, prototypeid: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    organization = organization_for_admin(db, auth, orgname)
    item = _existing(db, organization, prototypeid)
    prototypes.delete_prototype(db, Actor(auth, client_ip(request)), organization, item)
    db.commit()
    return Response(status_code=204)
