"""Robot accounts of the caller (/api/v1/user/robots) and of organizations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_user,
    validate_body,
)
from cargohold.api.errors import (
    BAD_REQUEST_TEXT,
    MessageError,
    data_model_error,
    invalid_request,
    unauthorized,
)
from cargohold.api.query import MAX_QUERY_INTEGER, truthy
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import accounts, permissions, robot_federation, robots
from cargohold.domain.avatars import team_avatar
from cargohold.domain.dates import format_date

router = ApiRouter(tags=["robot"])


RobotLimit = Annotated[
    int | None,
    Query(
        description="If specified, the number of robots to return.",
        ge=-MAX_QUERY_INTEGER,
        le=MAX_QUERY_INTEGER,
    ),
]


class NewRobot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: StrictStr = Field(default="", max_length=255)
    unstructured_metadata: dict[str, Any] = Field(default=None)


def _robot_view(settings: Settings, robot: robots.Robot, *, metadata: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": robot.name,
        "created": format_date(robot.record.created),
        "last_accessed": format_date(robot.user.last_accessed),
        "description": robot.record.description or "",
        "token": robot.token or robots.read_token(settings, robot.record),
    }
    if metadata:
        view["unstructured_metadata"] = robot.metadata
    return view


def _robot_list(
    db: DbSession,
    settings: Settings,
    namespace: User,
    *,
    with_tokens: bool,
    with_permissions: bool,
    limit: int | None,
) -> dict[str, Any]:
    found = robots.list_robots(db, namespace, limit)
    ids = [robot.user.id for robot in found]
    teams = robots.robot_teams(db, ids) if with_permissions else {}
    repositories = robots.robot_repository_roles(db, ids) if with_permissions else {}
    items = []
    for robot in found:
        item: dict[str, Any] = {
            "name": robot.name,
            "created": format_date(robot.record.created),
            "last_accessed": format_date(robot.user.last_accessed),
        }
        if with_permissions:
            item["teams"] = [
                {"name": team.name, "avatar": team_avatar(settings, team.name)}
                for team in teams[robot.user.id]
            ]
            item["repositories"] = sorted(
                {repository.name for repository, _ in repositories[robot.user.id]}
            )
        item["description"] = robot.record.description or ""
        if with_tokens:
            item["token"] = robots.read_token(settings, robot.record)
        items.append(item)
    return {"robots": items}


@dataclass
class RobotCall:
    """A request about one robot in a namespace the caller administers."""

    db: DbSession
    settings: Settings
    auth: AuthContext
    ip: str | None
    namespace: User
    short_name: str

    def robot(self) -> robots.Robot:
        return robots.get_robot(self.db, self.namespace, self.short_name)


def _get(db: DbSession, namespace: User, short_name: str) -> robots.Robot:
    return robots.get_robot(db, namespace, short_name)


def _create(call: RobotCall, raw: dict[str, Any]) -> Response:
    body = validate_body(NewRobot, raw)
    robot = robots.add_robot(
        call.db,
        call.settings,
        call.namespace,
        call.short_name,
        description=body.description,
        metadata=body.unstructured_metadata,
        auth=call.auth,
        ip=call.ip,
    )
    call.db.commit()
    view = _robot_view(call.settings, robot, metadata=True)
    # Quay's creation answer echoes the metadata as sent (null when none was); reads show {}.
    view["unstructured_metadata"] = body.unstructured_metadata
    return JSONResponse(view, status_code=201)


def _delete(call: RobotCall) -> Response:
    robots.delete_robot(call.db, call.namespace, call.robot(), auth=call.auth, ip=call.ip)
    call.db.commit()
    return Response(status_code=204)


def _regenerate(call: RobotCall) -> dict[str, Any]:
    robot = robots.regenerate_token(
        call.db, call.settings, call.namespace, call.robot(), auth=call.auth, ip=call.ip
    )
    call.db.commit()
    return _robot_view(call.settings, robot, metadata=False)


def _permissions(db: DbSession, robot: robots.Robot) -> dict[str, Any]:
    roles = robots.robot_repository_roles(db, [robot.user.id])[robot.user.id]
    return {
        "permissions": [
            {
                "repository": {"name": repository.name, "is_public": repository.public},
                "role": str(role),
            }
            for repository, role in roles
        ]
    }


# The caller's own robots.


def _user_admin(auth: AuthContext) -> User:
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    return user


def _own_robot(
    robot_shortname: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> RobotCall:
    """A robot of the caller's own namespace (user:admin)."""
    user = _user_admin(auth)
    return RobotCall(db, settings, auth, client_ip(request), user, robot_shortname)


