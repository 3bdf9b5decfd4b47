"""Teams of an organization: roles, members, invitations and the rules protecting admin rights.

The admin-protection rules are about the caller, as in Quay: nobody may take away their own
last admin team, but one admin may demote or remove another.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import hash_token
from cargohold.config import Settings
from cargohold.db.models.accounts import Team, TeamMember, TeamMemberInvite, TeamRole, User
from cargohold.db.models.prototypes import PermissionPrototype
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain import notifications
from cargohold.domain.accounts import EMAIL_RE, NAME_RE
from cargohold.domain.audit import log_action
from cargohold.domain.email import OutgoingEmail, queue_email
from cargohold.domain.errors import ModelError

INVITE_CODE_PREFIX = "urn:teaminvite:"

log = logging.getLogger(__name__)


class TeamError(ModelError):
    """A team rule was broken; the message is what the caller sees (Quay's wording)."""


class InviteError(ModelError):
    """An invite code cannot be used by this caller."""


@dataclass
class Actor:
    """Who performs a change, for the audit log."""

    auth: AuthContext
    ip: str | None

    @property
    def user(self) -> User | None:
        return self.auth.user


def validate_team_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise TeamError(
            f"Invalid team name {name}: Namespace must match expression {NAME_RE.pattern}"
        )
    if not 2 <= len(name) <= 255:
        raise TeamError(
            f"Invalid team name {name}: Team must be between 2 and 255 characters in length"
        )


def is_valid_email(value: str | None) -> bool:
    return bool(value) and len(value) <= 254 and EMAIL_RE.match(value) is not None


def get_organization(session: Session, name: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.username == name, User.organization.is_(True), User.deleted.is_(False)
        )
    )


def get_team(session: Session, organization: User, name: str) -> Team | None:
    return session.scalar(
        select(Team).where(Team.organization_id == organization.id, Team.name == name)
    )


def find_account(session: Session, name: str) -> User | None:
    """A person or robot (never an organization) that can be put in a team."""
    return session.scalar(
        select(User).where(
            User.username == name, User.organization.is_(False), User.deleted.is_(False)
        )
    )


