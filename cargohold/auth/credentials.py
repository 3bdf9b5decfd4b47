"""Checking credentials: passwords, robot tokens, app-specific tokens and OAuth access tokens.

Shared by /api/v1 (bearer tokens), /v2/auth (Basic) and /oauth (Basic). Each check returns an
AuthContext on success or raises CredentialsError with the reason Quay reports.

Passwords, robot tokens and app-specific tokens are logins to an account: each runs under the
account's failed-login back-off (domain/login_backoff.py) and raises LoginThrottled, before
anything is checked, while the account backs off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cargohold.auth import robot_tokens
from cargohold.auth.context import AuthContext, AuthKind, Scope, parse_scopes
from cargohold.auth.secrets import (
    APP_TOKEN_PREFIX_LENGTH,
    OAUTH_TOKEN_PREFIX_LENGTH,
    SecretBox,
    split_token,
    token_matches,
    verify_password,
)
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import (
    AppSpecificToken,
    OAuthAccessToken,
    RobotAccountToken,
    User,
)
from cargohold.domain import login_backoff

# Logins to one account run one at a time in a process (accounts share these locks by id), so
# that concurrent guesses see the failure before them and are refused instead of all being
# checked: one bcrypt per window, not one per guess. Right passwords merely queue briefly.
_ACCOUNT_LOCKS = tuple(threading.Lock() for _ in range(256))


class CredentialsError(Exception):
    """Credentials were presented but are not valid; the message is safe to show."""


def _superuser_names(settings: Settings, user: User | None) -> frozenset[str]:
    """The configured superusers, plus the caller when the database flags them one: a flag
    set by `cargohold user create --superuser` counts on every replica without a restart."""
    if not settings.FEATURE_SUPER_USERS:
        return frozenset()
    names = set(settings.SUPER_USERS)
    if user is not None and user.superuser:
        names.add(user.username)
    return frozenset(names)


def context_for(
    settings: Settings, user: User | None, kind: AuthKind, scopes, **extra
) -> AuthContext:
    return AuthContext(
        user=user,
        kind=kind,
        scopes=frozenset(scopes),
        superuser_names=_superuser_names(settings, user),
        readonly_superuser_names=frozenset(settings.GLOBAL_READONLY_SUPER_USERS),
        superusers_full_access=settings.FEATURE_SUPERUSERS_FULL_ACCESS,
        **extra,
    )


def anonymous(settings: Settings) -> AuthContext:
    return context_for(settings, None, AuthKind.ANONYMOUS, ())


def _check_enabled(user: User) -> None:
    if not user.enabled:
        raise CredentialsError("This user has been disabled. Please contact your administrator.")


def find_user_by_login(session: Session, login: str) -> User | None:
    """A person by username, or by email address (database auth allows both)."""
    query = select(User).where(
        User.robot.is_(False), User.organization.is_(False), User.deleted.is_(False)
    )
    user = session.scalar(query.where(User.username == login))
    if user is None and "@" in login:
        user = session.scalar(query.where(User.email == login))
    return user


def _client_key_box(settings: Settings) -> SecretBox:
    return SecretBox("client-key:" + settings.SECRET_KEY)


def encrypt_password(settings: Settings, password: str) -> str:
    """Quay's "encrypted password": a string usable instead of the password (docker login)."""
    return _client_key_box(settings).encrypt(json.dumps({"password": password}))


def _password_from_client_key(settings: Settings, value: str) -> str | None:
    plain = _client_key_box(settings).decrypt(value)
    if plain is None:
        return None
    try:
        data = json.loads(plain)
    except ValueError:
        return None
    password = data.get("password") if isinstance(data, dict) else None
    return password if isinstance(password, str) else None


def password_matches(settings: Settings, user: User, password: str) -> bool:
    """The user's password, or an encrypted password issued for it."""
    if verify_password(password, user.password_hash):
        return True
    decrypted = _password_from_client_key(settings, password)
    return decrypted is not None and verify_password(decrypted, user.password_hash)


def _login_attempt(
    session: Session, settings: Settings, account: User, matches: Callable[[], bool]
) -> bool:
    """Whether `matches()` accepts the credentials, run under the account's back-off.

    Raises LoginThrottled without calling `matches` (no bcrypt) while the account backs off.
    """
    policy = login_backoff.BackoffPolicy.from_settings(settings)
    if not policy.enabled:
        return matches()
    with _ACCOUNT_LOCKS[account.id % len(_ACCOUNT_LOCKS)]:
        claimed = login_backoff.begin_attempt(session, policy, account)
        if matches():
            login_backoff.record_success(session, policy, account, claimed)
            return True
        login_backoff.record_failure(session, policy, account, claimed)
        return False


def check_password(session: Session, settings: Settings, user: User, password: str) -> bool:
    """A login with the user's password (or encrypted password), under the back-off."""
    return _login_attempt(
        session, settings, user, lambda: password_matches(settings, user, password)
    )


def verify_user_password(
    session: Session, settings: Settings, login: str, password: str
) -> AuthContext:
    user = find_user_by_login(session, login)
    if user is None or not check_password(session, settings, user, password):
        raise CredentialsError("Invalid Username or Password")
    _check_enabled(user)
    return context_for(settings, user, AuthKind.BASIC, {Scope.DIRECT_LOGIN})


