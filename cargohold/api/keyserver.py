"""The key server: services publish, rotate and delete their public keys under /keys.

No session or OAuth authentication here: writes are authorized by a JWT signed with the key
itself (publishing) or with an approved key of the same service (rotation, deletion). Refusals
(`KeyServerError`) are answered in plain text by the API's error handlers.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cargohold.api.deps import DbDep, SettingsDep, client_ip
from cargohold.api.routing import ApiRouter
from cargohold.domain.service_keys import admin

router = ApiRouter(tags=["keys"])

_BEARER_RE = re.compile(r"^Bearer ([-\w]+\.[-\w]+\.[-\w]*)$")


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


def _client(request: Request) -> admin.KeyServerClient:
    return admin.KeyServerClient(client_ip(request), request.headers.get("user-agent"))


@router.get("/keys/services/{service}/keys", operation_id="listServiceKeysForService")
def list_service_keys(service: str, db: DbDep) -> Any:
    return {"keys": admin.alive_approved_jwks(db, service)}


@router.get("/keys/services/{service}/keys/{kid}", operation_id="getServiceKeyJwk")
def get_service_key(service: str, kid: str, db: DbDep, settings: SettingsDep) -> Response:
    jwk, max_age = admin.served_key(db, settings, kid)
    return JSONResponse(jwk, headers={"Cache-Control": f"max-age={max_age}"})


@router.put("/keys/services/{service}/keys/{kid}", operation_id="putServiceKey")
async def put_service_key(
    service: str, kid: str, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    raw = await request.body()
    token = _bearer(request)
    jwk = admin.submitted_jwk(raw)
    expiration = admin.published_expiration(_int_param(request, "expiration"))
    published = admin.PublishedKey(
        service, kid, jwk, expiration, rotation_duration=_int_param(request, "rotation")
    )
    result = admin.publish(db, settings, published, token=token, client=_client(request))
    db.commit()
    # A new key waits for approval (202); a rotation takes effect at once (200).
    return Response(status_code=202 if result.rotated_from is None else 200)


@router.delete("/keys/services/{service}/keys/{kid}", operation_id="deleteServiceKeySigned")
def delete_service_key(
    service: str, kid: str, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    admin.delete_signed(
        db, settings, service=service, kid=kid, token=_bearer(request), client=_client(request)
    )
    db.commit()
    return Response(status_code=204)
