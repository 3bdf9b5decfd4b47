"""Short-lived robot tokens: what a federated OIDC token is traded for.

An RS256 JWT signed by the instance service key, with the robot as subject and this registry
as audience, valid for an hour. It is a robot password: `/v2/auth` takes it in place of the
robot's static token. The `robot_uuid` claim ties it to the robot's current identity, so
regenerating the robot's token (which rotates the uuid) ends every one issued before. The
`token_use` claim keeps registry bearer tokens, which name the robot too, from passing as one.
"""

from __future__ import annotations

import time

import jwt
from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.domain.service_keys import SigningKey, load_public_key

ROBOT_TOKEN_LIFETIME_S = 3600
TOKEN_USE = "robot_login"
LEEWAY_S = 30


def looks_like_jwt(token: str) -> bool:
    """Static robot tokens are 64 alphanumerics; a JWT has three dot-separated parts."""
    return token.count(".") == 2


def issue_robot_token(signing: SigningKey, settings: Settings, robot: User) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.INSTANCE_SERVICE_KEY_SERVICE,
        "aud": settings.SERVER_HOSTNAME,
        "sub": robot.username,
        "iat": now,
        "nbf": now,
        "exp": now + ROBOT_TOKEN_LIFETIME_S,
        "token_use": TOKEN_USE,
        "robot_uuid": robot.uuid,
    }
    return jwt.encode(claims, signing.private_key, "RS256", {"kid": signing.kid})


def is_valid_robot_token(session: Session, settings: Settings, robot: User, token: str) -> bool:
    """Whether `token` is a live robot token issued to `robot` as it is now."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return False
    public = load_public_key(session, settings, kid) if isinstance(kid, str) else None
    if public is None:
        return False
    try:
        claims = jwt.decode(
            token,
            public.key,
            algorithms=["RS256"],
            audience=settings.SERVER_HOSTNAME,
            issuer=settings.INSTANCE_SERVICE_KEY_SERVICE,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        return False
    return (
        claims.get("token_use") == TOKEN_USE
        and claims["sub"] == robot.username
        and claims.get("robot_uuid") == robot.uuid
        and claims["exp"] - claims["iat"] <= ROBOT_TOKEN_LIFETIME_S
    )
