"""Teams: create/update/delete, members and invites, repository roles, invite acceptance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import HTTPException

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, client_ip
from cargohold.api.errors import (
    BAD_REQUEST_TEXT,
    MessageError,
    data_model_error,
    invalid_request,
    not_found,
    unauthorized,
)
from cargohold.api.orgauth import may_administer, organization_for_admin
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import Team, TeamMemberInvite, TeamRole, User
from cargohold.db.session import DbSession
from cargohold.domain import teams, untrusted_json
from cargohold.domain.avatars import avatar, team_avatar, user_avatar
from cargohold.domain.permissions import can_view_team

router = ApiRouter(tags=["team"])

TEAM_PATH = "/api/v1/organization/{orgname}/team/{teamname}"
_FALSE_VALUES = {"false", "False", "FALSE", "0", "", "null"}
_ROLES = [role.value for role in TeamRole]


def _actor(request: Request, auth: AuthContext) -> teams.Actor:
    return teams.Actor(auth, client_ip(request))


def _require_mailing(settings: Settings) -> None:
    """Without FEATURE_MAILING these routes do not exist, as in Quay."""
    if not settings.FEATURE_MAILING:
        raise HTTPException(404)


@dataclass
class TeamCall:
    """A request about one team of an organization the caller administers."""

    db: DbSession
    settings: Settings
    actor: teams.Actor
    team: Team


def _admin_team(
    orgname: str,
    teamname: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> TeamCall:
    organization = organization_for_admin(db, auth, orgname)
    team = teams.get_team(db, organization, teamname)
    if team is None:
        raise not_found()
    return TeamCall(db, settings, _actor(request, auth), team)


def _mailing(auth: AuthDep, settings: SettingsDep) -> None:
    """The caller is resolved first (as on every route), then a route without mail is a 404."""
    _require_mailing(settings)


AdminTeam = Annotated[TeamCall, Depends(_admin_team)]
# Declared before AdminTeam: without FEATURE_MAILING the route is missing for everyone.
MailingRoute = Annotated[None, Depends(_mailing)]


def team_view(
    db: DbSession, settings: Settings, auth: AuthContext, team: Team, *, new_team: bool
) -> dict[str, Any]:
    return {
        "name": team.name,
        "description": team.description,
        "can_view": can_view_team(db, auth, team),
        "role": team.role.value,
        "avatar": team_avatar(settings, team.name),
        "new_team": new_team,
    }


def member_view(settings: Settings, user: User, *, invited: bool) -> dict[str, Any]:
    return {
        "name": user.username,
        "kind": "user",
        "is_robot": user.robot,
        "avatar": user_avatar(settings, user),
        "invited": invited,
    }


def email_invite_view(settings: Settings, email: str) -> dict[str, Any]:
    return {
        "email": email,
        "kind": "invite",
        "avatar": avatar(settings, email, email, "user"),
        "invited": True,
    }


def invite_view(settings: Settings, invite: TeamMemberInvite) -> dict[str, Any]:
    if invite.user is not None:
        return member_view(settings, invite.user, invited=True)
    return email_invite_view(settings, invite.email or "")


async def _required_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise invalid_request("Missing JSON body")
    try:
        value = untrusted_json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(400, BAD_REQUEST_TEXT) from exc
    if not isinstance(value, dict):
        raise invalid_request(f"{value!r} is not of type 'object'")
    return value


def _team_fields(body: dict[str, Any]) -> tuple[TeamRole, str | None]:
    if "role" not in body:
        raise invalid_request("'role' is a required property")
    role = body["role"]
    if role not in _ROLES:
        raise invalid_request(f"{role!r} is not one of {_ROLES}")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid_request(f"{description!r} is not of type 'string'")
    return TeamRole(role), description


@router.put(TEAM_PATH, operation_id="updateOrganizationTeam")
async def update_team(
    orgname: str,
    teamname: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    organization = teams.get_organization(db, orgname)
    if not may_administer(db, auth, organization):
        raise unauthorized(auth)
    body = await _required_body(request)
    role, description = _team_fields(body)
    if organization is None:
        raise data_model_error(f"Organization does not exist: {orgname}")
    team, created = teams.save_team(
        db, _actor(request, auth), organization, teamname, role, description
    )
    db.commit()
    return team_view(db, settings, auth, team, new_team=created)


@router.delete(TEAM_PATH, operation_id="deleteOrganizationTeam", status_code=204)
def delete_team(
    orgname: str, teamname: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    organization = organization_for_admin(db, auth, orgname)
    teams.delete_team(db, _actor(request, auth), organization, teamname)
    db.commit()
    return Response(status_code=204)


@router.get(TEAM_PATH + "/members", operation_id="getOrganizationTeamMembers")
def get_team_members(
    orgname: str,
    teamname: str,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    includePending: str | None = None,  # noqa: N803 - Quay's parameter name
) -> dict[str, Any]:
    organization = teams.get_organization(db, orgname)
    team = teams.get_team(db, organization, teamname) if organization is not None else None
    can_edit = may_administer(db, auth, organization)
    allowed = (
        can_edit
        or auth.is_global_readonly_superuser
        or (team is not None and can_view_team(db, auth, team))
    )
    if not allowed:
        raise unauthorized(auth)
    if team is None:
        raise not_found()
    include_pending = includePending is not None and includePending not in _FALSE_VALUES
    roster = teams.team_roster(db, team, include_invites=include_pending and can_edit)
    members = [member_view(settings, user, invited=False) for user in roster.members]
    members += [invite_view(settings, invite) for invite in roster.invites]
    return {"name": teamname, "members": members, "can_edit": can_edit}


@router.put(TEAM_PATH + "/members/{membername}", operation_id="updateOrganizationTeamMember")
def update_team_member(membername: str, call: AdminTeam) -> dict[str, Any]:
    account = teams.find_account(call.db, membername)
    if account is None:
        raise invalid_request("Unknown user")
    invited = teams.add_or_invite_member(call.db, call.settings, call.actor, call.team, account)
    call.db.commit()
    return member_view(call.settings, account, invited=invited)


@router.delete(
    TEAM_PATH + "/members/{membername}",
    operation_id="deleteOrganizationTeamMember",
    status_code=204,
)
def delete_team_member(membername: str, call: AdminTeam) -> Response:
    account = teams.find_account(call.db, membername)
    if account is None:
        raise not_found()
    teams.remove_member(call.db, call.actor, call.team, account)
    call.db.commit()
    return Response(status_code=204)


@router.put(TEAM_PATH + "/invite/{email}", operation_id="inviteTeamMemberEmail")
def invite_team_member_email(email: str, mailing: MailingRoute, call: AdminTeam) -> dict[str, Any]:
    if not teams.is_valid_email(email):
        raise invalid_request("Invalid email address")
    teams.invite_email(call.db, call.settings, call.actor, call.team, email)
    call.db.commit()
    return email_invite_view(call.settings, email)


@router.delete(
    TEAM_PATH + "/invite/{email}", operation_id="deleteTeamMemberEmailInvite", status_code=204
)
def delete_team_member_email_invite(email: str, mailing: MailingRoute, call: AdminTeam) -> Response:
    if not teams.delete_email_invites(call.db, call.actor, call.team, email):
        raise not_found()
    call.db.commit()
    return Response(status_code=204)


@router.get(TEAM_PATH + "/permissions", operation_id="getOrganizationTeamPermissions")
def get_team_permissions(orgname: str, teamname: str, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    organization = organization_for_admin(db, auth, orgname, read_only=True)
    team = teams.get_team(db, organization, teamname)
    if team is None:
        raise not_found()
    return {
        "permissions": [
            {
                "repository": {"name": repository.name, "is_public": repository.public},
                "role": role.value,
            }
            for repository, role in teams.team_repository_roles(db, team)
        ]
    }


def _invitee(auth: AuthContext) -> None:
    if auth.user is None or auth.user.robot or not auth.can_admin_self():
        raise unauthorized(auth)


@router.put("/api/v1/teaminvite/{code}", operation_id="acceptOrganizationTeamInvite")
def accept_team_invite(
    code: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    _require_mailing(settings)
    _invitee(auth)
    team = teams.accept_invite(db, _actor(request, auth), code)
    db.commit()
    return {"org": team.organization.username, "team": team.name}


@router.delete(
    "/api/v1/teaminvite/{code}", operation_id="declineOrganizationTeamInvite", status_code=204
)
def decline_team_invite(
    code: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Response:
    _require_mailing(settings)
    _invitee(auth)
    teams.decline_invite(db, _actor(request, auth), code)
    db.commit()
    return Response(status_code=204)
