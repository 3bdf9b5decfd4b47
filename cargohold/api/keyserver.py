"""The key server: services publish, rotate and delete their public keys under /keys.

No session or OAuth authentication here: writes are authorized by a JWT signed with the key
itself (publishing) or with an approved key of the same service (rotation, deletion).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from cargohold.api.deps import DbDep, SettingsDep, client_ip
from cargohold.api.routing import ApiRouter
from cargohold.domain import service_key_admin as admin
from cargohold.domain import untrusted_json
from cargohold.domain.audit import log_action

router = ApiRouter(tags=["keys"])

_BEARER_RE = re.compile(r"^Bearer ([-\w]+\.[-\w]+\.[-\w]*)$")


def _refused(exc: admin.KeyServerError) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=exc.status)


def _bearer(request: Request) -> str:
    match = _BEARER_RE.match(request.headers.get("authorization", ""))
    if match is None:
        raise admin.KeyServerError(400, "Missing or malformed Authorization header")
    return match.group(1)


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except (ValueError, OverflowError) as exc:
        raise admin.KeyServerError(400, f"Invalid {name} parameter") from exc


def _run(action: Callable[[], Response]) -> Response:
    try:
        return action()
    except admin.KeyServerError as exc:
        return _refused(exc)


@router.get("/keys/services/{service}/keys", operation_id="listServiceKeysForService")
def list_service_keys(service: str, db: DbDep) -> Any:
    return {"keys": admin.alive_approved_jwks(db, service)}


@router.get("/keys/services/{service}/keys/{kid}", operation_id="getServiceKeyJwk")
def get_service_key(service: str, kid: str, db: DbDep, settings: SettingsDep) -> Response:
    def serve() -> Response:
        jwk, max_age = admin.served_key(db, settings, kid)
        return JSONResponse(jwk, headers={"Cache-Control": f"max-age={max_age}"})

    return _run(serve)


@router.put("/keys/services/{service}/keys/{kid}", operation_id="putServiceKey")
async def put_service_key(
    service: str, kid: str, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    raw = await request.body()

    def publish() -> Response:
        token = _bearer(request)
        try:
            jwk = admin.check_submitted_jwk(untrusted_json.loads(raw))
        except ValueError as exc:
            raise admin.KeyServerError(400, "Missing or invalid JWK") from exc
        expiration_s = _int_param(request, "expiration")
        try:
            expiration = admin.expiration_from_unix(expiration_s)
        except admin.ServiceKeyError as exc:
            raise admin.KeyServerError(400, str(exc)) from exc
        result = admin.publish(
            db,
            settings,
            service=service,
            kid=kid,
            jwk=jwk,
            token=token,
            expiration=expiration,
            rotation_duration=_int_param(request, "rotation"),
            ip=client_ip(request),
        )
        metadata = {
            "kid": kid,
            "service": service,
            "name": result.key.name,
            "expiration_date": admin.unix_seconds(result.key.expiration_date),
            "user_agent": request.headers.get("user-agent"),
            "ip": client_ip(request),
        }
        if result.rotated_from is None:
            kind, status = "service_key_create", 202
            metadata["preshared"] = False
        else:
            kind, status = "service_key_rotate", 200
            metadata["signer_kid"] = result.rotated_from
        log_action(db, kind, namespace=None, ip=client_ip(request), metadata=metadata)
        db.commit()
        return Response(status_code=status)

    return _run(publish)


@router.delete("/keys/services/{service}/keys/{kid}", operation_id="deleteServiceKeySigned")
def delete_service_key(
    service: str, kid: str, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    def remove() -> Response:
        key, signer_kid = admin.delete_signed(
            db, settings, service=service, kid=kid, token=_bearer(request)
        )
        log_action(
            db,
            "service_key_delete",
            namespace=None,
            ip=client_ip(request),
            metadata={
                "kid": kid,
                "signer_kid": signer_kid,
                "service": key.service,
                "name": key.name,
                "user_agent": request.headers.get("user-agent"),
                "ip": client_ip(request),
            },
        )
        db.commit()
        return Response(status_code=204)

    return _run(remove)
