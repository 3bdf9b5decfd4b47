"""Token assignments and the authorization-code grant of Quay's OAuth provider.

An organization admin may assign an application's token request to a user; the user then
approves it (the implicit grant with `assignment_uuid`) or rejects it, and either way the
assignment is gone. The authorization-code grant hands the application a one-time code that
it trades, with its client secret, at /oauth/access_token. Codes are stored like tokens (a
20-character name, the rest hashed), must come back with the redirect URI and scope they were
issued for, and lapse after ten minutes.
"""

from __future__ import annotations

import datetime as dt
import hmac

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from cargohold.auth.context import Scope
from cargohold.auth.secrets import (
    OAUTH_TOKEN_PREFIX_LENGTH,
    OAUTH_TOKEN_SECRET_LENGTH,
    new_split_token,
    split_token,
    token_matches,
)
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import (
    OAuthAccessToken,
    OAuthApplication,
    OAuthAssignedToken,
    OAuthAuthorizationCode,
    User,
)
from cargohold.domain import access_tokens, notifications, oauth
from cargohold.domain.audit import log_action
from cargohold.domain.errors import NotFound
from cargohold.domain.teams import Actor

ASSIGNED_NOTIFICATION = "assigned_authorization"
CODE_LIFETIME_S = 600
TOKEN_TYPE = "Bearer"
# Codes and assignments keep the scope string as the client sent it (redemption compares it).
MAX_SCOPE_LENGTH = 255


def storable_scope(scope: str) -> bool:
    return len(scope) <= MAX_SCOPE_LENGTH


# --- assignments ---------------------------------------------------------------------------


def assign_token(
    session: Session,
    settings: Settings,
    app: OAuthApplication,
    user: User,
    actor: Actor,
    *,
    redirect_uri: str,
    scope: str,
    response_type: str,
) -> OAuthAssignedToken:
    """An admin (`actor`) asks `user` to grant the application a token; the user is notified."""
    assigner = actor.auth.user
    assert assigner is not None
    assignment = OAuthAssignedToken(
        application_id=app.id,
        assigned_user_id=user.id,
        redirect_uri=redirect_uri,
        scope=scope,
        response_type=response_type,
    )
    session.add(assignment)
    notifications.notify(
        session, settings, user, ASSIGNED_NOTIFICATION, {"username": user.username}
    )
    session.flush()
    log_action(
        session,
        "oauth_token_assigned",
        namespace=app.organization,
        auth=actor.auth,
        ip=actor.ip,
        metadata={
            "assigning_user": assigner.username,
            "assigned_user": user.username,
            "application": app.name,
            "client_id": app.client_id,
        },
    )
    return assignment


def grant_token(
    session: Session,
    app: OAuthApplication,
    user: User,
    scopes: frozenset[Scope],
    *,
    assignment_uuid: str | None,
) -> str:
    """The implicit grant: a token for the application; an assignment it answers is used up."""
    _, code = access_tokens.issue_access_token(
        session, user, scopes, application=app, expires_in_s=oauth.IMPLICIT_TOKEN_LIFETIME_S
    )
    assignment = find_assignment(session, assignment_uuid, user, app)
    if assignment is not None:
        session.delete(assignment)
    return code


def _assignments_of(user: User):
    return (
        select(OAuthAssignedToken)
        .join(OAuthApplication, OAuthApplication.id == OAuthAssignedToken.application_id)
        .join(User, User.id == OAuthApplication.organization_id)
        .options(
            joinedload(OAuthAssignedToken.application).joinedload(OAuthApplication.organization)
        )
        .where(OAuthAssignedToken.assigned_user_id == user.id, User.deleted.is_(False))
    )


def list_assignments(session: Session, user: User) -> list[OAuthAssignedToken]:
    return list(session.scalars(_assignments_of(user).order_by(OAuthAssignedToken.id)).all())


def reject_assignment(session: Session, user: User, uuid: str) -> None:
    """The user declines an assignment: it is gone, and no token is issued for it."""
    assignment = session.scalar(_assignments_of(user).where(OAuthAssignedToken.uuid == uuid))
    if assignment is None:
        raise NotFound()
    session.delete(assignment)


