"""/api/v1/discovery describes every route under Quay's nicknames, and fuzzing it finds no 5xx."""

from __future__ import annotations

import contextlib
import re

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from cargohold.app import create_app
from tests.support.accounts import ALL_SCOPES, create_organization, create_user, issue_token
from tests.support.server import LiveServer

NICKNAME = re.compile(r"[a-z][A-Za-z0-9]*")
# The foundation endpoints (accounts, sign-in, organizations, OAuth applications).
FUZZED_PATHS = r"^/api/v1/(user/|user$|users/|signin|signout|organization|superuser/users|error/)"


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
    """Routes hidden from the schema are only the trailing-slash twins of described ones."""
    app = create_app(server.settings)
    described = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.include_in_schema:
            continue
        twin = route.path[:-1] if route.path.endswith("/") else route.path + "/"
        for method in route.methods:
            assert (method, twin) in described, f"{method} {route.path} is not described"


@pytest.mark.timeout(420)
def test_fuzzing_the_foundation_endpoints_finds_no_server_error(server_factory) -> None:
    live = server_factory()
    create_user(live, "admin")
    owner = create_user(live)
    create_organization(live, owner, "fuzzorg")
    tokens = {
        "owner": issue_token(live, owner.username, ALL_SCOPES),
        "admin": issue_token(live, "admin", ALL_SCOPES),
    }
    # Deleting the fuzzing user would turn the rest of the run into 401s.
    schema = (
        schemathesis.openapi.from_url(f"{live.url}/api/v1/discovery")
        .include(path_regex=FUZZED_PATHS)
        .exclude(method="DELETE", path="/api/v1/user/")
    )
    known = {"orgname": "fuzzorg", "username": owner.username, "namespace": owner.username}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        strategies = [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        # Random names mostly miss; aim at existing objects too.
        pinned = {
            p.name: known[p.name]
            for p in operation.iter_parameters()
            if p.location == "path" and p.name in known
        }
        if pinned:
            strategies.append(operation.as_strategy(path_parameters=pinned))
        for strategy in strategies:
            fuzz_operation(live.url, operation, strategy, tokens.values(), failures)
    assert failures == []
    assert httpx.get(f"{live.url}/health/instance").status_code == 200


def fuzz_operation(base_url, operation, strategy, tokens, failures: list[str]) -> None:
    @given(case=strategy)
    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        for token in tokens:
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{operation.label} -> {response.status_code}: {response.text[:200]}"
                )

    # An operation without parameters or body has nothing to make invalid.
    with contextlib.suppress(Unsatisfiable):
        check()