# Where a body is parsed, `auth` is declared before it: a bad token is answered before a bad
# body, and the robot's namespace is checked after both.
OwnRobot = Annotated[RobotCall, Depends(_own_robot)]


@router.get("/api/v1/user/robots", operation_id="getUserRobots")
def get_user_robots(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    limit: RobotLimit = None,
) -> dict[str, Any]:
    """The caller's robots; tokens unless `token=false`, teams and repositories with `permissions`."""
    user = _user_admin(auth)
    return _robot_list(
        db,
        settings,
        user,
        with_tokens=truthy(request, "token", True),
        with_permissions=truthy(request, "permissions"),
        limit=limit,
    )


@router.get("/api/v1/user/robots/{robot_shortname}", operation_id="getUserRobot")
def get_user_robot(call: OwnRobot) -> dict[str, Any]:
    return _robot_view(call.settings, call.robot(), metadata=True)


@router.put(
    "/api/v1/user/robots/{robot_shortname}", operation_id="createUserRobot", status_code=201
)
def create_user_robot(auth: AuthDep, raw: JsonBody, call: OwnRobot) -> Response:
    return _create(call, raw)


@router.delete(
    "/api/v1/user/robots/{robot_shortname}", operation_id="deleteUserRobot", status_code=204
)
def delete_user_robot(call: OwnRobot) -> Response:
    return _delete(call)


@router.post(
    "/api/v1/user/robots/{robot_shortname}/regenerate", operation_id="regenerateUserRobotToken"
)
def regenerate_user_robot_token(call: OwnRobot) -> dict[str, Any]:
    return _regenerate(call)


@router.get(
    "/api/v1/user/robots/{robot_shortname}/permissions", operation_id="getUserRobotPermissions"
)
def get_user_robot_permissions(call: OwnRobot) -> dict[str, Any]:
    return _permissions(call.db, call.robot())


# Organization robots.


def _may_admin(db: DbSession, auth: AuthContext, namespace: User | None) -> bool:
    if namespace is None:
        return auth.has_superuser_full_access
    return permissions.can_admin_organization(db, auth, namespace)


def _organization(orgname: str, namespace: User | None) -> User:
    """The organization itself; a user namespace or a missing one is Quay's model error."""
    if namespace is None or not namespace.organization:
        raise data_model_error(f"Organization does not exist: {orgname}")
    return namespace


def _is_member(db: DbSession, auth: AuthContext, namespace: User) -> bool:
    """Any team role, after the caller's scopes cap it (a repo:read token is no member)."""
    return permissions.effective_namespace_role(db, auth, namespace) is not None


def _org_admin(db: DbSession, auth: AuthContext, orgname: str) -> User:
    namespace = accounts.get_namespace(db, orgname)
    if not _may_admin(db, auth, namespace):
        raise unauthorized(auth)
    return _organization(orgname, namespace)


def _org_robot(
    orgname: str,
    robot_shortname: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
) -> RobotCall:
    """A robot of an organization the caller administers."""
    org = _org_admin(db, auth, orgname)
    return RobotCall(db, settings, auth, client_ip(request), org, robot_shortname)


OrgRobot = Annotated[RobotCall, Depends(_org_robot)]


@router.get("/api/v1/organization/{orgname}/robots", operation_id="getOrgRobots")
def get_org_robots(
    orgname: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    limit: RobotLimit = None,
) -> dict[str, Any]:
    """An organization's robots: members see names, admins also tokens and permissions."""
    namespace = accounts.get_namespace(db, orgname)
    is_admin = _may_admin(db, auth, namespace)
    readonly = auth.is_global_readonly_superuser
    is_member = namespace is not None and _is_member(db, auth, namespace)
    if not (is_admin or readonly or is_member):
        raise unauthorized(auth)
    org = _organization(orgname, namespace)
    return _robot_list(
        db,
        settings,
        org,
        with_tokens=truthy(request, "token", True) and is_admin,
        with_permissions=truthy(request, "permissions") and (is_admin or readonly),
        limit=limit,
    )


@router.get("/api/v1/organization/{orgname}/robots/{robot_shortname}", operation_id="getOrgRobot")
def get_org_robot(
    orgname: str, robot_shortname: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    namespace = accounts.get_namespace(db, orgname)
    if auth.is_global_readonly_superuser and not _may_admin(db, auth, namespace):
        org = _organization(orgname, namespace)
        view = _robot_view(settings, _get(db, org, robot_shortname), metadata=True)
        view.pop("token")
        return view
    org = _org_admin(db, auth, orgname)
    return _robot_view(settings, _get(db, org, robot_shortname), metadata=True)


@router.put(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}",
    operation_id="createOrgRobot",
    status_code=201,
)
def create_org_robot(auth: AuthDep, raw: JsonBody, call: OrgRobot) -> Response:
    return _create(call, raw)