def _admin_team_ids(session: Session, organization: User, user: User | None) -> set[int]:
    if user is None:
        return set()
    return set(
        session.scalars(
            select(Team.id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(
                Team.organization_id == organization.id,
                Team.role == TeamRole.admin,
                TeamMember.user_id == user.id,
            )
        )
    )


def _is_callers_only_admin_team(session: Session, team: Team, caller: User | None) -> bool:
    admin_teams = _admin_team_ids(session, team.organization, caller)
    return team.id in admin_teams and len(admin_teams) == 1


def is_team_member(session: Session, team: Team, user: User) -> bool:
    return (
        session.scalar(
            select(TeamMember.id).where(
                TeamMember.team_id == team.id, TeamMember.user_id == user.id
            )
        )
        is not None
    )


def is_in_organization(session: Session, organization: User, user: User) -> bool:
    return (
        session.scalar(
            select(TeamMember.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(Team.organization_id == organization.id, TeamMember.user_id == user.id)
            .limit(1)
        )
        is not None
    )


def _log(session: Session, actor: Actor, organization: User, kind: str, **metadata) -> None:
    log_action(
        session, kind, namespace=organization, auth=actor.auth, ip=actor.ip, metadata=metadata
    )


# Teams ---------------------------------------------------------------------------------------


def save_team(
    session: Session,
    actor: Actor,
    organization: User,
    name: str,
    role: TeamRole,
    description: str | None,
) -> tuple[Team, bool]:
    """Create the team or update its role and description; returns (team, created)."""
    team = get_team(session, organization, name)
    if team is None:
        validate_team_name(name)
        team = Team(
            organization_id=organization.id, name=name, role=role, description=description or ""
        )
        team.organization = organization
        try:
            with session.begin_nested():
                session.add(team)
        except IntegrityError:
            # Created by a concurrent request: update that team instead.
            team = get_team(session, organization, name)
            if team is None:
                raise
        else:
            _log(session, actor, organization, "org_create_team", team=name)
            return team, True
    if description is not None and description != team.description:
        team.description = description
        _log(
            session,
            actor,
            organization,
            "org_set_team_description",
            team=name,
            description=description,
        )
    if role != team.role:
        if team.role is TeamRole.admin and _is_callers_only_admin_team(session, team, actor.user):
            raise TeamError(
                f"Cannot remove admin from team '{name}' because calling user would no longer "
                f"have admin on org '{organization.username}'"
            )
        team.role = role
        _log(session, actor, organization, "org_set_team_role", team=name, role=role.value)
    session.flush()
    return team, False


def delete_team(session: Session, actor: Actor, organization: User, name: str) -> None:
    team = get_team(session, organization, name)
    if team is None:
        raise TeamError(f"Team '{name}' is not a team in org '{organization.username}'")
    if team.role is TeamRole.admin and _is_callers_only_admin_team(session, team, actor.user):
        caller = actor.user.username if actor.user else ""
        raise TeamError(
            f"Deleting team '{name}' would remove admin ability for user '{caller}' "
            f"in organization '{organization.username}'"
        )
    for model, column in (
        (TeamMember, TeamMember.team_id),
        (TeamMemberInvite, TeamMemberInvite.team_id),
        (RepositoryPermission, RepositoryPermission.team_id),
        (PermissionPrototype, PermissionPrototype.delegate_team_id),
    ):
        session.execute(delete(model).where(column == team.id))
    session.delete(team)
    _log(session, actor, organization, "org_delete_team", team=name)
    session.flush()


# Members and invites -------------------------------------------------------------------------


@dataclass
class TeamRoster:
    members: list[User] = field(default_factory=list)
    invites: list[TeamMemberInvite] = field(default_factory=list)


def team_roster(session: Session, team: Team, *, include_invites: bool) -> TeamRoster:
    members = session.scalars(
        select(User)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team.id)
        .order_by(TeamMember.id)
    ).all()
    invites: list[TeamMemberInvite] = []
    if include_invites:
        invites = session.scalars(
            select(TeamMemberInvite)
            .options(joinedload(TeamMemberInvite.user))
            .where(TeamMemberInvite.team_id == team.id)
            .order_by(TeamMemberInvite.id)
        ).all()
    return TeamRoster(list(members), list(invites))


def requires_invite(settings: Settings) -> bool:
    return settings.FEATURE_MAILING and settings.FEATURE_REQUIRE_TEAM_INVITE


def add_or_invite_member(
    session: Session, settings: Settings, actor: Actor, team: Team, account: User
) -> bool:
    """Add a robot or an organization member directly; invite anyone else. True if invited."""
    organization = team.organization
    if account.robot and not account.username.startswith(organization.username + "+"):
        raise TeamError(
            "Cannot add the specified robot to this team, as it is not a member of the organization"
        )
    if (
        not account.robot
        and requires_invite(settings)
        and not is_in_organization(session, organization, account)
    ):
        code = _create_invite(session, settings, actor, team, user=account, email=None)
        notifications.notify(
            session,
            settings,
            account,
            notifications.TEAM_INVITE,
            {
                "inviter": _inviter_name(settings, actor),
                "org": organization.username,
                "team": team.name,
            },
            secret=("code", code),
        )
        _log(
            session,
            actor,
            organization,
            "org_invite_team_member",
            user=account.username,
            member=account.username,
            team=team.name,
        )
        return True
    already = TeamError(f"User {account.username} is already a member of team {team.name}")
    if is_team_member(session, team, account):
        raise already
    try:
        with session.begin_nested():
            session.add(TeamMember(team_id=team.id, user_id=account.id))
    except IntegrityError as exc:
        raise already from exc
    _log(
        session, actor, organization, "org_add_team_member", member=account.username, team=team.name
    )
    session.flush()
    return False


def invite_email(
    session: Session, settings: Settings, actor: Actor, team: Team, email: str
) -> None:
    _create_invite(session, settings, actor, team, user=None, email=email)
    _log(
        session,
        actor,
        team.organization,
        "org_invite_team_member",
        email=email,
        member=email,
        team=team.name,
    )


def _create_invite(
    session: Session,
    settings: Settings,
    actor: Actor,
    team: Team,
    *,
    user: User | None,
    email: str | None,
) -> str:
    code = f"{INVITE_CODE_PREFIX}{uuid.uuid4()}"
    session.add(
        TeamMemberInvite(
            team_id=team.id,
            user_id=user.id if user else None,
            email=email,
            inviter_id=actor.user.id if actor.user else None,
            invite_token_hash=hash_token(code),
        )
    )
    session.flush()
    recipient = user.email if user is not None else email
    if is_valid_email(recipient):
        queue_email(session, settings, _invite_message(settings, actor, team, recipient, code))
    else:
        log.warning(
            "invite to team %s/%s for %s not emailed: no valid address",
            team.organization.username,
            team.name,
            user.username if user else email,
        )
    return code


def _inviter_name(settings: Settings, actor: Actor) -> str:
    return actor.user.username if actor.user else settings.REGISTRY_TITLE_SHORT


def _invite_message(
    settings: Settings, actor: Actor, team: Team, recipient: str, code: str
) -> OutgoingEmail:
    inviter = _inviter_name(settings, actor)
    link = f"{settings.server_url}/confirminvite?code={code}"
    text = (
        f"{inviter} invited you to join the team {team.name} of the organization "
        f"{team.organization.username} on {settings.REGISTRY_TITLE}.\n\n"
        f"To accept the invitation, sign in and open:\n{link}\n\n"
        "If you were not expecting this invitation, you can ignore this message.\n"
    )
    return OutgoingEmail(
        recipient=recipient,
        subject=f"[{settings.REGISTRY_TITLE_SHORT}] Invitation to join team",
        text=text,
    )


def remove_member(session: Session, actor: Actor, team: Team, account: User) -> None:
    """Withdraw the account's pending invites to the team if any, else remove its membership."""
    organization = team.organization
    invites = session.scalars(
        select(TeamMemberInvite).where(
            TeamMemberInvite.team_id == team.id, TeamMemberInvite.user_id == account.id
        )
    ).all()
    if invites:
        for invite in invites:
            session.delete(invite)
        notifications.delete_matching(
            session,
            account,
            notifications.TEAM_INVITE,
            org=organization.username,
            team=team.name,
        )
        _log(
            session,
            actor,
            organization,
            "org_delete_team_member_invite",
            user=account.username,
            team=team.name,
            member=account.username,
        )
        session.flush()
        return
    membership = session.scalar(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == account.id)
    )
    if membership is None:
        raise TeamError(f"User {account.username} does not belong to team {team.name}")
    if (
        actor.user is not None
        and account.id == actor.user.id
        and _is_callers_only_admin_team(session, team, actor.user)
    ):
        raise TeamError("User cannot remove themselves from their only admin team.")
    _drop_membership(session, actor, organization, membership, account, team)
    session.flush()


