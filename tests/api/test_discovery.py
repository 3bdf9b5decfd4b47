"""/api/v1/discovery describes every route under Quay's nicknames, and fuzzing it finds no 5xx."""

from __future__ import annotations

import contextlib
import re

import httpx
import pytest
import requests
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from cargohold.app import create_app
from tests.support.accounts import ALL_SCOPES, create_organization, create_user, issue_token
from tests.support.content import add_stored_manifest, make_repository, tag_manifest
from tests.support.server import LiveServer

NICKNAME = re.compile(r"[a-z][A-Za-z0-9]*")
EXAMPLES_PER_STRATEGY = 4


def test_every_route_has_a_quay_nickname(anon_client) -> None:
    document = anon_client.get("/api/v1/discovery").json()
    operation_ids: list[str] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operation_id = operation.get("operationId", "")
            assert NICKNAME.fullmatch(operation_id), f"{method.upper()} {path}: {operation_id!r}"
            operation_ids.append(operation_id)
    assert len(operation_ids) == len(set(operation_ids))
    for expected in ("createOrganization", "getOrganization", "getOrganizationApplications"):
        assert expected in operation_ids


def test_every_registered_route_is_described(server: LiveServer) -> None:
    """API routes hidden from the schema are only the trailing-slash twins of described ones
    (pages, webhooks and file downloads beside the API are no part of its description)."""
    app = create_app(server.settings)
    api_routes = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/")
    ]
    assert len(api_routes) > 100
    described = {
        (method, route.path)
        for route in api_routes
        if route.include_in_schema
        for method in route.methods
    }
    for route in api_routes:
        if route.include_in_schema:
            continue
        twin = route.path[:-1] if route.path.endswith("/") else route.path + "/"
        for method in route.methods:
            assert (method, twin) in described, f"{method} {route.path} is not described"


@pytest.mark.timeout(420)
def test_fuzzing_every_described_route_finds_no_server_error(server_factory) -> None:
    """Schemathesis walks every operation of /api/v1/discovery with valid and invalid input,
    as the owner of the objects it aims at (as a superuser on superuser routes). A bounded
    number of examples per operation keeps the walk to a couple of minutes."""
    live = server_factory()
    create_user(live, "admin")
    owner = create_user(live)
    other = create_user(live)
    org = create_organization(live, owner, "fuzzorg")
    repo = make_repository(live, owner.username, "fuzzrepo")
    digest = add_stored_manifest(live, repo, [b"fuzzed layer"])
    tag_manifest(live, repo, "latest", digest)
    owner_token = issue_token(live, owner.username, ALL_SCOPES)
    admin_token = issue_token(live, "admin", ALL_SCOPES)
    schema = (
        schemathesis.openapi.from_url(f"{live.url}/api/v1/discovery")
        # Deleting or disabling the fuzzing accounts would turn the rest of the walk into 401s.
        .exclude(method="DELETE", path="/api/v1/user/")
    )
    # Random names mostly miss, so paths aim at existing objects. Another account stands in
    # for `username`, so that superuser operations never disable the fuzzing user.
    known = {
        "orgname": org,
        "repository": repo,
        "namespace": owner.username,
        "username": other.username,
        "digest": digest,
        "tag": "latest",
        "teamname": "owners",
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 150
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            # The owner may act on everything pinned above; superuser routes need the admin.
            superuser = operation.path.startswith("/api/v1/superuser/")
            token = admin_token if superuser else owner_token
            for strategy in _strategies(operation, known):
                fuzz_operation(live.url, session, operation, strategy, token, failures)
    assert failures == []
    assert httpx.get(f"{live.url}/health/instance").status_code == 200
    assert "Traceback" not in live.log_text()


def _strategies(operation, known: dict[str, str]) -> list:
    """Valid and invalid input, aimed at existing objects where the path names one."""
    pinned = {
        p.name: known[p.name]
        for p in operation.iter_parameters()
        if p.location == "path" and p.name in known
    }
    extra = {"path_parameters": pinned} if pinned else {}
    return [
        operation.as_strategy(generation_mode=mode, **extra)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]


def fuzz_operation(base_url, session, operation, strategy, token, failures: list[str]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_STRATEGY,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    def check(case) -> None:
        response = case.call(
            base_url=base_url, session=session, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code >= 500:
            failures.append(f"{operation.label} -> {response.status_code}: {response.text[:200]}")

    # An operation without parameters or body has nothing to make invalid.
    with contextlib.suppress(Unsatisfiable):
        check()