def find_assignment(
    session: Session, uuid: str | None, user: User, app: OAuthApplication
) -> OAuthAssignedToken | None:
    """The user's assignment `uuid` for this application, if it still exists."""
    if not uuid:
        return None
    return session.scalar(
        select(OAuthAssignedToken).where(
            OAuthAssignedToken.uuid == uuid,
            OAuthAssignedToken.assigned_user_id == user.id,
            OAuthAssignedToken.application_id == app.id,
        )
    )


def clear_viewed_notifications(session: Session, user: User) -> None:
    notifications.delete_matching(session, user, ASSIGNED_NOTIFICATION)


# --- authorization codes -------------------------------------------------------------------


def _purge_expired_codes(session: Session) -> None:
    session.execute(
        delete(OAuthAuthorizationCode).where(OAuthAuthorizationCode.expires_at <= utcnow())
    )


def issue_code(
    session: Session, app: OAuthApplication, user: User, *, scope: str, redirect_uri: str
) -> str:
    _purge_expired_codes(session)
    # A code has an access token's format.
    code = new_split_token(OAUTH_TOKEN_PREFIX_LENGTH, OAUTH_TOKEN_SECRET_LENGTH)
    session.add(
        OAuthAuthorizationCode(
            application_id=app.id,
            authorized_user_id=user.id,
            code_name=code.name,
            code_hash=code.secret_hash,
            scope=scope,
            redirect_uri=redirect_uri,
            expires_at=utcnow() + dt.timedelta(seconds=CODE_LIFETIME_S),
        )
    )
    session.flush()
    return code.code


def _client_matches(settings: Settings, app: OAuthApplication, secret: str) -> bool:
    if not secret:
        return False
    expected = oauth.client_secret(settings, app)
    return expected is not None and hmac.compare_digest(expected.encode(), secret.encode())


def _live_code(
    session: Session, app: OAuthApplication, code: str, scope: str, redirect_uri: str
) -> OAuthAuthorizationCode | None:
    presented = split_token(code, OAUTH_TOKEN_PREFIX_LENGTH)
    if presented is None:
        return None
    record = session.scalar(
        select(OAuthAuthorizationCode)
        .options(joinedload(OAuthAuthorizationCode.authorized_user))
        .where(
            OAuthAuthorizationCode.application_id == app.id,
            OAuthAuthorizationCode.code_name == presented.name,
        )
    )
    if (
        record is None
        or not token_matches(presented.secret, record.code_hash)
        or record.scope != scope
        or record.redirect_uri != redirect_uri
        or record.expires_at <= utcnow()
        or not record.authorized_user.enabled
    ):
        return None
    return record


def redeem_code(
    session: Session,
    settings: Settings,
    *,
    grant_type: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    scope: str,
) -> tuple[OAuthAccessToken, str]:
    """A new access token for a valid code; the code is spent whatever happens next.

    Raises OAuthError with the RFC 6749 code Quay answers: unsupported_grant_type,
    invalid_client, invalid_grant or invalid_scope.
    """
    if grant_type != "authorization_code":
        raise oauth.OAuthError("unsupported_grant_type")
    app = oauth.find_application(session, client_id)
    if app is None or not _client_matches(settings, app, client_secret):
        raise oauth.OAuthError("invalid_client")
    record = _live_code(session, app, code, scope, redirect_uri)
    if record is None or not oauth.redirect_allowed(settings, app, redirect_uri):
        raise oauth.OAuthError("invalid_grant")
    try:
        scopes: frozenset[Scope] = oauth.requested_scopes(settings, scope)
    except oauth.OAuthError as exc:
        raise oauth.OAuthError("invalid_scope") from exc
    # Spend the code first: of two redemptions racing, only the one that deletes it wins.
    spent = session.execute(
        delete(OAuthAuthorizationCode).where(OAuthAuthorizationCode.id == record.id)
    )
    if spent.rowcount != 1:
        raise oauth.OAuthError("invalid_grant")
    return access_tokens.issue_access_token(
        session,
        record.authorized_user,
        scopes,
        application=app,
        expires_in_s=oauth.IMPLICIT_TOKEN_LIFETIME_S,
    )
