"""Organization members: everyone in the organization's teams, with their teams and grants."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, client_ip
from cargohold.api.errors import not_found
from cargohold.api.orgauth import organization_for_admin
from cargohold.api.routing import ApiRouter
from cargohold.config import Settings
from cargohold.domain import teams
from cargohold.domain.avatars import team_avatar, user_avatar

router = ApiRouter(tags=["organization"])

MEMBERS_PATH = "/api/v1/organization/{orgname}/members"


def _member_view(settings: Settings, member: teams.OrganizationMember) -> dict[str, Any]:
    user = member.user
    return {
        "name": user.username,
        "kind": "robot" if user.robot else "user",
        "avatar": user_avatar(settings, user),
        "teams": [
            {"name": team.name, "avatar": team_avatar(settings, team.name)} for team in member.teams
        ],
        "repositories": member.repositories,
    }


@router.get(MEMBERS_PATH, operation_id="getOrganizationMembers")
def get_members(orgname: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname, read_only=True)
    members = teams.organization_members(db, organization)
    return {
        "members": [_member_view(settings, member) for member in members if not member.user.robot]
    }


@router.get(MEMBERS_PATH + "/{membername}", operation_id="getOrganizationMember")
def get_member(
    orgname: str, membername: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname, read_only=True)
    account = teams.find_account(db, membername)
    if account is None:
        raise not_found()
    (member,) = teams.organization_members(db, organization, only=account)
    own_robot = account.robot and account.username.startswith(organization.username + "+")
    if not member.teams and not own_robot:
        raise not_found()
    return _member_view(settings, member)


@router.delete(
    MEMBERS_PATH + "/{membername}", operation_id="removeOrganizationMember", status_code=204
)
def remove_member(
    orgname: str, membername: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    organization = organization_for_admin(db, auth, orgname)
    account = teams.find_account(db, membername)
    if account is None or account.robot:
        raise not_found()
    teams.remove_from_organization(db, teams.Actor(auth, client_ip(request)), organization, account)
    db.commit()
    return Response(status_code=204)
