"""OAuth applications of an organization and the access tokens users grant them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cargohold.auth.context import Scope, parse_scopes
from cargohold.auth.secrets import UPPER_ALNUM, SecretBox, random_code
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication, User
from cargohold.domain import access_tokens
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, NotFound
from cargohold.domain.teams import Actor

CLIENT_ID_LENGTH = 20
CLIENT_SECRET_LENGTH = 40
# Tokens from the implicit flow last ten years, as Quay's do.
IMPLICIT_TOKEN_LIFETIME_S = 315576000
LOCAL_APP_PATH = "/oauth/localapp"


@dataclass(frozen=True)
class ScopeInfo:
    scope: Scope
    title: str
    description: str
    icon: str
    dangerous: bool


SCOPE_INFO = {
    info.scope: info
    for info in [
        ScopeInfo(
            Scope.REPO_READ,
            "View all visible repositories",
            "Read and pull every repository the granting user can see.",
            "fa-hdd-o",
            False,
        ),
        ScopeInfo(
            Scope.REPO_WRITE,
            "Read/Write to any accessible repositories",
            "Push to and change every repository the granting user may write to.",
            "fa-hdd-o",
            False,
        ),
        ScopeInfo(
            Scope.REPO_ADMIN,
            "Administer Repositories",
            "Administer every repository the granting user administers.",
            "fa-hdd-o",
            False,
        ),
        ScopeInfo(
            Scope.REPO_CREATE,
            "Create Repositories",
            "Create repositories in any namespace where the granting user may create them.",
            "fa-plus",
            False,
        ),
        ScopeInfo(
            Scope.USER_READ,
            "Read User Information",
            "Read the granting user's account details, such as name and email address.",
            "fa-user",
            False,
        ),
        ScopeInfo(
            Scope.USER_ADMIN,
            "Administer User",
            "Act as the granting user on their own account: robots, stars, settings.",
            "fa-gear",
            True,
        ),
        ScopeInfo(
            Scope.ORG_ADMIN,
            "Administer Organization",
            "Administer every organization the granting user administers.",
            "fa-gear",
            True,
        ),
        ScopeInfo(
            Scope.SUPERUSER,
            "Super User Access",
            "Use the granting user's superuser powers over the whole registry.",
            "fa-street-view",
            True,
        ),
    ]
}


class OAuthError(Invalid):
    """An OAuth request that cannot be honoured; `code` is the RFC 6749 error code, which the
    OAuth pages send back to the client (in a redirect or a JSON body) as the protocol says."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(description or code)
        self.code = code


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def client_secret(settings: Settings, app: OAuthApplication) -> str | None:
    return secret_box(settings).decrypt(app.client_secret_encrypted)


def list_applications(session: Session, org: User) -> list[OAuthApplication]:
    return list(
        session.scalars(
            select(OAuthApplication)
            .where(OAuthApplication.organization_id == org.id)
            .order_by(OAuthApplication.id)
        ).all()
    )


def get_application(session: Session, org: User, client_id: str) -> OAuthApplication | None:
    return session.scalar(
        select(OAuthApplication).where(
            OAuthApplication.organization_id == org.id, OAuthApplication.client_id == client_id
        )
    )


def require_application(session: Session, org: User, client_id: str) -> OAuthApplication:
    app = get_application(session, org, client_id)
    if app is None:
        raise NotFound()
    return app


def find_application(session: Session, client_id: str) -> OAuthApplication | None:
    """Any application by client id, provided its organization still exists."""
    return session.scalar(
        select(OAuthApplication)
        .join(User, User.id == OAuthApplication.organization_id)
        .where(OAuthApplication.client_id == client_id, User.deleted.is_(False))
    )


@dataclass(frozen=True)
class ApplicationFields:
    """What an admin may set on an application."""

    name: str
    redirect_uri: str = ""
    application_uri: str = ""
    description: str = ""
    avatar_email: str | None = None


def _audit_application(
    session: Session,
    actor: Actor,
    kind: str,
    app: OAuthApplication,
    details: dict[str, Any] | None = None,
) -> None:
    """An entry in the organization's log; `details` is what the request sent (Quay logs it)."""
    log_action(
        session,
        kind,
        namespace=app.organization,
        auth=actor.auth,
        ip=actor.ip,
        metadata={**(details or {}), "application_name": app.name, "client_id": app.client_id},
    )


def create_application(
    session: Session,
    settings: Settings,
    org: User,
    fields: ApplicationFields,
    actor: Actor,
    *,
    logged: dict[str, Any],
) -> OAuthApplication:
    app = OAuthApplication(
        organization_id=org.id,
        client_id=random_code(CLIENT_ID_LENGTH, UPPER_ALNUM),
        client_secret_encrypted=secret_box(settings).encrypt(
            random_code(CLIENT_SECRET_LENGTH, UPPER_ALNUM)
        ),
        name=fields.name,
        redirect_uri=fields.redirect_uri,
        application_uri=fields.application_uri,
        description=fields.description,
        avatar_email=fields.avatar_email,
    )
    app.organization = org
    session.add(app)
    session.flush()
    _audit_application(session, actor, "create_application", app, logged)
    return app


