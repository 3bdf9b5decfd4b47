"""Values PostgreSQL cannot store (NUL bytes) are refused with 400 on every engine, never a 500."""

from __future__ import annotations

import httpx

from tests.support.accounts import ALL_SCOPES, create_user, issue_token
from tests.support.server import LiveServer


def test_nul_in_json_body_is_a_bad_request_and_creates_nothing(server: LiveServer) -> None:
    owner = create_user(server)
    headers = {"Authorization": f"Bearer {issue_token(server, owner.username, ALL_SCOPES)}"}
    response = httpx.post(
        f"{server.url}/api/v1/organization/",
        json={"name": "nulorg", "email": "a\x00@example.com"},
        headers=headers,
    )
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_request"
    assert httpx.get(f"{server.url}/api/v1/organization/nulorg", headers=headers).status_code == 404


def test_nul_in_path_and_query_is_never_a_server_error(server: LiveServer) -> None:
    owner = create_user(server)
    headers = {"Authorization": f"Bearer {issue_token(server, owner.username, ALL_SCOPES)}"}
    by_path = httpx.get(f"{server.url}/api/v1/users/a%00b", headers=headers)
    assert by_path.status_code in (400, 404)
    by_query = httpx.get(
        f"{server.url}/api/v1/repository", params={"namespace": "x\x00y"}, headers=headers
    )
    assert by_query.status_code == 400 or by_query.json() == {"repositories": []}
