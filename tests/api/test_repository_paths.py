"""Repository path routing: a repository may be named after any sub-resource word, and a path
without a namespace part never reaches a repository sub-resource."""

from __future__ import annotations

import httpx

from cargohold.api.route_table import repository_subresource_words
from cargohold.app import create_app
from tests.support.accounts import (
    TestUser,
    create_organization,
)
from tests.support.server import LiveServer


def _words(server: LiveServer) -> set[str]:
    return repository_subresource_words(create_app(server.settings))


def test_repositories_named_after_sub_resources_are_read_as_repositories(
    server: LiveServer, admin: TestUser, user_client: httpx.Client, user: TestUser
) -> None:
    org = create_organization(server, user)
    words = sorted(_words(server))
    # Every word some route puts after a repository path: the old clashes and the newest routes.
    assert {"build", "trigger", "mirror", "tag", "logs", "notification"} <= set(words)
    for word in words:
        created = user_client.post(
            "/api/v1/repository",
            json={
                "namespace": org,
                "repository": word,
                "visibility": "private",
                "description": word,
            },
        )
        assert created.status_code == 201, (word, created.text)
    for word in words:
        path = f"/api/v1/repository/{org}/{word}"
        got = user_client.get(path)
        assert got.status_code == 200, (word, got.text)
        assert (got.json()["name"], got.json()["description"]) == (word, word)
        tags = user_client.get(f"{path}/tag/")
        assert tags.status_code == 200 and tags.json()["tags"] == [], (word, tags.text)
        users = user_client.get(f"{path}/permissions/user/")
        assert users.status_code == 200, (word, users.text)
        assert users.json()["permissions"][user.username]["role"] == "admin", word
        described = user_client.put(path, json={"description": f"now {word}"})
        assert described.status_code == 200, (word, described.text)
        assert user_client.get(path).json()["description"] == f"now {word}"
    # A repository called `logs` and the logs of a repository are told apart.
    logs = user_client.get(f"/api/v1/repository/{org}/logs/logs")
    assert logs.status_code == 200 and "logs" in logs.json()
    deleted = user_client.delete(f"/api/v1/repository/{org}/tag")
    assert deleted.status_code == 204
    assert user_client.get(f"/api/v1/repository/{org}/tag").status_code == 404


def test_a_one_part_repository_path_reaches_no_sub_resource(
    server: LiveServer, user_client: httpx.Client, user: TestUser, anon_client: httpx.Client
) -> None:
    """`nosuchns/build` is the repository `build` of a namespace `nosuchns`, answered as any
    missing repository is (Quay's order: the permission check first), never a build list."""
    org = create_organization(server, user)
    for word in ("build", "trigger", "mirror", "tag", "logs", "aggregatelogs"):
        owned = user_client.get(f"/api/v1/repository/{org}/{word}")
        assert owned.status_code == 404, (word, owned.text)
        foreign = user_client.get(f"/api/v1/repository/nosuchns/{word}")
        assert foreign.status_code == 403, (word, foreign.text)
        assert anon_client.get(f"/api/v1/repository/nosuchns/{word}").status_code == 401


def test_manifest_routes_take_only_digest_shaped_values(
    server: LiveServer, user_client: httpx.Client, user: TestUser
) -> None:
    org = create_organization(server, user)
    assert (
        user_client.post(
            "/api/v1/repository",
            json={
                "namespace": org,
                "repository": "manifest",
                "visibility": "private",
                "description": "",
            },
        ).status_code
        == 201
    )
    # `org/manifest/logs` is the logs of the repository `org/manifest`, not a manifest `logs`.
    logs = user_client.get(f"/api/v1/repository/{org}/manifest/logs")
    assert logs.status_code == 200 and "logs" in logs.json()
    missing = user_client.get(f"/api/v1/repository/{org}/manifest/manifest/sha256:{'0' * 64}")
    assert missing.status_code == 404