@router.delete(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}",
    operation_id="deleteOrgRobot",
    status_code=204,
)
def delete_org_robot(call: OrgRobot) -> Response:
    return _delete(call)


@router.post(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}/regenerate",
    operation_id="regenerateOrgRobotToken",
)
def regenerate_org_robot_token(call: OrgRobot) -> dict[str, Any]:
    return _regenerate(call)


@router.get(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}/permissions",
    operation_id="getOrgRobotPermissions",
)
def get_org_robot_permissions(
    orgname: str, robot_shortname: str, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    """Needs both user:admin and organization admin."""
    if not auth.can_admin_self():
        raise unauthorized(auth)
    org = _org_admin(db, auth, orgname)
    return _permissions(db, _get(db, org, robot_shortname))


# OIDC federation of a robot: which outside identities may trade their tokens for it.


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]

# The body is read by hand (errors keep Quay's shapes); this describes it in the discovery.
_FEDERATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "description": "Federation configuration for the robot",
                    "items": {
                        "type": "object",
                        "properties": {
                            "issuer": {"type": "string", "description": "The issuer of the token"},
                            "subject": {
                                "type": "string",
                                "description": "The subject of the token",
                            },
                            "audiences": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Accepted token audiences; default: this host",
                            },
                        },
                        "required": ["issuer", "subject"],
                    },
                }
            }
        },
    }
}


def _federation_body(raw: bytes) -> Any:
    """The POSTed JSON value (an array here), read after the caller is authorized."""
    if not raw.strip():
        raise invalid_request("Missing JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(400, BAD_REQUEST_TEXT) from exc


def _set_federation(call: RobotCall, body: bytes) -> list[dict[str, Any]]:
    config = robot_federation.parse_config(call.settings, _federation_body(body))
    robot_federation.save_config(
        call.db, call.namespace, call.robot(), config, auth=call.auth, ip=call.ip
    )
    call.db.commit()
    return config


def _delete_federation(call: RobotCall) -> Response:
    robot_federation.save_config(
        call.db, call.namespace, call.robot(), [], auth=call.auth, ip=call.ip
    )
    call.db.commit()
    return Response(status_code=204)


@router.get(
    "/api/v1/user/robots/{robot_shortname}/federation", operation_id="getUserRobotFederation"
)
def get_user_robot_federation(call: OwnRobot) -> list[dict[str, Any]]:
    return robot_federation.get_config(call.robot())


@router.post(
    "/api/v1/user/robots/{robot_shortname}/federation",
    operation_id="createUserRobotFederation",
    openapi_extra=_FEDERATION_BODY,
)
def create_user_robot_federation(call: OwnRobot, body: RawBody) -> list[dict[str, Any]]:
    """Replace the robot's federation entries with the posted list."""
    return _set_federation(call, body)


@router.delete(
    "/api/v1/user/robots/{robot_shortname}/federation",
    operation_id="deleteUserRobotFederation",
    status_code=204,
)
def delete_user_robot_federation(call: OwnRobot) -> Response:
    return _delete_federation(call)


@router.get(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}/federation",
    operation_id="getOrgRobotFederation",
)
def get_org_robot_federation(
    orgname: str, robot_shortname: str, db: DbDep, auth: AuthDep
) -> list[dict[str, Any]]:
    """Org admins, full-access superusers and global read-only superusers."""
    namespace = accounts.get_namespace(db, orgname)
    if auth.is_global_readonly_superuser and not _may_admin(db, auth, namespace):
        org = _organization(orgname, namespace)
    else:
        org = _org_admin(db, auth, orgname)
    return robot_federation.get_config(_get(db, org, robot_shortname))


@router.post(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}/federation",
    operation_id="createOrgRobotFederation",
    openapi_extra=_FEDERATION_BODY,
)
def create_org_robot_federation(call: OrgRobot, body: RawBody) -> list[dict[str, Any]]:
    """Replace the robot's federation entries with the posted list."""
    return _set_federation(call, body)


@router.delete(
    "/api/v1/organization/{orgname}/robots/{robot_shortname}/federation",
    operation_id="deleteOrgRobotFederation",
    status_code=204,
)
def delete_org_robot_federation(call: OrgRobot) -> Response:
    return _delete_federation(call)
