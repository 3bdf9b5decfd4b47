"""Service keys through the superuser API and the key server, verified with real JWTs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from email.utils import parsedate_to_datetime

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update

from cargohold.db.models.audit import LogEntry
from cargohold.db.models.keys import ServiceKey
from tests.superuser.conftest import assert_api_error
from tests.support.accounts import unique
from tests.support.server import LiveServer


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    return {"kty": "RSA", "n": _b64(numbers.n), "e": _b64(numbers.e)}


def _thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


def _token(private_key, server: LiveServer, service: str, kid: str | None = None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": service, "aud": server.url, "iat": now, "nbf": now, "exp": now + 300}
    payload.update(claims)
    headers = {"kid": kid} if kid else {}
    return jwt.encode(payload, private_key, algorithm="RS256", headers=headers)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _log_kinds(server: LiveServer, kid: str) -> list[str]:
    with server.db() as session:
        rows = session.scalars(select(LogEntry).order_by(LogEntry.id)).all()
        return [row.kind for row in rows if json.loads(row.metadata_json).get("kid") == kid]


def _create(admin_client: httpx.Client, service: str, **extra) -> dict:
    body = {"service": service, "expiration": time.time() + 86400, **extra}
    response = admin_client.post("/api/v1/superuser/keys", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_created_key_is_approved_served_and_verifies_its_jwts(
    server: LiveServer, admin_client: httpx.Client, anon_client: httpx.Client
) -> None:
    service = unique("svc")
    expiration = int(time.time()) + 86400
    created = _create(
        admin_client,
        service,
        name="build cluster key",
        metadata={"team": "infra", "created_by": "me"},
        notes="for the build cluster",
        expiration=expiration,
    )
    assert set(created) == {"kid", "name", "service", "public_key", "private_key"}
    assert created["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert created["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    private_key = serialization.load_pem_private_key(created["private_key"].encode(), None)
    kid = created["kid"]
    assert kid == _thumbprint(_jwk(private_key))
    assert _log_kinds(server, kid) == ["service_key_create", "service_key_approve"]

    view = admin_client.get(f"/api/v1/superuser/keys/{kid}").json()
    assert view["name"] == "build cluster key"
    assert view["service"] == service
    assert view["approval"]["approval_type"] == "ServiceKeyApprovalType.SUPERUSER"
    assert view["approval"]["approver"]["username"] == "admin"
    assert view["approval"]["approver"]["super_user"] is True
    assert view["approval"]["notes"] == "for the build cluster"
    assert view["metadata"]["team"] == "infra"
    assert view["metadata"]["created_by"] == "Quay Superuser Panel"
    assert view["metadata"]["creator"] == "admin"
    assert view["jwk"] == {**_jwk(private_key), "kid": kid}
    assert view["expiration_date"].endswith(" GMT")
    assert int(parsedate_to_datetime(view["expiration_date"]).timestamp()) == expiration
    assert view["rotation_duration"] is None
    listed = admin_client.get("/api/v1/superuser/keys").json()["keys"]
    assert [item for item in listed if item["kid"] == kid] == [view]

    jwks = anon_client.get(f"/keys/services/{service}/keys").json()["keys"]
    assert [key["kid"] for key in jwks] == [kid]
    single = anon_client.get(f"/keys/services/{service}/keys/{kid}")
    assert single.status_code == 200
    max_age = int(single.headers["cache-control"].removeprefix("max-age="))
    assert 86000 < max_age <= 86400
    token = _token(private_key, server, service, kid, sub="job-17")
    claims = jwt.decode(
        token,
        jwt.PyJWK(single.json(), algorithm="RS256").key,
        algorithms=["RS256"],
        audience=server.url,
    )
    assert claims["sub"] == "job-17"
    forged = _token(_new_key(), server, service, kid)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            forged,
            jwt.PyJWK(jwks[0], algorithm="RS256").key,
            algorithms=["RS256"],
            audience=server.url,
        )

    # Approving an approved key changes nothing and still answers 201 with no body.
    again = admin_client.post(f"/api/v1/superuser/approvedkeys/{kid}")
    assert again.status_code == 201
    assert again.content == b""

    deleted = admin_client.delete(f"/api/v1/superuser/keys/{kid}")
    assert deleted.status_code == 204
    assert_api_error(admin_client.get(f"/api/v1/superuser/keys/{kid}"), 404, "not_found")
    assert anon_client.get(f"/keys/services/{service}/keys/{kid}").status_code == 404
    assert anon_client.get(f"/keys/services/{service}/keys").json() == {"keys": []}
    assert _log_kinds(server, kid)[-1] == "service_key_delete"


def test_update_renames_merges_metadata_and_changes_expiration(
    server: LiveServer, admin_client: httpx.Client
) -> None:
    kid = _create(admin_client, unique("svc"), metadata={"a": "1"})["kid"]
    path = f"/api/v1/superuser/keys/{kid}"
    renamed = admin_client.put(path, json={"name": "renamed key", "metadata": {"foo": "bar"}})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "renamed key"
    assert renamed.json()["metadata"]["a"] == "1"
    assert renamed.json()["metadata"]["foo"] == "bar"
    never = admin_client.put(path, json={"expiration": None})
    assert never.json()["expiration_date"] is None
    assert _log_kinds(server, kid)[-2:] == ["service_key_modify", "service_key_extend"]

    past = admin_client.put(path, json={"expiration": time.time() - 60})
    assert_api_error(past, 400, "invalid_request", "Cannot have an expiration date in the past")
    bad_name = admin_client.put(path, json={"name": "semi;colon"})
    assert_api_error(
        bad_name, 400, "invalid_request", "Invalid service key friendly name: semi;colon"
    )
    wrong_type = admin_client.put(path, json={"expiration": "tomorrow"})
    assert_api_error(wrong_type, 400, "invalid_request")
    assert admin_client.put(path, json={}).json()["name"] == "renamed key"
    assert admin_client.get(path).json()["expiration_date"] is None


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"service": "ok_service"}, 400, "'expiration' is a required property"),
        ({"expiration": None}, 400, "'service' is a required property"),
        ({"service": "ok", "expiration": 1}, 400, "Expiration date cannot be in the past"),
        ({"service": "ok", "expiration": None, "name": "bad!"}, 400, None),
        ({"service": "ok", "expiration": "soon"}, 400, None),
        ({"service": "ok", "expiration": 1e300}, 400, None),
    ],
)
def test_create_rejects_bad_input(admin_client: httpx.Client, body, status, detail) -> None:
    before = len(admin_client.get("/api/v1/superuser/keys").json()["keys"])
    assert_api_error(
        admin_client.post("/api/v1/superuser/keys", json=body), status, "invalid_request", detail
    )
    assert len(admin_client.get("/api/v1/superuser/keys").json()["keys"]) == before


def test_create_with_an_invalid_service_name_is_a_data_model_error(admin_client) -> None:
    response = admin_client.post(
        "/api/v1/superuser/keys", json={"service": "Not-Valid", "expiration": None}
    )
    assert response.status_code == 400
    assert response.json() == {"message": ""}


def test_service_key_endpoints_refuse_other_callers(
    admin_client: httpx.Client, user_client: httpx.Client, anon_client: httpx.Client
) -> None:
    kid = _create(admin_client, unique("svc"))["kid"]
    assert_api_error(anon_client.get("/api/v1/superuser/keys"), 401, "invalid_token")
    assert_api_error(user_client.get("/api/v1/superuser/keys"), 403, "insufficient_scope")
    assert_api_error(user_client.get(f"/api/v1/superuser/keys/{kid}"), 403, "insufficient_scope")
    assert_api_error(
        user_client.post("/api/v1/superuser/keys", json={"service": "x", "expiration": None}),
        403,
        "insufficient_scope",
    )
    # The body is checked before the caller.
    assert_api_error(user_client.post("/api/v1/superuser/keys", json={}), 400, "invalid_request")
    assert_api_error(
        user_client.put(f"/api/v1/superuser/keys/{kid}", json={}), 403, "insufficient_scope"
    )
    assert_api_error(user_client.delete(f"/api/v1/superuser/keys/{kid}"), 403, "insufficient_scope")
    assert_api_error(
        user_client.post(f"/api/v1/superuser/approvedkeys/{kid}", json={}),
        403,
        "insufficient_scope",
    )
    assert anon_client.delete(f"/api/v1/superuser/keys/{kid}").status_code in (401, 403)
    assert admin_client.get(f"/api/v1/superuser/keys/{kid}").status_code == 200
    for call in (
        admin_client.get("/api/v1/superuser/keys/1234"),
        admin_client.put("/api/v1/superuser/keys/1234", json={}),
        admin_client.delete("/api/v1/superuser/keys/1234"),
        admin_client.post("/api/v1/superuser/approvedkeys/1234", json={}),
    ):
        assert_api_error(call, 404, "not_found")


def test_expired_keys_are_not_served(
    server: LiveServer, admin_client: httpx.Client, anon_client: httpx.Client
) -> None:
    service = unique("svc")
    kid = _create(admin_client, service)["kid"]
    with server.db() as session:
        session.execute(
            update(ServiceKey)
            .where(ServiceKey.kid == kid)
            .values(expiration_date=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        )
    assert anon_client.get(f"/keys/services/{service}/keys/{kid}").status_code == 403
    assert anon_client.get(f"/keys/services/{service}/keys").json() == {"keys": []}
    assert admin_client.get(f"/api/v1/superuser/keys/{kid}").status_code == 200
    with server.db() as session:
        session.execute(
            update(ServiceKey)
            .where(ServiceKey.kid == kid)
            .values(expiration_date=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
        )
    assert anon_client.get(f"/keys/services/{service}/keys/{kid}").status_code == 404
    assert admin_client.get(f"/api/v1/superuser/keys/{kid}").status_code == 404


def test_key_server_publish_approve_rotate_and_delete(
    server: LiveServer, admin_client: httpx.Client, anon_client: httpx.Client
) -> None:
    service = unique("svc")
    first = _new_key()
    first_kid = unique("kid")
    path = f"/keys/services/{service}/keys/{first_kid}"
    expiration = int(time.time()) + 3600

    assert anon_client.put(path, json=_jwk(first)).status_code == 400
    wrong_issuer = _token(first, server, "someone_else")
    headers = {"Authorization": f"Bearer {wrong_issuer}"}
    assert anon_client.put(path, json=_jwk(first), headers=headers).status_code == 400
    wrong_audience = _token(first, server, service, aud="https://elsewhere.example")
    headers = {"Authorization": f"Bearer {wrong_audience}"}
    assert anon_client.put(path, json=_jwk(first), headers=headers).status_code == 400

    headers = {"Authorization": f"Bearer {_token(first, server, service)}"}
    published = anon_client.put(
        f"{path}?expiration={expiration}&rotation=600", json=_jwk(first), headers=headers
    )
    assert published.status_code == 202
    assert anon_client.get(path).status_code == 409
    assert anon_client.get(f"/keys/services/{service}/keys").json() == {"keys": []}
    view = admin_client.get(f"/api/v1/superuser/keys/{first_kid}").json()
    assert view["approval"] is None
    assert view["rotation_duration"] == 600
    assert _log_kinds(server, first_kid) == ["service_key_create"]

    # Rotation needs an approved signer.
    second = _new_key()
    second_kid = unique("kid")
    second_path = f"/keys/services/{service}/keys/{second_kid}"
    rotate = {"Authorization": f"Bearer {_token(first, server, service, first_kid)}"}
    assert anon_client.put(second_path, json=_jwk(second), headers=rotate).status_code == 403

    approved = admin_client.post(
        f"/api/v1/superuser/approvedkeys/{first_kid}", json={"notes": "ok"}
    )
    assert approved.status_code == 201
    approval = admin_client.get(f"/api/v1/superuser/keys/{first_kid}").json()["approval"]
    assert approval["notes"] == "ok"
    assert approval["approval_type"] == "ServiceKeyApprovalType.SUPERUSER"
    assert anon_client.get(path).json() == _jwk(first)

    forged = {"Authorization": f"Bearer {_token(_new_key(), server, service, first_kid)}"}
    assert anon_client.put(second_path, json=_jwk(second), headers=forged).status_code == 400
    rotated = anon_client.put(second_path, json=_jwk(second), headers=rotate)
    assert rotated.status_code == 200
    assert anon_client.get(path).status_code == 404
    new_view = admin_client.get(f"/api/v1/superuser/keys/{second_kid}").json()
    assert new_view["approval"]["approval_type"] == "ServiceKeyApprovalType.SUPERUSER"
    assert new_view["approval"]["notes"] == "ok"
    assert new_view["metadata"]["created_by"] == "Key Rotation"
    assert [k["kid"] for k in anon_client.get(f"/keys/services/{service}/keys").json()["keys"]] == [
        second_kid
    ]
    assert _log_kinds(server, second_kid) == ["service_key_rotate"]

    no_kid = {"Authorization": f"Bearer {_token(second, server, service)}"}
    assert anon_client.delete(second_path, headers=no_kid).status_code == 400
    stranger = _new_key()
    stranger_kid = unique("kid")
    anon_client.put(
        f"/keys/services/{service}/keys/{stranger_kid}",
        json=_jwk(stranger),
        headers={"Authorization": f"Bearer {_token(stranger, server, service)}"},
    )
    by_unapproved = {"Authorization": f"Bearer {_token(stranger, server, service, stranger_kid)}"}
    assert anon_client.delete(second_path, headers=by_unapproved).status_code == 403
    # An unapproved key may delete itself.
    own = anon_client.delete(f"/keys/services/{service}/keys/{stranger_kid}", headers=by_unapproved)
    assert own.status_code == 204
    self_signed = {"Authorization": f"Bearer {_token(second, server, service, second_kid)}"}
    assert anon_client.delete(second_path, headers=self_signed).status_code == 204
    assert anon_client.get(second_path).status_code == 404
    assert _log_kinds(server, second_kid)[-1] == "service_key_delete"


def test_key_server_refusals_are_plain_text(anon_client: httpx.Client, server: LiveServer) -> None:
    """The key server answers each refusal in plain text with its own status, not as an API
    error document."""
    service = unique("svc")
    key = _new_key()
    kid = unique("kid")
    path = f"/keys/services/{service}/keys/{kid}"

    missing = anon_client.put(path, json=_jwk(key))
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.text == "Missing or malformed Authorization header"

    headers = {"Authorization": f"Bearer {_token(key, server, service)}"}
    bad_expiration = anon_client.put(f"{path}?expiration=soon", json=_jwk(key), headers=headers)
    assert (bad_expiration.status_code, bad_expiration.text) == (
        400,
        "Invalid expiration parameter",
    )
    assert anon_client.put(path, json=_jwk(key), headers=headers).status_code == 202
    unapproved = anon_client.get(path)
    assert (unapproved.status_code, unapproved.text) == (409, "Key has not been approved")
    assert anon_client.get(f"/keys/services/{service}/keys/{unique('kid')}").text == "Not Found"
