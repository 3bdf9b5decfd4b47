"""`GET /oauth2/federation/robot/token`: trade an outside OIDC token for a robot token.

The caller sends Basic credentials: the robot's full name and, as password, a JWT from an
issuer listed in the robot's federation settings. The answer is a robot token valid for an
hour, usable as the robot's password on `/v2/auth` (podman, skopeo and docker logins).
Failures are 401 `{"error": ...}`, as Quay answers them.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from cargohold.api.deps import DbDep, SettingsDep, client_ip
from cargohold.api.errors import JsonError
from cargohold.api.routing import ApiRouter
from cargohold.auth.robot_tokens import issue_robot_token
from cargohold.domain import robot_federation
from cargohold.domain.oidc_keys import IssuerKeys
from cargohold.domain.service_keys import KeyRing

router = ApiRouter(tags=["federation"])

# Issuers' public keys, shared by every request this process serves.
_ISSUER_KEYS = IssuerKeys()


def _refused(message: str) -> JsonError:
    return JsonError(401, {"error": message})


def _robot_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if not header:
        raise _refused("No auth header")
    scheme, _, value = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError("not basic")
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _refused("Invalid basic auth header") from exc
    username, sep, token = decoded.partition(":")
    if not sep or not token:
        raise _refused("Invalid basic auth header")
    if "+" not in username.strip("+"):
        raise _refused("Invalid robot")
    return username, token


@router.get("/oauth2/federation/robot/token", operation_id="federatedRobotToken")
def federated_robot_token(request: Request, db: DbDep, settings: SettingsDep) -> dict[str, str]:
    robot_name, presented = _robot_credentials(request)
    accepted = robot_federation.exchange(
        db, settings, _ISSUER_KEYS, robot_name, presented, ip=client_ip(request)
    )
    db.commit()
    keys: KeyRing = request.app.state.keys
    return {"token": issue_robot_token(keys.signing_key(), settings, accepted.robot)}
