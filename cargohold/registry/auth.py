"""`GET /v2/` (the version check and auth challenge) and `GET /v2/auth` (the token endpoint)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cargohold.auth.context import AuthContext
from cargohold.auth.credentials import CredentialsError, anonymous, verify_basic
from cargohold.domain import registry_grants, repositories
from cargohold.registry import tokens
from cargohold.registry.context import Registry
from cargohold.registry.errors import PlainError, RegistryError
from cargohold.registry.http import Request, send, send_json


async def base(reg: Registry, request: Request, send_fn) -> None:
    headers = {**reg.challenge(), "X-Sparse-Manifest-Support": "false"}
    header = request.header(b"authorization")
    if not header:
        await send_json(send_fn, 401, True, headers)
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        await send_json(send_fn, 401, {"error": "Invalid bearer token format"}, headers)
        return
    try:
        reg.verifier.verify_cached(token) or await reg.run(reg.verifier.verify, token)
    except tokens.TokenError as exc:
        await send_json(send_fn, 401, {"error": str(exc)}, headers)
        return
    await send_json(send_fn, 200, True, headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password


async def token(reg: Registry, request: Request, send_fn) -> None:
    settings = reg.settings
    challenge = reg.challenge()
    header = request.header(b"authorization")
    raw_scopes = [s for value in request.args("scope") for s in value.split(" ") if s]
    audience = request.arg("service") or ""
    parsed: list[registry_grants.ScopeRequest] = []
    for scope in raw_scopes:
        if scope.startswith("registry:"):
            continue  # catalog scopes: the catalog filters by the caller, nothing to grant
        request_scope = tokens.parse_scope(scope, settings.SERVER_HOSTNAME)
        if request_scope is None:
            raise RegistryError(
                "INVALID_REQUEST", f"Unable to decode repository and actions: {scope}"
            )
        if not repositories.valid_repository_name(
            request_scope.name, settings.FEATURE_EXTENDED_REPOSITORY_NAMES
        ):
            if not settings.FEATURE_EXTENDED_REPOSITORY_NAMES and "/" in request_scope.name:
                message = f"Nested repositories are not supported. Found: {request_scope.raw_name}"
            else:
                message = f"Invalid repository name: {request_scope.namespace}/{request_scope.name}"
            raise RegistryError("NAME_INVALID", message)
        parsed.append(request_scope)

    credentials = None
    if header:
        credentials = _basic_credentials(header)
        if credentials is None:
            raise RegistryError(
                "UNAUTHORIZED", "Specified credentials are invalid", headers=challenge
            )
    elif not settings.FEATURE_ANONYMOUS_ACCESS:
        raise PlainError(401, {"error": "Anonymous access is not allowed"}, challenge)
    elif not raw_scopes:
        raise RegistryError("UNAUTHORIZED", headers=challenge)

    def grant() -> tuple[AuthContext, list[dict[str, Any]]]:
        with reg.session_factory() as session:
            auth: AuthContext
            if credentials is None:
                auth = anonymous(settings)
            else:
                username, password = credentials
                try:
                    if username.startswith("$") or "+" in username:
                        auth = verify_basic(session, settings, username, password)
                    else:
                        auth = reg.passwords.verify(session, settings, username, password)
                except CredentialsError as exc:
                    raise RegistryError("UNAUTHORIZED", str(exc), headers=challenge) from exc
            access = [
                {
                    "type": "repository",
                    "name": scope.raw_name,
                    "actions": registry_grants.decide_actions(session, settings, auth, scope),
                }
                for scope in parsed
            ]
            session.commit()
            return auth, access

    auth, access = await reg.run(grant)
    signed = await reg.run(tokens.issue_token, reg.keys, settings, auth, audience, access)
    await send_json(send_fn, 200, {"token": signed})


async def redirect_base(reg: Registry, request: Request, send_fn) -> None:
    await send(send_fn, 301, b"", {"Location": "/v2/"})
