"""Robot OIDC federation: the settings API, and trading an issuer's token for a robot token.

A local issuer on 127.0.0.3 (opened with SSRF_ALLOWED_HOSTS) serves its discovery document
and JWKS; tokens it signs are traded at /oauth2/federation/robot/token and the robot token
that comes back pulls an image with skopeo.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.accounts import ALL_SCOPES, bearer_client, issue_token
from tests.support.audit import log_entries
from tests.support.oidc import ISSUER_HOST, LocalIssuer, new_key
from tests.support.registry import make_image, pull_push, push_image, token_for, v2_client
from tests.support.server import LiveServer
from tests.support.teams import (
    OrgWorld,
    create_repository,
    create_robot,
    grant_user,
    org_world,
    passwordless_user,
)

TOKEN_PATH = "/oauth2/federation/robot/token"
SUBJECT = "repo:example/app:ref:refs/heads/main"


@pytest.fixture(scope="module")
def fed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Failed robot logins are asserted one by one here; the login back-off has its own tests.
    config = {"SSRF_ALLOWED_HOSTS": [ISSUER_HOST], "LOGIN_FAILURE_BACKOFF_SCALE_SEC": 0}
    live = LiveServer(tmp_path_factory.mktemp("federation"), config).start()
    yield live
    live.destroy()


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


@pytest.fixture
def world(fed_server: LiveServer) -> Iterator[OrgWorld]:
    with org_world(fed_server) as created:
        yield created


def _fed_path(world: OrgWorld, short: str = "bot") -> str:
    return f"/api/v1/organization/{world.org}/robots/{short}/federation"


def _configure(world: OrgWorld, entries: list[dict]) -> None:
    response = world.client("owner").post(_fed_path(world), json=entries)
    assert response.status_code == 200, response.text


def _trade(server: LiveServer, robot: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}{TOKEN_PATH}", auth=(robot, token), timeout=30)


# --- the settings API ----------------------------------------------------------------------


def test_org_robot_federation_round_trip(fed_server: LiveServer, world: OrgWorld) -> None:
    owner = world.client("owner")
    assert owner.get(_fed_path(world)).json() == []
    entries = [
        {"issuer": "http://127.0.0.3:1/actions", "subject": "repo:a", "isExpanded": True},
        {"issuer": "http://127.0.0.3:1/actions", "subject": "repo:b"},
        {"issuer": "http://127.0.0.3:2/k8s/", "subject": "sa:ci", "audiences": ["registry"]},
    ]
    created = owner.post(_fed_path(world), json=entries)
    assert created.status_code == 200
    expected = [
        {"issuer": "http://127.0.0.3:1/actions", "subject": "repo:a"},
        {"issuer": "http://127.0.0.3:1/actions", "subject": "repo:b"},
        {"issuer": "http://127.0.0.3:2/k8s/", "subject": "sa:ci", "audiences": ["registry"]},
    ]
    assert created.json() == expected
    assert owner.get(_fed_path(world)).json() == expected
    # POST replaces the whole list.
    assert owner.post(_fed_path(world), json=expected[:1]).json() == expected[:1]
    assert owner.get(_fed_path(world)).json() == expected[:1]
    deleted = owner.delete(_fed_path(world))
    assert deleted.status_code == 204
    assert owner.get(_fed_path(world)).json() == []
    logged = log_entries(fed_server, world.org, "create_robot_federation")
    assert logged == [
        {"config": expected, "robot": "bot"},
        {"config": expected[:1], "robot": "bot"},
    ]
    assert log_entries(fed_server, world.org, "delete_robot_federation") == [{"robot": "bot"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"issuer": "token.actions.example.com", "subject": "x"}], "Issuer must be a URL"),
        ([{"issuer": "ftp://example.com", "subject": "x"}], "Issuer must be a URL"),
        ([{"issuer": "http://127.0.0.3:4", "subject": ""}], "Missing one or more required"),
        ([{}], "Missing one or more required fields (issuer, subject)"),
        ([{"issuer": "http://127.0.0.3:4"}], "'subject' is a required property"),
        ([{"issuer": 5, "subject": "x"}], "5 is not of type 'string'"),
        (["http://127.0.0.3:4"], "is not of type 'object'"),
        ({"issuer": "http://127.0.0.3:4", "subject": "x"}, "is not of type 'array'"),
        (
            [{"issuer": "http://127.0.0.3:4", "subject": "x"}] * 2,
            "Duplicate federation config entry",
        ),
        ([{"issuer": "http://169.254.169.254/", "subject": "x"}], "is not allowed"),
        ([{"issuer": "http://127.0.0.1:8080", "subject": "x"}], "is not allowed"),
        (
            [{"issuer": "http://127.0.0.3:5", "subject": "x", "audiences": "aud"}],
            "not of type 'array'",
        ),
        ([{"issuer": "http://127.0.0.3:5", "subject": "a\u0000b"}], "NUL"),
        ([{"issuer": "http://127.0.0.3:4", "subject": "x" * 5000}], "longer than"),
        ([{"issuer": "http://127.0.0.3:4", "subject": "\ud800"}], "not valid Unicode"),
    ],
)
def test_bad_federation_settings_are_refused_and_change_nothing(
    world: OrgWorld, body: object, message: str
) -> None:
    owner = world.client("owner")
    kept = [{"issuer": "http://127.0.0.3:3/issuer", "subject": "kept"}]
    _configure(world, kept)
    # Encoded here: ASCII escapes carry a lone surrogate, which httpx's encoder refuses.
    response = owner.post(
        _fed_path(world), content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_type"] == "invalid_request"
    assert message in response.json()["detail"]
    assert owner.get(_fed_path(world)).json() == kept


def test_missing_or_malformed_body(world: OrgWorld) -> None:
    owner = world.client("owner")
    empty = owner.post(_fed_path(world), content=b"")
    assert empty.status_code == 400
    assert empty.json()["detail"] == "Missing JSON body"
    broken = owner.post(
        _fed_path(world), content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert "message" in broken.json()


def test_federation_needs_org_admin(fed_server: LiveServer, world: OrgWorld) -> None:
    entries = [{"issuer": "http://127.0.0.3:3/issuer", "subject": "s"}]
    for who in ("reader", "outsider", "robot"):
        for method in ("GET", "POST", "DELETE"):
            response = world.client(who).request(
                method, _fed_path(world), json=entries if method == "POST" else None
            )
            assert response.status_code in (401, 403), (who, method, response.text)
    for method in ("GET", "POST", "DELETE"):
        response = world.client("anonymous").request(method, _fed_path(world), json=entries)
        assert response.status_code in (401, 403)
    # A token without org:admin is not enough either.
    narrow = issue_token(fed_server, world.owner.username, "repo:read user:admin")
    with bearer_client(fed_server, narrow) as client:
        assert client.get(_fed_path(world)).status_code == 403
        assert client.post(_fed_path(world), json=entries).status_code == 403
    assert world.client("owner").get(_fed_path(world)).json() == []


def test_unknown_robot_is_quays_400(world: OrgWorld) -> None:
    response = world.client("owner").get(_fed_path(world, "nosuchbot"))
    assert response.status_code == 400
    assert response.json() == {"message": "Could not find robot with specified username"}
    posted = world.client("owner").post(
        _fed_path(world, "nosuchbot"), json=[{"issuer": "http://127.0.0.3:5", "subject": "s"}]
    )
    assert posted.status_code == 400


def test_user_robot_federation(fed_server: LiveServer) -> None:
    person = passwordless_user(fed_server)
    create_robot(fed_server, person.username, "mine")
    path = "/api/v1/user/robots/mine/federation"
    entries = [{"issuer": "http://127.0.0.3:3/issuer", "subject": "me"}]
    with bearer_client(fed_server, issue_token(fed_server, person.username, ALL_SCOPES)) as c:
        assert c.get(path).json() == []
        assert c.post(path, json=entries).json() == entries
        assert c.get(path).json() == entries
        assert c.delete(path).status_code == 204
        assert c.get(path).json() == []
    other = passwordless_user(fed_server)
    with bearer_client(fed_server, issue_token(fed_server, other.username, ALL_SCOPES)) as c:
        # Another user's path names their own namespace: no such robot there.
        assert c.get(path).status_code == 400
    assert log_entries(fed_server, person.username, "create_robot_federation") == [
        {"config": entries, "robot": "mine"}
    ]


# --- trading tokens ------------------------------------------------------------------------


def test_federated_token_pulls_with_skopeo(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer, tmp_path: Path
) -> None:
    create_repository(fed_server, world.org, "app")
    grant_user(fed_server, world.org, "app", world.robot, "read")
    owner_token = token_for(
        fed_server, (world.robot, world.robot_token), f"repository:{world.org}/app:pull"
    )
    assert owner_token
    pusher = passwordless_user(fed_server)
    grant_user(fed_server, world.org, "app", pusher.username, "write")
    push_token = token_for(
        fed_server,
        ("$oauthtoken", issue_token(fed_server, pusher.username, ALL_SCOPES)),
        pull_push(f"{world.org}/app"),
    )
    with v2_client(fed_server, push_token) as client:
        assert push_image(client, f"{world.org}/app", make_image(), "v1").status_code == 201

    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    traded = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host))
    assert traded.status_code == 200, traded.text
    robot_token = traded.json()["token"]
    assert set(traded.json()) == {"token"}

    result = subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"--src-creds={world.robot}:{robot_token}",
            f"docker://{fed_server.host}/{world.org}/app:v1",
            f"oci:{tmp_path / 'pulled'}:v1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pulled" / "index.json").exists()

    # The robot has read only: the traded token cannot push.
    grants = token_for(fed_server, (world.robot, robot_token), pull_push(f"{world.org}/app"))
    assert jwt.decode(grants, options={"verify_signature": False})["access"][0]["actions"] == [
        "pull"
    ]
    assert log_entries(fed_server, world.org, "federated_robot_token_exchange") == [
        {"subject": SUBJECT, "issuer": issuer.url, "robot": "bot"}
    ]


def test_issuer_keys_are_cached(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    for _ in range(8):
        response = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host))
        assert response.status_code == 200, response.text
    # Each HTTP process keeps its own cache: at most one fetch per process for eight trades.
    assert 1 <= issuer.requests["/.well-known/openid-configuration"] <= fed_server.workers
    assert 1 <= issuer.requests["/keys"] <= fed_server.workers


def test_audiences_listed_in_the_entry_are_the_ones_accepted(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT, "audiences": ["ci-pull"]}])
    assert _trade(fed_server, world.robot, issuer.token(SUBJECT, "ci-pull")).status_code == 200
    refused = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host))
    assert refused.status_code == 401
    assert refused.json() == {"error": "Invalid token: Audience doesn't match"}


def _bad_tokens(issuer: LocalIssuer, host: str) -> list[tuple[str, str]]:
    stranger = LocalIssuer.__new__(LocalIssuer)
    stranger.url = "http://127.0.0.3:6/elsewhere"
    stranger.key = new_key()
    stranger.kid = "x"
    return [
        (issuer.token(SUBJECT, host, key=new_key()), "Invalid token: Signature verification"),
        (issuer.token(SUBJECT, "someone-else"), "Invalid token: Audience doesn't match"),
        (issuer.token("repo:other", host), "Token does not match robot"),
        (issuer.token(SUBJECT, host, lifetime_s=-600), "Invalid token: Signature has expired"),
        (issuer.token(SUBJECT, host, kid="unknown-kid"), "Invalid token: Public key unknown-kid"),
        (LocalIssuer.token(stranger, SUBJECT, host), "issuer http://127.0.0.3:6/elsewhere not"),
        (jwt.encode({"sub": SUBJECT}, "s" * 32, "HS256"), "Token does not contain issuer"),
        (
            jwt.encode({"iss": issuer.url, "sub": SUBJECT, "aud": host}, "k" * 32, "HS256"),
            "Invalid token: Missing `kid` header",
        ),
        (
            jwt.encode(
                {"iss": issuer.url, "sub": SUBJECT, "aud": host, "exp": 2**40, "iat": 1},
                "k" * 32,
                "HS256",
                {"kid": issuer.kid},
            ),
            "Invalid token: The specified alg value is not allowed",
        ),
        ("not-a-jwt", "Invalid token: Not enough segments"),
    ]


def test_bad_federated_tokens_get_401(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    for token, message in _bad_tokens(issuer, fed_server.host):
        response = _trade(fed_server, world.robot, token)
        assert response.status_code == 401, (message, response.text)
        assert response.json()["error"].startswith(message), response.json()
    assert log_entries(fed_server, world.org, "federated_robot_token_exchange") == []


def test_exchange_refuses_bad_callers(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    good = issuer.token(SUBJECT, fed_server.host)
    bare = httpx.get(f"{fed_server.url}{TOKEN_PATH}", timeout=30)
    assert (bare.status_code, bare.json()) == (401, {"error": "No auth header"})
    bearer = httpx.get(
        f"{fed_server.url}{TOKEN_PATH}", headers={"Authorization": "Bearer x"}, timeout=30
    )
    assert (bearer.status_code, bearer.json()) == (401, {"error": "Invalid basic auth header"})
    person = _trade(fed_server, world.owner.username, good)
    assert (person.status_code, person.json()) == (401, {"error": "Invalid robot"})
    missing = _trade(fed_server, f"{world.org}+ghost", good)
    assert missing.json() == {"error": "Could not find robot with specified username"}
    unconfigured = _trade(fed_server, world.robot, good)
    assert unconfigured.json() == {"error": "Robot does not have federated login configured"}
    assert issuer.requests["/keys"] == 0


def test_issuer_must_answer_for_itself(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    issuer.discovery_override = {
        "issuer": "http://127.0.0.3:7/impostor",
        "jwks_uri": f"{issuer.url}/keys",
    }
    response = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host))
    assert response.status_code == 401
    assert "different issuer" in response.json()["error"]
    assert issuer.requests["/keys"] == 0


def test_jwks_on_a_blocked_address_is_not_fetched(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    issuer.discovery_override = {"issuer": issuer.url, "jwks_uri": "http://127.0.0.1:9/keys"}
    response = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host))
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid token: OIDC server must be accessed over SSL"


def test_robot_token_rules_on_v2_auth(
    fed_server: LiveServer, world: OrgWorld, issuer: LocalIssuer
) -> None:
    _configure(world, [{"issuer": issuer.url, "subject": SUBJECT}])
    robot_token = _trade(fed_server, world.robot, issuer.token(SUBJECT, fed_server.host)).json()[
        "token"
    ]
    url = f"{fed_server.url}/v2/auth"
    params = {"service": fed_server.host}
    assert httpx.get(url, params=params, auth=(world.robot, robot_token)).status_code == 200
    # Only for the robot it was issued to.
    other, _ = create_robot(fed_server, world.org, "other")
    assert httpx.get(url, params=params, auth=(other, robot_token)).status_code == 401
    # A registry bearer token naming the robot is no robot password.
    bearer = token_for(fed_server, (world.robot, world.robot_token))
    assert httpx.get(url, params=params, auth=(world.robot, bearer)).status_code == 401
    # Nor is the outside token itself.
    outside = issuer.token(SUBJECT, fed_server.host)
    assert httpx.get(url, params=params, auth=(world.robot, outside)).status_code == 401
    # Regenerating the robot's token ends the traded ones.
    regenerated = world.client("owner").post(
        f"/api/v1/organization/{world.org}/robots/bot/regenerate"
    )
    assert regenerated.status_code == 200
    refused = httpx.get(url, params=params, auth=(world.robot, robot_token))
    assert refused.status_code == 401
    assert "supplied password" in refused.text
