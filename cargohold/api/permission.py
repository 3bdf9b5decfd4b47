"""Repository permissions: the explicit roles of users, robots and teams on one repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel

from cargohold.api.deps import (
    AuthDep,
    Caller,
    CallerDep,
    DbDep,
    JsonBody,
    SettingsDep,
    validate_body,
)
from cargohold.api.errors import MessageError, not_found
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import Team, User
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import repo_permissions
from cargohold.domain.avatars import team_avatar, user_avatar

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


def _role_change(call: Caller, path: str, raw: dict[str, Any]) -> tuple[Repository, Role]:
    """The repository a grant change is for (admins only) and the role the body asks for."""
    repo = require_repository(call.db, call.auth, path, Role.admin)
    return repo, Role(validate_body(RoleBody, raw).role)


def _delete_grant(call: Caller, path: str, remove: Callable[[Repository], None]) -> Response:
    """A grant removal: admins only, answered with 204."""
    remove(require_repository(call.db, call.auth, path, Role.admin))
    call.db.commit()
    return Response(status_code=204)


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
    repository: str, username: str, call: CallerDep, raw: JsonBody
) -> dict[str, Any]:
    repo, role = _role_change(call, repository, raw)
    user, grant = repo_permissions.set_user_role(
        call.db, repo, username, role, auth=call.auth, ip=call.ip
    )
    view = _user_view(call.settings, user, grant.role, _members(call.db, repo, [user]))
    call.db.commit()
    return view


@router.delete(BASE + "/user/{username}", operation_id="deleteUserPermissions")
def delete_user_permission(repository: str, username: str, call: CallerDep) -> Response:
    def remove(repo: Repository) -> None:
        repo_permissions.delete_user_grant(call.db, repo, username, auth=call.auth, ip=call.ip)

    return _delete_grant(call, repository, remove)


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
    repository: str, teamname: str, call: CallerDep, raw: JsonBody
) -> dict[str, Any]:
    repo, role = _role_change(call, repository, raw)
    team, grant = repo_permissions.set_team_role(
        call.db, repo, teamname, role, auth=call.auth, ip=call.ip
    )
    view = _team_view(call.settings, team, grant.role)
    call.db.commit()
    return view


@router.delete(BASE + "/team/{teamname}", operation_id="deleteTeamPermissions")
def delete_team_permission(repository: str, teamname: str, call: CallerDep) -> Response:
    def remove(repo: Repository) -> None:
        repo_permissions.delete_team_grant(call.db, repo, teamname, auth=call.auth, ip=call.ip)

    return _delete_grant(call, repository, remove)
