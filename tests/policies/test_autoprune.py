"""The autoprune worker on a short interval: each repository keeps exactly the tags its
policies allow, immutable tags survive, and pruned tags can be restored from the time machine."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import update

from cargohold.db.models.registry import Tag
from cargohold.domain.repositories import find_repository
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.content import add_manifest, make_repository, tag_manifest
from tests.support.organizations import log_entries
from tests.support.server import LiveServer

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def tag_with_age(server: LiveServer, path: str, ages_ms: dict[str, int]) -> dict[str, str]:
    """One manifest per tag, each tag started `age` ago; returns tag → digest."""
    digests: dict[str, str] = {}
    for index, (name, age) in enumerate(ages_ms.items()):
        digest = add_manifest(server, path, (index + 1,))
        tag_manifest(server, path, name, digest)
        digests[name] = digest
        namespace, repo_name = path.split("/", 1)
        with server.db() as session:
            repository = find_repository(session, namespace, repo_name)
            started = int(time.time() * 1000) - age
            session.execute(
                update(Tag)
                .where(Tag.repository_id == repository.id, Tag.name == name)
                .values(lifetime_start_ms=started)
            )
    return digests


def alive_tags(client: httpx.Client, path: str) -> set[str]:
    response = client.get(f"/api/v1/repository/{path}/tag/?onlyActiveTags=true&limit=100")
    assert response.status_code == 200
    return {row["name"] for row in response.json()["tags"]}


def wait_for_tags(client: httpx.Client, expected: dict[str, set[str]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(alive_tags(client, path) == names for path, names in expected.items()):
            break
        time.sleep(0.5)
    assert {path: alive_tags(client, path) for path in expected} == expected


def test_worker_applies_every_policy_as_quay_combines_them(server_factory) -> None:
    live = server_factory({"AUTOPRUNE_POLL_PERIOD_SEC": 1, "AUTOPRUNE_TAG_BATCH_SIZE": 2})
    owner = create_user(live)
    org = create_organization(live, owner)
    counted = make_repository(live, org)
    combined = make_repository(live, org)
    personal = make_repository(live, owner.username)
    untouched = make_repository(live, create_user(live).username, public=True)

    tag_with_age(live, counted, {f"t{n}": (10 - n) * HOUR_MS for n in range(1, 7)})
    tag_with_age(
        live,
        combined,
        {
            "rel-old": 3 * DAY_MS,
            "dev-old": 3 * DAY_MS - 1000,
            "dev-a": 3 * HOUR_MS,
            "rel-a": 2 * HOUR_MS,
            "rel-b": HOUR_MS,
        },
    )
    personal_digests = tag_with_age(
        live,
        personal,
        {"pinned": 9 * HOUR_MS, "keep-1": 8 * HOUR_MS, "x1": 3 * HOUR_MS, "x2": 2 * HOUR_MS}
        | {"x3": HOUR_MS},
    )
    tag_with_age(live, untouched, {f"u{n}": n * DAY_MS for n in range(1, 4)})

    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        # An immutable tag is never pruned and does not count towards N.
        pinned = client.put(f"/api/v1/repository/{personal}/tag/pinned", json={"immutable": True})
        assert pinned.status_code == 201
        policies = [
            (
                f"/api/v1/organization/{org}/autoprunepolicy/",
                {"method": "number_of_tags", "value": 3},
            ),
            (
                f"/api/v1/repository/{combined}/autoprunepolicy/",
                {"method": "creation_date", "value": "1d", "tagPattern": "^dev-"},
            ),
            (
                "/api/v1/user/autoprunepolicy/",
                {
                    "method": "number_of_tags",
                    "value": 2,
                    "tagPattern": "^keep",
                    "tagPatternMatches": False,
                },
            ),
        ]
        uuids = []
        for path, body in policies:
            created = client.post(path, json=body)
            assert created.status_code == 201, created.text
            uuids.append((path, created.json()["uuid"]))

        wait_for_tags(
            client,
            {
                counted: {"t4", "t5", "t6"},
                # dev-old goes by age; then the org's count keeps the newest three of the rest.
                combined: {"dev-a", "rel-a", "rel-b"},
                personal: {"pinned", "keep-1", "x2", "x3"},
            },
        )
        assert alive_tags(client, untouched) == {"u1", "u2", "u3"}
        pruned = {
            (entry["repo"], entry["tag"])
            for namespace in (org, owner.username)
            for entry in log_entries(live, "autoprune_tag_delete", namespace)
        }
        repo_of = {path: path.split("/", 1)[1] for path in (counted, combined, personal)}
        assert pruned == {
            (repo_of[counted], "t1"),
            (repo_of[counted], "t2"),
            (repo_of[counted], "t3"),
            (repo_of[combined], "dev-old"),
            (repo_of[combined], "rel-old"),
            (repo_of[personal], "x1"),
        }
        entry = log_entries(live, "autoprune_tag_delete", owner.username)[-1]
        assert entry["performer"] == "autoprune worker"

        # Without the user's policy, a pruned tag comes back from the time machine and stays.
        path, uuid = uuids[2]
        assert client.delete(path + uuid).status_code == 200
        restored = client.post(
            f"/api/v1/repository/{personal}/tag/x1/restore",
            json={"manifest_digest": personal_digests["x1"]},
        )
        assert restored.status_code == 200, restored.text
        time.sleep(3)
        assert alive_tags(client, personal) == {"pinned", "keep-1", "x1", "x2", "x3"}

        # A new tag in a counted repository pushes the oldest one out.
        tag_with_age(live, counted, {"t7": 0})
        wait_for_tags(client, {counted: {"t5", "t6", "t7"}})
