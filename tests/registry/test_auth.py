"""Registry auth: the /v2/ challenge, /v2/auth with every credential kind, JWT claims, grants."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest
from sqlalchemy import select

from cargohold.auth.secrets import hash_password
from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.keys import ServiceKey
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain import repositories
from cargohold.domain.service_keys import jwk_thumbprint
from tests.support.accounts import ALL_SCOPES, create_user, issue_token, unique
from tests.support.registry import (
    create_app_token,
    create_robot,
    get_token,
    make_image,
    make_repository,
    pull_push,
    push_image,
    token_for,
    v2_client,
)
from tests.support.sessions import after_login_failure


def httpx_get(server, path, **kwargs):
    return httpx.get(server.url + path, timeout=30, **kwargs)


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_base_challenges_and_accepts_tokens(server, owner):
    response = httpx_get(server, "/v2/")
    assert response.status_code == 401
    assert response.json() is True
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{server.url}/v2/auth",service="{server.host}"'
    )
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    basic = httpx_get(server, "/v2/", auth=(owner.username, owner.password))
    assert basic.status_code == 401
    assert basic.json() == {"error": "Invalid bearer token format"}
    token = token_for(server, (owner.username, owner.password))
    with v2_client(server, token) as client:
        assert client.get("/v2/").status_code == 200
    assert httpx_get(server, "/v2").status_code == 301


def test_token_is_signed_by_the_instance_key(server, owner, repo):
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    with server.db() as session:
        key = session.scalar(select(ServiceKey).where(ServiceKey.kid == header["kid"]))
        assert key is not None and key.service == "quay"
        public = jwt.algorithms.RSAAlgorithm.from_jwk(key.jwk_json)
        assert jwk_thumbprint(json.loads(key.jwk_json)) == key.kid
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=server.host)
    assert claims["iss"] == "quay"
    assert claims["sub"] == owner.username
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["push", "pull"]}]
    assert claims["context"]["entity_kind"] == "user"
    assert claims["context"]["user"] == owner.username


def test_each_credential_kind_can_push_and_pull(server, owner, repo):
    short = unique("bot")
    robot_token = create_robot(server, owner.username, short, {repo: Role.write})
    kinds = {
        "user": (owner.username, owner.password),
        "robot": (f"{owner.username}+{short}", robot_token),
        "oauthtoken": ("$oauthtoken", issue_token(server, owner.username, ALL_SCOPES)),
        "appspecifictoken": ("$app", create_app_token(server, owner.username)),
    }
    for kind, credentials in kinds.items():
        token = token_for(server, credentials, pull_push(repo))
        claims = _claims(token)
        assert claims["context"]["entity_kind"] == kind, kind
        assert claims["access"][0]["actions"] == ["push", "pull"], kind
        image = make_image()
        with v2_client(server, token) as client:
            assert push_image(client, repo, image, kind).status_code == 201
            pulled = client.get(f"/v2/{repo}/manifests/{kind}")
            assert pulled.status_code == 200
            assert pulled.content == image.manifest
    # Each push's audit entry names who pushed, in the namespace pushed to.
    with server.db() as session:
        robot_id = session.scalar(
            select(User.id).where(User.username == f"{owner.username}+{short}")
        )
        repository_id = repositories.find_repository(session, *repo.split("/", 1)).id
        entries = session.scalars(
            select(LogEntry).where(
                LogEntry.kind == "push_repo", LogEntry.repository_id == repository_id
            )
        ).all()
    assert {json.loads(entry.metadata_json)["tag"]: entry.performer_id for entry in entries} == {
        "user": owner.id,
        "robot": robot_id,
        "oauthtoken": owner.id,
        "appspecifictoken": owner.id,
    }
    assert {entry.account_id for entry in entries} == {owner.id}


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (("nobody", "wrong"), "Invalid Username or Password"),
        (("$app", "X" * 120), "Invalid token"),
        (("$oauthtoken", "Y" * 40), "OAuth access token could not be validated"),
        (("someone+bot", "Z" * 64), "Could not find robot with specified username"),
    ],
)
def test_bad_credentials_are_unauthorized(server, credentials, message):
    response = get_token(server, credentials, "repository:a/b:pull")
    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": message, "detail": {}}]
    }
    assert response.headers["www-authenticate"].startswith("Bearer realm=")


def test_malformed_scope_and_name(server, owner):
    creds = (owner.username, owner.password)
    bad_scope = get_token(server, creds, "repository:nope")
    assert bad_scope.status_code == 400
    assert bad_scope.json()["errors"][0]["code"] == "INVALID_REQUEST"
    assert "Unable to decode repository and actions" in bad_scope.json()["errors"][0]["message"]
    bad_name = get_token(server, creds, f"repository:{owner.username}/UPPER:pull")
    assert bad_name.status_code == 400
    assert bad_name.json()["errors"][0]["code"] == "NAME_INVALID"


def test_anonymous_without_scope_is_unauthorized(server):
    response = get_token(server, None)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_grants_follow_repository_permissions(server, owner, repo):
    reader = create_user(server, unique("reader"))
    stranger = create_user(server, unique("stranger"))
    with server.db() as session:
        repository = repositories.find_repository(session, *repo.split("/", 1))
        session.add(
            RepositoryPermission(repository_id=repository.id, user_id=reader.id, role=Role.read)
        )
    public = make_repository(server, owner.username, unique("pub"), public=True)

    def actions(creds, path, wanted="pull,push,*"):
        return _claims(token_for(server, creds, f"repository:{path}:{wanted}"))["access"][0][
            "actions"
        ]

    assert actions((owner.username, owner.password), repo) == ["push", "pull", "*"]
    assert actions((reader.username, reader.password), repo) == ["pull"]
    assert actions((stranger.username, stranger.password), repo) == []
    assert actions(None, repo) == []
    assert actions(None, public) == ["pull"]
    assert actions((stranger.username, stranger.password), public) == ["pull"]
    read_only = issue_token(server, owner.username, "repo:read")
    assert actions(("$oauthtoken", read_only), repo) == ["pull"]
    # Another user's namespace: no push, and no repository gets created there.
    assert actions((stranger.username, stranger.password), f"{owner.username}/ghost") == []
    with server.db() as session:
        assert repositories.find_repository(session, owner.username, "ghost") is None


def test_push_creates_a_private_repository(server, owner):
    name = unique("created")
    token = token_for(
        server, (owner.username, owner.password), pull_push(f"{owner.username}/{name}")
    )
    assert _claims(token)["access"][0]["actions"] == ["push", "pull"]
    with server.db() as session:
        created = session.scalar(
            select(Repository).where(Repository.name == name, Repository.deleted.is_(False))
        )
        assert created is not None and created.public is False
    with v2_client(server, token) as client:
        path = f"{owner.username}/{name}"
        assert push_image(client, path, make_image(), "v1").status_code == 201
    # Private: anonymous callers get a challenge naming the scope.
    anonymous = httpx_get(server, f"/v2/{path}/manifests/v1")
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert f'scope="repository:{path}:pull"' in anonymous.headers["www-authenticate"]


def test_anonymous_pull_of_public_repository(server, owner, pusher, repo):
    public = make_repository(server, owner.username, unique("pub"), public=True)
    token = token_for(server, (owner.username, owner.password), pull_push(public))
    image = make_image()
    with v2_client(server, token) as client:
        assert push_image(client, public, image, "latest").status_code == 201
    response = httpx_get(server, f"/v2/{public}/manifests/latest")
    assert response.status_code == 200
    assert response.content == image.manifest
    blob = httpx_get(server, f"/v2/{public}/blobs/{image.layers[0].digest}", follow_redirects=True)
    assert blob.content == image.layers[0].data
    # Anonymous callers may not push, even to public repositories.
    push = httpx.post(f"{server.url}/v2/{public}/blobs/uploads/", timeout=30)
    assert push.status_code == 401


def test_token_without_push_grant_is_refused_with_a_challenge(server, owner, repo):
    token = token_for(server, (owner.username, owner.password), f"repository:{repo}:pull")
    with v2_client(server, token) as client:
        response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 401
    body = response.json()["errors"][0]
    assert body["code"] == "UNAUTHORIZED"
    assert f'scope="repository:{repo}:pull,push"' in response.headers["www-authenticate"]


def test_forged_and_foreign_tokens_are_rejected(server, owner, repo):
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = token_for(server, (owner.username, owner.password), pull_push(repo))
    header = jwt.get_unverified_header(real)
    claims = _claims(real)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, "RS256", {"kid": header["kid"]})
    unsigned = jwt.encode(claims, None, "none")
    for bad in (forged, unsigned, real[:-4] + "AAAA", "garbage"):
        with v2_client(server, bad) as client:
            response = client.get(f"/v2/{repo}/tags/list")
        assert response.status_code == 401, bad
        assert "error" in response.json()


def test_catalog_shows_only_visible_repositories(server, owner, repo):
    stranger = create_user(server, unique("stranger"))
    mine = token_for(server, (owner.username, owner.password))
    theirs = token_for(server, (stranger.username, stranger.password))
    with v2_client(server, mine) as client:
        listed = []
        url = "/v2/_catalog?n=2"
        while url:
            response = client.get(url)
            assert response.status_code == 200
            listed.extend(response.json()["repositories"])
            link = response.headers.get("link")
            url = link.split(";")[0].strip("<>") if link else None
        assert repo in listed
    with v2_client(server, theirs) as client:
        assert repo not in client.get("/v2/_catalog").json()["repositories"]
    assert httpx_get(server, "/v2/_catalog").json() == {"repositories": []}


def test_disabled_namespace_is_denied(server):
    user = create_user(server, unique("gone"))
    with server.db() as session:
        session.get(User, user.id).enabled = False
    other = create_user(server, unique("asker"))
    response = get_token(
        server, (other.username, other.password), f"repository:{user.username}/x:pull"
    )
    assert response.status_code == 405
    assert response.json()["errors"][0] == {
        "code": "DENIED",
        "message": f"Namespace {user.username} has been disabled. Please contact a system "
        "administrator.",
        "detail": {},
    }


def test_scope_on_a_repository_without_images_is_unsupported(server, owner):
    repo = make_repository(server, owner.username, unique("app"), public=False)
    with server.db() as session:
        namespace, name = repo.split("/", 1)
        found = repositories.find_repository(session, namespace, name)
        found.kind = "application"
    response = get_token(server, (owner.username, owner.password), f"repository:{repo}:pull")
    assert response.status_code == 405
    assert response.json()["errors"][0] == {
        "code": "UNSUPPORTED",
        "message": "This repository is for managing application and not container images.",
        "detail": {},
    }


def test_password_change_takes_effect_at_once(server):
    user = create_user(server, unique("changer"))
    scope = "repository:a/b:pull"
    assert get_token(server, (user.username, user.password), scope).status_code == 200
    assert get_token(server, (user.username, user.password), scope).status_code == 200
    with server.db() as session:
        session.get(User, user.id).password_hash = hash_password("a-new-password")
    assert get_token(server, (user.username, user.password), scope).status_code == 401
    renewed = after_login_failure(
        lambda: get_token(server, (user.username, "a-new-password"), scope)
    )
    assert renewed.status_code == 200
    assert get_token(server, (user.username, "wrong-password"), scope).status_code == 401
