"""Repository permissions: the explicit roles of users, robots and teams on one repository."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel

from cargohold.api.avatar import team_avatar, user_avatar
from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, validate_body
from cargohold.api.errors import MessageError, not_found
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import Team, User
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import repo_permissions

router = ApiRouter(tags=["permission"])
BASE = "/api/v1/repository/{repository:repopath}/permissions"


class RoleBody(BaseModel):
    role: Literal["read", "write", "admin"]


def _user_view(
    settings: Settings, user: User, role: Role, members: set[int] | None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "role": str(role),
        "name": user.username,
        "is_robot": user.robot,
        "avatar": user_avatar(settings, user),
    }
    if members is not None:
        view["is_org_member"] = user.id in members
    return view


def _members(db: DbSession, repo: Repository, users: list[User]) -> set[int] | None:
    """Org membership matters only for organization repositories."""
    if not repo.namespace_user.organization:
        return None
    return repo_permissions.organization_member_ids(db, repo.namespace_user, users)


def _team_view(settings: Settings, team: Team, role: Role) -> dict[str, Any]:
    return {"role": str(role), "name": team.name, "avatar": team_avatar(settings, team.name)}


def _admin_read(db: DbSession, auth: AuthContext, path: str) -> Repository:
    return require_repository(db, auth, path, Role.admin, superuser_read=True)


@router.get(BASE + "/user/", operation_id="listRepoUserPermissions")
def list_user_permissions(
    repository: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = _admin_read(db, auth, repository)
    grants = repo_permissions.user_grants(db, repo)
    members = _members(db, repo, [grant.user for grant in grants])
    return {
        "permissions": {
            grant.user.username: _user_view(settings, grant.user, grant.role, members)
            for grant in grants
        }
    }


@router.get(BASE + "/user/{username}/transitive", operation_id="getUserTransitivePermission")
def get_transitive_permission(
    repository: str, username: str, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    repo = _admin_read(db, auth, repository)
    user = repo_permissions.find_grantee(db, username)
    if user is None:
        raise not_found()
    roles = repo_permissions.transitive_roles(db, repo, user)
    if not roles:
        raise not_found()
    return {"permissions": [{"role": str(role)} for role in roles]}


@router.get(BASE + "/user/{username}", operation_id="getUserPermissions")
def get_user_permission(
    repository: str, username: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = _admin_read(db, auth, repository)
    user = repo_permissions.find_grantee(db, username)
    grant = repo_permissions.user_grant(db, repo, user) if user is not None else None
    if user is None or grant is None:
        raise MessageError(400, "User does not have permission for repo.")
    return _user_view(settings, user, grant.role, _members(db, repo, [user]))


@router.put(BASE + "/user/{username}", operation_id="changeUserPermissions")
def change_user_permission(
    repository: str,
    username: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    raw: JsonBody,
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.admin)
    body = validate_body(RoleBody, raw)
    user, grant = repo_permissions.set_user_role(
        db, repo, username, Role(body.role), auth=auth, ip=client_ip(request)
    )
    view = _user_view(settings, user, grant.role, _members(db, repo, [user]))
    db.commit()
    return view


@router.delete(BASE + "/user/{username}", operation_id="deleteUserPermissions")
def delete_user_permission(
    repository: str, username: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    repo = require_repository(db, auth, repository, Role.admin)
    repo_permissions.delete_user_grant(db, repo, username, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)


@router.get(BASE + "/team/", operation_id="listRepoTeamPermissions")
def list_team_permissions(
    repository: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = _admin_read(db, auth, repository)
    return {
        "permissions": {
            grant.team.name: _team_view(settings, grant.team, grant.role)
            for grant in repo_permissions.team_grants(db, repo)
        }
    }


@router.get(BASE + "/team/{teamname}", operation_id="getTeamPermissions")
def get_team_permission(repository: str, teamname: str, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    repo = _admin_read(db, auth, repository)
    grant = repo_permissions.team_grant(db, repo, teamname)
    if grant is None:
        raise MessageError(400, "Team does not have permission for repo.")
    return {"role": str(grant.role)}


@router.put(BASE + "/team/{teamname}", operation_id="changeTeamPermissions")
def change_team_permission(
    repository: str,
    teamname: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    raw: JsonBody,
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.admin)
    body = validate_body(RoleBody, raw)
    team, grant = repo_permissions.set_team_role(
        db, repo, teamname, Role(body.role), auth=auth, ip=client_ip(request)
    )
    view = _team_view(settings, team, grant.role)
    db.commit()
    return view


@router.delete(BASE + "/team/{teamname}", operation_id="deleteTeamPermissions")
def delete_team_permission(
    repository: str, teamname: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    repo = require_repository(db, auth, repository, Role.admin)
    repo_permissions.delete_team_grant(db, repo, teamname, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)