def _robot_secret_matches(
    session: Session,
    settings: Settings,
    robot: User,
    record: RobotAccountToken | None,
    token: str,
) -> bool:
    """The robot's static token, or a robot token traded for one of its federated identities."""
    if robot_tokens.looks_like_jwt(token):
        return robot_tokens.is_valid_robot_token(session, settings, robot, token)
    return record is not None and token_matches(token, record.token_hash)


def verify_robot(session: Session, settings: Settings, robot_name: str, token: str) -> AuthContext:
    robot = session.scalar(
        select(User).where(
            User.username == robot_name, User.robot.is_(True), User.deleted.is_(False)
        )
    )
    if robot is None:
        raise CredentialsError("Could not find robot with specified username")
    record = session.scalar(select(RobotAccountToken).where(RobotAccountToken.robot_id == robot.id))
    if not _login_attempt(
        session,
        settings,
        robot,
        lambda: _robot_secret_matches(session, settings, robot, record, token),
    ):
        raise CredentialsError(
            f"Could not find robot with username: {robot_name} and supplied password."
        )
    owner_name = robot_name.split("+", 1)[0]
    owner = session.scalar(select(User).where(User.username == owner_name))
    if owner is None or not owner.enabled or not robot.enabled:
        raise CredentialsError("This user has been disabled. Please contact your administrator.")
    return context_for(settings, robot, AuthKind.ROBOT, {Scope.DIRECT_LOGIN})


def verify_app_token(session: Session, settings: Settings, code: str) -> AuthContext:
    presented = split_token(code, APP_TOKEN_PREFIX_LENGTH)
    if presented is None:
        raise CredentialsError("Invalid token")
    record = session.scalar(
        select(AppSpecificToken)
        .options(joinedload(AppSpecificToken.user))
        .where(AppSpecificToken.token_name == presented.name)
    )
    # An unknown token name names no account, so there is nothing to back off.
    if record is None or not _login_attempt(
        session,
        settings,
        record.user,
        lambda: token_matches(presented.secret, record.token_secret_hash),
    ):
        raise CredentialsError("Invalid token")
    if record.expiration is not None and record.expiration <= utcnow():
        raise CredentialsError("Invalid token")
    _check_enabled(record.user)
    record.last_accessed = utcnow()
    return context_for(settings, record.user, AuthKind.APP_TOKEN, {Scope.DIRECT_LOGIN})


def verify_oauth_token(session: Session, settings: Settings, token: str) -> AuthContext:
    presented = split_token(token, OAUTH_TOKEN_PREFIX_LENGTH)
    record = (
        session.scalar(
            select(OAuthAccessToken)
            .options(
                joinedload(OAuthAccessToken.authorized_user),
                joinedload(OAuthAccessToken.application),
            )
            .where(OAuthAccessToken.token_name == presented.name)
        )
        if presented is not None
        else None
    )
    if (
        presented is None
        or record is None
        or not token_matches(presented.secret, record.token_code_hash)
    ):
        raise CredentialsError("OAuth access token could not be validated")
    if record.expires_at is not None and record.expires_at <= utcnow():
        raise CredentialsError("OAuth access token has expired")
    if not record.authorized_user.enabled:
        raise CredentialsError("Granter of the oauth access token is disabled")
    scopes = parse_scopes(record.scope) or frozenset()
    return context_for(settings, record.authorized_user, AuthKind.OAUTH, scopes, oauth_token=record)


def verify_basic(session: Session, settings: Settings, username: str, password: str) -> AuthContext:
    """Basic credentials as the registry accepts them: user, robot, $oauthtoken or $app."""
    if username == "$oauthtoken":
        return verify_oauth_token(session, settings, password)
    if username == "$app":
        return verify_app_token(session, settings, password)
    if "+" in username:
        return verify_robot(session, settings, username, password)
    return verify_user_password(session, settings, username, password)


class PasswordCheckCache:
    """Remembers recent successful password checks so that repeated logins skip bcrypt.

    Registry clients log in for every token; bcrypt on each would cap token issuance at a
    few per second. Entries are keyed by a keyed hash of the credentials (no password is
    kept) and count only while the user's stored password hash is the one that matched,
    so a password change takes effect at once.
    """

    def __init__(self, secret: str, ttl_s: float = 300.0, size: int = 4096) -> None:
        self._key = hashlib.sha256(b"password-check-cache" + secret.encode()).digest()
        self._ttl_s = ttl_s
        self._size = size
        self._entries: dict[bytes, tuple[int, str, float]] = {}
        self._lock = threading.Lock()

    def _fingerprint(self, login: str, password: str) -> bytes:
        return hmac.new(self._key, f"{login}\0{password}".encode(), hashlib.sha256).digest()

    def verify(
        self, session: Session, settings: Settings, login: str, password: str
    ) -> AuthContext:
        fingerprint = self._fingerprint(login, password)
        entry = self._entries.get(fingerprint)
        if entry is not None and entry[2] > time.monotonic():
            user = find_user_by_login(session, login)
            if (
                user is not None
                and user.id == entry[0]
                and user.password_hash is not None
                and hmac.compare_digest(user.password_hash, entry[1])
                # A remembered password is still a login: it waits out the back-off too.
                and _login_attempt(session, settings, user, lambda: True)
            ):
                _check_enabled(user)
                return context_for(settings, user, AuthKind.BASIC, {Scope.DIRECT_LOGIN})
        auth = verify_user_password(session, settings, login, password)
        assert auth.user is not None and auth.user.password_hash is not None
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[fingerprint] = (
                auth.user.id,
                auth.user.password_hash,
                time.monotonic() + self._ttl_s,
            )
        return auth