def _drop_membership(
    session: Session,
    actor: Actor,
    organization: User,
    membership: TeamMember,
    account: User,
    team: Team,
) -> None:
    session.delete(membership)
    _log(
        session,
        actor,
        organization,
        "org_remove_team_member",
        member=account.username,
        team=team.name,
    )


def delete_email_invites(session: Session, actor: Actor, team: Team, email: str) -> bool:
    invites = session.scalars(
        select(TeamMemberInvite).where(
            TeamMemberInvite.team_id == team.id,
            TeamMemberInvite.user_id.is_(None),
            TeamMemberInvite.email == email,
        )
    ).all()
    if not invites:
        return False
    for invite in invites:
        session.delete(invite)
    _log(
        session,
        actor,
        team.organization,
        "org_delete_team_member_invite",
        email=email,
        team=team.name,
        member=email,
    )
    session.flush()
    return True


def _find_invite(session: Session, code: str) -> TeamMemberInvite | None:
    return session.scalar(
        select(TeamMemberInvite)
        .options(joinedload(TeamMemberInvite.team).joinedload(Team.organization))
        .where(TeamMemberInvite.invite_token_hash == hash_token(code))
    )


def _email_matches(user: User, email: str | None) -> bool:
    return bool(user.verified and user.email and email and user.email.lower() == email.lower())


def invite_confirms_email(session: Session, code: str | None, user: User) -> bool:
    """An email invite sent to the user's address proves they own it; marks them verified."""
    if not code or not code.startswith(INVITE_CODE_PREFIX):
        return False
    invite = _find_invite(session, code)
    if invite is None or invite.user_id is not None or not invite.email or not user.email:
        return False
    if invite.email.lower() != user.email.lower():
        return False
    user.verified = True
    session.flush()
    return True


def accept_invite(session: Session, actor: Actor, code: str) -> Team:
    """Join the invite's team, and every other team of that organization the caller is invited to."""
    user = actor.user
    invite = _find_invite(session, code)
    if invite is None or user is None:
        raise InviteError("Invalid confirmation code.")
    if invite.user_id is not None and invite.user_id != user.id:
        raise InviteError(
            f'This invite is intended for user "{invite.user.username}". '
            "Please login to that account and try again."
        )
    if invite.user_id is None and not _email_matches(user, invite.email):
        raise InviteError(
            f'This invite is intended for email "{invite.email}". '
            "Please login to that account and try again."
        )
    organization = invite.team.organization
    addressed_to_caller = TeamMemberInvite.user_id == user.id
    if user.verified and user.email:
        addressed_to_caller = or_(
            addressed_to_caller,
            and_(
                TeamMemberInvite.user_id.is_(None),
                func.lower(TeamMemberInvite.email) == user.email.lower(),
            ),
        )
    invites = session.scalars(
        select(TeamMemberInvite)
        .join(Team, Team.id == TeamMemberInvite.team_id)
        .options(joinedload(TeamMemberInvite.team), joinedload(TeamMemberInvite.inviter))
        .where(Team.organization_id == organization.id, addressed_to_caller)
        .order_by(TeamMemberInvite.id)
    ).all()
    joined: set[int] = set()
    for pending in invites:
        team = pending.team
        if team.id not in joined and not is_team_member(session, team, user):
            session.add(TeamMember(team_id=team.id, user_id=user.id))
            session.flush()
        if team.id not in joined:
            _log(
                session,
                actor,
                organization,
                "org_team_member_invite_accepted",
                member=user.username,
                team=team.name,
                inviter=pending.inviter.username if pending.inviter else None,
            )
        joined.add(team.id)
        session.delete(pending)
    notifications.delete_matching(
        session, user, notifications.TEAM_INVITE, org=organization.username
    )
    session.flush()
    return invite.team