def update_application(
    session: Session,
    app: OAuthApplication,
    fields: ApplicationFields,
    actor: Actor,
    *,
    logged: dict[str, Any],
) -> None:
    app.name = fields.name
    app.redirect_uri = fields.redirect_uri
    app.application_uri = fields.application_uri
    app.description = fields.description
    app.avatar_email = fields.avatar_email
    _audit_application(session, actor, "update_application", app, logged)


def delete_application(session: Session, app: OAuthApplication, actor: Actor) -> None:
    """Every token granted to the application goes with it."""
    _audit_application(session, actor, "delete_application", app)
    session.delete(app)


def reset_client_secret(
    session: Session, settings: Settings, app: OAuthApplication, actor: Actor
) -> None:
    app.client_secret_encrypted = secret_box(settings).encrypt(
        random_code(CLIENT_SECRET_LENGTH, UPPER_ALNUM)
    )
    _audit_application(session, actor, "reset_application_client_secret", app)


def redirect_allowed(settings: Settings, app: OAuthApplication, redirect_uri: str) -> bool:
    """The app's registered URI (same scheme and host, path beneath it) or our local page."""
    if redirect_uri == f"{settings.server_url}{LOCAL_APP_PATH}":
        return True
    if not app.redirect_uri:
        return False
    wanted, registered = urlsplit(redirect_uri), urlsplit(app.redirect_uri)
    return (
        wanted.scheme == registered.scheme
        and wanted.netloc == registered.netloc
        and wanted.path.startswith(registered.path)
    )


def requested_scopes(settings: Settings, scope: str) -> frozenset[Scope]:
    scopes = parse_scopes(scope)
    if not scopes:
        raise OAuthError("invalid_scope", "Invalid scope")
    if Scope.SUPERUSER in scopes and not settings.FEATURE_SUPER_USERS:
        raise OAuthError("invalid_scope", "Invalid scope")
    return scopes


def already_granted(
    session: Session, app: OAuthApplication, user: User, scopes: frozenset[Scope]
) -> bool:
    """True when an unexpired token of this app for this user already covers the scopes."""
    now = utcnow()
    for granted, expires_at in session.execute(
        select(OAuthAccessToken.scope, OAuthAccessToken.expires_at).where(
            OAuthAccessToken.application_id == app.id,
            OAuthAccessToken.authorized_user_id == user.id,
        )
    ).all():
        if (expires_at is None or expires_at > now) and scopes <= (
            parse_scopes(granted) or frozenset()
        ):
            return True
    return False


# --- tokens an org admin mints for an application ---------------------------------------

MAX_TOKEN_LIFETIME_S = IMPLICIT_TOKEN_LIFETIME_S
_IMPLIED = {
    Scope.REPO_ADMIN: {Scope.REPO_ADMIN, Scope.REPO_WRITE, Scope.REPO_READ},
    Scope.REPO_WRITE: {Scope.REPO_WRITE, Scope.REPO_READ},
}


def implied_scopes(scopes: frozenset[Scope]) -> set[Scope]:
    """What a set of scopes covers: repo:admin ⊇ repo:write ⊇ repo:read, the rest only themselves."""
    covered: set[Scope] = set()
    for scope in scopes:
        covered |= _IMPLIED.get(scope, {scope})
    return covered


def application_tokens(session: Session, app: OAuthApplication) -> list[OAuthAccessToken]:
    """Live tokens of the application minted through the API (named ones), newest first."""
    now = utcnow()
    return list(
        session.scalars(
            select(OAuthAccessToken)
            .options(selectinload(OAuthAccessToken.created_by))
            .where(
                OAuthAccessToken.application_id == app.id,
                OAuthAccessToken.name.is_not(None),
                (OAuthAccessToken.expires_at.is_(None)) | (OAuthAccessToken.expires_at > now),
            )
            .order_by(OAuthAccessToken.id.desc())
        ).all()
    )


def issue_application_token(
    session: Session,
    app: OAuthApplication,
    scopes: frozenset[Scope],
    actor: Actor,
    *,
    name: str,
    lifetime_s: int,
) -> tuple[OAuthAccessToken, str]:
    """A named token an admin mints for the application, acting as the admin."""
    user = actor.auth.user
    assert user is not None
    token, code = access_tokens.issue_access_token(
        session,
        user,
        scopes,
        application=app,
        expires_in_s=lifetime_s,
        name=name,
        created_by=user,
    )
    _audit_application(
        session,
        actor,
        "create_oauth_api_token",
        app,
        {"token_name": name, "scope": token.scope},
    )
    return token, code


def revoke_application_token(
    session: Session, app: OAuthApplication, token_uuid: str, actor: Actor
) -> None:
    token = session.scalar(
        select(OAuthAccessToken).where(
            OAuthAccessToken.application_id == app.id,
            OAuthAccessToken.uuid == token_uuid,
            OAuthAccessToken.name.is_not(None),
        )
    )
    if token is None:
        raise NotFound()
    _audit_application(session, actor, "revoke_oauth_api_token", app, {"token_name": token.name})
    session.delete(token)
