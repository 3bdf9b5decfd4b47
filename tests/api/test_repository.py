"""Repositories API: create, read, list and page, describe, visibility, state, delete."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import Repository
from cargohold.domain import repositories
from tests.support.content import add_manifest, make_repository, tag_manifest
from tests.support.repos import Cast, share
from tests.support.server import LiveServer


def audit_entries(server: LiveServer, kind: str, repo_name: str) -> list[dict]:
    with server.db() as session:
        rows = session.scalars(
            select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.id)
        ).all()
        found = [json.loads(row.metadata_json) for row in rows]
    for entry in found:
        entry.pop("request_id", None)  # every entry's; not what these tests look at
    return [entry for entry in found if entry.get("repo") == repo_name]


def test_create_repository_returns_201_and_logs(cast: Cast) -> None:
    client = cast.clients["owner"]
    response = client.post(
        "/api/v1/repository",
        json={"repository": "created", "visibility": "private", "description": "hello"},
    )
    assert response.status_code == 201
    assert response.json() == {"namespace": cast.owner.username, "name": "created", "kind": "image"}
    entries = audit_entries(cast.server, "create_repo", "created")
    assert entries and entries[-1]["namespace"] == cast.owner.username
    again = client.post(
        "/api/v1/repository",
        json={"repository": "created", "visibility": "private", "description": ""},
    )
    assert again.status_code == 400
    assert again.json()["detail"] == "Repository already exists"
    got = client.get(f"/api/v1/repository/{cast.owner.username}/created").json()
    assert got["description"] == "hello" and got["is_public"] is False


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("a" * 255, 201),
        ("a" * 256, 400),
        ("a|b", 400),
        ("UpperCase", 400),
        ("nested/deeper/name", 201),
        ("foo.bar", 201),
        ("logs", 201),
        ("trailing/", 400),
    ],
)
def test_repository_name_rules(cast: Cast, name: str, status: int) -> None:
    response = cast.clients["owner"].post(
        "/api/v1/repository", json={"repository": name, "visibility": "public", "description": ""}
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["detail"] == "Invalid repository name"


def test_create_repository_refusals(cast: Cast) -> None:
    body = {"repository": "nope", "visibility": "public", "description": ""}
    anonymous = cast.clients["anonymous"].post("/api/v1/repository", json=body)
    assert anonymous.status_code == 403  # CSRF guards anonymous mutations first
    stranger = cast.clients["stranger"].post(
        "/api/v1/repository", json={**body, "namespace": cast.owner.username}
    )
    assert stranger.status_code == 403
    assert stranger.json()["error_type"] == "insufficient_scope"
    missing = cast.clients["owner"].post(
        "/api/v1/repository", json={"repository": "x", "visibility": "secret", "description": ""}
    )
    assert missing.status_code == 400
    assert missing.json()["error_type"] == "invalid_request"
    no_description = cast.clients["owner"].post(
        "/api/v1/repository", json={"repository": "x", "visibility": "public"}
    )
    assert no_description.status_code == 400
    assert "'description' is a required property" in no_description.json()["detail"]


@pytest.fixture(scope="module")
def private_repo(cast: Cast) -> str:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    digest = add_manifest(cast.server, path, (1000, 2000))
    tag_manifest(cast.server, path, "latest", digest)
    return path


@pytest.fixture(scope="module")
def public_repo(cast: Cast) -> str:
    return make_repository(cast.server, cast.owner.username, public=True)


EXPECTED_ACCESS = {
    # caller: (can_write, can_admin) on the shared private repository
    "owner": (True, True),
    "admin": (True, True),
    "writer": (True, False),
    "reader": (False, False),
}


@pytest.mark.parametrize("caller", sorted(EXPECTED_ACCESS))
def test_get_repository_fields_per_role(cast: Cast, private_repo: str, caller: str) -> None:
    response = cast.clients[caller].get(f"/api/v1/repository/{private_repo}")
    assert response.status_code == 200
    body = response.json()
    namespace, name = private_repo.split("/")
    can_write, can_admin = EXPECTED_ACCESS[caller]
    tag = body["tags"]["latest"]
    assert set(tag) == {"name", "size", "last_modified", "manifest_digest"}
    assert tag["size"] == 3000 and tag["last_modified"].endswith("-0000")
    with cast.server.db() as session:
        token = repositories.find_repository(session, namespace, name).badge_token
    assert body == {
        "namespace": namespace,
        "name": name,
        "kind": "image",
        "description": None,
        "is_public": False,
        "is_organization": False,
        "is_starred": False,
        "status_token": token,
        "trust_enabled": False,
        "tag_expiration_s": 1209600,
        "is_free_account": True,
        "state": "NORMAL",
        "can_write": can_write,
        "can_admin": can_admin,
        "tags": {"latest": tag},
    }


def test_private_repository_is_invisible_to_outsiders(cast: Cast, private_repo: str) -> None:
    stranger = cast.clients["stranger"].get(f"/api/v1/repository/{private_repo}")
    assert stranger.status_code == 403
    assert stranger.json()["detail"] == "Unauthorized"
    anonymous = cast.clients["anonymous"].get(f"/api/v1/repository/{private_repo}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error_type"] == "invalid_token"
    missing = f"{cast.owner.username}/doesnotexist"
    assert cast.clients["stranger"].get(f"/api/v1/repository/{missing}").status_code == 403
    assert cast.clients["anonymous"].get(f"/api/v1/repository/{missing}").status_code == 401
    owner = cast.clients["owner"].get(f"/api/v1/repository/{missing}")
    assert owner.status_code == 404
    assert owner.json()["error_type"] == "not_found"


def test_public_repository_for_anonymous_and_strangers(cast: Cast, public_repo: str) -> None:
    for caller in ("anonymous", "stranger"):
        response = cast.clients[caller].get(f"/api/v1/repository/{public_repo}?includeStats=true")
        assert response.status_code == 200
        body = response.json()
        assert body["is_public"] is True and body["status_token"] == ""
        assert body["can_write"] is False and body["can_admin"] is False
        assert body["tags"] == {}
        assert len(body["stats"]) == 92
        assert all(set(day) == {"date", "count"} for day in body["stats"])
    no_tags = cast.clients["anonymous"].get(f"/api/v1/repository/{public_repo}?includeTags=false")
    assert "tags" not in no_tags.json() and "stats" not in no_tags.json()


def test_list_requires_a_filter(cast: Cast) -> None:
    for client in cast.clients.values():
        response = client.get("/api/v1/repository")
        assert response.status_code == 400
        assert response.json()["detail"] == (
            "namespace, starred or public are required for this API call"
        )
    assert cast.clients["owner"].get("/api/v1/repository?public=true&repo_kind=app").json() == {
        "message": "Unknown repository kind"
    }


def test_list_visibility_per_caller(cast: Cast, private_repo: str, public_repo: str) -> None:
    namespace = cast.owner.username
    url = f"/api/v1/repository?namespace={namespace}&last_modified=true&popularity=true"

    def names(caller: str, extra: str = "") -> set[str]:
        response = cast.clients[caller].get(url + extra)
        assert response.status_code == 200
        return {f"{r['namespace']}/{r['name']}" for r in response.json()["repositories"]}

    for caller in ("owner", "reader", "writer", "admin"):
        assert private_repo in names(caller)
    assert private_repo not in names("stranger", "&public=true")
    assert public_repo in names("stranger", "&public=true")
    assert public_repo not in names("stranger")
    assert names("anonymous") == set()
    assert private_repo not in names("anonymous", "&public=true")
    listed = cast.clients["reader"].get(url).json()["repositories"]
    item = next(r for r in listed if f"{r['namespace']}/{r['name']}" == private_repo)
    assert set(item) == {
        "namespace",
        "name",
        "description",
        "is_public",
        "kind",
        "state",
        "last_modified",
        "popularity",
        "is_starred",
        "quota_report",
    }
    assert item["quota_report"] == {"quota_bytes": 0, "configured_quota": None}
    assert isinstance(item["last_modified"], int) and item["state"] == "NORMAL"
    assert isinstance(item["popularity"], float)
    anon = cast.clients["anonymous"].get(url + "&public=true").json()["repositories"]
    assert all("is_starred" not in r for r in anon)


def test_list_pages_with_next_page(server: LiveServer, cast: Cast) -> None:
    owner = cast.users["writer"]
    with server.db() as session:
        namespace = session.scalar(select(User).where(User.username == owner.username))
        for number in range(205):
            repositories.create_repository(
                session,
                namespace,
                f"paged{number:03d}",
                public=True,
                description=None,
                creator=namespace,
            )
    client = cast.clients["stranger"]
    seen: list[str] = []
    url = f"/api/v1/repository?namespace={owner.username}&public=true"
    page = client.get(url).json()
    sizes = []
    while True:
        sizes.append(len(page["repositories"]))
        seen += [r["name"] for r in page["repositories"]]
        if "next_page" not in page:
            break
        page = client.get(url + "&next_page=" + page["next_page"]).json()
    assert sizes == [100, 100, 5]
    assert seen == sorted(seen) and len(set(seen)) == 205
    tampered = client.get(url + "&next_page=garbage").json()
    assert [r["name"] for r in tampered["repositories"]] == seen[:100]


def test_update_description_visibility_and_delete(cast: Cast) -> None:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    name = path.split("/")[1]
    url = f"/api/v1/repository/{path}"
    assert cast.clients["reader"].put(url, json={"description": "no"}).status_code == 403
    assert cast.clients["writer"].put(url, json={"description": "**md**"}).json() == {
        "success": True
    }
    assert cast.clients["owner"].get(url).json()["description"] == "**md**"
    assert audit_entries(cast.server, "set_repo_description", name)[-1]["description"] == "**md**"
    assert cast.clients["writer"].put(url, json={}).status_code == 400

    visibility = url + "/changevisibility"
    assert cast.clients["writer"].post(visibility, json={"visibility": "public"}).status_code == 403
    assert cast.clients["admin"].post(visibility, json={"visibility": "public"}).json() == {
        "success": True
    }
    assert cast.clients["anonymous"].get(url).json()["is_public"] is True
    assert audit_entries(cast.server, "change_repo_visibility", name)[-1]["visibility"] == "public"
    assert cast.clients["admin"].post(visibility, json={"visibility": "x"}).status_code == 400

    assert cast.clients["writer"].delete(url).status_code == 403
    assert cast.clients["admin"].delete(url).status_code == 204
    assert cast.clients["owner"].get(url).status_code == 404
    assert cast.clients["anonymous"].get(url).status_code == 401
    assert cast.clients["owner"].delete(url).status_code == 204
    assert audit_entries(cast.server, "delete_repo", name)
    with cast.server.db() as session:
        assert session.scalar(select(Repository).where(Repository.name == name)) is None
    listed = (
        cast.clients["owner"]
        .get(f"/api/v1/repository?namespace={cast.owner.username}")
        .json()["repositories"]
    )
    assert name not in {r["name"] for r in listed}
    recreated = cast.clients["owner"].post(
        "/api/v1/repository", json={"repository": name, "visibility": "private", "description": ""}
    )
    assert recreated.status_code == 201


def test_change_state_blocks_tag_writes(cast: Cast) -> None:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    digest = add_manifest(cast.server, path)
    tag_manifest(cast.server, path, "v1", digest)
    url = f"/api/v1/repository/{path}"
    assert (
        cast.clients["writer"].put(url + "/changestate", json={"state": "READ_ONLY"}).status_code
        == 403
    )
    bad = cast.clients["admin"].put(url + "/changestate", json={"state": "ORG_MIRROR"})
    assert bad.status_code == 400
    for state, number in (("READ_ONLY", 1), ("MIRROR", 2)):
        response = cast.clients["admin"].put(url + "/changestate", json={"state": state})
        assert response.json() == {"success": True}
        body = cast.clients["writer"].get(url).json()
        assert body["state"] == state and body["can_write"] is False
        refused = cast.clients["writer"].put(url + "/tag/v2", json={"manifest_digest": digest})
        assert refused.status_code == 503
        assert refused.json() == {"message": f"Repository is in read only or mirror mode: {number}"}
        assert cast.clients["writer"].delete(url + "/tag/v1").status_code == 503
    assert (
        audit_entries(cast.server, "change_repo_state", path.split("/")[1])[-1]["state_changed"]
        == "MIRROR"
    )
    cast.clients["admin"].put(url + "/changestate", json={"state": "NORMAL"})
    assert (
        cast.clients["writer"].put(url + "/tag/v2", json={"manifest_digest": digest}).status_code
        == 201
    )