def decline_invite(session: Session, actor: Actor, code: str) -> None:
    user = actor.user
    invite = _find_invite(session, code)
    if invite is None or user is None or invite.user_id != user.id:
        raise InviteError("Invalid confirmation code.")
    team = invite.team
    inviter = invite.inviter.username if invite.inviter else None
    session.delete(invite)
    notifications.delete_matching(
        session,
        user,
        notifications.TEAM_INVITE,
        org=team.organization.username,
        team=team.name,
    )
    _log(
        session,
        actor,
        team.organization,
        "org_team_member_invite_declined",
        member=user.username,
        team=team.name,
        inviter=inviter,
    )
    session.flush()


# Repository roles held by a team -------------------------------------------------------------


def team_repository_roles(session: Session, team: Team) -> list[tuple[Repository, Role]]:
    rows = session.execute(
        select(Repository, RepositoryPermission.role)
        .join(RepositoryPermission, RepositoryPermission.repository_id == Repository.id)
        .where(RepositoryPermission.team_id == team.id, Repository.deleted.is_(False))
        .order_by(Repository.name)
    ).all()
    return [(repository, role) for repository, role in rows]


# Organization members ------------------------------------------------------------------------


@dataclass
class OrganizationMember:
    user: User
    teams: list[Team] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)


def organization_members(
    session: Session, organization: User, *, only: User | None = None
) -> list[OrganizationMember]:
    """Accounts in the organization's teams, with their teams and direct repository grants.

    Two queries whatever the size of the organization.
    """
    query = (
        select(TeamMember.user_id, User, Team)
        .join(Team, Team.id == TeamMember.team_id)
        .join(User, User.id == TeamMember.user_id)
        .where(Team.organization_id == organization.id)
        .order_by(TeamMember.id)
    )
    if only is not None:
        query = query.where(TeamMember.user_id == only.id)
    members: dict[int, OrganizationMember] = {}
    for user_id, user, team in session.execute(query):
        members.setdefault(user_id, OrganizationMember(user)).teams.append(team)
    if only is not None and only.id not in members:
        members[only.id] = OrganizationMember(only)
    if members:
        grants = session.execute(
            select(RepositoryPermission.user_id, Repository.name)
            .join(Repository, Repository.id == RepositoryPermission.repository_id)
            .where(
                Repository.namespace_user_id == organization.id,
                Repository.deleted.is_(False),
                RepositoryPermission.user_id.in_(list(members)),
            )
            .order_by(Repository.name)
        )
        for user_id, repository_name in grants:
            members[user_id].repositories.append(repository_name)
    return list(members.values())


def remove_from_organization(
    session: Session, actor: Actor, organization: User, account: User
) -> None:
    """Drop the person's team memberships and direct repository grants in the organization."""
    admins = set(
        session.scalars(
            select(TeamMember.user_id)
            .join(Team, Team.id == TeamMember.team_id)
            .join(User, User.id == TeamMember.user_id)
            .where(
                Team.organization_id == organization.id,
                Team.role == TeamRole.admin,
                User.robot.is_(False),
            )
        )
    )
    if admins == {account.id}:
        raise TeamError("Cannot remove user as they are the only organization admin")
    memberships = session.execute(
        select(TeamMember, Team)
        .join(Team, Team.id == TeamMember.team_id)
        .where(Team.organization_id == organization.id, TeamMember.user_id == account.id)
    ).all()
    for membership, team in memberships:
        _drop_membership(session, actor, organization, membership, account, team)
    repository_ids = select(Repository.id).where(Repository.namespace_user_id == organization.id)
    session.execute(
        delete(RepositoryPermission).where(
            RepositoryPermission.user_id == account.id,
            RepositoryPermission.repository_id.in_(repository_ids),
        )
    )
    session.flush()
