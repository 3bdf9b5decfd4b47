"""Every JSON-body operation in /api/v1/discovery answers wrongly typed input in Quay's words.

The walk sends each operation that declares a JSON body a document that is not an object,
then each declared property a value of another JSON type, as a superuser who owns every
resource in the paths. No answer may be a server error or name a Python or pydantic type.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from cargohold.db.models.registry import Role
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.registry import (
    create_robot,
    make_image,
    make_repository,
    pull_push,
    push_image,
    token_for,
    v2_client,
)
from tests.support.server import LiveServer

PYTHON_WORDS = re.compile(
    r"'(dict|str|int|float|bool|list|tuple|NoneType|bytes)'"
    r"|Input should|Field required|Value error|validation error"
)
NOT_AN_OBJECT = ["not", "an", "object"]
# Operations the walk must reach with its body (the rest may stop earlier, e.g. at a 404).
MUST_REFUSE = {
    "createOrganizationQuota",
    "changeOrganizationQuota",
    "createOrganizationQuotaSuperUser",
    "changeOrganizationQuotaSuperUser",
    "createOrganizationQuotaLimit",
    "changeOrganizationQuotaLimit",
    "createServiceKey",
    "updateServiceKey",
    "approveServiceKey",
    "changeTag",
    "restoreTag",
    "createRepoMirrorConfig",
    "createOrgRobot",
    "createUserRobot",
    "changeOrganizationDetails",
    "createOrganization",
    "createOrganizationPrototypePermission",
    "changeUserDetails",
    "addManifestLabel",
    "createInstallUser",
    "changeOrganization",
    "changeUserPermissions",
    "updateRepo",
    "createRepo",
}
# A value of each JSON type, tried in this order for one the property does not accept.
SAMPLES: list[tuple[str, Any]] = [
    ("string", "wrong"),
    ("integer", 12345),
    ("object", {"wrong": 1}),
    ("array", [1]),
    ("boolean", True),
]


def _json_types(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    declared = schema.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = set(declared)
    else:
        types = set()
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        types |= _json_types(branch, components)
    if "number" in types:
        types.add("integer")
    return types


def _wrong_value(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    allowed = _json_types(schema, components)
    if not allowed:
        return None
    for json_type, value in SAMPLES:
        if json_type not in allowed:
            return value
    return None


def _properties(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    found = dict(schema.get("properties", {}))
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        found.update(_properties(branch, components))
    return found


def _is_array(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get("type") == "array"


def _check_answer(response: httpx.Response, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    assert not PYTHON_WORDS.search(response.text), f"{where}: {response.text}"


@pytest.fixture
def world(server_factory) -> dict[str, Any]:
    live: LiveServer = server_factory({"FEATURE_SUPERUSERS_FULL_ACCESS": True})
    admin = create_user(live, "admin")
    other = create_user(live)
    org = create_organization(live, admin)
    repo = make_repository(live, org, "walked", public=False)
    token = token_for(live, (admin.username, admin.password), pull_push(repo))
    image = make_image()
    with v2_client(live, token) as registry:
        assert push_image(registry, repo, image, "latest").status_code == 201
    create_robot(live, org, "walkbot", {repo: Role.read})
    client = bearer_client(live, issue_token(live, admin.username, ALL_SCOPES))
    team = client.put(f"/api/v1/organization/{org}/team/walkers", json={"role": "member"})
    assert team.status_code == 200, team.text
    quotas = f"/api/v1/organization/{org}/quota"
    assert client.post(quotas, json={"limit_bytes": 10**9}).status_code == 201
    quota_id = client.get(quotas).json()[0]["id"]
    limit = {"type": "Warning", "threshold_percent": 50}
    assert client.post(f"{quotas}/{quota_id}/limit", json=limit).status_code == 201
    limit_id = client.get(f"{quotas}/{quota_id}/limit").json()[0]["id"]
    key = client.post("/api/v1/superuser/keys", json={"service": "walksvc", "expiration": None})
    assert key.status_code == 200, key.text
    return {
        "server": live,
        "client": client,
        "path_values": {
            "orgname": org,
            "namespace": org,
            "name": org,
            "repository": repo,
            "tag": "latest",
            "digest": image.digest,
            "teamname": "walkers",
            "robot_shortname": "walkbot",
            "quota_id": str(quota_id),
            "limit_id": str(limit_id),
            "kid": key.json()["kid"],
            "service": "walksvc",
            "username": other.username,
            "membername": other.username,
            "email": "walker@example.com",
        },
    }


def test_every_json_body_refuses_wrong_types_in_quay_words(world) -> None:
    client: httpx.Client = world["client"]
    document = client.get("/api/v1/discovery").json()
    components = document.get("components", {}).get("schemas", {})
    refused_non_object: set[str] = set()
    walked = 0
    for path, item in document["paths"].items():
        url = re.sub(r"\{([^}]+)\}", lambda m: world["path_values"].get(m.group(1), "nosuch"), path)
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            walked += 1
            name = operation["operationId"]
            response = client.request(method.upper(), url, json=NOT_AN_OBJECT)
            _check_answer(response, name)
            if response.status_code == 400:
                # A body that is a list of objects (robot federation) refuses its first item.
                wrong = NOT_AN_OBJECT[0] if _is_array(body["schema"], components) else NOT_AN_OBJECT
                assert response.json()["detail"] == f"{wrong!r} is not of type 'object'"
                refused_non_object.add(name)
            if method == "delete":
                continue
            for prop, schema in _properties(body["schema"], components).items():
                value = _wrong_value(schema, components)
                if value is None:
                    continue
                answer = client.request(method.upper(), url, json={prop: value})
                _check_answer(answer, f"{name} {prop}={value!r}")
    assert walked >= len(MUST_REFUSE)
    assert refused_non_object >= MUST_REFUSE, MUST_REFUSE - refused_non_object
